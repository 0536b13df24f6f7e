"""The baseline of the drift benchmarks: the pinned drift tests computed directly with scipy.

No Evidently and no mloops: pandas, numpy and scipy only, so the plain scripts can import it. The
tests follow Evidently 0.7's own implementations, so the scores (not only the verdicts) match:

- ``wasserstein`` ("Wasserstein distance (normed)", ``evidently/legacy/calculations/stattests/
  wasserstein_distance_norm.py``): ``scipy.stats.wasserstein_distance(reference, current)`` divided by
  ``max(std(reference), 0.001)`` (numpy's population std); drift when the score is >= the threshold.
- ``jensenshannon`` on a categorical column (``jensenshannon.py`` + ``utils.get_binned_data``): the
  relative frequency of every category seen on either side, ``scipy.spatial.distance.jensenshannon``
  of the two frequency vectors (natural log); drift when >= the threshold.

Like Evidently (``get_one_column_drift``), each side drops missing and infinite values first.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

#: The tests this baseline implements; a config pinning another method is refused, not guessed.
METHODS = ("wasserstein", "jensenshannon")


def sample(frame: Any, size: int, seed: int) -> Any:
    """A fixed-seed sample of at most ``size`` rows (the same draw as ``mloops.monitoring.sample``)."""
    if len(frame) <= size:
        return frame.reset_index(drop=True)
    return frame.sample(n=size, random_state=seed).sort_index().reset_index(drop=True)


def _clean(values: Any) -> Any:
    import numpy as np
    import pandas as pd

    series = pd.Series(values)
    if pd.api.types.is_numeric_dtype(series):
        return series.replace([-np.inf, np.inf], np.nan).dropna()
    return series.dropna()


def wasserstein_norm(reference: Any, current: Any) -> float:
    import numpy as np
    from scipy import stats

    ref = _clean(reference).to_numpy(dtype="float64")
    cur = _clean(current).to_numpy(dtype="float64")
    norm = max(float(np.std(ref)), 0.001)
    return float(stats.wasserstein_distance(ref, cur) / norm)


def jensenshannon_categories(reference: Any, current: Any) -> float:
    from scipy.spatial import distance

    ref, cur = _clean(reference), _clean(current)
    ref_counts, cur_counts = ref.value_counts(), cur.value_counts()
    keys = ref_counts.index.union(cur_counts.index)
    p = ref_counts.reindex(keys, fill_value=0).to_numpy(dtype="float64") / len(ref)
    q = cur_counts.reindex(keys, fill_value=0).to_numpy(dtype="float64") / len(cur)
    return float(distance.jensenshannon(p, q))


def score(method: str, reference: Any, current: Any) -> float:
    if method == "wasserstein":
        return wasserstein_norm(reference, current)
    if method == "jensenshannon":
        return jensenshannon_categories(reference, current)
    raise ValueError(f"drift method {method!r} is not implemented by the scipy baseline (only {METHODS})")


def column_drift(
    reference: Any, current: Any, methods: Mapping[str, Sequence[Any]]
) -> dict[str, dict[str, Any]]:
    """``{column: {method, score, threshold, drifted}}`` for every column of ``methods``.

    ``methods`` maps a column to ``(method, threshold)``; both methods are distances (drift at or
    above the threshold). A column with no value left on a side gets no score, as in mloops.
    """
    out: dict[str, dict[str, Any]] = {}
    for column, (method, threshold) in methods.items():
        if reference[column].isna().all() or current[column].isna().all():
            out[column] = {"method": method, "score": None, "threshold": threshold, "drifted": None}
            continue
        value = score(method, reference[column], current[column])
        out[column] = {
            "method": method,
            "score": value,
            "threshold": threshold,
            "drifted": value >= threshold,
        }
    return out
