"""The self-correcting loop through a real scheduler (``airflow standalone``), not only ``dag.test()``.

State before Airflow starts (built with the stage functions, which the DAG tests cover): a churn
champion trained on the window ending 2026-01-07, and scored partitions 2026-01-05 … 2026-01-10,
where 2026-01-08 onwards carry covariate drift. Then, through the scheduler:

* a backfill of the monitoring DAG over a drifted window records drift and triggers nothing;
* a monitoring run over a clean window finds no drift and triggers nothing;
* a monitoring run over the drifted window emits the drift Asset event, which starts the training
  DAG; that run records the drift context and its model becomes the new champion.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path

import pytest

from tests.conftest import local_airflow_env
from tests.helpers import small_churn, write_models

pytestmark = pytest.mark.integration

DRIFT_FROM = "2026-01-08"


@pytest.fixture
def drifting_churn(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mloops_home: Path) -> Path:
    config = small_churn(scenarios=[{"kind": "covariate_drift", "start": DRIFT_FROM, "end": "2026-01-20"}])
    config["schedule"]["end_date"] = "2026-01-31"  # no time-based runs for "today": this is a simulation
    config["monitoring"] = {
        "window_days": 3,
        "label_delay_days": 1,
        "sample_size": 5000,
        "cooldown_hours": 48,
    }
    directory = write_models(tmp_path / "models", churn=config)
    monkeypatch.setenv("MLOOPS_MODELS_DIR", str(directory))
    return directory


def _prepare_history(models_dir: Path) -> None:
    from mloops.config_files import find_model_config
    from mloops.contracts import Use
    from mloops.settings import get_settings
    from mloops.stages import registry, score, test, train, validate
    from mloops.stages.layout import RunContext

    ctx = RunContext(find_model_config("churn", models_dir), dt.date(2026, 1, 7), get_settings())
    validate.validate_batch(ctx)
    trained = train.train_model(ctx)
    tested = test.test_model(ctx, trained)
    registered = registry.register_model(ctx, trained, tested)
    assert registry.promote_model(ctx, registered).action == "promote"
    for offset in range(5, 11):
        day = ctx.at(dt.date(2026, 1, offset)).for_use(Use.SCORING)
        validate.validate_batch(day)
        score.score_batch(day)


def test_drift_triggers_retraining_through_the_scheduler(
    tmp_path: Path, drifting_churn: Path, mloops_home: Path
) -> None:
    from mloops import store
    from mloops.adapters.mlflow_adapter import client
    from mloops.settings import get_settings
    from scripts.devstack import LocalAirflow

    _prepare_history(drifting_churn)
    env = local_airflow_env(tmp_path / "stack", drifting_churn, mloops_home)
    stack = LocalAirflow(env, tmp_path / "stack" / "standalone.log")
    stack.cli("db", "migrate")
    stack.cli("pools", "set", "mloops_registry", "1", "registry writes")
    with stack:
        stack.wait_for_dags(["mloops_train_churn", "mloops_monitor_churn"], timeout=180)
        stack.cli("dags", "unpause", "mloops_train_churn")  # asset-triggered runs need an unpaused DAG

        # 1. A backfill over a drifted window (the run of the interval starting 2026-01-09:
        # partitions 01-07 .. 01-09).
        stack.backfill("mloops_monitor_churn", "2026-01-09", "2026-01-10")
        (backfill_run,) = stack.wait_for_runs("mloops_monitor_churn", count=1, timeout=240)
        assert backfill_run["state"] == "success"
        assert stack.task_states("mloops_monitor_churn", backfill_run["run_id"]) == {
            "check_drift": "success",
            "trigger_retraining": "skipped",
        }

        # 2. A clean window (partitions 01-05 .. 01-07), chosen as a user would in the trigger form.
        clean = stack.trigger(
            "mloops_monitor_churn", "2026-01-08T06:00:00+00:00", {"partition_date": "2026-01-07"}
        )
        stack.wait_for_runs("mloops_monitor_churn", count=2, timeout=240)
        assert stack.task_states("mloops_monitor_churn", clean) == {
            "check_drift": "success",
            "trigger_retraining": "skipped",
        }
        time.sleep(10)  # give the scheduler every chance to (wrongly) start a training run
        assert stack.runs("mloops_train_churn") == []

        # 3. The drifted window (partitions 01-08 .. 01-10).
        started = time.time()
        drifted = stack.trigger(
            "mloops_monitor_churn", "2026-01-11T06:00:00+00:00", {"partition_date": "2026-01-10"}
        )
        stack.wait_for_runs("mloops_monitor_churn", count=3, timeout=240)
        assert stack.task_states("mloops_monitor_churn", drifted) == {
            "check_drift": "success",
            "trigger_retraining": "success",
        }
        (training,) = stack.wait_for_runs("mloops_train_churn", count=1, timeout=300)
        loop_seconds = time.time() - started
        assert training["state"] == "success", stack.task_states("mloops_train_churn", training["run_id"])
        assert training["run_id"].startswith("asset_triggered__")
        print(f"drifted window -> new champion through the scheduler: {loop_seconds:.0f}s")

    settings = get_settings()
    mlflow = client(settings)
    champion = mlflow.get_model_version_by_alias("mloops.churn", "champion")
    assert str(champion.version) == "2"
    assert str(mlflow.get_model_version_by_alias("mloops.churn", "previous").version) == "1"
    tags = mlflow.get_run(champion.run_id).data.tags
    assert tags["mloops.trigger"] == "drift"
    assert tags["mloops.drift.window"] == "2026-01-08..2026-01-10"
    assert tags["mloops.data_interval_start"] == "2026-01-10"
    assert tags["airflow.run_type"] == "asset_triggered"
    assert json.loads(tags["mloops.drift.columns"]), "the drifted columns travel with the run"

    triggers = store.read_events(settings.metrics_db_uri, model="churn", kind="retrain_triggered")
    assert [str(e["partition"]) for e in triggers] == ["2026-01-10"]
    shares = {
        str(r["window_end"]): r["value"]
        for r in store.read_metrics(settings.metrics_db_uri, "churn", "drift.share")
    }
    assert shares["2026-01-07"] < 0.3 <= shares["2026-01-10"]
    assert "2026-01-09" in shares  # the backfilled window was checked and recorded, just not acted on
