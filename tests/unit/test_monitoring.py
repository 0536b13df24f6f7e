"""Drift checks: inputs, Evidently extraction, the policy, guards. Evidently runs for real on small frames."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pytest

from mloops import monitoring, store
from mloops.config_files import find_model_config
from mloops.partitions import Partition
from tests.helpers import REPO

if TYPE_CHECKING:
    from mloops.config import ModelConfig

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def churn() -> ModelConfig:
    config = find_model_config("churn", REPO / "include/models")
    return config.model_copy(update={"monitoring": config.monitoring.model_copy(update={"min_rows": 50})})


def _frame(rows: int, seed: int, shift: float = 0.0, month_to_month: float = 0.5) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "tenure_months": rng.uniform(0, 72, rows) + shift * 30,
            "monthly_charges": rng.normal(65, 20, rows) + shift * 40,
            "total_charges": rng.normal(2000, 500, rows),
            "support_calls": rng.poisson(2, rows).astype(float),
            "age": rng.normal(45, 12, rows),
            "num_products": rng.integers(1, 5, rows).astype(float),
            "contract_type": rng.choice(
                ["month-to-month", "one-year", "two-year"],
                rows,
                p=[month_to_month, (1 - month_to_month) / 2, (1 - month_to_month) / 2],
            ),
            "payment_method": rng.choice(["card", "bank_transfer"], rows),
            "region": rng.choice(["north", "south", "east", "west"], rows),
            "has_partner": rng.choice(["yes", "no"], rows),
            "churned": rng.integers(0, 2, rows),
        }
    )
    frame[monitoring.PREDICTION] = np.clip(rng.normal(0.3 + shift * 0.3, 0.1, rows), 0, 1)
    return frame


def _run(
    config: ModelConfig, reference: pd.DataFrame, current: pd.DataFrame, out: Path
) -> monitoring.DriftSummary:
    from mloops.stages import drift

    snapshot, unevaluable = drift.compare_samples(config, reference, current, out)
    return monitoring.summarize(config, snapshot, unevaluable)


def test_no_drift_on_the_same_distribution(churn, tmp_path: Path) -> None:
    summary = _run(churn, _frame(2000, 1), _frame(2000, 2), tmp_path)
    assert summary.share < churn.monitoring.drift_share and not summary.prediction.drifted
    assert len(summary.columns) == len(churn.feature_names)
    assert {c.method for c in summary.columns} == {
        "wasserstein",
        "jensenshannon",
    }  # pinned, not sample-size dependent
    assert not monitoring.evaluate_policy(churn, summary).breached
    assert (tmp_path / "drift.html").stat().st_size > 10_000 and (tmp_path / "drift.json").exists()


def test_drift_is_found_scored_and_explained(churn, tmp_path: Path) -> None:
    summary = _run(churn, _frame(2000, 1), _frame(2000, 2, shift=1.0, month_to_month=0.9), tmp_path)
    assert {"tenure_months", "monthly_charges", "contract_type"} <= set(summary.drifted_columns)
    assert summary.drifted_columns["monthly_charges"] > churn.monitoring.numeric_threshold
    assert summary.prediction.drifted
    verdict = monitoring.evaluate_policy(churn, summary)
    assert verdict.breached
    assert any("of features drifted (policy: 30%)" in r and "monthly_charges=" in r for r in verdict.reasons)
    assert any(r.startswith("prediction drift wasserstein=") for r in verdict.reasons)


def test_all_null_column_is_a_clear_finding(churn, tmp_path: Path) -> None:
    current = _frame(500, 2)
    current["age"] = np.nan
    summary = _run(churn, _frame(500, 1), current, tmp_path)
    age = next(c for c in summary.columns if c.column == "age")
    assert age.drifted and age.score is None and age.detail == "all values missing in the current window"


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda cur: cur.iloc[:0], r"the current data has 0 rows; monitoring.min_rows is 50"),
        (
            lambda cur: cur.drop(columns=["region"]),
            r"feature column\(s\) \['region'\] missing from the current data",
        ),
    ],
)
def test_unusable_windows_raise_clear_errors(churn, mutate, message) -> None:
    with pytest.raises(monitoring.DriftInputError, match=message):
        monitoring.check_inputs(churn, _frame(200, 1), mutate(_frame(200, 2)))


@pytest.mark.parametrize(
    ("method", "score", "threshold", "drifted"),
    [
        ("wasserstein", 0.1, 0.1, True),
        ("wasserstein", 0.09, 0.1, False),
        ("ks", 0.05, 0.05, True),
        ("ks", 0.06, 0.05, False),
        ("chisquare", 0.05, 0.05, False),
        ("chisquare", 0.01, 0.05, True),
        ("psi", 0.3, 0.1, True),
    ],
)
def test_drift_direction_per_method(method, score, threshold, drifted) -> None:
    assert monitoring.drift_detected(method, score, threshold) is drifted


def test_quality_drop_breaches_policy(churn) -> None:
    summary = monitoring.DriftSummary((), 0.0, None, {"roc_auc": 0.70}, 0.80, 500)
    verdict = monitoring.evaluate_policy(churn, summary)
    assert verdict.breached and "roc_auc on 500 labeled rows is 0.7000, 0.1000 worse" in verdict.reasons[0]
    fine = monitoring.DriftSummary((), 0.0, None, {"roc_auc": 0.78}, 0.80, 500)
    assert not monitoring.evaluate_policy(churn, fine).breached


@pytest.mark.parametrize(
    ("last", "end", "hours", "blocked"),
    [
        (None, "2026-01-10", 48, False),
        ("2026-01-09", "2026-01-10", 48, True),
        ("2026-01-08", "2026-01-10", 48, False),
        ("2026-01-10", "2026-01-10", 0, False),
        ("2026-01-12", "2026-01-10", 48, False),
    ],
)
def test_cooldown(last, end, hours, blocked) -> None:
    last_date = dt.date.fromisoformat(last) if last else None
    assert monitoring.cooldown_blocks(last_date, dt.date.fromisoformat(end), hours) is blocked


def test_labels_arrive_late() -> None:
    window = Partition.day(dt.date(2026, 1, 10)).window(3)
    two_days = dt.timedelta(days=2)
    assert monitoring.labeled_partitions(window, window[-1], two_days) == [window[0]]
    assert monitoring.labeled_partitions(window, window[-1], dt.timedelta()) == window
    hours = Partition.parse("2026-01-10T05", dt.timedelta(hours=1)).window(48)
    assert monitoring.labeled_partitions(hours, hours[-1], two_days) == []
    assert [p.key for p in monitoring.labeled_partitions(hours, hours[-1], dt.timedelta(hours=46))] == [
        "2026-01-08T06",
        "2026-01-08T07",
    ]


def test_cooldown_in_hours_of_data_time() -> None:
    last = dt.datetime(2026, 1, 10, 5, tzinfo=dt.UTC)
    assert monitoring.cooldown_blocks(last, last + dt.timedelta(hours=3), 4) is True
    assert monitoring.cooldown_blocks(last, last + dt.timedelta(hours=4), 4) is False


def test_sampling_is_bounded_and_repeatable_and_keeps_the_row_order() -> None:
    frame = _frame(1000, 3).assign(arrival=range(1000))
    first, second = monitoring.sample(frame, 100, seed=7), monitoring.sample(frame, 100, seed=7)
    assert len(first) == 100 and first.equals(second)
    assert first["arrival"].is_monotonic_increasing and first["arrival"].nunique() == 100
    assert list(first.index) == list(range(100))
    assert len(monitoring.sample(frame, 5000, seed=7)) == 1000


def test_metrics_store_upserts_and_events_append(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'metrics.db'}"
    key = {
        "model": "churn",
        "model_version": "3",
        "window_start": dt.date(2026, 1, 8),
        "window_end": dt.date(2026, 1, 10),
    }
    store.write_metrics(uri, **key, metrics={"drift.share": 0.6, "drift.column.age": 1.0})
    store.write_metrics(uri, **key, metrics={"drift.share": 0.5})
    rows = store.read_metrics(uri, "churn")
    assert [(r["metric"], r["value"]) for r in rows] == [("drift.share", 0.5)]
    store.record_event(
        uri,
        model="churn",
        kind="drift_detected",
        message="60% drifted",
        payload={"share": 0.6},
        partition=dt.date(2026, 1, 10),
    )
    store.record_event(uri, model="churn", kind="drift_detected", message="again")
    events = store.read_events(uri, model="churn", kind="drift_detected")
    assert [e["message"] for e in events] == ["60% drifted", "again"] and events[0]["payload"] == {
        "share": 0.6
    }
