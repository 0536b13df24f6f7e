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


def test_the_timeline_sums_task_time_and_gaps(tmp_path, capsys) -> None:
    import sqlite3

    from scripts import timeline

    db = tmp_path / "airflow.db"
    with sqlite3.connect(db) as con:
        con.execute("create table task_instance (dag_id, run_id, task_id, queued_dttm, start_date, end_date)")
        day = "2026-01-01 00:00:"
        con.executemany(
            "insert into task_instance values (?, ?, ?, ?, ?, ?)",
            [
                ("mloops_train_churn", "r1", "validate_batch", day + "00", day + "01", day + "04"),
                ("mloops_train_churn", "r1", "train_model", day + "05", day + "06", day + "16"),
            ],
        )
    assert timeline.main([str(db)]) == 0
    out = capsys.readouterr().out
    assert "train          2       13         2       15" in out
    assert "gaps between the tasks of a run (s): 2 over 1 runs" in out
