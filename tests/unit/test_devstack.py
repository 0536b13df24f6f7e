"""The local stack's environment: what every component and task process of `make run`/`make ui` gets."""

from __future__ import annotations

import subprocess
import sys

import pytest

from scripts.devstack import LocalAirflow

pytestmark = pytest.mark.unit

THREADS = (
    "import sklearn.ensemble, threadpoolctl;"
    "print({i['user_api']: i['num_threads'] for i in threadpoolctl.threadpool_info()}.get('openmp'))"
)


def test_tasks_run_scikit_learn_on_one_openmp_thread_unless_told_otherwise(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    env = LocalAirflow({}, tmp_path / "airflow.log").env
    done = subprocess.run([sys.executable, "-c", THREADS], env=env, capture_output=True, text=True)
    assert done.stdout.strip() == "1", done.stderr
    assert LocalAirflow({"OMP_NUM_THREADS": "2"}, tmp_path / "airflow.log").env["OMP_NUM_THREADS"] == "2"
