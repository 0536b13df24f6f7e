"""An hourly model (issue 13, item 3): trained, scored and monitored across a day boundary with
``dag.test()``, every hour its own partition.

The schedule's cron (``0 * * * *``) makes the partitions hourly; training's window is 24 intervals,
so the run for 01:00 on 2 January validates and trains on the 24 hours from 02:00 on 1 January, each
in its own ``dt=<date>T<hour>`` folder. Scoring (``20 * * * *``) writes one predictions partition per
hour, and the drift check (``40 * * * *``) compares the three hours around midnight with the champion's
training reference.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest

from tests.helpers import REPO, small_churn, write_models

pytestmark = pytest.mark.integration

#: The 24 hourly partitions of the training window, 1 January 02:00 .. 2 January 01:00.
WINDOW = [(dt.datetime(2026, 1, 1, 2) + dt.timedelta(hours=h)).strftime("%Y-%m-%dT%H") for h in range(24)]
SCORED = ["2026-01-01T23", "2026-01-02T00", "2026-01-02T01"]
ROWS = 50


def _run(dag_id: str, run_after: dt.datetime) -> dict[str, str]:
    """``dag.test()`` of the run the scheduler would start at ``run_after`` (its last complete interval)."""
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(REPO / "dags"))
    assert bag.import_errors == {}
    dr = bag.dags[dag_id].test(logical_date=run_after.replace(tzinfo=dt.UTC))
    return {ti.task_id: ti.state for ti in dr.get_task_instances()}


@pytest.fixture
def models(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mloops_home: Path, airflow_db: Path) -> Path:
    config = small_churn(rows_per_day=ROWS)
    # The contract generated from the features (the churn suite's uniqueness checks need more rows).
    config["quality"] = {"min_rows": 20, "max_null_fraction": 0.1}
    config["schedule"] = {"cron": "0 * * * *", "scoring_cron": "20 * * * *", "start_date": "2026-01-01"}
    config["training"].pop("window_days")
    config["training"].update({"window_intervals": 24, "min_partitions": 24, "min_rows": 200})
    config["monitoring"].pop("window_days")
    config["monitoring"].update({"cron": "40 * * * *", "window": "3h", "min_rows": 50, "sample_size": 1000})
    directory = write_models(tmp_path / "models", churn=config)
    monkeypatch.setenv("MLOOPS_MODELS_DIR", str(directory))
    return directory


def test_an_hourly_model_across_midnight(models: Path, mloops_home: Path) -> None:
    from mloops.adapters.mlflow_adapter import client
    from mloops.settings import get_settings

    data = mloops_home / "data"
    states = _run("mloops_train_churn", dt.datetime(2026, 1, 2, 2))  # interval 01:00-02:00 on 2 January
    assert states.pop("approve_promotion") == "skipped" and set(states.values()) == {"success"}, states

    # 24 distinct hourly partitions, each landed, validated and staged in its own folder.
    staged = sorted(p.name for p in (data / "staged/churn").iterdir())
    assert staged == [f"dt={key}" for key in WINDOW] and len(set(staged)) == 24
    assert sorted(p.name for p in (data / "raw/churn").iterdir()) == staged
    ids = set()
    for key in WINDOW:
        frame = pd.read_parquet(data / f"staged/churn/dt={key}/data.parquet")
        assert len(frame) == ROWS
        assert set(frame["event_date"]) == {pd.Timestamp(key)}  # the hour's own events
        ids |= set(frame["customer_id"])
    assert len(ids) == 24 * ROWS  # no two hours share rows

    registry = client(get_settings())
    champion = registry.get_model_version_by_alias("mloops.churn", "champion")
    assert champion.tags["mloops.data_interval_start"] == "2026-01-02T01"
    run = registry.get_run(champion.run_id)
    assert run.data.tags["mloops.partitions"].split(",") == WINDOW  # all 24 used by training
    assert run.data.tags["mloops.window"] == "2026-01-01T02..2026-01-02T01"
    assert run.data.params["window"] == "24 x 1h"

    # Scoring at :20 past each hour scores that hour's partition, across midnight.
    for key in SCORED:
        start = dt.datetime.fromisoformat(key)
        states = _run("mloops_score_churn", start + dt.timedelta(hours=1, minutes=25))
        assert states == {"validate_batch": "success", "score_batch": "success"}, (key, states)
    predictions = sorted(p.name for p in (data / "predictions/churn").iterdir())
    assert predictions == [f"dt={key}" for key in SCORED]
    for key in SCORED:
        scored = pd.read_parquet(data / f"predictions/churn/dt={key}/predictions.parquet")
        assert len(scored) == ROWS and set(scored["partition"]) == {key}

    # The drift check at 01:40 compares the three hours 23:00..01:00 with the training reference.
    states = _run("mloops_monitor_churn", dt.datetime(2026, 1, 2, 2, 45))
    assert states["check_drift"] == "success" and states["trigger_retraining"] in ("success", "skipped"), (
        states
    )
    reports = [p.name for p in (data / "monitoring/churn").iterdir()]
    assert reports == ["window=2026-01-01T23_2026-01-02T01"]

    from mloops import store

    windows = {
        (r["window_start"], r["window_end"])
        for r in store.read_metrics(get_settings().metrics_db_uri, "churn")
    }
    assert windows == {
        (dt.datetime(2026, 1, 1, 23, tzinfo=dt.UTC), dt.datetime(2026, 1, 2, 1, tzinfo=dt.UTC))
    }
    rows = {r["metric"]: r["value"] for r in store.read_metrics(get_settings().metrics_db_uri, "churn")}
    assert rows["rows.current"] == 3 * ROWS and rows["rows.reference"] > 0
