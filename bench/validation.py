"""Benchmark 3: validation throughput, ``gx_adapter.validate_dataframe`` against plain pandas.

One churn partition (``generate_partition``) is written to Parquet once. Each run reads it in a
fresh process, then validates it with the suite of :func:`bench.datasets.validation_suite` (churn's
contract, its suite file, mean/stdev bounds: 50+ expectations): the subject through our real GX path
(file context, checkpoint, Data Docs), the baseline with :mod:`bench.pandas_checks`. The GX run is
instrumented to split its time into context/suite setup, the validation proper, and the Data Docs
action. Both report a verdict per expectation, and the benchmark checks they agree.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from bench.harness import (
    Run,
    Workspace,
    cpu,
    cpu_ratio,
    interleaved,
    memory_ratio,
    paired_ratio,
    summary,
    wall,
)

DAY = dt.date(2026, 1, 10)


def prep_child(params: dict[str, Any], probe: Any) -> dict[str, Any]:
    """Write the partition and the suite; report the data's in-memory size as read back."""
    import pandas as pd

    from bench import datasets
    from mloops.config import load_model_config
    from mloops_examples.generator import generate_partition, write_partition

    config = load_model_config(datasets.CHURN_CONFIG)
    frame = generate_partition("churn", DAY, rows=params["rows"], seed=config.source.seed)
    write_partition(frame, params["data"])
    specs = datasets.validation_suite(config)
    Path(params["suite"]).write_text(json.dumps(specs, default=str))
    read_back = pd.read_parquet(params["data"])
    return {
        "rows": len(read_back),
        "columns": len(read_back.columns),
        "data_bytes": int(read_back.memory_usage(deep=True).sum()),
        "expectations": len(specs),
    }


def _instrument_gx(probe: Any) -> None:
    """Time the checkpoint's validation and its actions (the Data Docs update) inside the real call."""
    from great_expectations.checkpoint.checkpoint import Checkpoint

    for method, section in (
        ("_run_validation_definitions", "gx_validation"),
        ("_run_actions", "gx_data_docs"),
    ):
        original = getattr(Checkpoint, method)

        def timed(
            self: Any, *args: Any, __original: Any = original, __section: str = section, **kwargs: Any
        ) -> Any:
            with probe.timed(__section):
                return __original(self, *args, **kwargs)

        setattr(Checkpoint, method, timed)


def gx_child(params: dict[str, Any], probe: Any) -> dict[str, Any]:
    with probe.timed("import"):
        import great_expectations  # noqa: F401
        import pandas as pd

        from mloops.adapters.gx_adapter import validate_dataframe
    specs = json.loads(Path(params["suite"]).read_text())
    _instrument_gx(probe)
    probe.mark_base()
    frame = pd.read_parquet(params["data"])
    with probe.timed("validate"):
        outcome = validate_dataframe(
            frame, model="churn", partition=DAY, expectations=specs, project_dir=Path(params["project_dir"])
        )
    verdicts = {
        f"{e['expectation_type']}({(e.get('kwargs') or {}).get('column') or ''})": bool(e["success"])
        for e in outcome.result["expectations"]
    }
    return {
        "evaluated": outcome.evaluated,
        "failed": outcome.failed,
        "verdicts": verdicts,
        "docs_url": outcome.docs_url,
    }


def pandas_child(params: dict[str, Any], probe: Any) -> dict[str, Any]:
    with probe.timed("import"):
        import pandas as pd

        from bench.pandas_checks import run_checks
    specs = json.loads(Path(params["suite"]).read_text())
    probe.mark_base()
    frame = pd.read_parquet(params["data"])
    with probe.timed("validate"):
        results = run_checks(frame, specs)
    verdicts = {f"{r['type']}({r['column'] or ''})": bool(r["success"]) for r in results}
    return {"evaluated": len(results), "failed": sum(not v for v in verdicts.values()), "verdicts": verdicts}


def _without_data_docs(run: Run) -> float:
    return run.time("validate") - run.time("gx_data_docs")


def _setup_and_result(run: Run) -> float:
    """Context, datasource, suite, validation definition and checkpoint upserts, and result handling."""
    return run.time("validate") - run.time("gx_validation") - run.time("gx_data_docs")


def run(ws: Workspace, *, rows: int, repeats: int) -> dict[str, Any]:
    folder = ws.path("validation")
    data, suite = folder / "partition.parquet", folder / "suite.json"
    env = ws.env(MLOOPS_HOME=str(ws.path("validation", "mloops-home")))
    prep = ws.run(
        "bench.validation:prep_child",
        {"rows": rows, "data": str(data), "suite": str(suite)},
        env=env,
        label=f"validation prep {rows}",
    ).result
    runs: dict[str, list[Run]] = {"gx": [], "pandas": []}
    for repeat, variant in interleaved(repeats, ["pandas", "gx"]):
        params = {"data": str(data), "suite": str(suite), "project_dir": str(folder / f"gx-project-{repeat}")}
        runs[variant].append(
            ws.run(
                f"bench.validation:{variant}_child",
                params,
                env=env,
                label=f"validation {variant} {rows} rows #{repeat}",
            )
        )
    gx, pandas = runs["gx"], runs["pandas"]
    disagreements = sorted(
        key
        for key, verdict in gx[-1].result["verdicts"].items()
        if pandas[-1].result["verdicts"].get(key) is not verdict
    )
    missing = sorted(set(pandas[-1].result["verdicts"]) ^ set(gx[-1].result["verdicts"]))
    validate = wall("validate")
    case = {
        "name": f"{rows:,} rows x {prep['expectations']} expectations",
        "size": rows,
        "metric": "validate_dataframe (incl. Data Docs) vs the same checks in pandas (s)",
        "subject": summary(gx, validate, cpu("validate")),
        "baseline": summary(pandas, validate, cpu("validate")),
        "ratio": round(paired_ratio([validate(r) for r in gx], [validate(r) for r in pandas]), 3),
        "cpu_ratio": cpu_ratio(gx, pandas, cpu("validate")),
        "extra": {
            "gx_without_data_docs_s": summary(gx, _without_data_docs)["time_s"],
            "ratio_without_data_docs": round(
                paired_ratio([_without_data_docs(r) for r in gx], [validate(r) for r in pandas]), 3
            ),
            "gx_parts_s": {
                "context_suite_checkpoint_setup_and_result": summary(gx, _setup_and_result)["time_s"],
                "validation": summary(gx, wall("gx_validation"))["time_s"],
                "data_docs_action": summary(gx, wall("gx_data_docs"))["time_s"],
            },
            "gx_import_s": summary(gx, wall("import"))["time_s"],
            "rows_per_s_gx": round(rows / max(summary(gx, validate)["time_s"], 1e-9)),
            "rows_per_s_pandas": round(rows / max(summary(pandas, validate)["time_s"], 1e-9)),
            "expectations": prep["expectations"],
            "evaluated_gx": gx[-1].result["evaluated"],
            "failed_gx": gx[-1].result["failed"],
            "failed_pandas": pandas[-1].result["failed"],
            "verdicts_agree": not disagreements and not missing,
            "disagreements": disagreements + [f"only one side: {k}" for k in missing],
        },
        "data_bytes": prep["data_bytes"],
        "memory_ratio": memory_ratio(gx, prep["data_bytes"]),
        "baseline_memory_ratio": memory_ratio(pandas, prep["data_bytes"]),
        "memory_note": "peak RSS over the pre-read RSS (after imports), over the partition's memory_usage(deep=True)",
    }
    return {
        "title": "Validation throughput",
        "subject": "mloops.adapters.gx_adapter.validate_dataframe (GX file context, checkpoint, Data Docs)",
        "baseline": "the same expectations as vectorised pandas (bench/pandas_checks.py)",
        "cases": [case],
    }
