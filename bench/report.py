"""The machine description and the Markdown rendering of results.json.

``python -m bench.report bench/results/results.json`` re-renders the Markdown from the JSON.
"""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import json
import os
import platform
import sys
from pathlib import Path
from typing import Any

PACKAGES = (
    "apache-airflow",
    "apache-airflow-task-sdk",
    "great_expectations",
    "mlflow",
    "scikit-learn",
    "pandas",
    "numpy",
    "pyarrow",
    "pydantic",
    "skops",
    "evidently",
)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict[str, Any]:
    import psutil

    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return {
        "cpu": _cpu_model(),
        "logical_cores": os.cpu_count(),
        "physical_cores": psutil.cpu_count(logical=False),
        "cpu_affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "ram_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "os": platform.platform(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "packages": versions,
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "loadavg_1m_start": round(os.getloadavg()[0], 2),
    }


def _num(value: Any, digits: int = 3) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.{digits}f}" if abs(value) < 1000 else f"{value:,.0f}"
    return str(value)


def _ratio(value: Any) -> str:
    return "n/a" if value is None else f"{value:.2f}x"


def _mb(value: Any) -> str:
    return "n/a" if value is None else f"{value:,.0f}"


def _case_rows(cases: list[dict[str, Any]]) -> list[str]:
    lines = [
        "| Case | Subject (s) | Baseline (s) | Ratio | CPU ratio | Peak RSS MB (subj / base) | Working MB (subj / base) "
        "| Data MB | Mem / data (subj / base) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for case in cases:
        if case.get("status"):
            lines.append(f"| {case['name']} | {case['status']} | | | | | | | {case.get('note', '')} |")
            continue
        s, b = case["subject"], case["baseline"]
        data = case.get("data_bytes")
        mem = (
            "n/a"
            if case.get("memory_ratio") is None
            else f"{case['memory_ratio']:.2f}x / {_ratio(case.get('baseline_memory_ratio'))}"
        )
        ratio = (
            _ratio(case.get("ratio")) if case.get("ratio") is not None else (case.get("ratio_note") or "n/a")
        )
        lines.append(
            f"| {case['name']} | {_num(s.get('time_s'))} | {_num(b.get('time_s'))} | {ratio} | {_ratio(case.get('cpu_ratio'))} "
            f"| {_mb(s.get('peak_rss_mb'))} / {_mb(b.get('peak_rss_mb'))} | {_mb(s.get('peak_delta_mb'))} / {_mb(b.get('peak_delta_mb'))} "
            f"| {_mb(data / 2**20) if data else 'n/a'} | {mem} |"
        )
    return lines


def _notes(name: str, result: dict[str, Any]) -> list[str]:
    """The few extra figures worth reading per benchmark (everything else is in results.json)."""
    notes: list[str] = []
    cases = [c for c in result.get("cases", []) if not c.get("status")]
    if name == "dag_parse":
        for case in cases:
            extra = case.get("extra", {})
            if "dagbag_stats" in extra and case is max(
                (c for c in cases if c.get("size")), key=lambda c: c["size"]
            ):
                files = ", ".join(f"`{s['file']}` {s['duration_s']:.2f}s" for s in extra["dagbag_stats"])
                notes.append(f"Per-file parse durations at {case['size']} models (dagbag_stats): {files}.")
                notes.append(
                    f"{extra['dags']} DAGs / {extra['tasks']} tasks; tasks per DAG for each model {extra['floor_shape_per_model']}, "
                    f"model-independent DAGs {extra['floor_shape_fixed'] or 'none'} (the floor builds the same)."
                )
            if "modules_added" in extra:
                notes.append(
                    f"Import chain adds {extra['modules_added']} modules (packages: {', '.join(extra['packages_added'])}); "
                    f"heavy modules loaded at parse time: {', '.join(extra['heavy_modules_loaded']) or 'none'}."
                )
    if name == "fleet_scale":
        for case in cases:
            parts = case["extra"]["parts"]
            notes.append(
                "Parts (subject / floor, ratio): "
                + "; ".join(
                    f"{p} {v['subject_s']:.2f}s / {v['baseline_s']:.2f}s ({_ratio(v['ratio'])})"
                    for p, v in parts.items()
                )
                + f". Processor->manager payload: {case['extra']['payload_bytes_subject']:,} B vs "
                f"{case['extra']['payload_bytes_baseline']:,} B ({_ratio(case['extra']['payload_ratio'])})."
            )
    if name == "validation":
        for case in cases:
            extra = case["extra"]
            parts = extra["gx_parts_s"]
            notes.append(
                f"GX without the Data Docs action: {extra['gx_without_data_docs_s']:.2f}s "
                f"({_ratio(extra['ratio_without_data_docs'])} pandas). GX time split: setup and result handling "
                f"{parts['context_suite_checkpoint_setup_and_result']:.2f}s, validation {parts['validation']:.2f}s, "
                f"Data Docs {parts['data_docs_action']:.2f}s. Importing GX: {extra['gx_import_s']:.2f}s (not in the ratio)."
            )
            notes.append(
                f"Throughput: GX {extra['rows_per_s_gx']:,} rows/s, pandas {extra['rows_per_s_pandas']:,} rows/s. "
                f"Verdicts agree on all {extra['expectations']} expectations: {extra['verdicts_agree']}"
                + (f" (disagreements: {extra['disagreements']})" if extra["disagreements"] else "")
                + "."
            )
    if name == "pipeline":
        setup = result.get("setup", {})
        if setup:
            notes.append(
                f"{setup['features']} features, {setup['expectations']} expectations, estimator {setup['estimator']}, "
                f"window {setup['window_days']} day; warm-up champion trained on {setup['warm_up_rows']:,} rows."
            )
        if setup.get("reference_rows") is not None:
            mon = setup["monitoring"]
            notes.append(
                f"score and drift (other DAGs than training, not in the whole-pipeline row): the champion is the warm-up "
                f"model; its recorded training reference has {setup['reference_rows']:,} rows (the plain script's "
                f"{setup['plain_reference_rows']:,}); check_drift samples each side to monitoring.sample_size = "
                f"{mon['sample_size']:,} (the plain script the same, same seed); monitoring window {mon['window_days']} "
                f"days, of which only the day's partition is validated and scored, so the current data is that "
                f"partition; tests {', '.join(f'{m} >= {t}' for m, t in setup['drift_methods'])}."
            )
        for case in cases:
            if case.get("stage") == "pipeline":
                extra = case["extra"]
                notes.append(
                    f"{case['name']}: library imports {extra['imports_subject_s']:.1f}s across the stage processes vs "
                    f"{extra['imports_baseline_s']:.1f}s once in the script; holdout roc_auc {_num((extra['metrics_subject'] or {}).get('roc_auc'))} "
                    f"vs {_num(extra['metrics_baseline'].get('roc_auc'))}."
                )
            if case.get("stage") in ("score", "drift") and case.get("extra"):
                extra = case["extra"]
                text = (
                    f"{case['name']}: parts (s) mloops {_parts(extra['parts_subject_s'])}; plain "
                    f"{_parts(extra['parts_baseline_s'])}; imports {case['subject']['imports_s']:.1f}s vs "
                    f"{extra['imports_baseline_s']:.1f}s (not in the ratio)."
                )
                if case["stage"] == "drift":
                    rows = extra["rows_compared_mloops"]
                    text += (
                        f" Rows compared: current {rows['current']:,} / reference {rows['reference']:,} "
                        f"(plain {extra['rows_compared_plain']['current']:,} / {extra['rows_compared_plain']['reference']:,}). "
                        f"Drifted: mloops {extra['drifted_mloops'] or 'none'}, plain {extra['drifted_plain'] or 'none'}; "
                        f"verdicts agree: {extra['verdicts_agree']} (largest feature score {extra['max_score_mloops']:.4f} "
                        f"vs {extra['max_score_plain']:.4f})."
                    )
                notes.append(text)
    if name == "drift":
        setup = result.get("setup", {})
        if setup:
            notes.append(
                f"{setup['rows_per_side']:,} rows per side, {setup['features']} features ({setup['numeric']} numeric, "
                f"{setup['categorical']} categorical) + the prediction column; tests "
                f"{', '.join(f'{m} >= {t}' for m, t in setup['methods'])} (prediction {setup['prediction'][1]} >= "
                f"{setup['prediction'][2]}); current day under churn's covariate_drift scenario; default "
                f"monitoring.sample_size {setup['default_sample_size']:,}."
            )
        for case in cases:
            extra = case["extra"]
            notes.append(
                f"{case['name']} ({case['subject']['repeats']} repeat(s)): mloops parts (s) {_parts(extra['parts_mloops_s'])}; "
                f"scipy {_parts(extra['parts_scipy_s'])}. Verdicts agree on all {extra['columns_compared']} columns: "
                f"{extra['verdicts_agree']}"
                + (f" (disagreements: {extra['disagreements']})" if extra["disagreements"] else "")
                + f"; largest score difference {extra['max_score_difference']:.2e}; drifted "
                f"({len(extra['drifted_mloops'])}): {', '.join(extra['drifted_mloops']) or 'none'}."
            )
    return notes


def _parts(parts: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:.2f}" for k, v in parts.items())


def _provenance(results: dict[str, Any]) -> list[str]:
    """For merged results (``--only``): which sections this run measured, and each section's wall time."""
    walls, kept = [], []
    for name, result in results["benchmarks"].items():
        measured_in = result.get("measured_in") or {}
        if measured_in.get("section_wall_s") is not None:
            walls.append(f"{name} {measured_in['section_wall_s']:.0f}")
        if measured_in.get("started_at") and measured_in["started_at"] != results["started_at"]:
            kept.append(f"`{name}` ({measured_in['started_at']})")
    lines = []
    if kept:
        lines.append(
            f"Sections kept from earlier runs of the same mode (this run re-measured the others): {', '.join(kept)}."
        )
    if walls:
        lines.append(
            f"Wall time per section (s; dag_parse and fleet_scale share one): {', '.join(walls)}"
            + (
                f"; not recorded for {len(results['benchmarks']) - len(walls)} older section(s)"
                if len(walls) < len(results["benchmarks"])
                else ""
            )
            + "."
        )
    return [line for text in lines for line in (text, "")]


def render(results: dict[str, Any]) -> str:
    m = results["machine"]
    packages = ", ".join(f"{k} {v}" for k, v in m["packages"].items() if v)
    minutes, seconds = divmod(int(results["wall_s"]), 60)
    lines = [
        "# mloops benchmarks",
        "",
        f"Generated by `{results['command'].strip()}` (mode **{results['mode']}**, {results['settings']['repeats']} repeat(s) per case) "
        f"on {results['started_at']}; wall time {minutes} min {seconds} s. Machine-readable: `results.json`.",
        "",
        *_provenance(results),
        "## Machine",
        "",
        "| | |",
        "|---|---|",
        f"| CPU | {m['cpu']}, {m['logical_cores']} logical cores ({m['physical_cores']} physical) |",
        f"| RAM | {m['ram_gib']} GiB |",
        f"| OS | {m['os']} |",
        f"| Python | {m['python']} |",
        f"| Packages | {packages} |",
        f"| Load average (1 min) at start / end | {m['loadavg_1m_start']} / {m.get('loadavg_1m_end', 'n/a')} |",
        "",
        "## Budgets",
        "",
        "| Budget | Limit | Measured | Status |",
        "|---|---:|---:|---|",
    ]
    for budget in results["budgets"]:
        status = {"met": "**met**", "not met": "**NOT MET**"}.get(budget["status"], budget["status"])
        lines.append(f"| {budget['text']} | {budget['limit']}x | {_ratio(budget['measured'])} | {status} |")
    memory = next((b for b in results["budgets"] if b["id"] == "memory_3x"), None)
    if memory and memory.get("cases"):
        judged = "; ".join(f"{c['case']} {c['ratio']:.2f}x" for c in memory["cases"])
        lines += ["", f"Memory budget, judged cases: {judged}."]
    lines += [
        "",
        "## How to read this",
        "",
        "- Every run of every case is a fresh Python process (`bench/child.py`). Subject and baseline runs alternate "
        "(ABBA order over repeats); **Ratio** is the median over repeats of subject / baseline of back-to-back pairs, "
        "so load from other processes on the machine hits both sides. Times are medians, wall clock.",
        "- **CPU ratio**: the same ratio on the process's CPU seconds (all threads), a cross-check when the machine is "
        "loaded (see the load average above).",
        "- **Peak RSS**: `ru_maxrss` of the child from `os.wait4`. **Working MB**: peak RSS minus the RSS just before "
        "the measured work, after the case's imports (for the plain training script's steps, a 10 ms RSS sampler; the "
        "plain scoring and drift scripts run in their own processes). "
        "**Mem / data**: working MB over the `memory_usage(deep=True)` of the DataFrame the case reads.",
        "- Budgets are judged only at the sizes they name; other modes report them as not measured.",
        "",
    ]
    for index, (name, result) in enumerate(results["benchmarks"].items(), start=1):
        lines += [f"## {index}. {result.get('title', name)} (`{name}`)", ""]
        if result.get("error"):
            lines += [f"**Error:** `{result['error'][:800]}`", ""]
            continue
        measured_in = result.get("measured_in") or {}
        if measured_in.get("started_at") and measured_in["started_at"] != results["started_at"]:
            lines += [
                f"*Kept from an earlier run: `{(measured_in.get('command') or '').strip()}` on {measured_in['started_at']} "
                f"({measured_in.get('repeats')} repeat(s)); this run did not re-measure it.*",
                "",
            ]
        lines += [f"Subject: {result['subject']}. Baseline: {result['baseline']}.", ""]
        metrics = sorted({c["metric"] for c in result["cases"] if c.get("metric")})
        lines += [f"Measured: {'; '.join(metrics)}.", ""]
        lines += _case_rows(result["cases"])
        notes = _notes(name, result)
        if notes:
            lines += [""] + [f"- {n}" for n in notes]
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    path = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).parent / "results" / "results.json")
    path.with_suffix(".md").write_text(render(json.loads(path.read_text())))
