"""The pinned drift metrics compute what Evidently's own compute, once per column, with the same report.

Each comparison runs Evidently's stock metric (``ValueDrift``, ``DataDriftPreset``) on the same data
with the same method, through ``Dataset.from_pandas``, next to the pinned metric on a ``FrameDataset``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from mloops import monitoring
from mloops.adapters import evidently_drift
from mloops.adapters.evidently_drift import (
    FrameDataset,
    PinnedDriftTable,
    PinnedValueDrift,
    data_definition,
)

pytestmark = pytest.mark.unit

NUMERIC = ["shifted", "stable", "gaps", "constant"]
CATEGORICAL = ["plan", "region", "single"]
#: Widget ids are random (uuid7); everything else of two reports of the same results must be equal.
_IDS = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|[0-9a-f]{32}")


def _frames(rows: int = 3_000) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Both sides, with missing and infinite values, a constant column, a category on one side only and a
    single-category column."""
    rng = np.random.default_rng(7)

    def side(shift: float, plans: list[str], weights: list[float]) -> pd.DataFrame:
        gaps = rng.normal(10.0, 2.0, rows)
        gaps[rng.random(rows) < 0.1] = np.nan
        gaps[:2] = [np.inf, -np.inf]
        regions = pd.Series(rng.choice(["n", "s", "-"], rows, p=[0.5, 0.45, 0.05]), dtype="str")
        return pd.DataFrame(
            {
                "shifted": rng.normal(shift, 1.0, rows),
                "stable": rng.integers(0, 50, rows).astype("int64"),
                "gaps": gaps,
                "constant": np.full(rows, 3.5),
                "plan": pd.Series(rng.choice(plans, rows, p=weights), dtype="str"),
                "region": regions.where(regions != "-", None),
                "single": pd.Series(["only"] * rows, dtype="str"),
            }
        )

    return side(0.0, ["basic", "plus"], [0.7, 0.3]), side(0.6, ["basic", "plus", "new"], [0.4, 0.3, 0.3])


def _stock(reference: pd.DataFrame, current: pd.DataFrame, metrics: list, *, include_tests: bool = False):
    from evidently import DataDefinition, Dataset, Report

    definition = DataDefinition(numerical_columns=NUMERIC, categorical_columns=CATEGORICAL)
    return Report(metrics=metrics, include_tests=include_tests).run(
        current_data=Dataset.from_pandas(current, data_definition=definition),
        reference_data=Dataset.from_pandas(reference, data_definition=definition),
    )


def _pinned(reference: pd.DataFrame, current: pd.DataFrame, metrics: list, *, include_tests: bool = False):
    from evidently import Report

    definition = data_definition(NUMERIC, CATEGORICAL)
    return Report(metrics=metrics, include_tests=include_tests).run(
        current_data=FrameDataset(current, definition),
        reference_data=FrameDataset(reference, definition),
    )


def _values(snapshot) -> dict[str, Any]:
    return {m["config"].get("column", m["metric_name"]): m["value"] for m in snapshot.dict()["metrics"]}


def _statuses(snapshot) -> dict[str, str]:
    return {t["metric_config"]["params"]["column"]: t["status"] for t in snapshot.dict()["tests"]}


def _html(snapshot, path: Path) -> str:
    snapshot.save_html(str(path))
    return _IDS.sub("ID", path.read_text(encoding="utf-8"))


@pytest.mark.parametrize(
    ("columns", "method", "threshold"),
    [
        (NUMERIC, "wasserstein", 0.1),
        (NUMERIC, "ks", 0.05),
        (NUMERIC, "psi", 0.1),
        (NUMERIC, "jensenshannon", 0.1),
        (CATEGORICAL, "jensenshannon", 0.1),
        (CATEGORICAL, "chisquare", 0.05),
        (CATEGORICAL, "psi", 0.1),
    ],
)
def test_pinned_scores_and_verdicts_equal_stock_value_drift(columns, method, threshold) -> None:
    from evidently.metrics import ValueDrift

    reference, current = _frames()
    stock = _stock(
        reference,
        current,
        [ValueDrift(column=c, method=method, threshold=threshold) for c in columns],
        include_tests=True,
    )
    pinned = _pinned(
        reference,
        current,
        [PinnedValueDrift(column=c, method=method, threshold=threshold) for c in columns],
        include_tests=True,
    )
    theirs, ours = _values(stock), _values(pinned)
    assert set(ours) == set(theirs) == set(columns)
    for column in columns:
        assert ours[column] == pytest.approx(theirs[column], rel=1e-12, abs=1e-15, nan_ok=True), column
    # The drift flag: Evidently's own test per column (FAIL = drifted), and mloops' reading of the score.
    assert _statuses(pinned) == _statuses(stock)
    for column, status in _statuses(pinned).items():
        assert monitoring.drift_detected(method, float(ours[column]), threshold) is (status == "FAIL"), column
    assert _statuses(pinned)["shifted" if columns is NUMERIC else "plan"] == "FAIL"


def test_the_table_is_the_presets_table_with_each_column_computed_once(tmp_path, monkeypatch) -> None:
    from evidently.presets import DataDriftPreset

    reference, current = _frames()
    columns = [*NUMERIC, *CATEGORICAL]
    methods = {c: "wasserstein" if c in NUMERIC else "jensenshannon" for c in columns}
    thresholds = dict.fromkeys(columns, 0.1)
    stock = _stock(
        reference,
        current,
        [
            DataDriftPreset(
                columns=columns, per_column_method=methods, per_column_threshold=thresholds, drift_share=0.3
            )
        ],
    )
    calls: list[str] = []
    real = evidently_drift.get_one_column_drift

    def counted(**kwargs):
        calls.append(kwargs["column_name"])
        return real(**kwargs)

    monkeypatch.setattr(evidently_drift, "get_one_column_drift", counted)
    pinned = _pinned(
        reference,
        current,
        [
            PinnedDriftTable(
                columns=columns, per_column_method=methods, per_column_threshold=thresholds, drift_share=0.3
            )
        ],
    )
    assert sorted(calls) == sorted(columns)  # once per column: metrics, count and table share it

    theirs, ours = _values(stock), _values(pinned)
    count = next(v for k, v in ours.items() if k.startswith("PinnedDriftedColumnsCount("))
    assert count == next(v for k, v in theirs.items() if k.startswith("DriftedColumnsCount("))
    assert count["count"] >= 2  # shifted and plan drift
    for column in columns:
        assert ours[column] == pytest.approx(theirs[column], rel=1e-12, abs=1e-15), column

    html = _html(pinned, tmp_path / "pinned.html")
    assert html == _html(stock, tmp_path / "stock.html")  # the same report, widget ids aside
    assert "Data Drift Summary" in html and "Dataset Drift is" in html
    assert f"({int(count['count'])} out of {len(columns)})" in html
    for column in columns:
        assert f'"column_name": "{column}"' in html


def test_a_standalone_pinned_metric_renders_value_drifts_widget(tmp_path) -> None:
    from evidently.metrics import ValueDrift

    reference, current = _frames(1_000)
    stock = _stock(reference, current, [ValueDrift(column="shifted", method="wasserstein", threshold=0.1)])
    pinned = _pinned(
        reference, current, [PinnedValueDrift(column="shifted", method="wasserstein", threshold=0.1)]
    )
    html = _html(pinned, tmp_path / "pinned.html")
    assert "Drift in column 'shifted'" in html and "DATA DISTRIBUTION" in html
    # The widget's text names the metric's display name, the rest is ValueDrift's widget unchanged.
    assert html == _html(stock, tmp_path / "stock.html")


@pytest.mark.parametrize("column", ["gaps", "plan"])
def test_an_all_missing_column_fails_as_in_stock_evidently(column) -> None:
    from evidently.metrics import ValueDrift

    reference, current = _frames(500)
    current[column] = np.nan if column == "gaps" else pd.Series([None] * len(current), dtype="str")
    method = "wasserstein" if column == "gaps" else "jensenshannon"
    message = f"An empty column '{column}' was provided for drift calculation in the current dataset"
    with pytest.raises(ValueError, match=re.escape(message)):
        _stock(reference, current, [ValueDrift(column=column, method=method, threshold=0.1)])
    with pytest.raises(ValueError, match=re.escape(message)):
        _pinned(reference, current, [PinnedValueDrift(column=column, method=method, threshold=0.1)])


def test_frame_dataset_holds_the_frame_itself() -> None:
    from evidently import Dataset

    reference, _ = _frames(200)
    definition = data_definition(NUMERIC, CATEGORICAL)
    dataset = FrameDataset(reference, definition)
    assert dataset.as_dataframe() is reference  # no copy
    assert dataset.column("plan").type.value == "cat" and dataset.column("stable").type.value == "num"
    stock = Dataset.from_pandas(reference, data_definition=definition).stats()
    assert dataset.stats().row_count == stock.row_count == 200
    assert dataset.stats().column_stats["shifted"] == stock.column_stats["shifted"]
    with pytest.raises(KeyError, match=r"column\(s\) \['missing'\] of the data definition"):
        FrameDataset(reference, data_definition([*NUMERIC, "missing"], CATEGORICAL))
    with pytest.raises(TypeError, match="FrameDataset does not add columns"):
        dataset.add_column("score", dataset.column("shifted"))
    assert list(reference.columns) == [*NUMERIC, *CATEGORICAL]


def test_a_table_column_without_a_pinned_method_is_refused() -> None:
    reference, current = _frames(200)
    table = PinnedDriftTable(
        columns=["shifted", "plan"],
        per_column_method={"shifted": "wasserstein"},
        per_column_threshold={"shifted": 0.1, "plan": 0.1},
    )
    with pytest.raises(ValueError, match=r"no pinned drift method or threshold for column\(s\) \['plan'\]"):
        _pinned(reference, current, [table])
