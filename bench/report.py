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

from bench import attribution

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
        "| Case | Subject (s) | Baseline (s) | Ratio | CPU ratio | Working MB (subj / base) | Memory ratio |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for case in cases:
        s, b = case["subject"], case["baseline"]
        ratio = (
            _ratio(case.get("ratio")) if case.get("ratio") is not None else (case.get("ratio_note") or "n/a")
        )
        if case.get("excess_s") is not None:
            ratio += f" (+{case['excess_s']:.2f} s)"
        lines.append(
            f"| {case['name']} | {_num(s.get('time_s'))} | {_num(b.get('time_s'))} | {ratio} "
            f"| {_ratio(case.get('cpu_ratio'))} | {_mb(s.get('peak_delta_mb'))} / "
            f"{_mb(b.get('peak_delta_mb'))} "
            f"| {_ratio(case.get('memory_ratio'))} |"
        )
    return lines


def _notes(name: str, result: dict[str, Any]) -> list[str]:
    """The few extra figures worth reading per benchmark (everything else is in results.json)."""
    notes: list[str] = []
    for case in result.get("cases", []):
        extra = case.get("extra") or {}
        if name == "dag_parse":
            files = ", ".join(f"`{s['file']}` {s['duration_s']:.2f}s" for s in extra["dagbag_stats"])
            notes.append(
                f"{case['name']}: {extra['dags']} DAGs / {extra['tasks']} tasks; per file {files}; slowest "
                f"{extra['slowest_file_s']:.2f}s of the {extra['import_timeout_s']:.0f}s import timeout; "
                f"cold parse (no "
                f"config index yet) {extra.get('cold_parse_s', float('nan')):.2f}s; heavy "
                f"modules at parse time: {', '.join(extra['heavy_modules_loaded']) or 'none'}."
            )
        elif name == "fleet" and case.get("stage") in ("night", "night_warm"):
            notes.append(
                f"{case['name']}: wall {case['subject']['process_wall_s']:.1f}s vs "
                f"{case['baseline']['process_wall_s']:.1f}s "
                f"({_ratio(case.get('wall_ratio'))}); task start-to-end summed {extra['task_wall_s']:.1f}s; "
                f"CPU per DAG process {extra['per_dag_cpu_s']}; "
                f"wall per DAG process {extra['per_dag_wall_s']}."
                + (
                    " Airflow's floor (the same DAG shapes of EmptyOperators through dag.test, "
                    + (
                        "forked from the same warm parent"
                        if case.get("stage") == "night_warm"
                        else "fresh processes"
                    )
                    + f"): {extra['airflow_floor_cpu_s']:.1f} CPU s "
                    f"{extra['airflow_floor_per_dag_cpu_s']}; mloops above it "
                    f"{extra['mloops_above_floor_cpu_s']:.1f} CPU s ({_ratio(extra['ratio_above_floor'])} "
                    f"the plain night)."
                    + (
                        f" Paid once by the parent, not in the figure: imports "
                        f"{extra['parent_warm_up_cpu_s']:.1f} CPU s, the Execution API "
                        f"{extra['parent_api_up_cpu_s']:.1f} CPU s."
                        if "parent_api_up_cpu_s" in extra
                        else ""
                    )
                    if "airflow_floor_cpu_s" in extra
                    else ""
                )
            )
        elif name == "fleet" and case.get("stage") == "startup":
            parts = ", ".join(f"{k} {v:.2f}" for k, v in case["subject"]["parts_s"].items())
            notes.append(
                f"{case['name']}: {case['subject']['time_s']:.2f}s vs {case['baseline']['time_s']:.2f}s "
                f"(+{case['excess_s']:.2f}s; "
                f"parts {parts}); libraries loaded: {', '.join(extra['libraries_loaded']) or 'none'}."
            )
        elif name == "fleet_ui":
            notes.append(
                f"{case['name']}: "
                + ", ".join(f"{k.replace('_', ' ')} {v:,}" for k, v in extra.items())
                + "."
            )
        elif "verdicts_agree" in extra:
            notes.append(
                f"{case['name']}: verdicts agree: {extra['verdicts_agree']}"
                + (f" (disagreements: {extra['disagreements']})" if extra.get("disagreements") else "")
                + f"; imports (not in the ratio) {extra.get('import_s')}."
            )
        elif "imports_subject_s" in extra:
            notes.append(
                f"{case['name']}: library imports {extra['imports_subject_s']:.1f}s across the stage "
                f"processes vs "
                f"{extra['imports_baseline_s']:.1f}s once in the script; roc_auc {extra['roc_auc']}."
            )
    return notes + tried_lines(result) + _time_goes(result)


def tried_lines(result: dict[str, Any]) -> list[str]:
    """Per case: the alternatives measured beside it (what-ifs), against the case's baseline runs."""
    return [
        f"Measured alternative of {case['name']}: {tried['what']}: {_num(tried['subject'].get('time_s'))} s, "
        f"{_ratio(tried.get('ratio'))} the baseline (CPU {_ratio(tried.get('cpu_ratio'))}; "
        f"the case itself {_ratio(case.get('ratio'))})."
        for case in result.get("cases", [])
        for tried in case.get("alternatives") or []
    ]


def unmet_lines(budgets: list[dict[str, Any]]) -> list[str]:
    """For each budget not met: where its judged case's CPU time goes, and beyond the baseline."""
    lines = []
    for budget in budgets:
        evidence = ("attribution", "alternatives", "without_libraries")
        if budget["status"] != "not met" or not any(budget.get(key) for key in evidence):
            continue
        booked = budget.get("attribution")
        text = f"- **{budget['id']}** ({budget.get('case')}): "
        text += attribution.summary(booked) if booked else "not sampled"
        if booked and budget.get("baseline_attribution"):
            text += f"; beyond the baseline: {attribution.excess(booked, budget['baseline_attribution'])}"
        lines.append(text + ".")
        for tried in budget.get("alternatives") or []:
            lines.append(
                f"  - Tried in this run, {tried['what']}: **{_ratio(tried.get('ratio'))}** "
                f"({_num(tried['subject'].get('time_s'))} s; CPU ratio {_ratio(tried.get('cpu_ratio'))}), "
                f"against the same baseline runs."
            )
        without = budget.get("without_libraries")
        if without:
            parts = ", ".join(f"{lib} {s:.1f} s" for lib, s in without["libraries_s"].items())
            lines.append(
                f"  - Without what it spends beyond the baseline in libraries whose own budgets are not met "
                f"either ({parts}; from the sampled profile, not a run): {_num(without['subject_s'])} s, "
                f"**{_ratio(without['ratio'])}**."
            )
    if not lines:
        return []
    intro = (
        "Where the time of each budget not met goes (its judged case, sampled; see below), and what it "
        "was tried with in the same run:"
    )
    return ["", intro, "", *lines]


def _time_goes(result: dict[str, Any]) -> list[str]:
    """Per sampled case: where the subject's measured CPU time went (:mod:`bench.attribution`)."""
    notes = []
    for case in result.get("cases", []):
        booked = case.get("attribution")
        if not booked:
            continue
        notes.append(
            f"Where the CPU time goes, {case['name']} (one repeat sampled, {booked['samples']:,} samples of "
            f"{sum(booked['cpu_s'].values()):.1f} CPU s on Python threads"
            + (
                f"; {booked['unbooked_cpu_s']:.1f} CPU s more on native threads or the sampler"
                if booked.get("unbooked_cpu_s")
                else ""
            )
            + f"): {attribution.summary(booked)}."
        )
        if case.get("baseline_attribution"):
            base = case["baseline_attribution"]
            notes.append(
                f"The baseline's, sampled the same way ({sum(base['cpu_s'].values()):.1f} CPU s, imports "
                f"included): {attribution.shares(base)}. Beyond the baseline, by library: "
                f"{attribution.excess(booked, base)}."
            )
    return notes


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
            f"Sections kept from earlier runs of the same mode (this run re-measured the others): "
            f"{', '.join(kept)}."
        )
    if walls:
        lines.append(
            f"Wall time per section (s): {', '.join(walls)}"
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
        f"Generated by `{results['command'].strip()}` (mode **{results['mode']}**, "
        f"{results['settings']['repeats']} repeat(s) per case) "
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
        f"| Load average (1 min) at start / end | {m['loadavg_1m_start']} / "
        f"{m.get('loadavg_1m_end', 'n/a')} |",
        "",
        "## Budgets",
        "",
        "| Budget | Limit | Measured | Status |",
        "|---|---:|---:|---|",
    ]
    for budget in results["budgets"]:
        status = {"met": "**met**", "not met": "**NOT MET**"}.get(budget["status"], budget["status"])
        unit = budget.get("unit", "x")
        measured = "n/a" if budget["measured"] is None else f"{budget['measured']:.2f}{unit}"
        lines.append(f"| {budget['text']} | {budget['limit']}{unit} | {measured} | {status} |")
    lines += unmet_lines(results["budgets"])
    lines += [
        "",
        "## How to read this",
        "",
        "- Every run of every case is a fresh Python process (`bench/child.py`). Subject and baseline runs "
        "alternate "
        "(ABBA order over repeats); **Ratio** is the median over repeats of subject / baseline of "
        "back-to-back pairs, "
        "so load from other processes on the machine hits both sides. Times are medians, wall clock.",
        "- **CPU ratio**: the same ratio on the process's CPU seconds (all threads), a cross-check when the "
        "machine is "
        "loaded (see the load average above).",
        "- **Working MB**: peak RSS (`ru_maxrss` from `os.wait4`) minus the RSS just before the measured "
        "work, after "
        "the case's imports (for the plain training script's steps, a 10 ms RSS sampler). **Memory ratio**: "
        "the "
        "subject's working MB over the baseline's for the same stage and data.",
        "- **Fleet**: model-night figures are CPU seconds (user + system, `wait4`) of whole processes; "
        "start-up "
        "figures are process wall time from spawn to the stage code's first line, against a bare "
        "EmptyOperator task.",
        "- **Where the CPU time goes**: one repeat of the subject is sampled every 20 ms "
        "(`bench/attribution.py`): the CPU time of each Python thread is booked to mloops' own code, to "
        "`imports`, to the library the innermost mloops frame called (everything under that call), or to "
        "the package running with no mloops frame on the stack (`outside mloops: airflow` is "
        "`dag.test`'s machinery). Baselines are sampled the same way with the bench's script as the own "
        "code. A sample lands where the thread lets the sampler have the GIL, so pure-Python work between "
        "system calls (the DAG parse) is booked less precisely than library calls are.",
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
                f"*Kept from an earlier run: `{(measured_in.get('command') or '').strip()}` on "
                f"{measured_in['started_at']} "
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
