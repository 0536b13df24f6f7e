"""Row hashes of a frame in one pass: the data fingerprint of a verdict and GX's batch marker both
come from them, so a validated batch is hashed once instead of once per consumer.

The values are exactly pandas' ``hash_pandas_object(frame, index=False)`` and ``(..., index=True)``:
fingerprints stored before keep matching, and the GX marker equals the one GX computes itself.
Only the route is faster: for Arrow-backed text (pandas 3's ``str``) Arrow finds the distinct values
and each is hashed once, where pandas converts every cell to a Python object and factorizes them
(0.26 s vs 0.04 s per 1M-row low-cardinality column measured); mostly distinct text (ids) is hashed
row by row without the factorizing (0.5 s vs 1.4 s per 1M ids). Every other dtype goes through
pandas' own ``hash_pandas_object``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

#: pandas ``combine_hash_arrays`` constants (pandas/core/util/hashing.py), the tuple-hash of CPython.
_START, _MULTIPLIER, _STEP, _END = 0x345678, 1000003, 82520, 97531


@dataclass(frozen=True)
class RowHashes:
    """One uint64 per row: pandas' ``hash_pandas_object`` of the frame without and with its index."""

    without_index: np.ndarray
    with_index: np.ndarray


def column_hash(series: pd.Series) -> np.ndarray:
    """``pandas.util.hash_pandas_object(series, index=False)`` as an array (same values)."""
    import numpy as np
    import pandas as pd

    dtype = series.dtype
    if isinstance(dtype, pd.StringDtype) and dtype.storage == "pyarrow":
        import pyarrow as pa

        # pandas hashes the distinct values (categorize=True) and spreads them to the rows, nulls
        # as the largest uint64: the same here, with Arrow finding the distinct values per chunk.
        data = pa.array(series.array)
        chunks = data.chunks if isinstance(data, pa.ChunkedArray) else [data]
        parts = [_text_chunk_hash(chunk) for chunk in chunks]
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.uint64)
    return pd.util.hash_pandas_object(series, index=False).to_numpy()


#: Text chunks whose sampled rows are mostly distinct (keys, ids) are hashed row by row: finding
#: their distinct values first costs more than it saves (0.27 s vs 0.12 s of hashing per 1M ids).
_MOSTLY_DISTINCT, _SAMPLE = 0.5, 10_000


def _text_chunk_hash(chunk: Any, distinct_first: bool | None = None) -> np.ndarray:
    """pandas' hashes of one Arrow text chunk: per distinct value (as pandas does), or per row for a
    mostly distinct chunk (the same values: a row's hash is its text's); nulls the largest uint64."""
    import numpy as np
    import pandas as pd
    import pyarrow.compute as pc

    if distinct_first is None:
        sample = chunk.slice(0, _SAMPLE)
        distinct_first = pc.count_distinct(sample).as_py() <= _MOSTLY_DISTINCT * max(len(sample), 1)
    if distinct_first:
        encoded = pc.dictionary_encode(chunk)
        distinct = encoded.dictionary.to_numpy(zero_copy_only=False).astype(object)
        hashed = pd.util.hash_array(distinct, categorize=False)
        indices = encoded.indices
        out = hashed.take(indices.fill_null(0).to_numpy()) if len(hashed) else np.zeros(len(chunk), np.uint64)
    else:
        values = chunk.fill_null("").to_numpy(zero_copy_only=False).astype(object)
        out = pd.util.hash_array(values, categorize=False) if len(values) else np.zeros(0, np.uint64)
        indices = chunk
    if indices.null_count:
        out[indices.is_null().to_numpy(zero_copy_only=False)] = np.iinfo(np.uint64).max
    return out


class _Combination:
    """pandas' ``combine_hash_arrays`` over ``count`` arrays, fed one array at a time so that two
    combinations share one pass over the columns (and only one column's hashes are held at once)."""

    def __init__(self, count: int, rows: int) -> None:
        import numpy as np

        self.count, self.position = count, 0
        self.out = np.full(rows, _START, dtype=np.uint64)
        self.multiplier = np.uint64(_MULTIPLIER)

    def add(self, hashes: np.ndarray) -> None:
        import numpy as np

        self.out ^= hashes
        self.out *= self.multiplier
        self.multiplier += np.uint64(_STEP + 2 * (self.count - self.position))
        self.position += 1

    def result(self) -> np.ndarray:
        import numpy as np

        if self.position != self.count:
            raise ValueError(f"combined {self.position} hash arrays, expected {self.count}")
        if self.count == 0:  # pandas: nothing to combine is an empty array, whatever the row count
            return np.array([], dtype=np.uint64)
        return self.out + np.uint64(_END)


def row_hashes(frame: pd.DataFrame) -> RowHashes:
    """The frame's row hashes without and with its index, hashing each column once.

    Raises ``TypeError`` like pandas for cells it cannot hash (dicts, lists).
    """
    import pandas as pd

    rows, count = len(frame), frame.shape[1]
    plain, indexed = _Combination(count, rows), _Combination(count + 1, rows)
    for position in range(count):
        hashed = column_hash(frame.iloc[:, position])
        plain.add(hashed)
        indexed.add(hashed)
    indexed.add(pd.util.hash_pandas_object(frame.index, index=False).to_numpy())
    return RowHashes(without_index=plain.result(), with_index=indexed.result())
