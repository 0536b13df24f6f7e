"""Infrastructure faults give one clear, retryable error and leave nothing behind.

On main: a dead MLflow server surfaced after minutes of MLflow's own retries as a raw
``MlflowException``; a dead metrics DB as a raw ``OperationalError`` with no word of what was being
done; a killed training process left its MLflow run ``RUNNING`` for ever; an error or event payload of
any size was stored and sent as is.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from airflow.sdk.exceptions import AirflowFailException

from mloops.errors import ServiceUnavailableError, ValidationFailedError
from mloops.operators import GXValidateBatchOperator, MLflowPromoteModelOperator, MLflowTrainModelOperator
from tests.integration.native_stack import free_port
from tests.operators.test_operators import _context, _execute, churn_models  # noqa: F401 - fixture

pytestmark = pytest.mark.faults

REPO = Path(__file__).resolve().parents[2]
REGISTERED = {"model": "churn", "registered_model": "mloops.churn", "version": "1", "reused": False}


def _promote() -> dict:
    return _execute(
        MLflowPromoteModelOperator(task_id="promote_model", model="churn"),
        {("register_model", "return_value"): REGISTERED},
    )


@pytest.mark.parametrize(
    ("env", "service", "uri", "doing"),
    [
        (
            "MLFLOW_TRACKING_URI",
            "MLflow tracking server",
            "http://alice:s3cret@127.0.0.1:{port}",
            "opening the tracking and model registry",
        ),
        (
            "MLOOPS_METRICS_DB_URI",
            "metrics DB",
            "postgresql+psycopg2://mloops:s3cret@127.0.0.1:{port}/metrics",
            "taking the registry lock of mloops.churn",
        ),
    ],
    ids=["mlflow", "metrics-db"],
)
def test_a_dead_port_fails_fast_naming_the_service_with_the_password_masked(
    env: str,
    service: str,
    uri: str,
    doing: str,
    churn_models: Path,  # noqa: F811 - the imported fixture
    mloops_home: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    port = free_port()
    monkeypatch.setenv(env, uri.format(port=port))
    started = time.monotonic()
    with pytest.raises(ServiceUnavailableError) as caught:
        _promote()
    message = str(caught.value)
    assert time.monotonic() - started < 15, "failed fast, not after the client's own retries"
    assert message.startswith("promote_model of model 'churn': ")
    assert f"{service} at {uri.format(port=port).replace('s3cret', '***')} cannot be reached" in message
    assert doing in message and "s3cret" not in message
    assert not isinstance(caught.value, AirflowFailException), "left to the task's retries"


def test_metrics_db_down_when_recording_an_event_names_it(
    churn_models: Path,  # noqa: F811 - the imported fixture
    mloops_home: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from mloops.contracts import EventKind

    uri = f"postgresql+psycopg2://mloops:s3cret@127.0.0.1:{free_port()}/metrics"
    monkeypatch.setenv("MLOOPS_METRICS_DB_URI", uri)
    operator = GXValidateBatchOperator(task_id="validate_batch", model="churn")
    with pytest.raises(
        ServiceUnavailableError, match=r"metrics DB at .*mloops:\*\*\*@.* while recording an event"
    ):
        operator.emit(_context({}, "validate_batch"), EventKind.BATCH_MISSING, "no file")


def _running_runs(run_key: str) -> list:
    from mloops.adapters import mlflow_adapter
    from mloops.contracts import Tag
    from mloops.settings import get_settings

    client = mlflow_adapter.client(get_settings())
    return client.search_runs(
        [e.experiment_id for e in client.search_experiments()],
        f"tags.`{Tag.RUN_KEY}` = '{run_key}' and attributes.status = 'RUNNING'",
    )


def test_a_killed_training_leaves_no_running_run_behind(
    churn_models: Path,  # noqa: F811 - the imported fixture
    mloops_home: Path,
) -> None:
    """SIGKILL the real training task while its MLflow run is open; the retry ends that run ``KILLED``."""
    from mloops.adapters import mlflow_adapter
    from mloops.contracts import Tag
    from mloops.settings import get_settings

    runs: dict = {}
    _execute(GXValidateBatchOperator(task_id="validate_batch", model="churn"), runs)
    # Create the MLflow schema first: two processes migrating one new SQLite store race each other.
    mlflow_adapter.client(get_settings()).search_experiments()
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from mloops.operators import MLflowTrainModelOperator\n"
            "from tests.operators.test_operators import _execute\n"
            "_execute(MLflowTrainModelOperator(task_id='train_model', model='churn'), {})\n",
        ],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{REPO / 'plugins'}"},
        stdout=subprocess.DEVNULL,
        stderr=(mloops_home / "child.log").open("wb"),
    )
    try:
        deadline = time.monotonic() + 120
        while not (orphans := _running_runs("churn/2026-01-03")):
            assert child.poll() is None, (mloops_home / "child.log").read_text()[-3000:]
            assert time.monotonic() < deadline
            time.sleep(0.05)
        os.kill(child.pid, signal.SIGKILL)
        child.wait(10)
    finally:
        if child.poll() is None:
            child.kill()
    assert _running_runs("churn/2026-01-03"), "the killed process left its run RUNNING"

    retried = _execute(MLflowTrainModelOperator(task_id="train_model", model="churn"), runs)

    client = mlflow_adapter.client(get_settings())
    orphan = client.get_run(orphans[0].info.run_id)
    assert orphan.info.status == "KILLED" and Tag.ORPHAN_ENDED in orphan.data.tags
    assert client.get_run(retried["run_id"]).info.status == "FINISHED" and not retried["reused"]
    assert not _running_runs("churn/2026-01-03")


def test_oversized_failures_and_events_are_bounded(
    churn_models: Path,  # noqa: F811 - the imported fixture
    mloops_home: Path,
) -> None:
    """A failure listing a million bad values is cut in the task error, its XCom, its event and notice."""
    from mloops import store as metrics
    from mloops.errors import MAX_MESSAGE_CHARS, MAX_PAYLOAD_CHARS
    from mloops.settings import get_settings

    huge = "bad value; " * 100_000
    store: dict = {}
    context = _context(store, "validate_batch")
    operator = GXValidateBatchOperator(task_id="validate_batch", model="churn")

    def stage() -> None:
        raise ValidationFailedError(f"batch refused: {huge}", result={"unexpected": [huge] * 3})

    with pytest.raises(AirflowFailException) as caught:
        operator.run_stage(context, stage)  # type: ignore[arg-type]
    assert len(str(caught.value)) <= MAX_MESSAGE_CHARS and "more characters cut]" in str(caught.value)
    failure = store[("validate_batch", "failure")]
    assert failure["truncated"] and failure["chars"] > 3_000_000 and len(failure["head"]) <= MAX_PAYLOAD_CHARS
    (event,) = metrics.read_events(get_settings().metrics_db_uri, "churn", "batch_quarantined")
    assert len(event["message"]) <= MAX_MESSAGE_CHARS and event["payload"]["truncated"]


def test_the_next_night_ends_a_stale_run_of_another_interval(
    churn_models: Path,  # noqa: F811 - the imported fixture
    mloops_home: Path,
) -> None:
    """A try that was never retried is cleaned up by the model's next training, once its run is older
    than the task's execution timeout; a recent run of another interval (a live backfill) is kept."""
    import datetime as dt

    from mloops.adapters import mlflow_adapter
    from mloops.config_files import find_model_config
    from mloops.contracts import Tag
    from mloops.settings import get_settings

    settings = get_settings()
    client = mlflow_adapter.client(settings)
    experiment = mlflow_adapter.ensure_experiment(
        client, settings, find_model_config("churn", settings.models_dir).experiment_name
    )
    now_ms = int(time.time() * 1000)
    stale = client.create_run(
        experiment,
        start_time=now_ms - 3 * 3600 * 1000,
        tags={Tag.RUN_KEY: "churn/2025-12-30", Tag.MODEL: "churn"},
    )
    live = client.create_run(
        experiment, start_time=now_ms, tags={Tag.RUN_KEY: "churn/2025-12-31", Tag.MODEL: "churn"}
    )
    runs: dict = {}
    _execute(GXValidateBatchOperator(task_id="validate_batch", model="churn"), runs)
    operator = MLflowTrainModelOperator(
        task_id="train_model", model="churn", execution_timeout=dt.timedelta(hours=2)
    )
    _execute(operator, runs)
    assert client.get_run(stale.info.run_id).info.status == "KILLED"
    assert client.get_run(live.info.run_id).info.status == "RUNNING"
