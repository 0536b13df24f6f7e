"""Fleet cost: what one model-night costs through real task execution, and what a task pays to start.

**Model-night.** The wide model at 100k rows, steady state (a champion trained the night before, untimed):
the training DAG (check_params, validate, train, test, register, approve, promote), the scoring DAG
(validate, score) and the monitoring DAG (drift of the window ending that night, trigger) each run with
``dag.test()`` for the same interval, each in a fresh process, on a SQLite Airflow DB and an embedded
MLflow store. Measured: CPU seconds (user + system of the process, ``wait4``) and wall time, summed over
the three. Baseline: :func:`bench.plain_pipeline.night_child`, the same computation (validate, train,
test, register, score, drift) as one plain process. Both sides run scikit-learn's OpenMP code on one
thread (``OMP_NUM_THREADS=1``), as mloops' executors run tasks (the local stack, the compose workers).
Airflow's own share is measured beside it: the same three DAGs as ``EmptyOperator`` chains (same task
counts and schedules) through ``dag.test()`` in fresh processes, the floor any DAG-based night pays.

**Start-up.** ``dag.test()`` runs a DAG's tasks in one process; the LocalExecutor starts a process per
task, which imports the Task SDK's runner, parses the task's DAG file and imports what the operator's
``execute`` needs before the stage code starts. :func:`startup_child` does exactly that in a fresh
interpreter for every task of the model-night (the stage module its operator imports), and for a bare
``EmptyOperator`` task in a one-DAG file: process start to the stage code's first line, both sides.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import importlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import attribution
from bench.attribution import Sampler
from bench.child import WHOLE_CHILD, Probe
from bench.harness import REPO, Run, Workspace, median, paired_ratio
from mloops.warm import STAGE_IMPORTS

NIGHT = dt.date(2026, 1, 10)
WARM_UP = NIGHT - dt.timedelta(days=1)
#: A night scored before the measured one, outside its 3-day monitoring window: the scoring use's GX
#: suite and checkpoint (created once per model, on its first scoring night) exist, as every later night.
PRIMED = NIGHT - dt.timedelta(days=5)
#: The DAGs of one model-night: (kind, DAG file) in the order the night runs them.
DAGS = (("train", "mloops_training.py"), ("score", "mloops_scoring.py"), ("monitor", "mloops_monitoring.py"))
#: Task -> the ``mloops.stages`` module its operator imports in ``execute`` (None: no stage module).
STAGE_OF = {
    "check_params": None,
    "validate_batch": "validate",
    "train_model": "train",
    "test_model": "test",
    "register_model": "registry",
    "approve_promotion": None,
    "promote_model": "registry",
    "score_batch": "score",
    "join_labels": "labels",
    "check_drift": "drift",
    "trigger_retraining": None,
}
EMPTY_DAG = """import datetime as dt

from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG

with DAG(dag_id="bare", schedule=None, start_date=dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)) as dag:
    EmptyOperator(task_id="noop")
"""


FLOOR_DAG = """import datetime as dt

from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG, chain

with DAG(
    dag_id={dag_id!r},
    schedule={cron!r},
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc),
    catchup=False,
) as dag:
    chain(*(EmptyOperator(task_id=name) for name in {tasks!r}))
"""


def _hour(cron: str) -> int:
    return int(cron.split()[1])


def prep_child(params: dict[str, Any], probe: Any) -> dict[str, Any]:
    """Partitions (warm-up night and the measured night), the config, the plan, the warm-up night."""
    import json

    from bench import datasets, plain_pipeline
    from bench.harness import examples

    template = params["source_template"]
    for day in (PRIMED, WARM_UP, NIGHT):
        frame, names = datasets.wide_frame(params["rows"], day)
        examples().write_partition(frame, template.format(ds=day.isoformat()))
    datasets.write_yaml(
        Path(params["models_dir"]) / f"{datasets.WIDE_MODEL}.yaml", datasets.wide_config(template, names)
    )
    from mloops.config_files import find_model_config
    from mloops.settings import get_settings

    settings = get_settings()
    config = find_model_config(datasets.WIDE_MODEL, settings.models_dir)
    plan = plain_pipeline.plan_of(config, settings)
    Path(params["plan"]).write_text(json.dumps(plan, default=str))
    plain_pipeline.fit_champion(plan, template.format(ds=WARM_UP.isoformat()), params["plain_champion"])
    hours = {
        "train": _hour(config.schedule.cron),
        "score": _hour(config.schedule.scoring_cron),
        "monitor": _hour(config.monitoring.cron),
    }
    states = _dag_test(f"mloops_train_{config.name}", "mloops_training.py", WARM_UP, hours["train"])["states"]
    if states.get("promote_model") != "success":
        raise RuntimeError(f"warm-up night did not promote a champion: {states}")
    primed = _dag_test(f"mloops_score_{config.name}", "mloops_scoring.py", PRIMED, hours["score"])["states"]
    if primed.get("score_batch") != "success":
        raise RuntimeError(f"priming scoring night did not score: {primed}")
    return {"hours": hours, "model": config.name, "features": len(config.features)}


def _dag_test(dag_id: str, dag_file: str, day: dt.date, hour: int) -> dict[str, Any]:
    """``dag.test()`` of the interval starting on ``day`` (run after the next night at ``hour``)."""
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(REPO / "dags" / dag_file) if not Path(dag_file).is_absolute() else dag_file)
    if bag.import_errors:
        raise RuntimeError(f"import errors: {bag.import_errors}")
    run_after = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(hour), tzinfo=dt.UTC)
    run = bag.dags[dag_id].test(logical_date=run_after)
    tis = run.get_task_instances()
    return {
        "states": {ti.task_id: str(ti.state) for ti in tis},
        "task_s": {
            ti.task_id: (ti.end_date - ti.start_date).total_seconds()
            for ti in tis
            if ti.start_date and ti.end_date
        },
    }


def dag_child(params: dict[str, Any], probe: Any) -> dict[str, Any]:
    """One DAG of the night through ``dag.test()`` in this fresh process; every task must end well."""
    with probe.timed("test"):
        outcome = _dag_test(
            params["dag_id"], params["dag_file"], dt.date.fromisoformat(params["day"]), params["hour"]
        )
    bad = {t: s for t, s in outcome["states"].items() if s not in ("success", "skipped")}
    if bad:
        raise RuntimeError(f"{params['dag_id']}: tasks did not succeed: {bad}")
    return outcome


def _execution_api_up() -> None:
    """Build and initialise ``dag.test``'s in-process Execution API, as a deployment's API server is
    built once when it starts, not per task.

    Left to each ``dag.test`` process, the first request makes cadwyn generate the API's versioned
    routers (``_cadwyn_initialize``, what its ``__call__`` does on first use): about 5 CPU s per process,
    most of an EmptyOperator DAG's whole ``dag.test``. Only the app is built here: its transport starts
    an event-loop thread, which a forked child would not have, so each child makes its own.
    """
    from airflow.sdk.execution_time.supervisor import in_process_api_server

    app = in_process_api_server().app
    if not getattr(app, "_cadwyn_initialized", True):
        app._cadwyn_initialize()


def warm_nights_child(params: dict[str, Any], probe: Any) -> dict[str, Any]:
    """The night as the local stack runs it: a parent holding Airflow and every stage's libraries
    (:mod:`mloops.warm`, imported once per scheduler for the whole fleet) and the Execution API (built
    once per API server: :func:`_execution_api_up`) forks one child per DAG, which runs ``dag.test()``;
    each child's CPU seconds come from ``wait4``, so what the parent did once is not in them."""
    import resource

    import airflow.sdk.execution_time.task_runner  # noqa: F401
    from airflow.dag_processing.dagbag import DagBag  # noqa: F401

    from mloops.warm import warm

    started = time.perf_counter()
    warm()
    warm_s = time.perf_counter() - started
    warm_cpu = resource.getrusage(resource.RUSAGE_SELF)
    _execution_api_up()
    api_cpu = resource.getrusage(resource.RUSAGE_SELF)
    out: dict[str, Any] = {
        "warm_s": warm_s,
        "warm_cpu_s": warm_cpu.ru_utime + warm_cpu.ru_stime,
        "api_up_cpu_s": api_cpu.ru_utime + api_cpu.ru_stime - warm_cpu.ru_utime - warm_cpu.ru_stime,
        "dags": {},
    }
    for job in params["dags"]:
        read_end, write_end = os.pipe()
        started = time.perf_counter()
        pid = os.fork()
        if pid == 0:  # one DAG of the night, as a task process forked from the warm parent
            os.close(read_end)
            code = 0
            try:
                with Sampler() if params.get("attribute") else contextlib.nullcontext() as sampler:
                    outcome = _dag_test(
                        job["dag_id"], job["dag_file"], dt.date.fromisoformat(job["day"]), job["hour"]
                    )
                if sampler:
                    outcome["attribution"] = sampler.result()
                os.write(write_end, json.dumps(outcome).encode())
            except BaseException:  # noqa: BLE001 - reported to the parent by the exit code
                import traceback

                traceback.print_exc()
                code = 1
            finally:
                os._exit(code)
        os.close(write_end)
        with os.fdopen(read_end, "rb") as pipe:
            reply = pipe.read()
        _, status, usage = os.wait4(pid, 0)
        if status != 0 or not reply:
            raise RuntimeError(f"{job['dag_id']}: the forked dag.test failed (status {status})")
        outcome = json.loads(reply)
        bad = {t: st for t, st in outcome["states"].items() if st not in ("success", "skipped")}
        if bad:
            raise RuntimeError(f"{job['dag_id']}: tasks did not succeed: {bad}")
        out["dags"][job["kind"]] = {
            **outcome,
            "cpu_s": usage.ru_utime + usage.ru_stime,
            "wall_s": time.perf_counter() - started,
        }
    return out


def startup_child(params: dict[str, Any], probe: Any) -> dict[str, Any]:
    """What a task process does before its stage code: the runner, its DAG file, the stage's imports."""
    with probe.timed("runner"):
        import airflow.sdk.execution_time.task_runner  # noqa: F401
        from airflow.dag_processing.dagbag import DagBag
    with probe.timed("parse"):
        bag = DagBag(dag_folder=params["dag_file"])
        task = bag.dags[params["dag_id"]].get_task(params["task_id"])
    with probe.timed("stage_imports"):  # the stage module and the libraries its code imports lazily
        for module in STAGE_IMPORTS.get(params["stage"] or "", ()):
            importlib.import_module(module)
    heavy = ("great_expectations", "evidently", "skops", "mlflow", "sklearn", "pandas")
    return {"operator": type(task).__name__, "loaded": sorted(m for m in heavy if m in sys.modules)}


def _startup_in_fork(target: dict[str, Any]) -> dict[str, Any]:
    """In a forked child: what the task runner does before the stage code (parse, stage imports)."""
    started = time.perf_counter()
    outcome = startup_child(target, Probe())
    return {**outcome, "seconds": time.perf_counter() - started}


def forked_startup_child(params: dict[str, Any], probe: Any) -> dict[str, Any]:
    """An executor worker (Airflow and the Task SDK's runner imported, as the LocalExecutor's worker
    holds them), cold or warmed by :mod:`mloops.warm` as the local stack's scheduler is; it forks one
    child per task (the supervisor's bare ``os.fork``) and times fork to stage code start in each."""
    import airflow.executors.local_executor  # noqa: F401
    import airflow.sdk.execution_time.task_runner  # noqa: F401

    warmed_s = 0.0
    if params["warm"]:
        from mloops.warm import warm

        started = time.perf_counter()
        warm()
        warmed_s = time.perf_counter() - started
    probe.mark_base()
    seconds: dict[str, list[float]] = {}
    loaded: dict[str, list[str]] = {}
    for _ in range(params["repeats"]):
        for target in params["targets"]:
            read_end, write_end = os.pipe()
            started = time.perf_counter()
            pid = os.fork()
            if pid == 0:  # the task process
                os.close(read_end)
                try:
                    payload = json.dumps(_startup_in_fork(target)).encode()
                    os.write(write_end, payload)
                finally:
                    os._exit(0)
            os.close(write_end)
            with os.fdopen(read_end, "rb") as pipe:
                reply = json.loads(pipe.read() or b"{}")
            os.waitpid(pid, 0)
            elapsed = time.perf_counter() - started
            seconds.setdefault(target["key"], []).append(elapsed)
            loaded[target["key"]] = reply.get("loaded", [])
    return {"seconds": seconds, "loaded": loaded, "warm_s": warmed_s}


def _forked_startup(
    ws: Workspace,
    env: dict[str, str],
    targets: dict[tuple[str, str | None], dict[str, Any]],
    empty: dict[str, Any],
    repeats: int,
) -> list[dict[str, Any]]:
    """Start-up as the LocalExecutor pays it (a fork of its worker), from a cold and a warm worker."""
    specs = [
        {"key": "empty", **{k: v for k, v in empty.items() if k != "tasks"}},
        *({"key": t["task_id"], **{k: v for k, v in t.items() if k != "tasks"}} for t in targets.values()),
    ]
    # The warm worker's forks are the budget's (cheap: 50 ms each); each fork of a cold worker imports
    # its stage's libraries again (2-4 s), reported beside them from one round.
    rounds = {"warm": max(repeats, 3), "cold": 1}
    by_variant = {
        variant: ws.run(
            "bench.fleet:forked_startup_child",
            {"warm": variant == "warm", "targets": specs, "repeats": rounds[variant]},
            env=env,
            label=f"forked start-up, {variant} worker",
        )
        for variant in ("cold", "warm")
    }
    cases = []
    for variant, run in by_variant.items():
        seconds = run.result["seconds"]
        floor = median(seconds["empty"])
        for target in targets.values():
            key = target["task_id"]
            cases.append(
                {
                    "name": f"forked start-up ({variant} worker): {', '.join(target['tasks'])}",
                    "size": None,
                    "stage": f"startup_forked_{variant}",
                    "metric": "fork to stage code start (s) vs a bare EmptyOperator task forked from the "
                    "same worker; budget on the difference",
                    "subject": {"repeats": rounds[variant], "time_s": round(median(seconds[key]), 3)},
                    "baseline": {"repeats": rounds[variant], "time_s": round(floor, 3)},
                    "ratio": round(median(seconds[key]) / floor, 3) if floor > 0 else None,
                    "excess_s": round(median(seconds[key]) - floor, 3),
                    "memory_ratio": None,
                    "extra": {
                        "libraries_loaded": run.result["loaded"][key],
                        "worker_warm_up_s": round(run.result["warm_s"], 2),
                        "worker_peak_rss_mb": round(run.peak_rss / 2**20, 1),
                    },
                }
            )
    return cases


def _migrate(env: dict[str, str]) -> None:
    subprocess.run(
        [str(Path(sys.executable).parent / "airflow"), "db", "migrate"],
        env=env,
        check=True,
        capture_output=True,
        timeout=600,
    )


def run(ws: Workspace, *, rows: int, repeats: int) -> dict[str, Any]:

    root = ws.path("fleet")
    template = str(root / "source" / "dt={ds}" / "part.parquet")
    state0 = root / "state0"

    def env(state: Path, dags: Path = REPO / "dags") -> dict[str, str]:
        return ws.env(
            MLOOPS_HOME=str(state / "mloops"),
            MLOOPS_MODELS_DIR=str(root / "models"),
            MLOOPS_SOURCE_ROOTS=str(root / "source"),
            AIRFLOW_HOME=str(state / "airflow"),
            AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{state / 'airflow' / 'airflow.db'}",
            AIRFLOW__CORE__DAGS_FOLDER=str(dags),
        )

    (state0 / "airflow").mkdir(parents=True, exist_ok=True)
    _migrate(env(state0))
    files = {"plan": str(root / "plan.json"), "champion": str(root / "plain-champion.skops")}
    prep = ws.run(
        "bench.fleet:prep_child",
        {
            "rows": rows,
            "source_template": template,
            "models_dir": str(root / "models"),
            "plan": files["plan"],
            "plain_champion": files["champion"],
        },
        env=env(state0),
        label="fleet prep and warm-up night",
        timeout=1800,
    ).result
    model = prep["model"]
    nights: list[dict[str, Run]] = []
    plain: list[Run] = []
    for repeat in range(repeats):
        for variant in ("plain", "mloops") if repeat % 2 == 0 else ("mloops", "plain"):
            if variant == "plain":
                plain.append(
                    ws.run(
                        "bench.plain_pipeline:night_child",
                        {
                            **files,
                            "data": template.format(ds=NIGHT.isoformat()),
                            "out_dir": str(root / f"plain-{repeat}"),
                        },
                        env=env(root / "unused"),
                        label=f"plain night #{repeat}",
                        timeout=1800,
                        attribute=WHOLE_CHILD if repeat == 0 else None,
                    )
                )
                continue
            state = root / f"state-{repeat}"
            shutil.copytree(state0, state)
            dags = {kind: (f"mloops_{kind}_{model}", dag_file) for kind, dag_file in DAGS}
            nights.append(
                _dag_test_night(ws, env(state), dags, prep["hours"], f"night #{repeat}", timeout=1800)
            )
            shutil.rmtree(state, ignore_errors=True)
    dags = {kind: (f"mloops_{kind}_{model}", dag_file) for kind, dag_file in DAGS}
    warm_nights = _warm_nights(ws, root, state0, env, dags, prep["hours"], repeats, "night", attribute=True)
    floors = _floor_nights(ws, root, state0, env, nights[-1], prep["hours"], repeats)
    floor_dir = root / "floor-dags"
    warm_floors = _warm_nights(
        ws,
        root,
        state0,
        lambda state: env(state, floor_dir),
        _floor_dags(floor_dir),
        prep["hours"],
        repeats,
        "floor night",
    )
    startup = _startup(ws, env(state0), model, nights[-1], root, repeats)
    return {
        "title": "Fleet cost of a model-night",
        "subject": f"dag.test() of mloops_train/score/monitor_{model}, one interval, a fresh process per DAG "
        f"({rows:,} rows, {prep['features']} features, a champion from the night before)",
        "baseline": "bench/plain_pipeline.py night_child: validate, train, test, register, score, drift "
        "in one plain process",
        "cases": [
            _night_case(rows, nights, plain, floors),
            _warm_night_case(rows, warm_nights, plain, warm_floors),
            *startup,
        ],
    }


def _dag_test_night(
    ws: Workspace,
    env: dict[str, str],
    dags: dict[str, tuple[str, str]],
    hours: dict[str, int],
    label: str,
    timeout: float = 900.0,
) -> dict[str, Run]:
    """One night: each kind's DAG (kind -> DAG id, DAG file) through ``dag.test()`` in a fresh process."""
    return {
        kind: ws.run(
            "bench.fleet:dag_child",
            {"dag_id": dag_id, "dag_file": dag_file, "day": NIGHT.isoformat(), "hour": hours[kind]},
            env=env,
            label=f"{label} {kind}",
            timeout=timeout,
        )
        for kind, (dag_id, dag_file) in dags.items()
    }


def _floor_dags(folder: Path) -> dict[str, tuple[str, str]]:
    """Kind -> (DAG id, DAG file) of the floor DAGs :func:`_floor_nights` writes in ``folder``."""
    return {kind: (f"floor_{kind}", str(folder / f"floor_{kind}.py")) for kind, _dag_file in DAGS}


def _floor_nights(
    ws: Workspace,
    root: Path,
    state0: Path,
    env: Any,
    night: dict[str, Run],
    hours: dict[str, int],
    repeats: int,
) -> list[dict[str, Run]]:
    """Airflow's floor of the night: the three DAGs' task ids as ``EmptyOperator`` chains, each through
    ``dag.test()`` in a fresh process on a copy of the same Airflow DB."""
    folder = root / "floor-dags"
    folder.mkdir(exist_ok=True)
    for kind, _dag_file in DAGS:
        tasks = sorted(night[kind].result["states"])
        (folder / f"floor_{kind}.py").write_text(
            FLOOR_DAG.format(dag_id=f"floor_{kind}", cron=f"0 {hours[kind]} * * *", tasks=tasks)
        )
    floors = []
    for repeat in range(repeats):
        state = root / f"floor-state-{repeat}"
        shutil.copytree(state0, state)
        floors.append(
            _dag_test_night(ws, env(state, folder), _floor_dags(folder), hours, f"floor night #{repeat}")
        )
        shutil.rmtree(state, ignore_errors=True)
    return floors


def _warm_nights(
    ws: Workspace,
    root: Path,
    state0: Path,
    env: Callable[[Path], dict[str, str]],
    dags: dict[str, tuple[str, str]],
    hours: dict[str, int],
    repeats: int,
    label: str,
    attribute: bool = False,
) -> list[Run]:
    """Nights of ``dags`` (kind -> DAG id, DAG file) forked from a warm parent (:func:`warm_nights_child`),
    each on a fresh copy of the Airflow DB; the first one sampled by library if ``attribute``."""
    runs = []
    for repeat in range(repeats):
        state = root / f"warm-{label.replace(' ', '-')}-state-{repeat}"
        shutil.copytree(state0, state)
        jobs = [
            {
                "kind": kind,
                "dag_id": dag_id,
                "dag_file": dag_file,
                "day": NIGHT.isoformat(),
                "hour": hours[kind],
            }
            for kind, (dag_id, dag_file) in dags.items()
        ]
        runs.append(
            ws.run(
                "bench.fleet:warm_nights_child",
                {"dags": jobs, "attribute": attribute and repeat == 0},
                env=env(state),
                label=f"{label} forked from a warm parent #{repeat}",
                timeout=1800,
            )
        )
        shutil.rmtree(state, ignore_errors=True)
    return runs


def _cpu_against_plain(cpu_s: list[float], wall_s: list[float], plain: list[Run]) -> dict[str, Any]:
    """The subject's CPU and wall seconds (one entry per repeat) against the plain night's, paired."""
    return {
        "subject": {
            "repeats": len(cpu_s),
            "time_s": round(median(cpu_s), 3),
            "cpu_s": round(median(cpu_s), 3),
            "process_wall_s": round(median(wall_s), 3),
        },
        "baseline": {
            "repeats": len(plain),
            "time_s": round(median(r.cpu_s for r in plain), 3),
            "cpu_s": round(median(r.cpu_s for r in plain), 3),
            "process_wall_s": round(median(r.wall_s for r in plain), 3),
        },
        "ratio": round(paired_ratio(cpu_s, [r.cpu_s for r in plain]), 3),
        "wall_ratio": round(paired_ratio(wall_s, [r.wall_s for r in plain]), 3),
        "memory_ratio": None,
    }


def _warm_night_case(rows: int, warm: list[Run], plain: list[Run], floors: list[Run]) -> dict[str, Any]:
    """The night's three DAGs forked from a warm parent: the children's CPU seconds only; Airflow's
    floor forked the same way beside it."""
    cpu_s = [sum(d["cpu_s"] for d in r.result["dags"].values()) for r in warm]
    floor_s = median(sum(d["cpu_s"] for d in r.result["dags"].values()) for r in floors)
    plain_s = median(r.cpu_s for r in plain)
    wall_s = [sum(d["wall_s"] for d in r.result["dags"].values()) for r in warm]
    last = warm[-1].result["dags"]
    sampled = warm[0].result["dags"]
    return {
        "name": f"{rows:,} rows: model-night CPU seconds, forked from a warm parent (mloops.warm)",
        "size": rows,
        "stage": "night_warm",
        "metric": "CPU seconds (user+sys) of the three DAG processes forked from a parent holding the "
        "stage libraries (as the local scheduler's tasks are) vs the plain night process",
        **_cpu_against_plain(cpu_s, wall_s, plain),
        # Where the first repeat's CPU time went, summed over its three DAG processes (main threads).
        "attribution": attribution.merge(*(d.get("attribution") for d in sampled.values())),
        "baseline_attribution": attribution.first(plain),
        "extra": {
            "attributed_process_cpu_s": round(sum(d["cpu_s"] for d in sampled.values()), 3),
            "airflow_floor_cpu_s": round(floor_s, 3),
            "airflow_floor_per_dag_cpu_s": {
                k: round(v["cpu_s"], 3) for k, v in floors[-1].result["dags"].items()
            },
            "mloops_above_floor_cpu_s": round(median(cpu_s) - floor_s, 3),
            "ratio_above_floor": round((median(cpu_s) - floor_s) / plain_s, 3) if plain_s > 0 else None,
            # Once per API server (its first request), not per model-night: _execution_api_up.
            "parent_api_up_cpu_s": round(median(r.result["api_up_cpu_s"] for r in warm), 2),
            "per_dag_cpu_s": {k: round(v["cpu_s"], 3) for k, v in last.items()},
            "per_dag_wall_s": {k: round(v["wall_s"], 3) for k, v in last.items()},
            # Paid once per scheduler (or Celery worker) for the whole fleet, not per model-night.
            "parent_warm_up_s": round(median(r.result["warm_s"] for r in warm), 2),
            "parent_warm_up_cpu_s": round(median(r.result["warm_cpu_s"] for r in warm), 2),
            "task_wall_s": round(sum(sum(v["task_s"].values()) for v in last.values()), 3),
            "task_s": {k: {t: round(x, 2) for t, x in v["task_s"].items()} for k, v in last.items()},
        },
    }


def _night_case(
    rows: int, nights: list[dict[str, Run]], plain: list[Run], floors: list[dict[str, Run]]
) -> dict[str, Any]:
    cpu_s = [sum(r.cpu_s for r in n.values()) for n in nights]
    wall_s = [sum(r.wall_s for r in n.values()) for n in nights]
    floor_cpu = median(sum(r.cpu_s for r in n.values()) for n in floors)
    return {
        "name": f"{rows:,} rows: model-night CPU seconds",
        "size": rows,
        "stage": "night",
        "metric": "CPU seconds (user+sys) of the three DAG processes vs the plain night process",
        **_cpu_against_plain(cpu_s, wall_s, plain),
        "extra": {
            # Airflow's own share: the same DAG shapes of EmptyOperators through dag.test().
            "airflow_floor_cpu_s": round(floor_cpu, 3),
            "airflow_floor_per_dag_cpu_s": {
                k: round(median(n[k].cpu_s for n in floors), 3) for k in floors[-1]
            },
            "mloops_above_floor_cpu_s": round(median(cpu_s) - floor_cpu, 3),
            "ratio_above_floor": round((median(cpu_s) - floor_cpu) / median(r.cpu_s for r in plain), 3),
            "per_dag_cpu_s": {k: round(median(n[k].cpu_s for n in nights), 3) for k in nights[-1]},
            "per_dag_wall_s": {k: round(median(n[k].wall_s for n in nights), 3) for k in nights[-1]},
            "task_states": {k: r.result["states"] for k, r in nights[-1].items()},
            # Task start to end as Airflow recorded it: the processes' wall minus dag.test's own set-up
            # (parsing and storing the DAGs folder, creating the run), which a scheduler does elsewhere.
            "task_wall_s": round(
                median(sum(sum(r.result["task_s"].values()) for r in n.values()) for n in nights), 3
            ),
            "task_s": {
                k: {t: round(v, 2) for t, v in r.result["task_s"].items()} for k, r in nights[-1].items()
            },
        },
    }


def _startup(
    ws: Workspace, env: dict[str, str], model: str, night: dict[str, Run], root: Path, repeats: int
) -> list[dict[str, Any]]:
    """Per distinct (DAG file, stage module) of the night's tasks, vs the bare EmptyOperator task (ABBA)."""
    bare = root / "bare"
    bare.mkdir(exist_ok=True)
    (bare / "bare_dag.py").write_text(EMPTY_DAG)
    targets: dict[tuple[str, str | None], dict[str, Any]] = {}
    for kind, dag_file in DAGS:
        for task_id in night[kind].result["states"]:
            stage = STAGE_OF.get(task_id)
            entry = targets.setdefault(
                (dag_file, stage),
                {
                    "dag_id": f"mloops_{kind}_{model}",
                    "task_id": task_id,
                    "dag_file": str(REPO / "dags" / dag_file),
                    "stage": stage,
                    "tasks": [],
                },
            )
            entry["tasks"].append(f"{kind}.{task_id}")
    empty = {"dag_id": "bare", "task_id": "noop", "dag_file": str(bare / "bare_dag.py"), "stage": None}
    cases = []
    tasks_total, excess_total = 0, 0.0
    for (_dag_file, stage), target in targets.items():
        runs: dict[str, list[Run]] = {"task": [], "empty": []}
        for repeat in range(repeats):
            for variant in ("empty", "task") if repeat % 2 == 0 else ("task", "empty"):
                spec = {k: v for k, v in (target if variant == "task" else empty).items() if k != "tasks"}
                runs[variant].append(
                    ws.run(
                        "bench.fleet:startup_child",
                        spec,
                        env=env,
                        label=f"startup {variant} {target['task_id']} #{repeat}",
                    )
                )
        subject, floor = runs["task"], runs["empty"]
        excess = median(s.wall_s - f.wall_s for s, f in zip(subject, floor, strict=True))
        tasks_total += len(target["tasks"])
        excess_total += excess * len(target["tasks"])
        cases.append(
            {
                "name": f"start-up: {', '.join(target['tasks'])}",
                "size": None,
                "stage": "startup",
                "metric": "process start to stage code start (s) vs a bare EmptyOperator task; "
                "budget on the difference",
                "subject": {
                    "repeats": len(subject),
                    "time_s": round(median(r.wall_s for r in subject), 3),
                    "cpu_s": round(median(r.cpu_s for r in subject), 3),
                    "parts_s": {
                        p: round(median(r.time(p) for r in subject), 3)
                        for p in ("runner", "parse", "stage_imports")
                    },
                },
                "baseline": {
                    "repeats": len(floor),
                    "time_s": round(median(r.wall_s for r in floor), 3),
                    "cpu_s": round(median(r.cpu_s for r in floor), 3),
                },
                "ratio": round(paired_ratio([r.wall_s for r in subject], [r.wall_s for r in floor]), 3),
                "excess_s": round(excess, 3),
                "memory_ratio": None,
                "extra": {"stage_module": stage, "libraries_loaded": subject[-1].result["loaded"]},
            }
        )
    cases.extend(_forked_startup(ws, env, targets, empty, repeats))
    cases.append(
        {
            "name": f"start-up over the night's {tasks_total} tasks",
            "size": None,
            "stage": "startup_total",
            "metric": "sum over the tasks of (task start-up - bare EmptyOperator start-up) (s)",
            "subject": {"repeats": repeats, "time_s": round(excess_total, 3)},
            "baseline": {"repeats": repeats, "time_s": 0.0},
            "ratio": None,
            "memory_ratio": None,
        }
    )
    return cases
