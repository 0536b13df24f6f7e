"""Benchmark 5: a drift check of 1M current vs 1M reference rows, Evidently (through mloops) vs scipy.

Inputs: the wide model's frame (:func:`bench.datasets.wide_frame`: churn + 22 derived features, 32
features) for a reference day and for a current day under churn's ``covariate_drift`` scenario (three
numeric columns shifted, ``contract_type`` mixed towards month-to-month, the derived columns following),
so some columns drift and others do not; plus a ``prediction`` column (a fixed logistic score of the
features, standing in for the champion's scores). Both are written to Parquet once.

Each run reads both in a fresh process, then (timed) samples each side to the sample size with the
same fixed seed and runs the drift tests pinned by the wide model's ``monitoring:`` config (Wasserstein
distance (normed) for numeric columns and the prediction, Jensen-Shannon distance for categorical ones):
the subject through ``mloops.stages.compare_samples`` (``mloops.monitoring`` + the Evidently adapter; the
calls ``stages.check_drift`` makes, Evidently report saved as HTML + JSON), the baseline with
:mod:`bench.drift_checks` (scipy, a JSON report). Both report a score and a verdict per column, and
the benchmark checks they agree.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from bench.harness import Run, Workspace, alternative, case, cpu, interleaved, wall

REFERENCE_DAY = dt.date(2026, 1, 9)
CURRENT_DAY = dt.date(2026, 1, 10)
PREDICTION = "prediction"
#: Scores of the two implementations must agree this closely (same inputs, same formulas).
SCORE_TOLERANCE = 1e-6


def _prediction(frame: Any) -> Any:
    """A fixed logistic score of a few features: the stand-in for the champion's scores."""
    import numpy as np

    z = (
        -1.0
        + 0.03 * (frame["monthly_charges"].to_numpy(dtype="float64") - 70.0)
        - 0.04 * frame["tenure_months"].to_numpy(dtype="float64")
        + 0.25 * frame["support_calls"].to_numpy(dtype="float64")
        + 0.8 * (frame["contract_type"].astype(str) == "month-to-month").to_numpy()
    )
    return np.round(1.0 / (1.0 + np.exp(-z)), 6)


def prep_child(params: dict[str, Any], probe: Any) -> dict[str, Any]:
    """Write both sides and the plan (columns, pinned methods, thresholds); report their sizes."""
    import pandas as pd

    from bench import datasets
    from bench.harness import examples
    from mloops import monitoring
    from mloops.config_files import load_model_config

    rows = params["rows"]
    drift = examples().Scenario("covariate_drift", CURRENT_DAY, CURRENT_DAY)
    config = None
    sizes = {}
    for side, day, scenarios in (
        ("reference", REFERENCE_DAY, ()),
        ("current", CURRENT_DAY, (drift,)),
    ):
        frame, names = datasets.wide_frame(rows, day, scenarios=scenarios)
        if config is None:
            config_path = datasets.write_yaml(
                Path(params["models_dir"]) / f"{datasets.WIDE_MODEL}.yaml",
                datasets.wide_config("unused/dt={ds}/part.parquet", names),
            )
            config = load_model_config(config_path)
        frame = frame[config.feature_names]
        frame[PREDICTION] = _prediction(frame)
        frame.to_parquet(params[side], index=False)
        del frame
        read_back = pd.read_parquet(params[side])
        sizes[side] = int(read_back.memory_usage(deep=True).sum())
        del read_back
    assert config is not None
    m = config.monitoring
    plan = {
        "config": str(config_path),
        "numeric": config.numeric_features,
        "categorical": config.categorical_features,
        "methods": {c: list(monitoring.method_for(config, c)) for c in config.feature_names},
        "prediction": [PREDICTION, m.numeric_method, m.prediction_threshold],
        "drift_share": m.drift_share,
        "seed": m.seed,
        "default_sample_size": m.sample_size,
        "scenario": {"kind": drift.kind, "params": dict(drift.params) or "defaults"},
    }
    Path(params["plan"]).write_text(json.dumps(plan))
    return {
        "rows": rows,
        "features": len(config.feature_names),
        "columns": len(config.feature_names) + 1,
        "data_bytes": sizes["reference"] + sizes["current"],
        "data_bytes_by_side": sizes,
        "default_sample_size": m.sample_size,
    }


def _read_sides(params: dict[str, Any], probe: Any) -> tuple[Any, Any]:
    """Both sides' frames, read before the timed check (a task reads them before it checks too)."""
    import pandas as pd

    with probe.timed("read"):
        return pd.read_parquet(params["reference"]), pd.read_parquet(params["current"])


def _sampled(sample: Any, sides: tuple[Any, Any], size: int, seed: int, probe: Any) -> tuple[Any, Any]:
    """Each side sampled by ``sample`` (mloops' or the baseline's), timed as the check's ``sample``."""
    with probe.timed("sample"):
        return sample(sides[0], size, seed), sample(sides[1], size, seed)


def mloops_child(params: dict[str, Any], probe: Any) -> dict[str, Any]:
    with probe.timed("import"):
        import pandas  # noqa: F401 - here, not in the measured read

        from mloops import monitoring

        # The library imports the task pays, here as scipy's are on the baseline side: outside the timed
        # check (a warm task process has them already, see mloops.warm).
        from mloops.adapters import evidently_adapter, evidently_drift  # noqa: F401
        from mloops.config_files import load_model_config
        from mloops.stages.drift import compare_samples
    plan = json.loads(Path(params["plan"]).read_text())
    config = load_model_config(plan["config"])
    size, seed = params["sample_size"], plan["seed"]
    probe.mark_base()
    sides = _read_sides(params, probe)
    with probe.timed("check"):
        reference_sample, current_sample = _sampled(monitoring.sample, sides, size, seed, probe)
        # The plan's prediction test and drift share are the config's (see the plan builder above).
        snapshot, unevaluable = compare_samples(
            config, reference_sample, current_sample, Path(params["out_dir"])
        )
        found = monitoring.summarize(config, snapshot, unevaluable)
    columns = {c.column: {"score": c.score, "drifted": c.drifted} for c in found.columns}
    if found.prediction is not None:
        columns[PREDICTION] = {"score": found.prediction.score, "drifted": found.prediction.drifted}
    return {
        "rows": [len(reference_sample), len(current_sample)],
        "columns": columns,
        "share": found.share,
    }


#: The measured alternative of each case (:func:`tests_only_child`).
WHAT_IF = "tests_only"
WHAT_IF_TEXT = (
    "Evidently's pinned tests alone on the same samples (the stattests its report runs, with its NaN "
    "cleaning, a JSON of the scores): no report, so no chart data, plotly figures or HTML"
)


def tests_only_child(params: dict[str, Any], probe: Any) -> dict[str, Any]:
    """What-if: the drift check without Evidently's report. What it costs beyond this is the report.

    The same samples as :func:`mloops_child` (``monitoring.sample``), each column's pinned test run the
    way ``get_one_column_drift`` runs it (infinities and NaNs dropped, then ``get_stattest``), and the
    scores written as JSON like the scipy baseline's.
    """
    with probe.timed("import"):
        import numpy as np
        import pandas  # noqa: F401 - here, not in the measured read
        from evidently.legacy.calculations.stattests import get_stattest
        from evidently.legacy.core import ColumnType

        from mloops import monitoring
    plan = json.loads(Path(params["plan"]).read_text())
    size, seed = params["sample_size"], plan["seed"]
    column, method, threshold = plan["prediction"]
    methods = {**plan["methods"], column: [method, threshold]}
    categorical = set(plan["categorical"])
    probe.mark_base()
    sides = _read_sides(params, probe)
    with probe.timed("check"):
        reference_sample, current_sample = _sampled(monitoring.sample, sides, size, seed, probe)
        found = {}
        for name, (test, limit) in methods.items():
            kind = ColumnType.Categorical if name in categorical else ColumnType.Numerical
            ref = reference_sample[name].replace([-np.inf, np.inf], np.nan).dropna()
            cur = current_sample[name].replace([-np.inf, np.inf], np.nan).dropna()
            result = get_stattest(ref, cur, kind, test)(ref, cur, kind, limit)
            found[name] = {"score": float(result.drift_score), "drifted": bool(result.drifted)}
        features = [v for c, v in found.items() if c != column]
        share = sum(v["drifted"] for v in features) / len(features)
        out = Path(params["out_dir"])
        out.mkdir(parents=True, exist_ok=True)
        (out / "drift.json").write_text(json.dumps({"columns": found, "share": share}, indent=2))
    return {"rows": [len(reference_sample), len(current_sample)], "columns": found, "share": share}


def scipy_child(params: dict[str, Any], probe: Any) -> dict[str, Any]:
    with probe.timed("import"):
        import pandas  # noqa: F401 - here, not in the measured read
        import scipy.spatial.distance  # noqa: F401
        import scipy.stats  # noqa: F401

        from bench import drift_checks
    plan = json.loads(Path(params["plan"]).read_text())
    size, seed = params["sample_size"], plan["seed"]
    column, method, threshold = plan["prediction"]
    methods = {**plan["methods"], column: [method, threshold]}
    probe.mark_base()
    sides = _read_sides(params, probe)
    with probe.timed("check"):
        reference_sample, current_sample = _sampled(drift_checks.sample, sides, size, seed, probe)
        found = drift_checks.column_drift(reference_sample, current_sample, methods)
        features = [v for c, v in found.items() if c != column]
        share = sum(bool(v["drifted"]) for v in features) / len(features)
        out = Path(params["out_dir"])
        out.mkdir(parents=True, exist_ok=True)
        (out / "drift.json").write_text(json.dumps({"columns": found, "share": share}, indent=2))
    return {
        "rows": [len(reference_sample), len(current_sample)],
        "columns": {c: {"score": v["score"], "drifted": v["drifted"]} for c, v in found.items()},
        "share": share,
    }


def _agreement(subject: Run, baseline: Run) -> dict[str, Any]:
    ours, theirs = subject.result["columns"], baseline.result["columns"]
    common = sorted(set(ours) & set(theirs))
    disagreements = [c for c in common if bool(ours[c]["drifted"]) is not bool(theirs[c]["drifted"])]
    differences = [
        abs(ours[c]["score"] - theirs[c]["score"])
        for c in common
        if ours[c]["score"] is not None and theirs[c]["score"] is not None
    ]
    only_one_side = sorted(set(ours) ^ set(theirs))
    return {
        "columns_compared": len(common),
        "verdicts_agree": not disagreements and not only_one_side,
        "disagreements": disagreements + [f"only one side: {c}" for c in only_one_side],
        "max_score_difference": max(differences) if differences else None,
        "scores_agree": bool(differences) and max(differences) <= SCORE_TOLERANCE,
        "drifted_mloops": sorted(c for c in ours if ours[c]["drifted"]),
        "drifted_scipy": sorted(c for c in theirs if theirs[c]["drifted"]),
        "share_mloops": subject.result["share"],
        "share_scipy": baseline.result["share"],
    }


def _label(size: int, rows: int) -> str:
    return "unsampled" if size >= rows else f"sample {size:,} per side"


def run(
    ws: Workspace,
    *,
    rows: int,
    sample_sizes: list[int],
    repeats: list[int],
    also_rows: tuple[int, ...] = (),
) -> dict[str, Any]:
    """``repeats[i]`` runs of each side at ``sample_sizes[i]`` (the unsampled case may get fewer); then,
    for each of ``also_rows`` (reported, not judged: budgets are at 1M rows), one unsampled case of that
    many rows per side with the most repeats."""
    out = _run(ws, "drift", rows=rows, sample_sizes=sample_sizes, repeats=repeats)
    for extra_rows in also_rows:
        more = _run(
            ws, f"drift-{extra_rows}", rows=extra_rows, sample_sizes=[extra_rows], repeats=[max(repeats)]
        )
        out["cases"] += more["cases"]
        out["setup"][f"data_bytes_by_side_{extra_rows}"] = more["setup"]["data_bytes_by_side"]
    return out


def _run(
    ws: Workspace, name: str, *, rows: int, sample_sizes: list[int], repeats: list[int]
) -> dict[str, Any]:
    folder = ws.path(name)
    files = {side: str(folder / f"{side}.parquet") for side in ("reference", "current")}
    plan_path = folder / "plan.json"
    env = ws.env(MLOOPS_HOME=str(ws.path(name, "mloops-home")))
    prep = ws.run(
        "bench.drift:prep_child",
        {**files, "rows": rows, "plan": str(plan_path), "models_dir": str(ws.path(name, "models"))},
        env=env,
        label=f"drift prep {rows}",
    ).result
    plan = json.loads(plan_path.read_text())
    cases = []
    for size, count in zip(sample_sizes, repeats, strict=True):
        runs: dict[str, list[Run]] = {"mloops": [], "scipy": [], WHAT_IF: []}
        for repeat, variant in interleaved(count, ["scipy", "mloops", WHAT_IF]):
            params = {
                **files,
                "plan": str(plan_path),
                "sample_size": size,
                "out_dir": str(folder / f"out-{size}-{variant}-{repeat}"),
            }
            runs[variant].append(
                ws.run(
                    f"bench.drift:{variant}_child",
                    params,
                    env=env,
                    label=f"drift {variant} {rows} rows sample {size} #{repeat}",
                    attribute="check" if variant == "mloops" and repeat == 0 else None,
                )
            )
        ours, theirs = runs["mloops"], runs["scipy"]
        tried = _agreement(runs[WHAT_IF][-1], ours[-1])
        if not (tried["verdicts_agree"] and tried["scores_agree"]):
            raise RuntimeError(f"the what-if {WHAT_IF} disagrees with the report's tests: {tried}")
        cases.append(
            case(
                f"{rows:,} vs {rows:,} rows x {prep['columns']} columns, {_label(size, rows)}",
                rows,
                "sample both sides + pinned drift tests + report: mloops/Evidently vs scipy (s; Parquet "
                "read excluded)",
                ours,
                theirs,
                wall("check"),
                cpu("check"),
                sample_size=min(size, rows),
                data_bytes=prep["data_bytes"],
                extra={
                    "rows_compared": ours[-1].result["rows"],
                    "import_s": {"mloops": ours[-1].time("import"), "scipy": theirs[-1].time("import")},
                    **_agreement(ours[-1], theirs[-1]),
                },
                alternatives=[
                    alternative(WHAT_IF, WHAT_IF_TEXT, runs[WHAT_IF], theirs, wall("check"), cpu("check"))
                ],
            )
        )
    return {
        "title": "Drift check at 1M rows",
        "subject": "mloops.monitoring (sample, summarize) + mloops.stages.drift.compare_samples "
        "(Evidently with the pinned per-column tests, each column's drift computed once: "
        "mloops.adapters.evidently_drift PinnedDriftTable + PinnedValueDrift on the prediction; HTML "
        "+ JSON saved)",
        "baseline": "the same tests with scipy (bench/drift_checks.py: wasserstein / std(reference), "
        "scipy.spatial.distance.jensenshannon on category frequencies), same samples, a JSON report",
        "cases": cases,
        "setup": {
            "rows_per_side": rows,
            "features": prep["features"],
            "numeric": len(plan["numeric"]),
            "categorical": len(plan["categorical"]),
            "methods": sorted({tuple(v) for v in plan["methods"].values()}),
            "prediction": plan["prediction"],
            "drift_share": plan["drift_share"],
            "default_sample_size": prep["default_sample_size"],
            "scenario": plan["scenario"],
            "data_bytes_by_side": prep["data_bytes_by_side"],
        },
    }
