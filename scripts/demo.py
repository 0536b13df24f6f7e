"""`make run`: the nightly pipeline of the example models over a simulated period, on the real scheduler.

Starts Airflow (``airflow standalone``: scheduler, dag-processor, api-server, triggerer with the
LocalExecutor on SQLite) on the local state folder, backfills each example model's training DAG over
the simulated nights (one churn night carries a broken batch that must be quarantined), waits for
every run to finish, stops Airflow and prints the summary.

Time-based scheduling is switched off for this simulation (``use_job_schedule=False``) so the
scheduler runs only the backfills and the clock of this machine does not add a run for "today".
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "plugins"))

from mloops.settings import get_settings  # noqa: E402

FROM_DATE = os.environ.get("MLOOPS_DEMO_FROM", "2026-01-01")
TO_DATE = os.environ.get("MLOOPS_DEMO_TO", "2026-01-07")  # runs whose interval starts before this
MODELS = os.environ.get("MLOOPS_DEMO_MODELS", "churn,house_prices").split(",")
TIMEOUT = float(os.environ.get("MLOOPS_DEMO_TIMEOUT", "1800"))
AIRFLOW = str(Path(sys.executable).parent / "airflow")


def airflow(*args: str, check: bool = True) -> str:
    done = subprocess.run([AIRFLOW, *args], capture_output=True, text=True, env=os.environ.copy())
    if check and done.returncode != 0:
        raise RuntimeError(f"airflow {' '.join(args)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return done.stdout


def json_out(*args: str) -> list[dict]:
    text = airflow(*args, "--output", "json")
    for line in text.splitlines():  # the CLI may print log lines before the JSON document
        if line.startswith("[{") or line.strip() == "[]":
            return json.loads(line)
    return []


def wait_for_dags(dag_ids: list[str], deadline: float) -> None:
    while time.time() < deadline:
        known = {d["dag_id"] for d in json_out("dags", "list")}
        if set(dag_ids) <= known:
            return
        time.sleep(3)
    errors = airflow("dags", "list-import-errors", check=False)
    raise TimeoutError(f"DAGs {dag_ids} were not parsed in time. Import errors:\n{errors}")


def wait_for_runs(dag_ids: list[str], expected: int, deadline: float) -> dict[str, list[dict]]:
    while True:
        runs = {d: json_out("dags", "list-runs", d) for d in dag_ids}
        pending = {d: [r for r in rs if r["state"] not in ("success", "failed")] for d, rs in runs.items()}
        finished = {d: len(rs) - len(pending[d]) for d, rs in runs.items()}
        print(f"  {time.strftime('%H:%M:%S')} finished runs: {finished} (of {expected} each)", flush=True)
        if all(finished[d] >= expected and not pending[d] for d in dag_ids):
            return runs
        if time.time() > deadline:
            raise TimeoutError(f"runs still pending after {TIMEOUT:.0f}s: {pending}")
        time.sleep(10)


def main() -> int:
    settings = get_settings()
    settings.home.mkdir(parents=True, exist_ok=True)
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    os.environ["AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE"] = "False"
    os.environ.setdefault("AIRFLOW__CORE__PARALLELISM", "4")
    os.environ.setdefault("AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION", "True")
    os.environ.setdefault("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS", "True")

    # Create the MLflow schema once, before several task processes could race to initialize it.
    from mloops.adapters.mlflow_adapter import client

    client(settings).search_experiments()

    dag_ids = [f"mloops_train_{m}" for m in MODELS]
    log_path = settings.home / "logs" / "standalone.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    started = time.time()
    print(f"Starting Airflow (log: {log_path})", flush=True)
    with log_path.open("w") as log:
        standalone = subprocess.Popen(
            [AIRFLOW, "standalone"], stdout=log, stderr=subprocess.STDOUT, env=os.environ.copy(), start_new_session=True
        )
    try:
        deadline = started + TIMEOUT
        wait_for_dags(dag_ids, deadline)
        for dag_id in dag_ids:
            airflow("dags", "unpause", dag_id)
            airflow(
                "backfill", "create", "--dag-id", dag_id, "--from-date", FROM_DATE, "--to-date", TO_DATE,
                "--max-active-runs", "1", "--reprocess-behavior", "completed",
            )
            print(f"Backfill of {dag_id} {FROM_DATE}..{TO_DATE} created", flush=True)
        planned = {d: len([r for r in json_out("dags", "list-runs", d) if r["run_id"].startswith("backfill__")]) for d in dag_ids}
        expected = min(planned.values())
        print(f"Waiting for {planned} backfill runs ...", flush=True)
        runs = wait_for_runs(dag_ids, expected, deadline)
    finally:
        os.killpg(standalone.pid, signal.SIGTERM)
        try:
            standalone.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(standalone.pid, signal.SIGKILL)
    elapsed = time.time() - started
    for dag_id, dag_runs in runs.items():
        states = ", ".join(f"{r['logical_date'][:10]}:{r['state']}" for r in sorted(dag_runs, key=lambda r: r["logical_date"]))
        print(f"{dag_id}: {states}")
    print(f"Scheduler phase took {elapsed:.0f}s")

    from mloops import summary

    summary.main(MODELS)
    problems = [f"{m}: no champion" for m in MODELS if not summary.model_summary(m, settings)["aliases"].get("champion")]
    if not any(summary.model_summary(m, settings)["quarantined"] for m in MODELS):
        problems.append("the simulated bad batch was not quarantined")
    if problems:
        print("Demo did not reach its expected end state: " + "; ".join(problems), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
