"""Validation: ``gx_adapter.validate_dataframe`` (what ``stages.validate`` calls) against plain pandas.

One churn partition is written to Parquet once; each run reads it in a fresh process and validates it
with :func:`bench.datasets.validation_suite` (churn's contract, its suite file, mean/stdev bounds: 50+
expectations): the subject through the real GX path (file context, checkpoint, Data Docs), the baseline
with :mod:`bench.pandas_checks`. Both report a verdict per expectation, and the case checks they agree.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.harness import Run, Workspace, alternative, case, cpu, interleaved, wall

DAY = dt.date(2026, 1, 10)


def prep_child(params: dict[str, Any], probe: Any) -> dict[str, Any]:
    import pandas as pd

    from bench import datasets
    from bench.harness import examples
    from mloops.config_files import load_model_config

    config = load_model_config(datasets.CHURN_CONFIG)
    generator = examples()
    frame = generator.generate_partition("churn", DAY, rows=params["rows"], seed=config.source.seed)
    generator.write_partition(frame, params["data"])
    specs = datasets.validation_suite(config)
    Path(params["suite"]).write_text(json.dumps(specs, default=str))
    read_back = pd.read_parquet(params["data"])
    return {"data_bytes": int(read_back.memory_usage(deep=True).sum()), "expectations": len(specs)}


#: The measured alternative of the case (``what_if`` of :func:`gx_child`).
WHAT_IF = "no_decimal_scan"
WHAT_IF_TEXT = (
    "the same validation with GX not testing every value of a numeric column for decimal.Decimal, in "
    "Python, before its mean and standard deviation metrics (a float or integer array cannot hold one; "
    "GX patched in that process only, the same results)"
)


def skip_decimal_scan_of_numeric_arrays() -> None:
    """What-if: GX's ``column.mean``/``column.standard_deviation`` without their ``Decimal`` scan on
    arrays that cannot hold a ``Decimal``. Patches this process only.

    GX's pandas metrics call ``does_ndarray_contain_decimal_dtype`` on the whole column before the one
    vectorised call computing the statistic: ``any(isinstance(v, Decimal) for v in data)``, a Python
    loop over every value. Only an ``object`` array can hold a ``Decimal``, so for the others the
    answer is known; the scan still runs on ``object`` arrays.
    """
    import great_expectations.util as gx_util

    gx_util.does_ndarray_contain_decimal_dtype = numeric_arrays_skipped(
        gx_util.does_ndarray_contain_decimal_dtype
    )


def numeric_arrays_skipped(scan: Callable[[Any], bool]) -> Callable[[Any], bool]:
    """GX's ``Decimal`` scan ``scan``, answered without scanning for an array that is not ``object``."""

    def numeric_skip(data: Any) -> bool:
        return bool(data.dtype == object and scan(data))

    return numeric_skip


def gx_child(params: dict[str, Any], probe: Any) -> dict[str, Any]:
    # Library imports are outside the measured section on both sides (the baseline's pandas too):
    # the adapter imports GX lazily, so it is imported here first.
    with probe.timed("import"):
        import great_expectations  # noqa: F401
        import pandas as pd

        from mloops.adapters.gx_adapter import validate_dataframe
    if params.get("what_if") == WHAT_IF:
        skip_decimal_scan_of_numeric_arrays()
    specs = json.loads(Path(params["suite"]).read_text())
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
    return {"verdicts": verdicts}


def pandas_child(params: dict[str, Any], probe: Any) -> dict[str, Any]:
    with probe.timed("import"):
        import pandas as pd

        from bench.pandas_checks import run_checks
    specs = json.loads(Path(params["suite"]).read_text())
    probe.mark_base()
    frame = pd.read_parquet(params["data"])
    with probe.timed("validate"):
        results = run_checks(frame, specs)
    return {"verdicts": {f"{r['type']}({r['column'] or ''})": bool(r["success"]) for r in results}}


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
    runs: dict[str, list[Run]] = {"gx": [], "pandas": [], WHAT_IF: []}
    for repeat, variant in interleaved(repeats, ["pandas", "gx", WHAT_IF]):
        # Each GX run starts from a new project (a model's first night: the suite is stored then too).
        project = folder / f"gx-project-{variant}-{repeat}"
        params = {"data": str(data), "suite": str(suite), "project_dir": str(project), "what_if": variant}
        runs[variant].append(
            ws.run(
                f"bench.validation:{'pandas' if variant == 'pandas' else 'gx'}_child",
                params,
                env=env,
                label=f"validation {variant} #{repeat}",
                attribute="validate" if variant == "gx" and repeat == 0 else None,
            )
        )
    ours, theirs = runs["gx"][-1].result["verdicts"], runs["pandas"][-1].result["verdicts"]
    disagreements = sorted(k for k in set(ours) | set(theirs) if ours.get(k) is not theirs.get(k))
    if runs[WHAT_IF][-1].result["verdicts"] != ours:
        raise RuntimeError(f"the what-if {WHAT_IF} changed GX's verdicts")
    return {
        "title": "Validation",
        "subject": "mloops.adapters.gx_adapter.validate_dataframe (GX file context, checkpoint, Data Docs)",
        "baseline": "the same expectations as vectorised pandas (bench/pandas_checks.py)",
        "cases": [
            case(
                f"{rows:,} rows x {prep['expectations']} expectations",
                rows,
                "validate_dataframe incl. Data Docs vs the same checks in pandas (s; Parquet read excluded)",
                runs["gx"],
                runs["pandas"],
                wall("validate"),
                cpu("validate"),
                extra={
                    "expectations": prep["expectations"],
                    "verdicts_agree": not disagreements,
                    "disagreements": disagreements,
                    "import_s": {
                        "gx": runs["gx"][-1].time("import"),
                        "pandas": runs["pandas"][-1].time("import"),
                    },
                },
                data_bytes=prep["data_bytes"],
                alternatives=[
                    alternative(
                        WHAT_IF,
                        WHAT_IF_TEXT,
                        runs[WHAT_IF],
                        runs["pandas"],
                        wall("validate"),
                        cpu("validate"),
                    )
                ],
            )
        ],
    }
