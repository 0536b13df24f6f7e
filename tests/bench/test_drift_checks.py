"""The drift baseline computes what Evidently computes: the same score and verdict per column.

Without this, a baseline that skipped a step Evidently takes (dropping missing values, the union of
categories of both sides, the norm of the Wasserstein distance) would make the drift ratio look
better or worse than it is. Missing values, an infinite value and a category seen on one side only
are put in on purpose.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bench import drift_checks

pytestmark = pytest.mark.integration

METHODS = {
    "shifted": ("wasserstein", 0.1),
    "stable": ("wasserstein", 0.1),
    "with_gaps": ("wasserstein", 0.1),
    "prediction": ("wasserstein", 0.1),
    "plan": ("jensenshannon", 0.1),
    "region": ("jensenshannon", 0.1),
}


def _frames(rows: int = 4_000) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(3)

    def side(shift: float, plans: list[str], weights: list[float]) -> pd.DataFrame:
        gaps = rng.normal(10.0, 2.0, rows)
        gaps[rng.random(rows) < 0.1] = np.nan
        gaps[0] = np.inf
        return pd.DataFrame(
            {
                "shifted": rng.normal(shift, 1.0, rows),
                "stable": rng.integers(0, 50, rows).astype("int64"),
                "with_gaps": gaps,
                "prediction": rng.beta(2.0, 5.0 + shift, rows),
                "plan": pd.Series(rng.choice(plans, rows, p=weights), dtype="str"),
                "region": pd.Series(rng.choice(["n", "s", None], rows, p=[0.5, 0.45, 0.05]), dtype="str"),
            }
        )

    reference = side(0.0, ["basic", "plus"], [0.7, 0.3])
    current = side(0.5, ["basic", "plus", "new"], [0.4, 0.3, 0.3])
    return reference, current


def test_scores_and_verdicts_match_evidently(tmp_path) -> None:
    from mloops import monitoring
    from mloops.adapters import evidently_adapter

    reference, current = _frames()
    features = {c: m for c, m in METHODS.items() if c != "prediction"}
    snapshot = evidently_adapter.drift_report(
        reference=reference,
        current=current,
        numeric=[c for c, (m, _) in features.items() if m == "wasserstein"],
        categorical=[c for c, (m, _) in features.items() if m == "jensenshannon"],
        methods=features,
        drift_share=0.3,
        prediction=("prediction", *METHODS["prediction"]),
        out_dir=tmp_path,
    )
    theirs = monitoring.value_drifts(snapshot)
    ours = drift_checks.column_drift(reference, current, METHODS)
    assert set(ours) == set(theirs) == set(METHODS)
    for column, (method, score, threshold) in theirs.items():
        assert ours[column]["method"] == method
        assert ours[column]["score"] == pytest.approx(score, rel=1e-9, abs=1e-12), column
        assert ours[column]["drifted"] is monitoring.drift_detected(method, score, threshold), column
    drifted = {c for c, v in ours.items() if v["drifted"]}
    assert {"shifted", "plan"} <= drifted and "stable" not in drifted


def test_sample_is_the_monitoring_sample() -> None:
    from mloops import monitoring

    reference, _ = _frames()
    pd.testing.assert_frame_equal(
        drift_checks.sample(reference, 500, 0), monitoring.sample(reference, 500, 0)
    )
    assert len(drift_checks.sample(reference, 10_000, 0)) == len(reference)


def test_an_unknown_method_is_refused() -> None:
    reference, current = _frames(100)
    with pytest.raises(ValueError, match="not implemented by the scipy baseline"):
        drift_checks.column_drift(reference, current, {"shifted": ("ks", 0.05)})
