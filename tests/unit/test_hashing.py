"""Row hashes computed once for the verdict fingerprint and GX's batch marker: pandas' own values."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from mloops.data.hashing import column_hash, row_hashes
from mloops.stages.layout import frame_fingerprint

pytestmark = pytest.mark.unit

TEXT = ["north", None, "south", "north", "é→ü", "", "south"]
FRAMES = {
    "str with NaN": pd.DataFrame({"s": pd.Series(TEXT, dtype="str")}),
    "string with NA": pd.DataFrame({"s": pd.Series(TEXT, dtype="string[pyarrow]")}),
    "python strings": pd.DataFrame({"s": pd.Series(TEXT, dtype="string[python]")}),
    "all null text": pd.DataFrame({"s": pd.Series([None] * 4, dtype="str")}),
    "chunked text": pd.DataFrame(
        {"s": pd.Series(pd.arrays.ArrowStringArray(pa.chunked_array([["a", "b", None], ["b", "c"], []])))}
    ),
    "numbers and more": pd.DataFrame(
        {
            "i": [1, 2, 3, 4],
            "f": [1.5, np.nan, -0.0, 3.0],
            "n": pd.array([1, None, 3, 4], dtype="Int64"),
            "b": [True, False, True, True],
            "d": pd.to_datetime(["2026-01-01", None, "2026-01-03", "2026-01-04"]).tz_localize("UTC"),
            "c": pd.Categorical(["x", "y", None, "x"]),
            "o": ["x", 1, None, 2.5],
        }
    ),
    "no rows": pd.DataFrame({"s": pd.Series([], dtype="str"), "i": pd.Series([], dtype="int64")}),
    "labelled index": pd.DataFrame({"s": pd.Series(list("abca"), dtype="str")}, index=[10, 12, 11, 30]),
}


@pytest.mark.parametrize("frame", FRAMES.values(), ids=FRAMES.keys())
def test_row_hashes_are_pandas_values(frame: pd.DataFrame) -> None:
    hashes = row_hashes(frame)
    assert np.array_equal(hashes.without_index, pd.util.hash_pandas_object(frame, index=False).to_numpy())
    assert np.array_equal(hashes.with_index, pd.util.hash_pandas_object(frame, index=True).to_numpy())
    for name in frame.columns:
        assert np.array_equal(column_hash(frame[name]), pd.util.hash_pandas_object(frame[name], index=False))


def test_a_frame_without_columns_hashes_its_index_like_pandas() -> None:
    frame = pd.DataFrame(index=range(3))
    assert np.array_equal(row_hashes(frame).with_index, pd.util.hash_pandas_object(frame).to_numpy())


def test_fingerprint_keeps_its_old_value() -> None:
    """Verdicts written before keep matching (training reuses a run by its data fingerprint)."""
    frame = FRAMES["numbers and more"].join(FRAMES["str with NaN"].head(4))
    old = hashlib.sha256(",".join(map(str, frame.columns)).encode())
    old.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    assert frame_fingerprint(frame) == old.hexdigest()[:16]
    assert frame_fingerprint(frame, row_hashes(frame)) == old.hexdigest()[:16]
    changed = frame.assign(s=frame["s"].replace("north", "west"))
    assert frame_fingerprint(changed) != frame_fingerprint(frame)


def test_unhashable_cells_raise_like_pandas() -> None:
    frame = pd.DataFrame({"o": [{"a": 1}, {"b": 2}]})
    with pytest.raises(TypeError):
        pd.util.hash_pandas_object(frame)
    with pytest.raises(TypeError):
        row_hashes(frame)


@pytest.mark.parametrize("distinct_first", [True, False], ids=["by-distinct-value", "row-by-row"])
def test_both_text_routes_give_pandas_values(distinct_first: bool) -> None:
    from mloops.data.hashing import _text_chunk_hash

    series = pd.Series(TEXT * 3, dtype="str")
    chunk = pa.array(series.array)
    assert np.array_equal(
        _text_chunk_hash(chunk, distinct_first), pd.util.hash_pandas_object(series, index=False).to_numpy()
    )


def test_ids_take_the_row_by_row_route(monkeypatch: pytest.MonkeyPatch) -> None:
    import pyarrow.compute as pc

    encoded: list[int] = []
    encode = pc.dictionary_encode
    monkeypatch.setattr(pc, "dictionary_encode", lambda chunk: encoded.append(len(chunk)) or encode(chunk))
    ids = pd.Series([f"C{i:06d}" for i in range(5000)], dtype="str")
    assert np.array_equal(column_hash(ids), pd.util.hash_pandas_object(ids, index=False).to_numpy())
    assert encoded == []
    codes = pd.Series(["a", "b"] * 2500, dtype="str")
    assert np.array_equal(column_hash(codes), pd.util.hash_pandas_object(codes, index=False).to_numpy())
    assert encoded == [5000]
