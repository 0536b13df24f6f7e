"""Stage operators called through ``execute()`` with a small context, as the task runner would."""

from __future__ import annotations

import datetime as dt
import json
import re
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from mloops.operators import (
    GXValidateBatchOperator,
    MLflowPromoteModelOperator,
    MLflowRegisterModelOperator,
    MLflowTestModelOperator,
    MLflowTrainModelOperator,
)
from mloops.operators.base import lineage, run_partition
from tests.helpers import small_churn, write_models

pytestmark = pytest.mark.operators


class FakeTI:
    """Just enough of a task instance: XCom in a dict shared by the tasks of one run."""

    def __init__(self, store: dict[tuple[str, str], Any], task_id: str) -> None:
        self.store, self.task_id, self.try_number = store, task_id, 1

    def xcom_push(self, key: str, value: Any) -> None:
        self.store[(self.task_id, key)] = value

    def xcom_pull(self, task_ids: str, key: str = "return_value") -> Any:
        return self.store.get((task_ids, key))


class FakeEvent:
    """An Asset event as a triggered run sees it: only its extra matters here."""

    def __init__(self, extra: dict[str, Any]) -> None:
        self.extra = extra


class FakeRun:
    dag_id, run_id, run_type = "mloops_train_churn", "scheduled__2026-01-03T02:00:00+00:00", "scheduled"
    run_after = dt.datetime(2026, 1, 4, 2, tzinfo=dt.UTC)


def _context(store: dict, task_id: str, day: str | None = "2026-01-03", params: dict | None = None) -> dict:
    start = dt.datetime.fromisoformat(day).replace(hour=2, tzinfo=dt.UTC) if day else None
    return {
        "ti": FakeTI(store, task_id),
        "dag_run": FakeRun(),
        "params": params or {},
        "data_interval_start": start,
        "logical_date": start,
    }


def _execute(operator, store: dict, **kwargs):
    result = operator.execute(_context(store, operator.task_id, **kwargs))
    store[(operator.task_id, "return_value")] = result
    return result


def refused_promotion(within_s: float = 15) -> str:
    """Promote a registered v1 of churn where a store refuses mloops: the task must fail at once (not
    after retries); its message."""
    import time

    registered = {"model": "churn", "registered_model": "mloops.churn", "version": "1", "reused": False}
    started = time.monotonic()
    with pytest.raises(AirflowFailException) as caught:
        _execute(
            MLflowPromoteModelOperator(task_id="promote_model", model="churn"),
            {("register_model", "return_value"): registered},
        )
    assert time.monotonic() - started < within_s, "failed at once, not after retries"
    return str(caught.value)


@pytest.fixture
def churn_models(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mloops_home: Path) -> Path:
    config = small_churn(
        scenarios=[
            {
                "kind": "missing_column",
                "start": "2026-01-04",
                "end": "2026-01-04",
                "params": {"column": "region"},
            }
        ]
    )
    directory = write_models(tmp_path / "models", churn=config)
    monkeypatch.setenv("MLOOPS_MODELS_DIR", str(directory))
    return directory


@pytest.mark.parametrize(
    ("context", "override", "expected"),
    [
        ({"data_interval_start": dt.datetime(2026, 1, 3, 2, tzinfo=dt.UTC)}, None, "2026-01-03"),
        (
            {
                "params": {"partition_date": "2026-02-01"},
                "data_interval_start": dt.datetime(2026, 1, 3, tzinfo=dt.UTC),
            },
            None,
            "2026-02-01",
        ),
        ({"data_interval_start": None, "logical_date": None, "dag_run": FakeRun()}, None, "2026-01-04"),
        ({}, "2026-03-09", "2026-03-09"),
    ],
)
def test_partition_date_resolution(context, override, expected) -> None:
    assert run_partition(context, override=override).key == expected


HOUR = dt.timedelta(hours=1)


@pytest.mark.parametrize(
    ("context", "override", "expected"),
    [
        # A :15 scoring cron's interval starts inside its hour's partition.
        ({"data_interval_start": dt.datetime(2026, 1, 3, 13, 15, tzinfo=dt.UTC)}, None, "2026-01-03T13"),
        ({"params": {"partition_date": "2026-01-03T22:00:00+00:00"}}, None, "2026-01-03T22"),
        ({}, "2026-01-04T00", "2026-01-04T00"),
        (
            {
                "triggering_asset_events": {
                    "a": [FakeEvent({"kind": "drift", "partition_date": "2026-01-04T05"})]
                }
            },
            None,
            "2026-01-04T05",
        ),
    ],
)
def test_hourly_partition_resolution(context, override, expected) -> None:
    assert run_partition(context, HOUR, override).key == expected


@pytest.mark.parametrize(
    ("value", "length", "message"),
    [
        (
            "yesterday",
            dt.timedelta(days=1),
            "partition_date: partition 'yesterday' is not a date (YYYY-MM-DD)",
        ),
        ("2026-01-03T13:00", dt.timedelta(days=1), "not aligned to the model's 1d interval"),
        ("2026-01-03", HOUR, "partition '2026-01-03' is a date; this model's partition is a datetime"),
        ("2026-01-03T13:30", HOUR, "'2026-01-03T13:30' is not aligned to the model's 1h interval"),
    ],
)
def test_partition_date_rejects_malformed_and_misaligned(value, length, message) -> None:
    from mloops.errors import InvalidParamsError

    with pytest.raises(InvalidParamsError, match=re.escape(message)):
        run_partition({"params": {"partition_date": value}}, length)


def test_lineage_records_run_and_reason() -> None:
    tags = lineage({"dag_run": FakeRun(), "ti": FakeTI({}, "t"), "params": {"reason": "hotfix"}})
    assert tags == {
        "airflow.dag_id": "mloops_train_churn",
        "airflow.run_id": FakeRun.run_id,
        "airflow.run_type": "scheduled",
        "airflow.try_number": "1",
        "mloops.reason": "hotfix",
    }


def test_stage_operators_end_to_end(churn_models: Path, mloops_home: Path) -> None:
    store: dict = {}
    validated = _execute(GXValidateBatchOperator(task_id="validate_batch", model="churn"), store)
    assert validated["status"] == "passed" and validated["rows"] == 600
    assert validated["also_validated"] == {"2026-01-02": "passed"}
    trained = _execute(
        MLflowTrainModelOperator(task_id="train_model", model="churn", estimator_overrides={"max_iter": 30}),
        store,
    )
    assert trained["reused"] is False and trained["rows_train"] + trained["rows_holdout"] == 1200
    tested = _execute(MLflowTestModelOperator(task_id="test_model", model="churn"), store)
    assert tested["passed"] and tested["checks"]["smoke:load_and_predict"]
    registered = _execute(MLflowRegisterModelOperator(task_id="register_model", model="churn"), store)
    assert registered == {
        "model": "churn",
        "registered_model": "mloops.churn",
        "version": "1",
        "reused": False,
    }
    promoted = _execute(MLflowPromoteModelOperator(task_id="promote_model", model="churn"), store)
    assert promoted["action"] == "promote" and promoted["champion"] == "1"
    with pytest.raises(AirflowSkipException, match="v1 is already champion"):
        _execute(MLflowPromoteModelOperator(task_id="promote_model", model="churn"), store)
    with pytest.raises(AirflowSkipException, match="promotion policy is 'none'"):
        _execute(MLflowPromoteModelOperator(task_id="promote_model", model="churn", policy="none"), store)


def test_schema_change_fails_without_retry_and_publishes_result(
    churn_models: Path, mloops_home: Path
) -> None:
    store: dict = {}
    with pytest.raises(AirflowFailException) as caught:
        _execute(GXValidateBatchOperator(task_id="validate_batch", model="churn"), store, day="2026-01-04")
    message = str(caught.value)
    assert "partition 2026-01-04" in message
    assert "expect_column_to_exist(region): observed" in message
    failure = store[("validate_batch", "failure")]
    assert failure["status"] == "quarantined"
    assert Path(failure["quarantine"], "part.parquet").exists()


def test_bad_estimator_override_names_the_parameter(churn_models: Path, mloops_home: Path) -> None:
    store: dict = {}
    _execute(GXValidateBatchOperator(task_id="validate_batch", model="churn"), store)
    with pytest.raises(AirflowFailException, match=r"does not accept parameter\(s\) \['max_depht'\]"):
        _execute(
            MLflowTrainModelOperator(
                task_id="train_model", model="churn", estimator_overrides={"max_depht": 3}
            ),
            store,
        )


def test_unknown_model_fails_naming_the_file(churn_models: Path) -> None:
    with pytest.raises(AirflowFailException, match=r"ghost\.yaml: no such model config file"):
        _execute(GXValidateBatchOperator(task_id="validate_batch", model="ghost"), {})


def test_missing_partition_names_the_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mloops_home: Path
) -> None:
    config = small_churn()
    config["source"] = {"kind": "files", "path": str(tmp_path / "landing" / "dt={ds}.parquet")}
    monkeypatch.setenv("MLOOPS_MODELS_DIR", str(write_models(tmp_path / "models", churn=config)))
    with pytest.raises(
        AirflowFailException,
        match=r"partition 2026-01-03 is missing: no file at .*landing/dt=2026-01-03\.parquet",
    ):
        _execute(GXValidateBatchOperator(task_id="validate_batch", model="churn"), {})


def test_sql_source_through_an_airflow_connection(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mloops_home: Path
) -> None:
    from mloops_examples import generator

    database = tmp_path / "warehouse.db"
    with sqlite3.connect(database) as conn:
        for day in (dt.date(2026, 1, 2), dt.date(2026, 1, 3)):
            frame = generator.generate_partition("churn", day, rows=300, seed=5)
            frame.assign(event_date=frame["event_date"].dt.strftime("%Y-%m-%d")).to_sql(
                "customers", conn, if_exists="append", index=False
            )
    monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE", json.dumps({"conn_type": "sqlite", "host": str(database)}))
    config = small_churn()
    config["source"] = {
        "kind": "sql",
        "conn_id": "warehouse",
        "query": "select * from customers where event_date = '{{ ds }}'",
    }
    config["quality"] = {"min_rows": 100}
    monkeypatch.setenv("MLOOPS_MODELS_DIR", str(write_models(tmp_path / "models", churn=config)))
    result = _execute(GXValidateBatchOperator(task_id="validate_batch", model="churn"), {})
    assert result["status"] == "passed" and result["rows"] == 300
    assert result["also_validated"] == {"2026-01-02": "passed"}


def test_only_stages_that_change_the_fleet_row_refresh_it(churn_models: Path, mloops_home: Path) -> None:
    """A refresh costs an MLflow client and four registry queries per task: checking parameters and
    training (an MLflow run, not a version) change nothing the row shows and skip it."""
    from mloops.fleet import collect
    from mloops.operators import CheckRunParamsOperator
    from mloops.settings import get_settings

    settings, store = get_settings(), {}
    check = CheckRunParamsOperator(task_id="check_params", model="churn")
    check.post_execute(_context(store, "check_params"), _execute(check, store))
    assert collect.read_model(settings, "churn") is None
    validate = GXValidateBatchOperator(task_id="validate_batch", model="churn")
    validate.post_execute(_context(store, "validate_batch"), _execute(validate, store))
    row = collect.read_model(settings, "churn")
    assert row is not None and row["model"] == "churn"
    overrides = {"max_iter": 30}
    train = MLflowTrainModelOperator(task_id="train_model", model="churn", estimator_overrides=overrides)
    train.post_execute(_context(store, "train_model"), _execute(train, store))
    assert collect.read_model(settings, "churn") == row  # not rewritten: same updated_at
