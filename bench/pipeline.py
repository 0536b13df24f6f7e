"""Benchmark 4: the nightly pipeline per stage, against the same computation as one plain script.

Subject: ``mloops.stages`` on a wide model (churn + 22 derived features, a files-source Parquet
partition, a 1-day window), each stage in its own fresh process like an Airflow task, with an embedded
SQLite MLflow store in a tmp ``MLOOPS_HOME``. Stage results travel between processes as JSON files,
as they do through XCom. Baseline: :mod:`bench.plain_pipeline`.

Steady state, not a first run: before the measured runs, an untimed warm-up trains, registers and
promotes a champion on the previous day's small partition, so ``test_model`` compares against a
champion as it does every night; the plain script gets its own champion the same way. Every repeat
starts from a fresh copy of that warm-up state.

Adding a stage benchmark is one function and one entry in :data:`STAGES`.
"""

from __future__ import annotations

import datetime as dt
import importlib
import json
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.harness import MB, Run, Workspace, cpu, interleaved, median, paired_ratio, summary, wall

FIRST_DAY = dt.date(2026, 1, 10)
WARM_UP_DAY = FIRST_DAY - dt.timedelta(days=1)
NOT_IMPLEMENTED = "not implemented yet"
DATA_IMPORTS = ("pandas", "pyarrow.parquet")
MODEL_IMPORTS = ("sklearn.ensemble", "sklearn.compose", "mlflow", "mlflow.sklearn", "skops.io")


@dataclass
class StageContext:
    """What a stage benchmark function gets: the loaded config, the day, settings, earlier results."""

    config: Any
    day: dt.date
    settings: Any
    results: Mapping[str, Mapping[str, Any]]
    stages: Any


@dataclass(frozen=True)
class StageBench:
    """One nightly stage, run in its own process.

    :param run: calls the stage; ``None`` marks a placeholder with no benchmark yet.
    :param imports: heavy modules the stage's task process loads; imported (and timed) before the
        RSS baseline, so the stage's memory figure is its working set rather than library code.
    :param reads: which data it reads, for the memory-vs-data ratio: ``partition``, ``holdout`` or None.
    :param stage_function: the ``mloops.stages`` function a placeholder is waiting for.
    """

    run: Callable[[StageContext], dict[str, Any]] | None
    imports: tuple[str, ...] = ()
    reads: str | None = None
    stage_function: str | None = None
    notes: tuple[str, ...] = field(default=())


def _validate(ctx: StageContext) -> dict[str, Any]:
    return ctx.stages.validate_batch(ctx.config, ctx.day, ctx.settings)


def _train(ctx: StageContext) -> dict[str, Any]:
    return ctx.stages.train_model(ctx.config, ctx.day, ctx.settings)


def _test(ctx: StageContext) -> dict[str, Any]:
    return ctx.stages.test_model(ctx.config, ctx.day, ctx.settings, ctx.results["train"])


def _register(ctx: StageContext) -> dict[str, Any]:
    return ctx.stages.register_model(
        ctx.config, ctx.day, ctx.settings, ctx.results["train"], ctx.results["test"]
    )


STAGES: dict[str, StageBench] = {
    "validate": StageBench(_validate, (*DATA_IMPORTS, "great_expectations"), "partition"),
    "train": StageBench(_train, (*DATA_IMPORTS, *MODEL_IMPORTS), "partition"),
    "test": StageBench(_test, (*DATA_IMPORTS, *MODEL_IMPORTS), "holdout"),
    "register": StageBench(_register, ("mlflow",), None),
    "score": StageBench(None, stage_function="score_batch"),
    "drift": StageBench(None, stage_function="check_drift"),
}


# ------------------------------------------------------------------------------------------ children


def day_of(index: int) -> dt.date:
    """Each data size gets its own partition date, so one config and one warm-up serve them all."""
    return FIRST_DAY + dt.timedelta(days=index)


def prep_child(params: dict[str, Any], probe: Any) -> dict[str, Any]:
    """Write the partitions, the config and the plain script's plan; warm up both champions (untimed)."""
    import pandas as pd

    from bench import datasets, plain_pipeline
    from mloops import quality, stages, training
    from mloops.config import load_model_config
    from mloops.data.generator import write_partition
    from mloops.settings import get_settings

    template = params["source_template"]
    names: list[str] = []
    days = [(WARM_UP_DAY, params["warm_up_rows"])] + [
        (day_of(i), rows) for i, rows in enumerate(params["sizes"])
    ]
    for day, rows in days:
        frame, names = datasets.wide_frame(rows, day)
        write_partition(frame, template.format(ds=day.isoformat()))
        del frame
    config_path = datasets.write_yaml(
        Path(params["models_dir"]) / f"{datasets.WIDE_MODEL}.yaml", datasets.wide_config(template, names)
    )
    config = load_model_config(config_path)

    data_bytes = {}
    for index, rows in enumerate(params["sizes"]):
        partition = pd.read_parquet(template.format(ds=day_of(index).isoformat()))
        holdout = partition[training.holdout_mask(partition, config)]
        data_bytes[str(rows)] = {
            "partition": int(partition.memory_usage(deep=True).sum()),
            "holdout": int(holdout.memory_usage(deep=True).sum()),
        }
        del partition, holdout
    spec = config.training.estimator
    settings = get_settings()
    plan = {
        "numeric": config.numeric_features,
        "categorical": config.categorical_features,
        "target": config.target,
        "id_column": config.id_column,
        "holdout_fraction": config.training.holdout_fraction,
        "estimator": spec.class_path,
        "estimator_params": {**spec.params, "random_state": config.training.random_state},
        "expectations": quality.model_expectations(config, settings.expectations_dir),
        "primary_metric": config.evaluation.primary_metric,
        "thresholds": dict(config.evaluation.thresholds),
        "champion_tolerance": config.evaluation.champion_tolerance,
        "slices": [s.model_dump(mode="json") for s in config.evaluation.slices],
        "smoke_rows": config.evaluation.smoke_rows,
        "trusted_types": training.trusted_types(spec.class_path),
    }
    Path(params["plan"]).write_text(json.dumps(plan, default=str))

    stages.validate_batch(config, WARM_UP_DAY, settings)
    trained = stages.train_model(config, WARM_UP_DAY, settings)
    tested = stages.test_model(config, WARM_UP_DAY, settings, trained)
    registered = stages.register_model(config, WARM_UP_DAY, settings, trained, tested)
    promoted = stages.promote_model(config, WARM_UP_DAY, settings, registered)
    if promoted["action"] != "promote":
        raise RuntimeError(f"warm-up did not promote a champion: {promoted}")
    plain_pipeline.fit_champion(plan, template.format(ds=WARM_UP_DAY.isoformat()), params["plain_champion"])
    return {
        "features": len(config.features),
        "expectations": len(plan["expectations"]),
        "data_bytes": data_bytes,
        "stage_functions": {
            name: hasattr(stages, b.stage_function) for name, b in STAGES.items() if b.stage_function
        },
    }


def stage_child(params: dict[str, Any], probe: Any) -> dict[str, Any]:
    """One stage in a fresh process: its imports (timed), then the call (timed) with earlier results."""
    bench = STAGES[params["stage"]]
    assert bench.run is not None
    with probe.timed("import"):
        for module in bench.imports:
            importlib.import_module(module)
        from mloops import stages
        from mloops.config import find_model_config
        from mloops.settings import get_settings
    results_dir = Path(params["results_dir"])
    earlier = {p.stem: json.loads(p.read_text()) for p in results_dir.glob("*.json")}
    probe.mark_base()
    with probe.timed("call"):
        settings = get_settings()
        config = find_model_config(params["model"], settings.models_dir)
        result = bench.run(
            StageContext(config, dt.date.fromisoformat(params["day"]), settings, earlier, stages)
        )
    (results_dir / f"{params['stage']}.json").write_text(json.dumps(result, default=str))
    return {"result": result}


def plain_child(params: dict[str, Any], probe: Any) -> dict[str, Any]:
    from bench import plain_pipeline

    return plain_pipeline.child(params, probe)


# -------------------------------------------------------------------------------------------- parent


def run(ws: Workspace, *, sizes: list[int], repeats: int, warm_up_rows: int) -> dict[str, Any]:
    root = ws.path("pipeline")
    shared = {
        "template_home": root / "template-home",
        "plan": root / "plan.json",
        "champion": root / "plain-champion.skops",
        "source_template": str(root / "source" / "dt={ds}" / "part.parquet"),
    }
    prep = ws.run(
        "bench.pipeline:prep_child",
        {
            "sizes": sizes,
            "warm_up_rows": warm_up_rows,
            "source_template": shared["source_template"],
            "models_dir": str(root / "models"),
            "plan": str(shared["plan"]),
            "plain_champion": str(shared["champion"]),
        },
        env=_env(ws, root, shared["template_home"]),
        label="pipeline prep and warm-up",
        timeout=1800,
    ).result
    cases: list[dict[str, Any]] = []
    for index, rows in enumerate(sizes):
        subject, baseline = _run_size(ws, root, shared, index, rows, repeats)
        cases += _cases(rows, prep, subject, baseline)
    return {
        "title": "Nightly pipeline per stage",
        "subject": "mloops.stages validate_batch / train_model / test_model / register_model, one process per stage "
        "(like Airflow tasks), embedded SQLite MLflow store, steady state (a champion exists)",
        "baseline": "bench/plain_pipeline.py: the same computation as one plain pandas + scikit-learn + skops script",
        "cases": cases,
        "setup": {
            "features": prep["features"],
            "expectations": prep["expectations"],
            "estimator": "HistGradientBoostingClassifier "
            + json.dumps(json.loads(shared["plan"].read_text())["estimator_params"]),
            "window_days": 1,
            "warm_up_rows": warm_up_rows,
        },
    }


def _env(ws: Workspace, root: Path, home: Path) -> dict[str, str]:
    return ws.env(
        MLOOPS_HOME=str(home),
        MLOOPS_MODELS_DIR=str(root / "models"),
        AIRFLOW_HOME=str(ws.path("airflow", "pipeline")),
    )


def _run_size(
    ws: Workspace, root: Path, shared: Mapping[str, Any], index: int, rows: int, repeats: int
) -> tuple[list[dict[str, Run]], list[Run]]:
    from bench import datasets

    day = day_of(index)
    subject: list[dict[str, Run]] = []
    baseline: list[Run] = []
    for repeat, variant in interleaved(repeats, ["plain", "mloops"]):
        tag = f"{rows}-{repeat}"
        if variant == "plain":
            params = {
                "plan": str(shared["plan"]),
                "data": shared["source_template"].format(ds=day.isoformat()),
                "champion": str(shared["champion"]),
                "out_dir": str(root / f"plain-{tag}"),
            }
            env = _env(ws, root, root / "unused-home")
            baseline.append(
                ws.run(
                    "bench.pipeline:plain_child", params, env=env, label=f"plain pipeline {tag}", timeout=1800
                )
            )
            shutil.rmtree(root / f"plain-{tag}", ignore_errors=True)
            continue
        home, results_dir = root / f"home-{tag}", root / f"results-{tag}"
        shutil.copytree(shared["template_home"], home)
        results_dir.mkdir()
        stage_runs: dict[str, Run] = {}
        for name, bench in STAGES.items():
            if bench.run is None:
                continue
            stage_runs[name] = ws.run(
                "bench.pipeline:stage_child",
                {
                    "stage": name,
                    "model": datasets.WIDE_MODEL,
                    "day": day.isoformat(),
                    "results_dir": str(results_dir),
                },
                env=_env(ws, root, home),
                label=f"stage {name} {tag}",
                timeout=1800,
            )
        subject.append(stage_runs)
        shutil.rmtree(home, ignore_errors=True)
    return subject, baseline


def _stage_case(
    name: str, rows: int, prep: Mapping[str, Any], runs: list[Run], plain: list[Run]
) -> dict[str, Any]:
    bench = STAGES[name]
    call, step = wall("call"), wall(name)
    data_bytes = prep["data_bytes"][str(rows)].get(bench.reads) if bench.reads else None
    baseline_delta = [max(r.result["step_peak_rss"][name] - r.rss_base, 0) for r in plain]
    delta = median(r.peak_delta for r in runs)
    has_baseline = median(step(r) for r in plain) > 0.01
    return {
        "name": f"{rows:,} rows: {name}",
        "size": rows,
        "stage": name,
        "metric": "stage call in its own process (imports excluded, see the imports row) vs the script's step (s)",
        "subject": {
            **summary(runs, call, cpu("call")),
            "imports_s": round(median(r.time("import") for r in runs), 4),
        },
        "baseline": {
            **summary(plain, step, cpu(name)),
            "peak_rss_mb": round(median(r.result["step_peak_rss"][name] for r in plain) / MB, 1),
            "peak_delta_mb": round(median(baseline_delta) / MB, 1),
        },
        "ratio": round(paired_ratio([call(r) for r in runs], [step(r) for r in plain]), 3)
        if has_baseline
        else None,
        "cpu_ratio": round(paired_ratio([r.cpu("call") for r in runs], [r.cpu(name) for r in plain]), 3)
        if has_baseline
        else None,
        "ratio_note": None if has_baseline else "n/a (no registry in the script: one JSON write)",
        "data_bytes": data_bytes,
        "memory_ratio": round(delta / data_bytes, 2) if data_bytes else None,
        # The script's later steps still hold the partition read by its first step: only the steps that
        # read the partition compare with a stage that reads it too.
        "baseline_memory_ratio": round(median(baseline_delta) / data_bytes, 2)
        if bench.reads == "partition"
        else None,
        "memory_note": f"peak RSS over the RSS after imports, over the {bench.reads}'s memory_usage(deep=True)"
        if data_bytes
        else "reads no DataFrame",
    }


def _cases(
    rows: int, prep: Mapping[str, Any], subject: list[dict[str, Run]], baseline: list[Run]
) -> list[dict[str, Any]]:
    measured = [name for name, b in STAGES.items() if b.run is not None]
    plain_total, plain_cpu = wall("import", *measured), cpu("import", *measured)

    def total(stage_runs: Mapping[str, Run]) -> float:
        return sum(r.time("import") + r.time("call") for r in stage_runs.values())

    def total_cpu(stage_runs: Mapping[str, Run]) -> float:
        return sum(r.cpu("import") + r.cpu("call") for r in stage_runs.values())

    partition = prep["data_bytes"][str(rows)]["partition"]
    worst_stage_delta = [max(r.peak_delta for r in stage_runs.values()) for stage_runs in subject]
    subject_imports = [sum(r.time("import") for r in s.values()) for s in subject]
    whole = {
        "name": f"{rows:,} rows: whole pipeline",
        "size": rows,
        "stage": "pipeline",
        "metric": "sum over stages of (imports + call) vs the plain script's imports + steps (s)",
        "subject": {
            "repeats": len(subject),
            "time_s": round(median(total(s) for s in subject), 4),
            "times_s": [round(total(s), 4) for s in subject],
            "cpu_s": round(median(total_cpu(s) for s in subject), 4),
            "process_wall_s": round(median(sum(r.wall_s for r in s.values()) for s in subject), 4),
            "peak_rss_mb": round(median(max(r.peak_rss for r in s.values()) for s in subject) / MB, 1),
            "peak_delta_mb": round(median(worst_stage_delta) / MB, 1),
        },
        "baseline": summary(baseline, plain_total, plain_cpu),
        "ratio": round(paired_ratio([total(s) for s in subject], [plain_total(r) for r in baseline]), 3),
        "cpu_ratio": round(
            paired_ratio([total_cpu(s) for s in subject], [plain_cpu(r) for r in baseline]), 3
        ),
        "extra": {
            "imports_subject_s": round(median(subject_imports), 4),
            "imports_baseline_s": round(median(r.time("import") for r in baseline), 4),
            "metrics_subject": subject[-1]["train"].result["result"].get("metrics"),
            "metrics_baseline": baseline[-1].result["metrics"],
        },
        "data_bytes": partition,
        "memory_ratio": round(median(worst_stage_delta) / partition, 2),
        "baseline_memory_ratio": round(median(r.peak_delta for r in baseline) / partition, 2),
        "memory_note": "worst stage's peak over its post-import RSS (subject) / the script's whole-run peak (baseline), over the partition",
    }
    imports_case = {
        "name": f"{rows:,} rows: imports",
        "size": rows,
        "stage": "imports",
        "metric": "library imports: every stage process loads its own vs the script loading them once (s)",
        "subject": {
            "repeats": len(subject),
            "time_s": round(median(subject_imports), 4),
            "times_s": [round(t, 4) for t in subject_imports],
        },
        "baseline": {
            k: v
            for k, v in summary(baseline, wall("import")).items()
            if k in ("repeats", "time_s", "times_s")
        },
        "ratio": round(paired_ratio(subject_imports, [r.time("import") for r in baseline]), 3),
        "data_bytes": None,
        "memory_ratio": None,
        "memory_note": "imports only",
    }
    cases = [whole, imports_case]
    for name, bench in STAGES.items():
        if bench.run is None:
            exists = prep["stage_functions"].get(name)
            cases.append(
                {
                    "name": f"{rows:,} rows: {name}",
                    "size": rows,
                    "stage": name,
                    "status": NOT_IMPLEMENTED,
                    "note": f"no benchmark function in bench.pipeline.STAGES yet; mloops.stages.{bench.stage_function} "
                    + ("exists now (landed during this work)" if exists else "does not exist yet"),
                }
            )
            continue
        cases.append(_stage_case(name, rows, prep, [s[name] for s in subject], baseline))
    return cases
