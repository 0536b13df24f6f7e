"""The local stack under concurrent use, as issue 11 found it failing: the UI up, two backfills of
different models at once, a reprocess of the first while it runs, and a manual trigger.

Everything goes through what a person uses: ``make backfill``'s script (``scripts/backfill.py``), the
CLI trigger, and the supervised components of ``make ui`` (``scripts/devstack.py``) on the embedded
SQLite metadata store with its lock wait. It ends with every run finished, no lock error in any log,
and no component restarted.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import local_airflow_env
from tests.helpers import REPO, small_churn, write_models

pytestmark = pytest.mark.integration
MODELS = ("churn", "churn_b")
LOCK_ERRORS = ("database is locked", "OperationalError", "ObjectDeletedError")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, airflow_db: Path):
    from scripts.devstack import LocalAirflow

    root = tmp_path_factory.mktemp("concurrency")
    configs = {"churn": small_churn(), "churn_b": small_churn(seed=11)}
    for config in configs.values():  # no scheduled run of today once unpaused: only what the test makes
        config["schedule"]["end_date"] = "2026-01-31"
    models = write_models(root / "models", **configs)
    env = local_airflow_env(root / "stack", models, root / "mloops")
    with pytest.MonkeyPatch.context() as patch:  # this test's own reads of MLflow and the store
        for key in ("MLOOPS_HOME", "MLOOPS_MODELS_DIR", "MLFLOW_TRACKING_URI"):
            patch.setenv(key, env[key])
        local = LocalAirflow(env, root / "stack" / "standalone.log")
        local.cli("db", "migrate")
        local.cli("pools", "set", "mloops_registry", "1", "registry writes")
        local.start()
        try:
            local.wait_for_dags([f"mloops_train_{m}" for m in MODELS], timeout=180)
            yield local
        finally:
            local.stop()


def _make_backfill(stack, model: str, reprocess: str = "none") -> subprocess.Popen:
    """``make backfill MODEL=<model> FROM=2026-01-02 TO=2026-01-04`` (runs on 01-02 and 01-03)."""
    stack.cli("dags", "unpause", f"mloops_train_{model}")
    args = [sys.executable, str(REPO / "scripts" / "backfill.py"), "--dag-id", f"mloops_train_{model}"]
    args += ["--from-date", "2026-01-02", "--to-date", "2026-01-04", "--max-active-runs", "1"]
    return subprocess.Popen(
        [*args, "--reprocess", reprocess],
        env=stack.env,
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _finish(process: subprocess.Popen, timeout: float = 240) -> tuple[int, str]:
    out, err = process.communicate(timeout=timeout)
    return process.returncode, out + err


def test_ui_two_backfills_a_reprocess_and_a_trigger_at_once(stack) -> None:
    started = time.time()
    first, second = (_make_backfill(stack, m) for m in MODELS)  # both at once
    (code_a, out_a), (code_b, out_b) = _finish(first), _finish(second)
    assert code_a == 0, out_a
    assert code_b == 0, out_b
    for out, dag_id in ((out_a, "mloops_train_churn"), (out_b, "mloops_train_churn_b")):
        assert f"of {dag_id} (2026-01-02 .. 2026-01-04, reprocess none" in out and ": 2 run(s)" in out, out
        assert "2026-01-02" in out and "2026-01-03" in out, out

    # A reprocess of the first model while its backfill runs: refused up front, naming the running one.
    code, out = _finish(_make_backfill(stack, "churn", reprocess="failed"))
    assert code == 1, out
    assert "refused: backfill" in out and "of mloops_train_churn is still running" in out, out
    assert "(2026-01-02" in out and "runs finished" in out, out

    # A manual trigger of the second model beside its own backfill.
    manual = stack.trigger("mloops_train_churn_b", "2026-01-05T02:00:00+00:00")

    for model, count in (("churn", 2), ("churn_b", 3)):
        runs = stack.wait_for_runs(f"mloops_train_{model}", count=count, timeout=900)
        assert len(runs) == count, runs  # the refused reprocess created nothing
        assert [r["state"] for r in runs] == ["success"] * count, runs
    assert manual in {r["run_id"] for r in stack.runs("mloops_train_churn_b")}

    # Nothing in any log of the stack or its tasks reports a lock or a lost row; nothing died.
    logs = [stack.log_path, *(stack.component_log(c) for c in ("scheduler", "dag-processor", "triggerer"))]
    task_logs = sorted(Path(stack.env["AIRFLOW_HOME"], "logs").rglob("dag_id=*/**/*.log"))
    assert len(task_logs) >= 5 * 5, f"only {len(task_logs)} task logs"  # five runs, several tasks each
    logs += task_logs
    for log in logs:
        text = log.read_text(errors="replace")
        found = [error for error in LOCK_ERRORS if error in text]
        assert not found, f"{found} in {log}:\n{text[-3000:]}"
    assert stack.restarts == dict.fromkeys(stack.restarts, 0), stack.log_tail()
    assert all(process.poll() is None for process in stack.processes.values()), stack.log_tail()
    print(f"concurrent scenario: {time.time() - started:.0f} s")
