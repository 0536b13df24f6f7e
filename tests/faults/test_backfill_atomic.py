"""A backfill is created whole or not at all, also on the local stack's SQLite metadata DB.

Why the local scheduler died (issue 11: ``ObjectDeletedError: Instance '<DagRun>' has been deleted``,
``StaleDataError: UPDATE dag_run expected 1 row, 0 matched``): Airflow creates each backfill run inside
a savepoint, and Python's sqlite3 driver commits at every outermost ``RELEASE SAVEPOINT``. So the runs
were committed one by one while the backfill was still being created, the scheduler started them, and
when a later run hit ``database is locked`` Airflow's clean-up deleted the runs the scheduler held.

This test makes the third run's creation fail with a lock error, looks at the metadata DB from another
connection at that moment (as the scheduler would), and checks what ``make backfill``'s script leaves.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.helpers import REPO

pytestmark = pytest.mark.faults

DAG_FILE = """
import pendulum
from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG

with DAG("atomic_backfill", schedule="@daily", start_date=pendulum.datetime(2026, 1, 1, tz="UTC")):
    EmptyOperator(task_id="noop")
"""

# Runs `scripts/backfill.py` with the third run's creation failing once on a lock error; prints what a
# second connection saw at that moment and what the script returned.
DRIVER = """
import json, sqlite3, sys
import sqlalchemy.exc
from airflow.models import backfill as airflow_backfill
import scripts.backfill as make_backfill

db, calls, seen = sys.argv[1], [], []
create_run = airflow_backfill._create_backfill_dag_run_non_partitioned

def failing_third_run(**kwargs):
    calls.append(kwargs["info"].logical_date.date().isoformat())
    if len(calls) == 3:
        with sqlite3.connect(db) as scheduler_view:
            seen.append(scheduler_view.execute(
                "SELECT count(*) FROM dag_run WHERE dag_id = 'atomic_backfill'").fetchone()[0])
        locked = sqlite3.OperationalError("database is locked")
        raise sqlalchemy.exc.OperationalError("INSERT INTO dag_run", {}, locked)
    return create_run(**kwargs)

airflow_backfill._create_backfill_dag_run_non_partitioned = failing_third_run
code = make_backfill.main(
    ["--dag-id", "atomic_backfill", "--from-date", "2026-01-01", "--to-date", "2026-01-04"])
print("RESULT " + json.dumps({"code": code, "seen_mid_creation": seen, "calls": len(calls)}))
"""


@pytest.fixture
def metadata_db(tmp_path: Path, airflow_db: Path) -> tuple[Path, dict[str, str]]:
    """A copy of the session's migrated SQLite metadata DB holding one serialized daily DAG."""
    home = tmp_path / "airflow"
    (tmp_path / "dags").mkdir()
    (tmp_path / "dags" / "atomic.py").write_text(DAG_FILE)
    home.mkdir()
    db = home / "airflow.db"
    shutil.copy(airflow_db, db)
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{db}",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS": "scripts.devstack.SQLITE_CONNECT_ARGS",
        "AIRFLOW__CORE__DAGS_FOLDER": str(tmp_path / "dags"),
        "PYTHONPATH": f"{REPO / 'plugins'}{os.pathsep}{REPO}",
    }
    airflow = str(Path(sys.executable).parent / "airflow")
    subprocess.run([airflow, "dags", "reserialize"], env=env, check=True, capture_output=True, timeout=300)
    return db, env


def test_a_lock_error_mid_creation_leaves_no_run_behind_and_the_retry_creates_all(metadata_db) -> None:
    db, env = metadata_db
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(DRIVER), str(db)],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert lines, done.stdout[-3000:] + done.stderr[-3000:]
    result = json.loads(lines[-1].removeprefix("RESULT "))

    # While the first attempt was half-way, another connection (the scheduler) saw none of its runs:
    # before the fix it saw the two runs already created, which Airflow's clean-up then deleted.
    assert result["seen_mid_creation"] == [0]
    assert result["code"] == 0, done.stderr[-3000:]
    assert result["calls"] == 3 + 4  # the failed attempt reached its third run, the retry made all four
    assert "the metadata DB is busy" in done.stderr  # the retry says why

    with sqlite3.connect(db) as view:
        backfills = view.execute("SELECT id, completed_at FROM backfill").fetchall()
        runs = view.execute(
            "SELECT run_id, backfill_id, state FROM dag_run WHERE dag_id = 'atomic_backfill' ORDER BY run_id"
        ).fetchall()
    assert len(backfills) == 1 and backfills[0][1] is None, backfills  # one backfill, still active
    assert [r[0][len("backfill__") :][:10] for r in runs] == [
        "2026-01-01",
        "2026-01-02",
        "2026-01-03",
        "2026-01-04",
    ]
    assert {r[1] for r in runs} == {backfills[0][0]} and {r[2] for r in runs} == {"queued"}
    assert f"created backfill {backfills[0][0]} of atomic_backfill" in done.stdout
