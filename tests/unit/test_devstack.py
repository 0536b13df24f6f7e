"""The local stack's environment: what every component and task process of `make run`/`make ui` gets."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from scripts.devstack import LocalAirflow

pytestmark = pytest.mark.unit

REPO = str(Path(__file__).resolve().parents[2])

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


def test_the_timeline_reads_start_up_and_held_workers_from_the_logs(tmp_path, capsys) -> None:
    import json
    import sqlite3

    from scripts import timeline

    db = tmp_path / "airflow.db"
    with sqlite3.connect(db) as con:
        con.execute(
            "create table task_instance"
            " (id, dag_id, run_id, task_id, queued_dttm, start_date, end_date, duration)"
        )
        con.executemany(
            "insert into task_instance values (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                ("0a-1", "mloops_train_churn", "r1", "train_model", "2026-01-01 00:00:00",
                 "2026-01-01 00:00:01", "2026-01-01 00:00:04", 3.0),
                ("0a-2", "mloops_train_churn", "r1", "approve_promotion", "2026-01-01 00:00:05",
                 "2026-01-01 00:00:06", "2026-01-01 00:00:07", 1.0),
            ],
        )  # fmt: skip
    for task, lines in {
        "train_model": [
            ("00:00:01.100", "Filling up the DagBag"),
            ("00:00:01.400", "mloops: task process started warm"),
        ],
        "approve_promotion": [("00:00:06.250", "Skipping task.")],
    }.items():
        log = tmp_path / "logs/dag_id=mloops_train_churn/run_id=r1" / f"task_id={task}" / "attempt=1.log"
        log.parent.mkdir(parents=True)
        log.write_text(
            "".join(json.dumps({"timestamp": f"2026-01-01T{t}Z", "event": e}) + "\n" for t, e in lines)
        )
    scheduler = tmp_path / "scheduler.log"
    scheduler.write_text(
        "x [info ] Workload finished [supervisor] duration=8.1 exit_code=0 workload_id=0a-1\n"
        "x [info ] Workload finished [supervisor] duration=1.05 exit_code=0 workload_id=0a-2\n"
    )
    assert timeline.main([str(db), str(scheduler)]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "train_model 0.40 / 0.40 (n=1)" in out
    assert "approve_promotion 0.25 / 0.25 (n=1)" in out
    assert "workloads outliving their task: 1 of 2 by over 0.5 s (max 5.1 s, total 5 s)" in out


@pytest.mark.parametrize(
    ("section", "key", "default"),
    [
        ("scheduler", "scheduler_idle_sleep_time", "0.2"),  # the idle scheduler loops five times a second
        ("workers", "min_heartbeat_interval", "1"),  # a finished task's supervisor notices within 1 s
    ],
)
def test_the_local_stack_tunes_airflow_unless_told_otherwise(
    tmp_path, monkeypatch, section, key, default
) -> None:
    """Read back through Airflow's own config in a child process: a misspelt variable would leave
    Airflow's default."""
    variable = f"AIRFLOW__{section.upper()}__{key.upper()}"
    monkeypatch.delenv(variable, raising=False)
    read = f"from airflow.configuration import conf; print(conf.get({section!r}, {key!r}))"
    for given, expected in (({}, default), ({variable: "3"}, "3")):
        env = {**LocalAirflow(given, tmp_path / "airflow.log").env, "AIRFLOW_HOME": str(tmp_path / "af")}
        done = subprocess.run([sys.executable, "-c", read], env=env, capture_output=True, text=True)
        assert done.stdout.strip().splitlines()[-1:] == [expected], done.stderr[-2000:]


def test_precompile_writes_bytecode_even_where_the_environment_forbids_it(tmp_path) -> None:
    package = tmp_path / "precompiled_pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "mod.py").write_text("import precompiled_pkg.dep\n")
    (package / "dep.py").write_text("VALUE = 1\n")
    code = (
        "import sys; from scripts.precompile import compile_modules;"
        "print(compile_modules(('precompiled_pkg.mod', 'precompiled_pkg.missing')))"
    )
    env = {
        **os.environ,
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONPATH": os.pathsep.join((str(tmp_path), REPO, f"{REPO}/plugins")),
    }
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "['precompiled_pkg.missing']"  # reported, not fatal
    assert "could not import precompiled_pkg.missing: ModuleNotFoundError" in done.stderr
    cached = sorted(p.name.split(".")[0] for p in (package / "__pycache__").glob("*.pyc"))
    assert cached == ["__init__", "dep", "mod"]  # what the module imports is written too


def test_precompile_imports_every_module_it_names() -> None:
    """The lists name real modules of this install (a renamed Airflow module would silently drop out)."""
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    command = [sys.executable, "scripts/precompile.py", "airflow"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 0 and "could not import" not in done.stderr, done.stderr[-3000:]
