"""`make backfill`: create one backfill of a DAG, or refuse clearly; never leave half a backfill behind.

    python scripts/backfill.py --dag-id mloops_train_churn --from-date 2026-01-01 --to-date 2026-01-08 \
        [--reprocess none|failed|completed] [--max-active-runs 1]

``airflow backfill create`` commits the backfill row before it creates the runs, so an error while
creating them (on SQLite: ``database is locked`` while the scheduler writes) leaves an active
backfill without runs, which blocks every later backfill of the DAG. Here:

* an active backfill of the DAG is refused up front, naming it (id, range, who, progress);
* a failed creation is rolled back whole: the runs are created in one transaction, and the orphan
  backfill row is removed (only when no run of it exists), then the creation is retried a few times
  on a lock error. On SQLite "one transaction" needs help (``atomic_sqlite_transactions``): Python's
  driver commits at every outermost ``RELEASE SAVEPOINT``, and Airflow creates each run in a savepoint,
  so without it every run was committed on its own, the scheduler started them, and Airflow's clean-up
  after a lock error deleted runs the scheduler held (``ObjectDeletedError`` / ``StaleDataError``: a
  dead scheduler);
* what was created is printed: the backfill id and, per date, the run or why it was skipped.

Exit codes: 0 created, 1 refused or nothing to create, 2 bad arguments, 3 failed (nothing left behind).
Runs in the environment of the local Airflow (``make`` sets it); DAG files and tasks never import it.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
import time
from collections.abc import Sequence
from typing import Any

LOCK_ATTEMPTS = 5


def atomic_sqlite_transactions(engine: Any) -> None:
    """Make every transaction of ``engine`` one real SQLite transaction that holds the write lock.

    Python's sqlite3 driver (before 3.12) opens a transaction only before a data change and treats an
    outermost ``SAVEPOINT`` as a transaction of its own, which its ``RELEASE`` commits. Here the driver
    is put in autocommit mode and SQLAlchemy's own ``begin`` emits ``BEGIN IMMEDIATE``: savepoints nest
    inside it, nothing is visible to the scheduler before the commit, and the write lock is taken
    (waiting up to the busy timeout) before the first statement, so no write fails half-way with
    ``database is locked``. SQLAlchemy's documented recipe for pysqlite; other databases are left alone.
    """
    from sqlalchemy import event

    if engine.dialect.name != "sqlite":
        return
    engine.dispose()  # connections opened before the listeners would keep the driver's behaviour

    @event.listens_for(engine, "connect")
    def _driver_autocommit(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None

    @event.listens_for(engine, "begin")
    def _begin_immediate(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="make backfill", description=__doc__.split("\n\n")[0])
    parser.add_argument("--dag-id", required=True)
    parser.add_argument("--from-date", required=True, help="first logical date (= data interval start)")
    parser.add_argument("--to-date", required=True, help="last logical date (inclusive)")
    parser.add_argument("--reprocess", choices=("none", "failed", "completed"), default="none")
    parser.add_argument("--max-active-runs", type=int, default=1)
    return parser


def active_backfill(dag_id: str) -> dict[str, Any] | None:
    """The DAG's running backfill (``completed_at`` unset) with its progress, or ``None``."""
    from airflow.models.backfill import Backfill, BackfillDagRun
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        backfill = session.scalar(
            select(Backfill)
            .where(Backfill.dag_id == dag_id, Backfill.completed_at.is_(None))
            .order_by(Backfill.id)
        )
        if backfill is None:
            return None
        states = session.scalars(
            select(DagRun.state)
            .join(BackfillDagRun, BackfillDagRun.dag_run_id == DagRun.id)
            .where(BackfillDagRun.backfill_id == backfill.id)
        ).all()
        return {
            "id": backfill.id,
            "from": backfill.from_date.date().isoformat(),
            "to": backfill.to_date.date().isoformat(),
            "user": backfill.triggering_user_name,
            "created": backfill.created_at.strftime("%Y-%m-%d %H:%M:%S UTC"),
            "reprocess": backfill.reprocess_behavior,
            "runs": len(states),
            "finished": sum(1 for s in states if s in ("success", "failed")),
        }


def _remove_orphan(dag_id: str, after_id: int) -> list[int]:
    """Delete backfills of ``dag_id`` newer than ``after_id`` that own no DAG run (a failed creation)."""
    from airflow.models.backfill import Backfill, BackfillDagRun
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import delete, func, select

    removed = []
    with create_session() as session:
        for backfill in session.scalars(
            select(Backfill).where(Backfill.dag_id == dag_id, Backfill.id > after_id)
        ):
            if session.scalar(select(func.count()).where(DagRun.backfill_id == backfill.id)):
                continue
            session.execute(delete(BackfillDagRun).where(BackfillDagRun.backfill_id == backfill.id))
            session.delete(backfill)
            removed.append(backfill.id)
    return removed


def _latest_id(dag_id: str) -> int:
    from airflow.models.backfill import Backfill
    from airflow.utils.session import create_session
    from sqlalchemy import func, select

    with create_session() as session:
        return session.scalar(select(func.max(Backfill.id)).where(Backfill.dag_id == dag_id)) or 0


def _is_lock_error(exc: BaseException) -> bool:
    text = str(exc).lower()
    return "database is locked" in text or "could not obtain lock" in text or "deadlock" in text


def create(args: argparse.Namespace) -> int:
    """One creation attempt loop; returns the new backfill's id."""
    from airflow.models.backfill import ReprocessBehavior, _create_backfill
    from airflow.utils import timezone

    for attempt in range(1, LOCK_ATTEMPTS + 1):
        before = _latest_id(args.dag_id)
        try:
            # The function `airflow backfill create` and the REST API call: the runs are created in
            # one session and committed together, after the backfill row.
            backfill = _create_backfill(
                dag_id=args.dag_id,
                from_date=timezone.parse(args.from_date),
                to_date=timezone.parse(args.to_date),
                max_active_runs=args.max_active_runs,
                reverse=False,
                dag_run_conf=None,
                triggering_user_name=getpass.getuser(),
                reprocess_behavior=ReprocessBehavior(args.reprocess),
            )
            return backfill.id
        except Exception as exc:
            removed = _remove_orphan(args.dag_id, before)
            if removed:
                print(
                    f"backfill {', '.join(map(str, removed))} was half created and has been removed",
                    file=sys.stderr,
                )
            if not _is_lock_error(exc) or attempt == LOCK_ATTEMPTS:
                raise
            print(
                f"the metadata DB is busy ({exc.__class__.__name__}); retrying ({attempt}/{LOCK_ATTEMPTS})",
                file=sys.stderr,
            )
            time.sleep(2 * attempt)
    raise AssertionError("unreachable")


def describe(backfill_id: int) -> list[str]:
    """Per date: the run the backfill owns, or why it was not created."""
    from airflow.models.backfill import BackfillDagRun
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import select

    lines = []
    with create_session() as session:
        rows = session.execute(
            select(BackfillDagRun, DagRun)
            .outerjoin(DagRun, DagRun.id == BackfillDagRun.dag_run_id)
            .where(BackfillDagRun.backfill_id == backfill_id)
            .order_by(BackfillDagRun.sort_ordinal)
        ).all()
        for link, run in rows:
            day = link.logical_date.date().isoformat() if link.logical_date else "?"
            if run is not None:
                lines.append(f"  {day}  {run.run_id}  ({run.state})")
            else:
                lines.append(f"  {day}  not created: {link.exception_reason}")
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    os.environ.setdefault(
        "AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING"
    )  # our report, not Airflow's info lines
    from airflow import settings
    from airflow.exceptions import AirflowException
    from airflow.models.backfill import NoBackfillRunsToCreate

    atomic_sqlite_transactions(settings.engine)
    running = active_backfill(args.dag_id)
    if running:
        print(
            f"refused: backfill {running['id']} of {args.dag_id} is still running "
            f"({running['from']} .. {running['to']}, reprocess {running['reprocess']}, "
            f"created {running['created']} by {running['user']}; "
            f"{running['finished']} of {running['runs']} runs finished). Airflow allows one running backfill "
            "per DAG: wait for it to finish, or cancel it in the UI (Dag page > Backfills).",
            file=sys.stderr,
        )
        return 1
    try:
        backfill_id = create(args)
    except (
        AirflowException,
        NoBackfillRunsToCreate,
    ) as exc:  # DagNotFound, InvalidBackfill..., AlreadyRunning
        print(f"refused: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # noqa: BLE001 - reported with the guarantee the user needs
        print(
            f"failed: {type(exc).__name__}: {exc}\nnothing of this backfill was left behind", file=sys.stderr
        )
        return 3
    lines = describe(backfill_id)
    created = sum(1 for line in lines if "not created" not in line)
    print(
        f"created backfill {backfill_id} of {args.dag_id} ({args.from_date} .. {args.to_date}, reprocess "
        f"{args.reprocess}, {args.max_active_runs} run(s) at a time): {created} run(s)"
    )
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
