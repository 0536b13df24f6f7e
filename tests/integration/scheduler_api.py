"""A real scheduler driven as a data engineer drives it from the UI: ``scripts.devstack.LocalAirflow``
(the supervised components of ``make ui``) plus its REST API (v2).

Shared by the real-scheduler test modules: :func:`local_stack` starts one stack over a models folder
(the test process's own reads of MLflow and the stores point at the same homes for as long as it runs),
:class:`Api` triggers runs and waits for them through the API.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from scripts.devstack import LocalAirflow, RestApi
from tests.conftest import local_airflow_env

FINISHED = ("success", "failed")


class Api(RestApi):
    """The local stack's REST API (``scripts.devstack.RestApi``) with what the scheduler tests do through it.

    :param base: the API server's base URL.
    :param describe: what to add to a timeout's message (the stack's log tail).
    """

    def __init__(self, base: str, describe: Callable[[], str] = lambda: "") -> None:
        super().__init__(base)
        self.describe = describe

    def set_paused(self, dag_id: str, paused: bool) -> None:
        self.patch(f"/dags/{dag_id}", {"is_paused": paused})

    def trigger(self, dag_id: str, conf: Mapping[str, Any]) -> str:
        """Unpause ``dag_id`` and start a manual run (no logical date) with ``conf``; its run id."""
        self.set_paused(dag_id, False)
        return self.post(f"/dags/{dag_id}/dagRuns", {"logical_date": None, "conf": dict(conf)})["dag_run_id"]

    def task_states(self, dag_id: str, run_id: str) -> dict[str, str]:
        instances = self.get(f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances")["task_instances"]
        return {ti["task_id"]: ti["state"] for ti in instances}

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float) -> dict[str, str]:
        """Wait until the run has ended; return its task states.

        (Through the API rather than the CLI: once, in CI, ``tasks states-for-dag-run`` right after an
        approval run reported ``promote_model`` as upstream_failed while the run had succeeded.)
        """
        deadline = time.time() + timeout
        while True:
            run = self.get(f"/dags/{dag_id}/dagRuns/{run_id}")
            if run["state"] in FINISHED:
                return self.task_states(dag_id, run_id)
            if time.time() > deadline:
                raise TimeoutError(
                    f"{dag_id} {run_id} still {run['state']} after {timeout:.0f}s\n{self.describe()}"
                )
            time.sleep(1)

    def run_all(self, runs: Iterable[tuple[str, Mapping[str, Any]]], timeout: float) -> list[dict[str, str]]:
        """Trigger every ``(dag_id, conf)`` at once (each DAG runs one at a time, in this order; different
        DAGs side by side), wait for all; their task states, in the same order."""
        started = [(dag_id, self.trigger(dag_id, conf)) for dag_id, conf in runs]
        deadline = time.time() + timeout
        return [self.wait_for_run(d, r, max(1.0, deadline - time.time())) for d, r in started]


@contextmanager
def local_stack(root: Path, models: Path, dag_ids: Iterable[str]) -> Iterator[Any]:
    """``make ui``'s supervised components over ``models`` with their own homes under ``root``, the
    registry pool set, ``dag_ids`` parsed; ``.api`` is its REST API. This process's environment points
    at the same homes until the stack stops."""
    env = local_airflow_env(root / "stack", models, root / "mloops")
    with pytest.MonkeyPatch.context() as patch:  # this test's own reads of MLflow and the stores
        for key in ("MLOOPS_HOME", "MLOOPS_MODELS_DIR", "MLFLOW_TRACKING_URI"):
            patch.setenv(key, env[key])
        stack = LocalAirflow(env, root / "stack" / "standalone.log")
        stack.cli("db", "migrate")
        stack.cli("pools", "set", "mloops_registry", "1", "registry writes")
        stack.start()
        try:
            stack.wait_for_dags(list(dag_ids), timeout=180)
            stack.api = Api(env["AIRFLOW__API__BASE_URL"], stack.log_tail)
            yield stack
        finally:
            stack.stop()
