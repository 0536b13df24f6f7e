"""The nightly training pipeline per stage, against the same computation as one plain script.

Subject: the stage functions of ``mloops.stages`` (validate_batch, train_model, test_model,
register_model) on the wide model (churn + 22 derived features, a files-source Parquet partition, a
1-day window), each in its own fresh process like an Airflow task, on an embedded SQLite MLflow store.
Results travel between processes as the XCom dicts of :mod:`mloops.contracts`. Baseline:
:mod:`bench.plain_pipeline` (pandas, scikit-learn, skops in one process).

Steady state: an untimed warm-up trains, registers and promotes a champion on the previous day (the
plain script gets its own), so ``test_model`` compares against a champion as it does every night.
Every repeat starts from a fresh copy of that state.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path
from typing import Any

from bench import attribution
from bench.harness import MB, Run, Workspace, interleaved, median, paired_ratio

FIRST_DAY = dt.date(2026, 1, 10)
WARM_UP_DAY = FIRST_DAY - dt.timedelta(days=1)
#: Stage -> its module of mloops.stages. Before the call, its process warms what ``mloops.warm`` gives a
#: task of that stage (:func:`mloops.warm.stage_modules`: the stage's libraries, MLflow's stores, and the
#: caches ``warm`` fills), as a local-stack task finds them in its warm parent; anything else the stage
#: imports is paid in the call.
STAGES = {"validate": "validate", "train": "train", "test": "test", "register": "registry"}


def day_of(index: int) -> dt.date:
    """Each data size gets its own partition date, so one config and one warm-up serve them all."""
    return FIRST_DAY + dt.timedelta(days=index)


def context(model: str, day: dt.date) -> Any:
    from mloops.config_files import find_model_config
    from mloops.settings import get_settings
    from mloops.stages.layout import RunContext

    settings = get_settings()
    return RunContext(find_model_config(model, settings.models_dir), day, settings)


def night(ctx: Any) -> dict[str, Any]:
    """The training stages in one process (the warm-up), through the product's stage functions."""
    from mloops.stages import registry, test, train, validate

    validate.validate_batch(ctx)
    trained = train.train_model(ctx)
    registered = registry.register_model(ctx, trained, test.test_model(ctx, trained))
    return registry.promote_model(ctx, registered).to_xcom()


def prep_child(params: dict[str, Any], probe: Any) -> dict[str, Any]:
    """Partitions, the config, the plain script's plan; both champions warmed up (untimed)."""
    from bench import datasets, plain_pipeline
    from bench.harness import examples

    template = params["source_template"]
    days = [(WARM_UP_DAY, params["warm_up_rows"])] + [(day_of(i), n) for i, n in enumerate(params["sizes"])]
    for day, rows in days:
        frame, names = datasets.wide_frame(rows, day)
        examples().write_partition(frame, template.format(ds=day.isoformat()))
        del frame
    datasets.write_yaml(
        Path(params["models_dir"]) / f"{datasets.WIDE_MODEL}.yaml", datasets.wide_config(template, names)
    )
    ctx = context(datasets.WIDE_MODEL, WARM_UP_DAY)
    plan = plain_pipeline.plan_of(ctx.config, ctx.settings)
    Path(params["plan"]).write_text(json.dumps(plan, default=str))
    promoted = night(ctx)
    if promoted["action"] != "promote":
        raise RuntimeError(f"warm-up did not promote a champion: {promoted}")
    plain_pipeline.fit_champion(
        plan, template.format(ds=WARM_UP_DAY.isoformat()), params["plain_champion"], params["plain_reference"]
    )
    return {"features": len(ctx.config.features), "expectations": len(plan["expectations"])}


def stage_child(params: dict[str, Any], probe: Any) -> dict[str, Any]:
    """One stage in a fresh process: its libraries (timed), then the stage call with earlier results."""
    import importlib

    from mloops import contracts
    from mloops.warm import stage_modules, warm

    module_name = STAGES[params["stage"]]
    with probe.timed("import"):
        warm(stage_modules(module_name))
        module = importlib.import_module(f"mloops.stages.{module_name}")
    results = Path(params["results_dir"])
    earlier = {p.stem: json.loads(p.read_text()) for p in results.glob("*.json")}
    probe.mark_base()
    with probe.timed("call"):
        ctx = context(params["model"], dt.date.fromisoformat(params["day"]))
        stage = params["stage"]
        if stage == "validate":
            result = module.validate_batch(ctx)
        elif stage == "train":
            result = module.train_model(ctx)
        else:
            trained = contracts.TrainingResult.from_xcom(earlier["train"])
            if stage == "test":
                result = module.test_model(ctx, trained)
            else:
                result = module.register_model(ctx, trained, contracts.TestResult.from_xcom(earlier["test"]))
    payload = result.to_xcom()
    (results / f"{stage}.json").write_text(json.dumps(payload, default=str))
    return {"metrics": payload.get("metrics")}


def plain_child(params: dict[str, Any], probe: Any) -> dict[str, Any]:
    from bench import plain_pipeline

    return plain_pipeline.child(params, probe)


def run(ws: Workspace, *, sizes: list[int], repeats: list[int], warm_up_rows: int) -> dict[str, Any]:
    """``repeats[i]`` runs of each side at ``sizes[i]`` rows."""
    from bench import datasets

    root = ws.path("pipeline")
    template = str(root / "source" / "dt={ds}" / "part.parquet")
    home0 = root / "template-home"

    def env(home: Path) -> dict[str, str]:
        return ws.env(
            MLOOPS_HOME=str(home),
            MLOOPS_MODELS_DIR=str(root / "models"),
            MLOOPS_SOURCE_ROOTS=str(root / "source"),
            AIRFLOW_HOME=str(ws.path("airflow", "pipeline")),
        )

    files = {
        k: str(root / f)
        for k, f in (
            ("plan", "plan.json"),
            ("champion", "plain-champion.skops"),
            ("reference", "plain-reference.parquet"),
        )
    }
    prep = ws.run(
        "bench.pipeline:prep_child",
        {
            "sizes": sizes,
            "warm_up_rows": warm_up_rows,
            "source_template": template,
            "plan": files["plan"],
            "models_dir": str(root / "models"),
            "plain_champion": files["champion"],
            "plain_reference": files["reference"],
        },
        env=env(home0),
        label="pipeline prep and warm-up",
        timeout=1800,
    ).result
    cases: list[dict[str, Any]] = []
    for index, (rows, count) in enumerate(zip(sizes, repeats, strict=True)):
        day = day_of(index)
        subject: list[dict[str, Run]] = []
        plain: list[Run] = []
        for repeat, variant in interleaved(count, ["plain", "mloops"]):
            tag = f"{rows}-{repeat}"
            if variant == "plain":
                params = {
                    **files,
                    "data": template.format(ds=day.isoformat()),
                    "out_dir": str(root / f"plain-{tag}"),
                }
                plain.append(
                    ws.run(
                        "bench.pipeline:plain_child",
                        params,
                        env=env(root / "unused"),
                        label=f"plain pipeline {tag}",
                        timeout=1800,
                    )
                )
                continue
            home, results = root / f"home-{tag}", root / f"results-{tag}"
            shutil.copytree(home0, home)
            results.mkdir()
            subject.append(
                {
                    stage: ws.run(
                        "bench.pipeline:stage_child",
                        {
                            "stage": stage,
                            "model": datasets.WIDE_MODEL,
                            "day": day.isoformat(),
                            "results_dir": str(results),
                        },
                        env=env(home),
                        label=f"stage {stage} {tag}",
                        timeout=1800,
                        attribute="call" if not subject else None,
                    )
                    for stage in STAGES
                }
            )
            shutil.rmtree(home, ignore_errors=True)
        cases += _cases(rows, subject, plain)
    return {
        "title": "Nightly training pipeline per stage",
        "subject": "mloops.stages validate_batch / train_model / test_model / register_model, one process "
        "per "
        "stage, embedded SQLite MLflow store, a champion exists",
        "baseline": "bench/plain_pipeline.py: the same computation as one plain pandas + scikit-learn + "
        "skops script",
        "setup": {**prep, "warm_up_rows": warm_up_rows, "window_days": 1},
        "cases": cases,
    }


def _side(times: list[float], cpus: list[float], deltas: list[int]) -> dict[str, Any]:
    return {
        "repeats": len(times),
        "time_s": round(median(times), 4),
        "times_s": [round(t, 4) for t in times],
        "cpu_s": round(median(cpus), 4),
        "peak_delta_mb": round(median(deltas) / MB, 1),
    }


def _cases(rows: int, subject: list[dict[str, Run]], plain: list[Run]) -> list[dict[str, Any]]:
    def total(s: dict[str, Run], kind: str) -> float:
        get = (lambda r, n: r.time(n)) if kind == "wall" else (lambda r, n: r.cpu(n))
        return sum(get(r, "import") + get(r, "call") for r in s.values())

    plain_total = [sum(r.time(n) for n in ("import", *STAGES)) for r in plain]
    plain_cpu = [sum(r.cpu(n) for n in ("import", *STAGES)) for r in plain]
    whole = {
        "name": f"{rows:,} rows: whole pipeline",
        "size": rows,
        "stage": "pipeline",
        "metric": "sum over the stages of (imports + call) vs the plain script's imports + steps (s)",
        "subject": _side(
            [total(s, "wall") for s in subject],
            [total(s, "cpu") for s in subject],
            [max(r.peak_delta for r in s.values()) for s in subject],
        ),
        "baseline": _side(plain_total, plain_cpu, [r.peak_delta for r in plain]),
        "ratio": round(paired_ratio([total(s, "wall") for s in subject], plain_total), 3),
        "cpu_ratio": round(paired_ratio([total(s, "cpu") for s in subject], plain_cpu), 3),
        "memory_ratio": None,
        "attribution": attribution.merge(*(r.attribution for s in subject for r in s.values())),
        "extra": {
            "imports_subject_s": round(median(sum(r.time("import") for r in s.values()) for s in subject), 3),
            "imports_baseline_s": round(median(r.time("import") for r in plain), 3),
            "roc_auc": {
                "mloops": (subject[-1]["train"].result.get("metrics") or {}).get("roc_auc"),
                "plain": plain[-1].result["metrics"].get("roc_auc"),
            },
        },
    }
    calls = [sum(r.time("call") for r in s.values()) for s in subject]
    call_cpus = [sum(r.cpu("call") for r in s.values()) for s in subject]
    steps = [sum(r.time(n) for n in STAGES) for r in plain]
    step_cpus = [sum(r.cpu(n) for n in STAGES) for r in plain]
    warm = {
        "name": f"{rows:,} rows: whole pipeline, libraries imported once",
        "size": rows,
        "stage": "pipeline_warm",
        "metric": "sum over the stages of the call, the libraries imported once per worker (the local "
        "stack's tasks fork from a parent holding them) vs the plain script's steps, its imports excluded "
        "too (s)",
        "subject": _side(calls, call_cpus, [max(r.peak_delta for r in s.values()) for s in subject]),
        "baseline": _side(steps, step_cpus, [r.peak_delta for r in plain]),
        "ratio": round(paired_ratio(calls, steps), 3),
        "cpu_ratio": round(paired_ratio(call_cpus, step_cpus), 3),
        "memory_ratio": None,
        "attribution": whole["attribution"],
    }
    cases = [whole, warm]
    for stage in STAGES:
        runs = [s[stage] for s in subject]
        plain_deltas = [max(r.result["step_peak_rss"][stage] - r.rss_base, 0) for r in plain]
        has_baseline = median(r.time(stage) for r in plain) > 0.01
        sub_delta = median(r.peak_delta for r in runs)
        cases.append(
            {
                "name": f"{rows:,} rows: {stage}",
                "size": rows,
                "stage": stage,
                "metric": "stage call in its own process (imports excluded) vs the script's step (s)",
                "subject": _side(
                    [r.time("call") for r in runs],
                    [r.cpu("call") for r in runs],
                    [r.peak_delta for r in runs],
                ),
                "baseline": _side(
                    [r.time(stage) for r in plain], [r.cpu(stage) for r in plain], plain_deltas
                ),
                "ratio": round(
                    paired_ratio([r.time("call") for r in runs], [r.time(stage) for r in plain]), 3
                )
                if has_baseline
                else None,
                "cpu_ratio": round(
                    paired_ratio([r.cpu("call") for r in runs], [r.cpu(stage) for r in plain]), 3
                )
                if has_baseline
                else None,
                # The script's later steps still hold the partition its first step read: only validate and
                # train compare working memory with a step that starts from nothing.
                "memory_ratio": round(sub_delta / median(plain_deltas), 2)
                if stage in ("validate", "train") and median(plain_deltas) > 0
                else None,
                "ratio_note": None if has_baseline else "no registry in the script (one JSON write)",
                "attribution": attribution.first(runs),
            }
        )
    return cases
