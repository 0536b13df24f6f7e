"""Operating mloops through a real scheduler and its REST API, as a data engineer does from the UI.

One ``airflow standalone`` serves every step: backfills run twice leave the registry identical; a
trigger with invalid parameters is refused; the approval step is answered Reject, then Approve,
through the REST API (the champion rolled back during the approved wait: the promotion re-compares),
and left unanswered until it times out to Reject; two registry operations started together are
serialized by the registry pool.
"""

from __future__ import annotations

import datetime as dt
import json
import time
import urllib.error
from pathlib import Path

import pytest

from tests.helpers import small_churn, write_models
from tests.integration.scheduler_api import local_stack

pytestmark = pytest.mark.integration
DAG = "mloops_train_churn"
APPROVAL_TIMEOUT_S = 40  # the answering tests answer ~10 s after the pause (more on a loaded machine)


def _registry_state() -> dict:
    from mloops.adapters.mlflow_adapter import client, version_by_alias, versions
    from mloops.settings import get_settings

    mlflow = client(get_settings())
    found = versions(mlflow, "mloops.churn")
    return {
        "versions": [(v.version, v.run_id, v.tags.get("mloops.data_interval_start")) for v in found],
        "aliases": {
            a: getattr(version_by_alias(mlflow, "mloops.churn", a), "version", None)
            for a in ("champion", "previous", "challenger")
        },
    }


def _wait_for_state(stack, dag_id: str, run_id: str, task_id: str, wanted: set[str], timeout: float) -> str:
    deadline = time.time() + timeout
    while time.time() < deadline:
        state = stack.task_states(dag_id, run_id).get(task_id)
        if state in wanted:
            return state
        time.sleep(1)
    raise TimeoutError(
        f"{task_id} of {run_id} not in {wanted}: {stack.task_states(dag_id, run_id)}\n{stack.log_tail()}"
    )


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, airflow_db: Path):
    root = tmp_path_factory.mktemp("ops")
    config = small_churn()
    config["schedule"]["end_date"] = "2026-01-31"
    # Short enough for the timeout test to wait it out, long enough for the tests that answer.
    config["promotion"]["approval_timeout_hours"] = APPROVAL_TIMEOUT_S / 3600
    models = write_models(root / "models", churn=config)
    with local_stack(root, models, [DAG, "mloops_registry_ops"]) as local:
        yield local


def test_backfill_twice_leaves_identical_registry(stack) -> None:
    count = stack.backfill(DAG, "2026-01-02", "2026-01-04")  # runs at 02:00 on 01-02 and 01-03
    runs = stack.wait_for_runs(DAG, count=count, timeout=400)
    assert [r["state"] for r in runs] == ["success", "success"]
    first = _registry_state()
    assert [v[2] for v in first["versions"]] == ["2026-01-02", "2026-01-03"]
    assert first["aliases"] == {"champion": "2", "previous": "1", "challenger": "2"}

    stack.backfill(DAG, "2026-01-02", "2026-01-04", reprocess="completed")
    time.sleep(5)
    runs = stack.wait_for_runs(DAG, count=2, timeout=400)
    assert all(r["state"] == "success" for r in runs)
    assert _registry_state() == first


def test_tasks_fork_from_the_warm_scheduler(stack) -> None:
    """The backfilled runs' tasks started with every stage library already imported (mloops.warm)."""
    assert "mloops.warm:" in stack.component_log("scheduler").read_text()
    logs = sorted(Path(stack.env["AIRFLOW_HOME"], "logs").rglob("task_id=validate_batch/attempt=*.log"))
    assert logs, "no validate_batch task log"
    text = logs[0].read_text()
    assert "task process started warm" in text, text[-3000:]


def test_invalid_trigger_parameters_are_refused(stack) -> None:
    with pytest.raises(urllib.error.HTTPError) as refused:
        stack.api.post(f"/dags/{DAG}/dagRuns", {"logical_date": None, "conf": {"promotion_mode": "yolo"}})
    assert refused.value.code == 400 and "promotion_mode" in refused.value.read().decode()

    run = stack.api.post(
        f"/dags/{DAG}/dagRuns", {"logical_date": None, "conf": {"estimator_overrides": {"max_depht": 3}}}
    )
    stack.cli("dags", "unpause", DAG)
    state = _wait_for_state(stack, DAG, run["dag_run_id"], "check_params", {"failed", "success"}, timeout=180)
    assert state == "failed"
    _wait_for_state(stack, DAG, run["dag_run_id"], "validate_batch", {"upstream_failed"}, timeout=60)
    tries = stack.api.get(
        f"/dags/{DAG}/dagRuns/{run['dag_run_id']}/taskInstances/check_params/logs/1?full_content=true"
    )
    assert "max_depht" in json.dumps(tries)


def _run_states(stack, run_id: str, timeout: float) -> dict[str, str]:
    return stack.api.wait_for_run(DAG, run_id, timeout)


def _start_approval_run(stack, partition: str) -> str:
    run = stack.api.post(
        f"/dags/{DAG}/dagRuns",
        {
            "logical_date": None,
            "conf": {"partition_date": partition, "promotion_mode": "approval", "reason": "test"},
        },
    )
    _wait_for_state(
        stack, DAG, run["dag_run_id"], "approve_promotion", {"awaiting_input", "deferred"}, timeout=400
    )
    return run["dag_run_id"]


def _wait_for_pause_to_be_reaped(stack, run_id: str, timeout: float = 90) -> None:
    """Wait until the executor's worker has reaped the paused task process.

    Answering earlier races Airflow 3.3: the triggerer resumes the task (state ``scheduled``) before the
    executor's "success" event of the paused try arrives, and the scheduler then marks that event's
    task FAILED ("finished with state success, but the task instance's state attribute is queued").
    A person never answers within the ~5 s this takes; a test does.
    """
    ti_id = stack.api.get(f"/dags/{DAG}/dagRuns/{run_id}/taskInstances/approve_promotion")["id"]
    log, deadline = stack.component_log("scheduler"), time.time() + timeout
    while time.time() < deadline:
        for line in log.read_text(errors="replace").splitlines():
            if "Workload finished" in line and ti_id in line:
                time.sleep(3)  # and the scheduler has processed the event
                return
        time.sleep(1)
    raise TimeoutError(f"the paused approve_promotion of {run_id} was not reaped in {timeout:.0f}s")


def _approval_run(stack, partition: str, choice: str, meanwhile=None) -> tuple[str, dict[str, str]]:
    """An approval run answered ``choice``; ``meanwhile()`` runs while it waits (another writer)."""
    run_id = _start_approval_run(stack, partition)
    _wait_for_pause_to_be_reaped(stack, run_id)
    if meanwhile is not None:
        meanwhile()
    stack.api.patch(
        f"/dags/{DAG}/dagRuns/{run_id}/taskInstances/approve_promotion/-1/hitlDetails",
        {"chosen_options": [choice], "params_input": {"comment": f"{choice} from the test"}},
    )
    return run_id, _run_states(stack, run_id, timeout=300)


def test_reject_keeps_champion_and_approve_promotes(stack) -> None:
    from mlflow import MlflowClient

    from mloops.settings import get_settings

    before = _registry_state()["aliases"]["champion"]
    _, states = _approval_run(stack, "2026-01-04", "Reject")
    assert states["approve_promotion"] == "success" and states["promote_model"] == "skipped", states
    after_reject = _registry_state()
    assert after_reject["aliases"]["champion"] == before
    candidate = after_reject["aliases"]["challenger"]
    client = MlflowClient(get_settings().mlflow_tracking_uri)
    record = json.loads(client.get_model_version("mloops.churn", candidate).tags["mloops.approval"])
    assert record["decision"] == "rejected" and record["comment"] == "Reject from the test"

    # While this one waits, another writer rolls the champion back: the approved challenger was tested
    # against `before`, so promotion re-compares it with the champion it now replaces (compare-and-set).
    rolled_back = after_reject["aliases"]["previous"]

    def roll_back() -> None:
        client.set_registered_model_alias("mloops.churn", "champion", rolled_back)
        client.set_registered_model_alias("mloops.churn", "previous", before)

    _, states = _approval_run(stack, "2026-01-05", "Approve", meanwhile=roll_back)
    assert states["promote_model"] == "success", states
    aliases = _registry_state()["aliases"]
    assert aliases["champion"] == aliases["challenger"] != before and aliases["previous"] == rolled_back
    tags = client.get_model_version("mloops.churn", aliases["champion"]).tags
    assert tags["mloops.compared_with"] == before
    assert json.loads(tags["mloops.recomparison"])["champion"] == rolled_back
    assert (
        f"re-compared on the same holdout, v{aliases['champion']} still wins"
        in tags["mloops.promotion_reason"]
    )


def test_unanswered_approval_times_out_to_reject(stack) -> None:
    """Nobody answers: after promotion.approval_timeout_hours the default (Reject) applies and is recorded."""
    from mlflow import MlflowClient

    from mloops.settings import get_settings

    before = _registry_state()["aliases"]["champion"]
    run_id = _start_approval_run(stack, "2026-01-06")
    states = _run_states(stack, run_id, timeout=APPROVAL_TIMEOUT_S + 240)
    # How long the approval waited, as Airflow recorded it (a wall clock here would include how late this
    # test's polling noticed the pause, which on a loaded machine is tens of seconds).
    approval = stack.api.get(f"/dags/{DAG}/dagRuns/{run_id}/taskInstances/approve_promotion")
    waited = dt.datetime.fromisoformat(approval["end_date"]) - dt.datetime.fromisoformat(
        approval["start_date"]
    )
    assert waited.total_seconds() >= APPROVAL_TIMEOUT_S - 15, (
        f"the approval ended after {waited}, before it timed out"
    )
    assert states["approve_promotion"] == "success" and states["promote_model"] == "skipped", states
    after = _registry_state()["aliases"]
    assert after["champion"] == before
    client = MlflowClient(get_settings().mlflow_tracking_uri)
    record = json.loads(client.get_model_version("mloops.churn", after["challenger"]).tags["mloops.approval"])
    assert record["decision"] == "rejected" and record["timed_out"] is True
    assert record["by"] == "timeout (default: Reject)"


def test_concurrent_registry_operations_are_serialized(stack) -> None:
    ops = "mloops_registry_ops"
    stack.cli("dags", "unpause", ops)
    run_ids = [
        stack.api.post(
            f"/dags/{ops}/dagRuns",
            {
                "logical_date": None,
                "conf": {
                    "model": "churn",
                    "action": "promote",
                    "version": version,
                    "reason": f"race test v{version}",
                },
            },
        )["dag_run_id"]
        for version in (1, 2)
    ]
    stack.wait_for_runs(ops, count=2, timeout=300)
    spans = []
    for run_id in run_ids:
        ti = stack.api.get(f"/dags/{ops}/dagRuns/{run_id}/taskInstances/apply_registry_action")
        assert ti["state"] == "success" and ti["pool"] == "mloops_registry"
        spans.append((ti["start_date"], ti["end_date"]))
    (s1, e1), (s2, e2) = sorted(spans)
    assert e1 <= s2, f"registry writes overlapped: {spans}"
    aliases = _registry_state()["aliases"]
    assert {aliases["champion"], aliases["previous"]} == {"1", "2"}
