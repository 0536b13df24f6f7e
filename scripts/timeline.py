"""Where a local run's time went: task durations against scheduling gaps, from the Airflow metadata DB.

    python scripts/timeline.py .mloops/airflow/airflow.db [.mloops/logs/airflow.scheduler.log]

Reads the ``task_instance`` rows of a local (SQLite) Airflow and prints, per DAG kind (``mloops_<kind>_*``),
the summed task time, the time tasks waited queued, and the wall span; then the mean duration of each
task; then the gaps between a run's tasks and between the runs of each DAG. Then, from the task logs
beside the DB (``logs/`` of the Airflow home), each task's start-up: from its start (the task process
reports running) to the stage code's first line (mloops' "task process started" line, or Airflow's
"Skipping task."). Given the scheduler's log, also how long each workload outlived its task (the
supervisor noticing the process's exit: ``Workload finished`` duration minus the task's).
"""

from __future__ import annotations

import datetime as dt
import json
import re
import sqlite3
import statistics
import sys
from collections import defaultdict
from pathlib import Path

#: The first line of a task's own work: mloops' operators log it before the stage code; a skip says so.
STAGE_START = ("task process started", "Skipping task.")


def _at(value: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(value) if value else None


def startup_seconds(log: Path, started: dt.datetime) -> float | None:
    """Seconds from the task's start to the first line of its own work in its log (None: no such line)."""
    for line in log.read_text(errors="replace").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if any(marker in str(record.get("event", "")) for marker in STAGE_START):
            return (_utc(record["timestamp"]) - started).total_seconds()
    return None


def startups(logs: Path, rows: list[tuple]) -> dict[str, list[float]]:
    """Task id -> start-up seconds of each of its first attempts found under ``logs``."""
    found: dict[str, list[float]] = defaultdict(list)
    for dag_id, run_id, task_id, _, start, _ in rows:
        log = logs / f"dag_id={dag_id}" / f"run_id={run_id}" / f"task_id={task_id}" / "attempt=1.log"
        took = startup_seconds(log, _utc(start)) if log.is_file() else None
        if took is not None:
            found[task_id].append(took)
    return found


def held_after_end(scheduler_log: Path, ids: dict[str, float]) -> list[float]:
    """Per workload, its ``Workload finished`` duration minus its task's duration (task id -> seconds)."""
    pattern = re.compile(r"Workload finished.*?duration=([0-9.]+).*?workload_id=([0-9a-f-]+)")
    held = []
    for match in pattern.finditer(scheduler_log.read_text(errors="replace")):
        task = ids.get(match.group(2).replace("-", ""))
        if task is not None:
            held.append(float(match.group(1)) - task)
    return held


def _utc(value: str) -> dt.datetime:
    """A log line's ``...Z`` stamp or the DB's naive UTC time, as an aware datetime."""
    at = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    return at if at.tzinfo else at.replace(tzinfo=dt.UTC)


def main(argv: list[str]) -> int:
    if len(argv) not in (1, 2):
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    with sqlite3.connect(f"file:{argv[0]}?mode=ro", uri=True) as con:
        rows = con.execute(
            "select dag_id, run_id, task_id, queued_dttm, start_date, end_date from task_instance "
            "where start_date is not null and end_date is not null order by start_date"
        ).fetchall()
        ids = (
            dict(con.execute("select replace(id, '-', ''), duration from task_instance where duration > 0"))
            if len(argv) == 2
            else {}
        )
    if not rows:
        print("no finished task in this DB")
        return 1
    tasks = [
        (d, r, t, _at(q), dt.datetime.fromisoformat(s), dt.datetime.fromisoformat(e))
        for d, r, t, q, s, e in rows
    ]
    kinds: dict[str, list[float]] = defaultdict(lambda: [0, 0.0, 0.0])
    spans: dict[str, list[dt.datetime]] = {}
    durations: dict[tuple[str, str], list[float]] = defaultdict(list)
    runs: dict[tuple[str, str], list[tuple[dt.datetime, dt.datetime]]] = defaultdict(list)
    for dag_id, run_id, task_id, queued, start, end in tasks:
        kind = dag_id.split("_")[1] if dag_id.startswith("mloops_") else dag_id
        took = (end - start).total_seconds()
        entry = kinds[kind]
        entry[0] += 1
        entry[1] += took
        entry[2] += (start - queued).total_seconds() if queued else 0.0
        first, last = spans.get(kind, [start, end])
        spans[kind] = [min(first, start), max(last, end)]
        durations[(kind, task_id)].append(took)
        runs[(dag_id, run_id)].append((start, end))
    print(f"{'kind':10} {'tasks':>5} {'task s':>8} {'queued s':>9} {'span s':>8}")
    for kind, (count, took, queued) in kinds.items():
        span = (spans[kind][1] - spans[kind][0]).total_seconds()
        print(f"{kind:10} {count:5.0f} {took:8.0f} {queued:9.0f} {span:8.0f}")
    print("\nmean task duration (s)")
    for (kind, task_id), values in sorted(durations.items()):
        print(f"  {kind:10} {task_id:22} {sum(values) / len(values):6.1f}  (n={len(values)})")
    within = sum(
        (max(e for _, e in spans_) - min(s for s, _ in spans_)).total_seconds()
        - sum((e - s).total_seconds() for s, e in spans_)
        for spans_ in runs.values()
    )
    print(f"\ngaps between the tasks of a run (s): {within:.0f} over {len(runs)} runs")
    by_dag: dict[str, list[tuple[dt.datetime, dt.datetime]]] = defaultdict(list)
    for (dag_id, _), spans_ in runs.items():
        by_dag[dag_id].append((min(s for s, _ in spans_), max(e for _, e in spans_)))
    for dag_id, bounds in sorted(by_dag.items()):
        bounds.sort()
        gaps = [(bounds[i + 1][0] - bounds[i][1]).total_seconds() for i in range(len(bounds) - 1)]
        idle = sum(g for g in gaps if g > 0)
        print(f"  {dag_id}: {len(bounds)} runs, idle between runs {idle:.0f} s")
    found = startups(Path(argv[0]).parent / "logs", rows)
    if found:
        print("\nstart-up per task: start -> its own first line (s, median / max)")
        for task_id, values in sorted(found.items()):
            print(f"  {task_id:22} {statistics.median(values):5.2f} / {max(values):5.2f}  (n={len(values)})")
    if len(argv) == 2:
        held = sorted(held_after_end(Path(argv[1]), ids))
        if held:
            late = [h for h in held if h > 0.5]
            print(
                f"\nworkloads outliving their task: {len(late)} of {len(held)} by over 0.5 s "
                f"(max {held[-1]:.1f} s, total {sum(late):.0f} s)"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
