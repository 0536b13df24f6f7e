"""`make run`: the example models' nightly life over a simulated fortnight, on the real scheduler.

Starts Airflow (scheduler, dag-processor, api-server, triggerer, supervised by ``scripts/devstack.py``;
LocalExecutor on SQLite) over the local state folder, then:

1. backfills the training DAGs for the nights 2026-01-01 … 2026-01-07 (churn's 2026-01-05 batch is
   broken and must be quarantined);
2. backfills the scoring DAGs for 2026-01-01 … 2026-01-10 (churn's customers drift from 2026-01-08);
3. backfills the monitoring DAGs (history: drift is recorded, but backfills never retrain);
4. runs "tonight's" monitoring for the window ending 2026-01-10: churn's drift breaches its policy,
   the drift Asset event starts churn's training DAG, and the retrained model becomes champion;
then stops Airflow and prints the summary.

The simulation runs on copies of ``include/models`` with ``schedule.end_date`` set to its last day,
so the scheduler adds no run for this machine's "today"; drift-triggered runs still happen.
"""

from __future__ import annotations

import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "plugins"), str(REPO)]

from mloops import summary  # noqa: E402
from mloops.settings import get_settings  # noqa: E402
from scripts.devstack import LocalAirflow  # noqa: E402

MODELS = os.environ.get("MLOOPS_DEMO_MODELS", "churn,house_prices").split(",")
TIMEOUT = float(os.environ.get("MLOOPS_DEMO_TIMEOUT", "1500"))
TRAIN = ("2026-01-01", "2026-01-08")  # backfill ranges select runs by logical date = interval start
SCORE = ("2026-01-03", "2026-01-11")
MONITOR = ("2026-01-05", "2026-01-10")
#: (DAG kind, range, runs at once): training nights build on each other (window, champion) and run one at
#: a time; scoring and monitoring nights of a fixed champion are independent, keyed by their interval.
BACKFILLS = (("train", TRAIN, 1), ("score", SCORE, 3), ("monitor", MONITOR, 3))
TONIGHT = "2026-01-10"  # the last partition; its monitoring run is the one that may act
END_OF_SIMULATION = "2026-01-31"


def demo_models(settings_home: Path) -> Path:
    """Copies of the example configs, ending time-based scheduling with the simulation."""
    target = settings_home / "demo" / "models"
    target.mkdir(parents=True, exist_ok=True)
    for name in MODELS:
        data = yaml.safe_load((REPO / "include" / "models" / f"{name}.yaml").read_text())
        data.setdefault("schedule", {})["end_date"] = END_OF_SIMULATION
        (target / f"{name}.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    return target


def phase(title: str) -> float:
    print(f"\n== {title}", flush=True)
    return time.time()


def main() -> int:
    settings = get_settings()
    models_dir = demo_models(settings.home)
    os.environ["MLOOPS_MODELS_DIR"] = str(models_dir)
    env = {
        "MLOOPS_MODELS_DIR": str(models_dir),
        "AIRFLOW__CORE__PARALLELISM": os.environ.get("AIRFLOW__CORE__PARALLELISM", "4"),
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
        # The demo's DAG files do not change while it runs: parse them once, not every 30 s (each pass
        # re-reads the model files and rewrites the DAGs: ~3.4 s of CPU and SQLite writes at load 6).
        "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": os.environ.get(
            "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL", "3600"
        ),
    }
    # Create the MLflow schema once, before several task processes could race to initialize it.
    from mloops.adapters.mlflow_adapter import client

    client(settings).search_experiments()
    stack = LocalAirflow(env, settings.home / "logs" / "airflow.log")
    started = time.time()
    print(f"Starting Airflow (logs: {stack.log_path.parent}/airflow.<component>.log)", flush=True)
    with stack:
        kinds = ("train", "score", "monitor")
        stack.wait_for_dags([f"mloops_{k}_{m}" for k in kinds for m in MODELS], timeout=300)
        for m in MODELS:
            stack.unpause(f"mloops_train_{m}")  # drift-triggered runs need it unpaused

        for kind, (first, last), at_once in BACKFILLS:
            t0 = phase(f"Backfill mloops_{kind}_* {first} .. {last}")
            with ThreadPoolExecutor(len(MODELS)) as pool:  # each creation is a process importing Airflow
                create = partial(stack.backfill, from_date=first, to_date=last, max_active_runs=at_once)
                created = pool.map(create, [f"mloops_{kind}_{m}" for m in MODELS])
                counts = dict(zip(MODELS, created, strict=True))
            for m in MODELS:
                runs = stack.wait_for_runs(f"mloops_{kind}_{m}", count=counts[m], timeout=TIMEOUT)
                print(
                    f"  mloops_{kind}_{m}: "
                    "" + ", ".join(f"{r['logical_date'][:10]}:{r['state']}" for r in runs)
                )
            print(f"  ({time.time() - t0:.0f}s)")

        t0 = phase(f"Tonight: monitoring of the window ending {TONIGHT}")
        trained_before = {m: len(stack.runs(f"mloops_train_{m}")) for m in MODELS}
        tonight = {
            m: stack.trigger(f"mloops_monitor_{m}", f"{TONIGHT}T23:00:00+00:00", {"partition_date": TONIGHT})
            for m in MODELS
        }
        retraining = []
        for m, run_id in tonight.items():
            stack.wait_for_runs(
                f"mloops_monitor_{m}", count=len(stack.runs(f"mloops_monitor_{m}")), timeout=TIMEOUT
            )
            states = stack.task_states(f"mloops_monitor_{m}", run_id)
            print(f"  mloops_monitor_{m}: {states}")
            if states.get("trigger_retraining") == "success":  # the drift Asset event was emitted
                retraining.append(m)
        deadline = time.time() + 120  # the scheduler turns the asset event into a training run
        while any(len(stack.runs(f"mloops_train_{m}")) <= trained_before[m] for m in retraining):
            if time.time() > deadline:
                print("  no drift-triggered training run appeared within 120s", file=sys.stderr)
                break
            time.sleep(1)
        for m in MODELS:
            runs = stack.wait_for_runs(f"mloops_train_{m}", count=trained_before[m], timeout=TIMEOUT)
            for run in runs[trained_before[m] :]:
                print(f"  drift-triggered {run['run_id']}: {run['state']}")
        loop = time.time() - t0
        print(f"  (monitoring run -> retrained champion: {loop:.0f}s)")
    print(f"\nAirflow phase took {time.time() - started:.0f}s")

    summary.main(MODELS)
    states = {m: summary.model_summary(m, settings) for m in MODELS}
    problems = [f"{m}: no champion" for m, s in states.items() if not s["aliases"].get("champion")]
    if not any(s["quarantined"] for s in states.values()):
        problems.append("the simulated bad batch was not quarantined")
    if "churn" in states and not states["churn"]["retrains"]:
        problems.append("churn's drift did not trigger a retrain")
    # the Models page reads the snapshot summary.main just refreshed: check what it will show
    from mloops.fleet import collect, snapshot

    problems += snapshot.demo_shown({m: collect.read_model(settings, m) for m in MODELS})
    if problems:
        print("Demo did not reach its expected end state: " + "; ".join(problems), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
