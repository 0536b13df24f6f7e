"""Benchmark 4: the nightly pipeline per stage, against the same computation as one plain script.

Subject: ``mloops.stages`` on a wide model (churn + 22 derived features, a files-source Parquet
partition, a 1-day window), each stage in its own fresh process like an Airflow task, with an embedded
SQLite MLflow store in a tmp ``MLOOPS_HOME``. Stage results travel between processes as JSON files,
as they do through XCom. Baseline: :mod:`bench.plain_pipeline`.

Steady state, not a first run: before the measured runs, an untimed warm-up trains, registers and
promotes a champion on the previous day's small partition, so ``test_model`` compares against a
champion as it does every night; the plain script gets its own champion the same way. Every repeat
starts from a fresh copy of that warm-up state.

After the training stages, the same process sequence scores the day's validated partition with the
champion (``score_batch``) and checks drift over the monitoring window (``check_drift``: the current
data is that scored partition, the reference the champion's recorded training reference). These run
in other DAGs than training, so they are not part of the "whole pipeline" row; their baselines are
plain scripts in their own processes too (:func:`bench.plain_pipeline.score_child` and
:func:`bench.plain_pipeline.drift_child`: skops + pandas, and scipy's tests on the same samples).

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
DRIFT_IMPORTS = (
    "mlflow",
    "evidently",
    "evidently.presets",
    "evidently.metrics",
    "mloops.adapters.evidently_adapter",
)


@dataclass
class StageContext:
    """What a stage benchmark function gets: the loaded config, the day, settings, earlier results."""

    config: Any
    day: dt.date
    settings: Any
    results: Mapping[str, Mapping[str, Any]]
    stages: Any
    probe: Any = None


@dataclass(frozen=True)
class StageBench:
    """One nightly stage, run in its own process.

    :param run: calls the stage; ``None`` marks a placeholder with no benchmark yet.
    :param imports: heavy modules the stage's task process loads; imported (and timed) before the
        RSS baseline, so the stage's memory figure is its working set rather than library code.
    :param reads: which data it reads, for the memory-vs-data ratio: ``partition``, ``holdout``,
        ``drift_inputs`` (partition + its predictions + the reference) or None.
    :param stage_function: the ``mloops.stages`` function a placeholder is waiting for.
    :param in_pipeline: part of the nightly training pipeline (the "whole pipeline" row and its budget).
    :param baseline: ``module:function`` of the stage's own plain child process; None when the
        baseline is the step of the same name in the plain training script.
    """

    run: Callable[[StageContext], dict[str, Any]] | None
    imports: tuple[str, ...] = ()
    reads: str | None = None
    stage_function: str | None = None
    notes: tuple[str, ...] = field(default=())
    in_pipeline: bool = True
    baseline: str | None = None


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


def _time_calls(probe: Any, owner: Any, name: str, section: str) -> None:
    """Add the time spent in ``owner.name`` (a module function or a method) to a probe section."""
    if probe is None:
        return
    original = getattr(owner, name)

    def timed(*args: Any, **kwargs: Any) -> Any:
        with probe.timed(section):
            return original(*args, **kwargs)

    setattr(owner, name, timed)


def _score(ctx: StageContext) -> dict[str, Any]:
    import pandas as pd

    from mloops import training
    from mloops.adapters import mlflow_adapter

    _time_calls(ctx.probe, pd, "read_parquet", "score.read")
    _time_calls(ctx.probe, mlflow_adapter, "load_sklearn_model", "score.load_model")
    _time_calls(ctx.probe, training, "scores", "score.predict")
    _time_calls(ctx.probe, pd.DataFrame, "to_parquet", "score.write")
    return ctx.stages.score_batch(ctx.config, ctx.day, ctx.settings)


def _drift(ctx: StageContext) -> dict[str, Any]:
    import pandas as pd

    from mloops import monitoring, store
    from mloops.adapters import evidently_adapter

    _time_calls(ctx.probe, pd, "read_parquet", "drift.read")
    _time_calls(ctx.probe, monitoring, "sample", "drift.sample")
    _time_calls(ctx.probe, evidently_adapter, "drift_report", "drift.evidently_report")
    _time_calls(ctx.probe, evidently_adapter, "_save", "drift.evidently_save")  # inside drift_report
    _time_calls(ctx.probe, store, "write_metrics", "drift.metrics_store")
    return ctx.stages.check_drift(ctx.config, ctx.day, ctx.settings)


STAGES: dict[str, StageBench] = {
    "validate": StageBench(_validate, (*DATA_IMPORTS, "great_expectations"), "partition"),
    "train": StageBench(_train, (*DATA_IMPORTS, *MODEL_IMPORTS), "partition"),
    "test": StageBench(_test, (*DATA_IMPORTS, *MODEL_IMPORTS), "holdout"),
    "register": StageBench(_register, ("mlflow",), None),
    "score": StageBench(
        _score,
        (*DATA_IMPORTS, *MODEL_IMPORTS),
        "partition",
        stage_function="score_batch",
        in_pipeline=False,
        baseline="bench.plain_pipeline:score_child",
    ),
    "drift": StageBench(
        _drift,
        (*DATA_IMPORTS, *DRIFT_IMPORTS),
        "drift_inputs",
        stage_function="check_drift",
        in_pipeline=False,
        baseline="bench.plain_pipeline:drift_child",
    ),
}


# ------------------------------------------------------------------------------------------ children


def day_of(index: int) -> dt.date:
    """Each data size gets its own partition date, so one config and one warm-up serve them all."""
    return FIRST_DAY + dt.timedelta(days=index)


def prep_child(params: dict[str, Any], probe: Any) -> dict[str, Any]:
    """Write the partitions, the config and the plain script's plan; warm up both champions (untimed)."""
    import pandas as pd

    from bench import datasets, plain_pipeline
    from mloops import monitoring, partitions, quality, stages, training
    from mloops.config import load_model_config
    from mloops_examples.generator import write_partition
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
        "task": config.task,
        "registered_model": config.registered_model_name,
        "monitoring": {
            "sample_size": config.monitoring.sample_size,
            "seed": config.monitoring.seed,
            "methods": {c: list(monitoring.method_for(config, c)) for c in config.feature_names},
            "prediction": [
                monitoring.PREDICTION,
                config.monitoring.numeric_method,
                config.monitoring.prediction_threshold,
            ],
            "drift_share": config.monitoring.drift_share,
        },
    }
    Path(params["plan"]).write_text(json.dumps(plan, default=str))

    stages.validate_batch(config, WARM_UP_DAY, settings)
    trained = stages.train_model(config, WARM_UP_DAY, settings)
    tested = stages.test_model(config, WARM_UP_DAY, settings, trained)
    registered = stages.register_model(config, WARM_UP_DAY, settings, trained, tested)
    promoted = stages.promote_model(config, WARM_UP_DAY, settings, registered)
    if promoted["action"] != "promote":
        raise RuntimeError(f"warm-up did not promote a champion: {promoted}")
    plain_pipeline.fit_champion(
        plan, template.format(ds=WARM_UP_DAY.isoformat()), params["plain_champion"], params["plain_reference"]
    )
    # The champion's recorded training reference (what check_drift compares against), and the plain one.
    reference = pd.read_parquet(
        partitions.partition_dir(settings.data_root, "runs", config.name, WARM_UP_DAY) / "reference.parquet"
    )
    reference_bytes = int(reference.memory_usage(deep=True).sum())
    plain_reference_rows = len(pd.read_parquet(params["plain_reference"], columns=[monitoring.PREDICTION]))
    for rows in params["sizes"]:
        # check_drift reads the partition, its predictions (one column kept) and the reference.
        data_bytes[str(rows)]["drift_inputs"] = (
            data_bytes[str(rows)]["partition"] + 8 * rows + reference_bytes
        )
    return {
        "features": len(config.features),
        "expectations": len(plan["expectations"]),
        "data_bytes": data_bytes,
        "reference_rows": len(reference),
        "plain_reference_rows": plain_reference_rows,
        "monitoring": {
            "sample_size": config.monitoring.sample_size,
            "window_days": config.monitoring.window_days,
            "label_delay_days": config.monitoring.label_delay_days,
        },
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
            StageContext(config, dt.date.fromisoformat(params["day"]), settings, earlier, stages, probe)
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
        "reference": root / "plain-reference.parquet",
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
            "plain_reference": str(shared["reference"]),
        },
        env=_env(ws, root, shared["template_home"]),
        label="pipeline prep and warm-up",
        timeout=1800,
    ).result
    cases: list[dict[str, Any]] = []
    for index, rows in enumerate(sizes):
        subject, baseline, steps = _run_size(ws, root, shared, index, rows, repeats)
        cases += _cases(rows, prep, subject, baseline, steps)
    plan = json.loads(shared["plan"].read_text())
    return {
        "title": "Nightly pipeline per stage",
        "subject": "mloops.stages validate_batch / train_model / test_model / register_model, then score_batch and "
        "check_drift, one process per stage (like Airflow tasks), embedded SQLite MLflow store, steady state "
        "(a champion exists)",
        "baseline": "bench/plain_pipeline.py: the same computation as one plain pandas + scikit-learn + skops script; "
        "scoring (skops + pandas) and drift (scipy, same samples) as plain scripts in their own processes",
        "cases": cases,
        "setup": {
            "features": prep["features"],
            "expectations": prep["expectations"],
            "estimator": "HistGradientBoostingClassifier " + json.dumps(plan["estimator_params"]),
            "window_days": 1,
            "warm_up_rows": warm_up_rows,
            "reference_rows": prep["reference_rows"],
            "plain_reference_rows": prep["plain_reference_rows"],
            "monitoring": prep["monitoring"],
            "drift_methods": sorted({tuple(v) for v in plan["monitoring"]["methods"].values()}),
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
) -> tuple[list[dict[str, Run]], list[Run], list[dict[str, Run]]]:
    """Per repeat: the mloops stage runs, the plain training script's run, the other plain steps' runs."""
    from bench import datasets

    day = day_of(index)
    subject: list[dict[str, Run]] = []
    baseline: list[Run] = []
    steps: list[dict[str, Run]] = []
    for repeat, variant in interleaved(repeats, ["plain", "mloops"]):
        tag = f"{rows}-{repeat}"
        if variant == "plain":
            out_dir = root / f"plain-{tag}"
            params = {
                "plan": str(shared["plan"]),
                "data": shared["source_template"].format(ds=day.isoformat()),
                "champion": str(shared["champion"]),
                "reference": str(shared["reference"]),
                "predictions": str(out_dir / "predictions.parquet"),
                "partition": day.isoformat(),
                "out_dir": str(out_dir),
            }
            env = _env(ws, root, root / "unused-home")
            baseline.append(
                ws.run(
                    "bench.pipeline:plain_child", params, env=env, label=f"plain pipeline {tag}", timeout=1800
                )
            )
            steps.append(
                {
                    name: ws.run(bench.baseline, params, env=env, label=f"plain {name} {tag}", timeout=1800)
                    for name, bench in STAGES.items()
                    if bench.run is not None and bench.baseline
                }
            )
            shutil.rmtree(out_dir, ignore_errors=True)
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
    return subject, baseline, steps


#: Sections timed inside another one: reported on their own and subtracted from the outer one.
NESTED_SECTIONS = {"evidently_save": "evidently_report"}


def _parts(runs: list[Run], prefix: str, total: Callable[[Run], float]) -> dict[str, float]:
    """Median seconds of a run's ``prefix.*`` sections, plus what the call spent outside them."""
    names = sorted(
        {k.split(".", 1)[1] for r in runs for k in r.report["times"] if k.startswith(prefix + ".")}
    )

    def own(run: Run, name: str) -> float:
        seconds = run.report["times"].get(f"{prefix}.{name}", 0.0)
        inner = [n for n, outer in NESTED_SECTIONS.items() if outer == name]
        return seconds - sum(run.report["times"].get(f"{prefix}.{n}", 0.0) for n in inner)

    label = {n: f"{n} (excl. {', '.join(i for i, o in NESTED_SECTIONS.items() if o == n)})" for n in names}
    label = {n: v if n in NESTED_SECTIONS.values() else n for n, v in label.items()}
    parts = {label[n]: round(median(own(r, n) for r in runs), 4) for n in names}
    parts["other"] = round(median(total(r) - sum(own(r, n) for n in names) for r in runs), 4)
    return parts


def _drift_extra(rows: int, prep: Mapping[str, Any], runs: list[Run], plain: list[Run]) -> dict[str, Any]:
    """Sample sizes used, and whether mloops and the scipy script flag the same columns."""
    ours, theirs = runs[-1].result["result"], plain[-1].result
    size = prep["monitoring"]["sample_size"]
    drifted_ours = sorted(c["column"] for c in ours["columns"] if c["drifted"])
    drifted_theirs = sorted(c for c, v in theirs["columns"].items() if v["drifted"] and c != "prediction")
    prediction_ours = bool(ours["prediction"] and ours["prediction"]["drifted"])
    prediction_theirs = bool(theirs["columns"]["prediction"]["drifted"])
    return {
        "sample_size": size,
        "rows_compared_mloops": {
            "current": min(rows, size),
            "reference": min(prep["reference_rows"], size),
        },
        "rows_compared_plain": {"current": theirs["rows"][1], "reference": theirs["rows"][0]},
        "partitions_mloops": ours["partitions"],
        "skipped_mloops": ours["skipped"],
        "labeled_rows": ours["labeled_rows"],
        "drifted_mloops": drifted_ours + (["prediction"] if prediction_ours else []),
        "drifted_plain": drifted_theirs + (["prediction"] if prediction_theirs else []),
        "verdicts_agree": drifted_ours == drifted_theirs
        and prediction_ours == prediction_theirs
        and ours["breached"] == theirs["breached"],
        "breached_mloops": ours["breached"],
        "breached_plain": theirs["breached"],
        "max_score_mloops": max((c["score"] or 0.0) for c in ours["columns"]),
        "max_score_plain": max(
            (v["score"] or 0.0) for c, v in theirs["columns"].items() if c != "prediction"
        ),
        "prediction_score": {
            "mloops": ours["prediction"]["score"] if ours["prediction"] else None,
            "plain": theirs["columns"]["prediction"]["score"],
        },
    }


def _stage_case(
    name: str, rows: int, prep: Mapping[str, Any], runs: list[Run], plain: list[Run]
) -> dict[str, Any]:
    """One stage's row; ``plain`` are the plain training script's runs, or the stage's own plain
    children when it has a separate baseline (score, drift)."""
    bench = STAGES[name]
    call, step = wall("call"), wall(name)
    data_bytes = prep["data_bytes"][str(rows)].get(bench.reads) if bench.reads else None
    delta = median(r.peak_delta for r in runs)
    has_baseline = median(step(r) for r in plain) > 0.01
    if bench.baseline:
        # Its own process: the child's peak RSS and its working memory above the post-import RSS.
        baseline_side = summary(plain, step, cpu(name))
        baseline_delta = [r.peak_delta for r in plain]
    else:
        baseline_delta = [max(r.result["step_peak_rss"][name] - r.rss_base, 0) for r in plain]
        baseline_side = {
            **summary(plain, step, cpu(name)),
            "peak_rss_mb": round(median(r.result["step_peak_rss"][name] for r in plain) / MB, 1),
            "peak_delta_mb": round(median(baseline_delta) / MB, 1),
        }
    case = {
        "name": f"{rows:,} rows: {name}",
        "size": rows,
        "stage": name,
        "metric": "stage call in its own process (imports excluded, see the imports row) vs the script's step (s)",
        "subject": {
            **summary(runs, call, cpu("call")),
            "imports_s": round(median(r.time("import") for r in runs), 4),
        },
        "baseline": baseline_side,
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
        # read the partition compare with a stage that reads it too (or run in their own process).
        "baseline_memory_ratio": round(median(baseline_delta) / data_bytes, 2)
        if data_bytes and (bench.reads == "partition" or bench.baseline)
        else None,
        "memory_note": f"peak RSS over the RSS after imports, over the {bench.reads}'s memory_usage(deep=True)"
        if data_bytes
        else "reads no DataFrame",
    }
    if bench.baseline:
        case["extra"] = {
            "parts_subject_s": _parts(runs, name, call),
            "parts_baseline_s": _parts(plain, name, step),
            "imports_baseline_s": round(median(r.time("import") for r in plain), 4),
        }
        if name == "drift":
            case["extra"].update(_drift_extra(rows, prep, runs, plain))
            case["memory_note"] = (
                "peak RSS over the RSS after imports, over the partition + its prediction column + the "
                "reference (memory_usage(deep=True))"
            )
    return case


def _cases(
    rows: int,
    prep: Mapping[str, Any],
    all_subject: list[dict[str, Run]],
    baseline: list[Run],
    steps: list[dict[str, Run]],
) -> list[dict[str, Any]]:
    measured = [name for name, b in STAGES.items() if b.run is not None and b.in_pipeline]
    plain_total, plain_cpu = wall("import", *measured), cpu("import", *measured)
    # The whole-pipeline and imports rows are the training pipeline's stages only.
    subject = [{k: v for k, v in s.items() if k in measured} for s in all_subject]

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
        "metric": "sum over the training stages (validate, train, test, register) of (imports + call) vs the plain "
        "script's imports + steps (s)",
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
        plain = [s[name] for s in steps] if bench.baseline else baseline
        cases.append(_stage_case(name, rows, prep, [s[name] for s in all_subject], plain))
    return cases
