"""A drift Asset event is input: its extra is checked before it sets a run's partition or reaches MLflow.

Anyone allowed to create Asset events (Airflow's REST API, the UI) can start a model's training with
an extra of their own. On main only the extra's ``partition_date`` format was checked: a partition
before the schedule, a million reasons, ten thousand "drifted columns", a ``javascript:`` report link
or an event for another model all passed ``check_params`` and went into the training run's MLflow tags
(a non-text ``window_end`` crashed every task with a ``TypeError``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowFailException

from mloops import drift_event
from mloops.contracts import Tag
from mloops.operators import CheckRunParamsOperator, GXValidateBatchOperator, MLflowTrainModelOperator
from tests.operators.test_operators import FakeEvent, _context, _execute, churn_models  # noqa: F401

pytestmark = pytest.mark.security

WINDOW_END = "2026-01-03"


def valid_extra(mloops_home: Path, **changes: Any) -> dict[str, Any]:
    """An extra as ``trigger_retraining`` writes it for churn's window ending 2026-01-03."""
    report = mloops_home / "data" / "monitoring" / "churn" / "window=2026-01-01_2026-01-03" / "drift.html"
    extra = {
        "kind": "drift",
        "model": "churn",
        "partition_date": WINDOW_END,
        "window_start": "2026-01-01",
        "window_end": WINDOW_END,
        "champion_version": "1",
        "drifted_columns": {"tenure_months": 0.42, "region": None},
        "share": 0.2,
        "reasons": ["20% of features drifted (policy: 10%): tenure_months=0.420, region"],
        "report_uri": report.as_uri(),
    }
    return {**extra, **changes}


def triggered(store: dict, task_id: str, extra: Any) -> dict[str, Any]:
    """The context of a task in a run started by a drift event with ``extra``."""
    context = _context(store, task_id)
    context["triggering_asset_events"] = {"mloops_churn_drift": [FakeEvent(extra)]}
    return context


def check_params(extra: Any) -> dict[str, Any]:
    return CheckRunParamsOperator(task_id="check_params", model="churn").execute(
        triggered({}, "check_params", extra)
    )


@pytest.mark.parametrize(
    ("changes", "refusal"),
    [
        (
            {"partition_date": "2025-06-01"},
            "partition_date: 2025-06-01 is before the model's schedule.start_date 2026-01-01",
        ),
        (
            {"partition_date": "2026-01-03garbage"},
            "partition_date: partition '2026-01-03garbage' is not a date",
        ),
        (
            {"partition_date": "2026-01-03T13:00"},
            "partition_date: partition '2026-01-03T13:00' is not aligned",
        ),
        ({"partition_date": "9" * 100_000}, "partition_date: 100000 characters is longer than 64"),
        ({"partition_date": None}, "partition_date: missing"),
        ({"window_end": 20260103}, "window_end: partition 20260103 is not a date"),
        ({"window_start": "2026-01-05"}, "window_start: 2026-01-05 is after window_end 2026-01-03"),
        ({"model": "house_prices"}, "model: 'house_prices' is not this model ('churn')"),
        ({"champion_version": "1; DROP TABLE"}, "champion_version: '1; DROP TABLE' is not a model version"),
        ({"share": float("nan")}, "share: nan is not a finite number"),
        ({"share": 7}, "share: 7 is not a share between 0 and 1"),
        ({"drifted_columns": "everything"}, "drifted_columns: expected an object of feature: score, got str"),
        (
            {"drifted_columns": {f"col{i}": 1.0 for i in range(10_000)}},
            "drifted_columns: 10000 columns; model has 10 features",
        ),
        (
            {"drifted_columns": {"password": 1.0}},
            "drifted_columns: 1 not a feature of the model: ['password']",
        ),
        ({"drifted_columns": {"age": "high"}}, "drifted_columns: score 'high' is not a finite number"),
        ({"reasons": "because"}, "reasons: expected a list of texts, got 'because'"),
        ({"reasons": ["x"] * 1_000_000}, "reasons: 1000000 reasons; at most 10"),
        ({"reasons": ["x" * 1_000_000]}, "reasons: a reason of 1000000 characters; at most 2000"),
        ({"report_uri": "javascript:alert(1)"}, "report_uri: 'javascript:alert(1)' is not under the model's"),
        ({"report_uri": "https://evil.example/r.html"}, "is not under the model's drift reports"),
        ({"report_uri": 42}, "report_uri: expected the URI of the drift report, got 42"),
    ],
)
def test_check_params_refuses_a_bad_drift_event_naming_field_model_and_value(
    changes: dict[str, Any],
    refusal: str,
    churn_models: Path,  # noqa: F811 - the imported fixture
    mloops_home: Path,
) -> None:
    with pytest.raises(AirflowFailException) as caught:
        check_params(valid_extra(mloops_home, **changes))
    message = str(caught.value)
    assert message.startswith("Invalid drift event for model 'churn'"), message[:300]
    assert refusal in message, message[:2000]
    assert len(message) <= 4_000, "the refusal itself is bounded"


def test_every_bad_field_is_named_at_once(churn_models: Path, mloops_home: Path) -> None:  # noqa: F811
    extra = valid_extra(mloops_home, partition_date="2025-06-01", share=-1, reasons=[1, 2])
    with pytest.raises(AirflowFailException) as caught:
        check_params(extra)
    assert [line.split(":")[0] for line in str(caught.value).splitlines()[1:]] == [
        "  - partition_date",
        "  - share",
        "  - reasons",
    ]


def test_a_valid_event_passes_and_a_foreign_extra_is_ignored(
    churn_models: Path,  # noqa: F811 - the imported fixture
    mloops_home: Path,
) -> None:
    assert check_params(valid_extra(mloops_home))["partition_date"] is None
    # Not a drift event (another kind, or not a mapping at all): no drift trigger, nothing checked.
    for extra in ({"kind": "backfill", "partition_date": "garbage"}, ["not", "a", "mapping"], "text"):
        assert check_params(extra)["partition_date"] is None


def test_a_bad_event_fails_train_model_before_any_mlflow_run(
    churn_models: Path,  # noqa: F811 - the imported fixture
    mloops_home: Path,
) -> None:
    """The same check guards every stage, not only check_params: nothing reaches MLflow."""
    from mloops.adapters import mlflow_adapter
    from mloops.settings import get_settings

    store: dict = {}
    _execute(GXValidateBatchOperator(task_id="validate_batch", model="churn"), store)
    train = MLflowTrainModelOperator(task_id="train_model", model="churn")
    bad = valid_extra(mloops_home, reasons=["x" * 50_000])
    with pytest.raises(AirflowFailException, match="reasons: a reason of 50000 characters"):
        train.execute(triggered(store, "train_model", bad))
    client = mlflow_adapter.client(get_settings())
    assert client.search_runs([e.experiment_id for e in client.search_experiments()]) == []


def test_a_valid_event_reaches_the_training_run_tags(
    churn_models: Path,  # noqa: F811 - the imported fixture
    mloops_home: Path,
) -> None:
    from mloops.adapters import mlflow_adapter
    from mloops.settings import get_settings

    store: dict = {}
    _execute(GXValidateBatchOperator(task_id="validate_batch", model="churn"), store)
    extra = valid_extra(mloops_home)
    trained = MLflowTrainModelOperator(task_id="train_model", model="churn").execute(
        triggered(store, "train_model", extra)
    )
    tags = mlflow_adapter.client(get_settings()).get_run(trained["run_id"]).data.tags
    assert tags[Tag.TRIGGER] == "drift"
    assert tags[Tag.DRIFT_WINDOW] == "2026-01-01..2026-01-03"
    assert json.loads(tags[Tag.DRIFT_COLUMNS]) == {"region": None, "tenure_months": 0.42}
    assert tags[Tag.DRIFT_REASONS] == extra["reasons"][0]
    assert tags[Tag.DRIFT_REPORT] == extra["report_uri"]


def test_the_trigger_never_writes_an_event_a_run_refuses(churn_models: Path, mloops_home: Path) -> None:  # noqa: F811
    """A wide breach (many reasons, a very long one) is cut by the producer, with a marker."""
    from mloops.config_files import find_model_config
    from mloops.settings import get_settings

    config = find_model_config("churn", get_settings().models_dir)
    finding = valid_extra(mloops_home, reasons=[f"reason {i}" for i in range(15)] + ["y" * 9_000])
    event = drift_event.build(finding, config)
    assert len(event.reasons) == drift_event.MAX_REASONS
    assert event.reasons[-1] == "... and 7 more reasons"
    assert drift_event.parse(event.extra(), config) == event


def test_drifted_columns_tag_fits_mlflow_as_valid_json() -> None:
    columns = {f"feature_{i:04d}_with_a_long_descriptive_name": i / 1000 for i in range(1000)}
    text = drift_event.fitted_columns(columns, drift_event.MAX_TAG_CHARS)
    shown = json.loads(text)
    assert len(text) <= drift_event.MAX_TAG_CHARS
    assert shown["..."].endswith("more drifted columns not shown")
    kept = [k for k in shown if k != "..."]
    assert kept[0] == "feature_0999_with_a_long_descriptive_name", "highest scores first"
    assert int(shown["..."].split()[0]) == 1000 - len(kept)
