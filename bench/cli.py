"""``python -m bench``: run the benchmarks, check the budgets, write results.json and results.md."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench import dag_parse, drift, pipeline, validation
from bench.harness import REPO, Workspace
from bench.report import machine, render

RESULTS_DIR = REPO / "bench" / "results"


@dataclass(frozen=True)
class Mode:
    """Sizes and repeats of one run; budgets are judged only at the sizes they name."""

    repeats: int
    model_counts: tuple[int, ...]
    fleet: int
    validation_rows: int
    pipeline_rows: tuple[int, ...]
    #: Rows of the champion the pipeline starts from. At full sizes its training split exceeds the
    #: monitoring sample size (100,000), so its recorded drift reference is a full-size sample as in
    #: steady state (holdout 25%: 140,000 rows -> ~105,000 training rows).
    warm_up_rows: int
    drift_rows: int
    drift_sample_sizes: tuple[int, ...]
    #: Per sample size, at most this many repeats (None: the mode's repeats). Evidently on 1M
    #: unsampled rows per side takes over a minute, so the full run measures it once, and the
    #: default-sample case twice (one ABBA pair each way), to keep `make bench` under 15 minutes.
    drift_repeat_caps: tuple[int | None, ...]


MODES = {
    "full": Mode(
        3,
        (1, 100, 300),
        300,
        1_000_000,
        (100_000, 1_000_000),
        140_000,
        1_000_000,
        (100_000, 1_000_000),
        (2, 1),
    ),
    "quick": Mode(1, (1, 100, 300), 300, 1_000_000, (100_000,), 140_000, 1_000_000, (100_000,), (None,)),
    "smoke": Mode(1, (1, 3), 3, 5_000, (5_000,), 2_000, 5_000, (2_000, 5_000), (None, 1)),
}


@dataclass(frozen=True)
class Budget:
    id: str
    benchmark: str
    text: str
    limit: float
    measure: Callable[[dict[str, Any]], float | None]


def _case_ratio(
    benchmark: str, size: int, stage: str | None = None
) -> Callable[[dict[str, Any]], float | None]:
    def measure(benchmarks: dict[str, Any]) -> float | None:
        for case in benchmarks.get(benchmark, {}).get("cases", []):
            if case.get("size") == size and (stage is None or case.get("stage") == stage):
                return case.get("ratio")
        return None

    return measure


def _worst_case_ratio(benchmark: str, size: int) -> Callable[[dict[str, Any]], float | None]:
    """The highest ratio over the benchmark's cases at ``size`` (e.g. every sample size measured)."""

    def measure(benchmarks: dict[str, Any]) -> float | None:
        ratios = [
            c["ratio"]
            for c in benchmarks.get(benchmark, {}).get("cases", [])
            if c.get("size") == size and c.get("ratio") is not None
        ]
        return max(ratios) if ratios else None

    return measure


#: Memory is judged where the data dominates fixed costs; smaller cases are reported, not judged.
MEMORY_MIN_ROWS = 100_000


def memory_cases(benchmarks: dict[str, Any]) -> list[tuple[str, str, float]]:
    """``(benchmark, case, ratio)`` for every judged case whose memory is compared with its data."""
    out = []
    for name, result in benchmarks.items():
        for case in result.get("cases", []):
            if (
                case.get("memory_ratio") is None
                or (case.get("size") or 0) < MEMORY_MIN_ROWS
                or case.get("stage") == "pipeline"
            ):
                continue
            out.append((name, case["name"], case["memory_ratio"]))
    return out


def _worst_memory(benchmarks: dict[str, Any]) -> float | None:
    ratios = [ratio for _, _, ratio in memory_cases(benchmarks)]
    return max(ratios) if ratios else None


BUDGETS = (
    Budget(
        "dag_parse_300",
        "dag_parse",
        "DAG parse of 300 model configs within 1.3x the floor",
        1.3,
        _case_ratio("dag_parse", 300),
    ),
    Budget(
        "validation_1m",
        "validation",
        "GX validation of 1M rows x 50+ expectations (with Data Docs) within 2x plain pandas",
        2.0,
        _case_ratio("validation", 1_000_000),
    ),
    Budget(
        "pipeline_1m",
        "pipeline",
        "Nightly pipeline (validate+train+test+register) at 1M rows within 1.25x the plain script",
        1.25,
        _case_ratio("pipeline", 1_000_000, "pipeline"),
    ),
    Budget(
        "drift_1m",
        "drift",
        "Drift check of 1M vs 1M rows x 30+ features within 2x plain scipy at the same sample size "
        "(worst of the sample sizes measured)",
        2.0,
        _worst_case_ratio("drift", 1_000_000),
    ),
    Budget(
        "memory_3x",
        "*",
        f"No stage's peak working memory above 3x the data it reads (cases with >= {MEMORY_MIN_ROWS:,} rows)",
        3.0,
        _worst_memory,
    ),
)

#: Benchmark name -> the group that measures it (parse and fleet share their child processes).
GROUPS = {
    "dag_parse": "dags",
    "fleet_scale": "dags",
    "validation": "validation",
    "pipeline": "pipeline",
    "drift": "drift",
}


def _run_group(group: str, wanted: set[str], ws: Workspace, mode: Mode) -> dict[str, Any]:
    if group == "dags":
        return dag_parse.run(
            ws,
            counts=list(mode.model_counts),
            fleet=mode.fleet if "fleet_scale" in wanted else None,
            repeats=mode.repeats,
            want_parse="dag_parse" in wanted,
        )
    if group == "validation":
        return {"validation": validation.run(ws, rows=mode.validation_rows, repeats=mode.repeats)}
    if group == "drift":
        return {
            "drift": drift.run(
                ws,
                rows=mode.drift_rows,
                sample_sizes=list(mode.drift_sample_sizes),
                repeats=[
                    mode.repeats if cap is None else min(cap, mode.repeats) for cap in mode.drift_repeat_caps
                ],
            )
        }
    return {
        "pipeline": pipeline.run(
            ws, sizes=list(mode.pipeline_rows), repeats=mode.repeats, warm_up_rows=mode.warm_up_rows
        )
    }


def judge(benchmarks: dict[str, Any]) -> list[dict[str, Any]]:
    verdicts = []
    for budget in BUDGETS:
        measured = budget.measure(benchmarks)
        if measured is None:
            status = (
                "error" if benchmarks.get(budget.benchmark, {}).get("error") else "not measured in this mode"
            )
        else:
            status = "met" if measured <= budget.limit else "not met"
        entry = {
            **{k: v for k, v in asdict(budget).items() if k != "measure"},
            "measured": measured,
            "status": status,
        }
        if budget.id == "memory_3x":
            entry["cases"] = [{"benchmark": b, "case": c, "ratio": r} for b, c, r in memory_cases(benchmarks)]
        verdicts.append(entry)
    return verdicts


def merge_previous(
    benchmarks: dict[str, Any], previous: dict[str, Any] | None, mode_name: str, log: Callable[[str], None]
) -> dict[str, Any]:
    """This run's benchmarks plus, for a subset run (``--only``), the other benchmarks of the
    previous results in the same folder, so re-measuring one section does not drop the others.

    Kept sections carry ``measured_in`` (when, by which command) and are rendered as such. Results of
    another mode (e.g. smoke sizes next to full ones) are never mixed: they are dropped instead.
    """
    if not previous:
        return benchmarks
    if previous.get("mode") != mode_name:
        log(f"not merging with the previous results: mode {previous.get('mode')!r}, this run {mode_name!r}")
        return benchmarks
    stamp = {
        "started_at": previous.get("started_at"),
        "command": previous.get("command"),
        "mode": previous.get("mode"),
        "repeats": (previous.get("settings") or {}).get("repeats"),
        "run_wall_s": previous.get("wall_s"),
    }
    merged = {}
    for name in [*GROUPS, *previous.get("benchmarks", {})]:
        if name in merged:
            continue
        if name in benchmarks:
            merged[name] = benchmarks[name]
        elif name in previous.get("benchmarks", {}):
            kept = dict(previous["benchmarks"][name])
            kept.setdefault("measured_in", stamp)
            merged[name] = kept
    kept_names = [n for n in merged if n not in benchmarks]
    if kept_names:
        log(f"kept from the previous results ({stamp['started_at']}): {', '.join(kept_names)}")
    return merged


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    size = parser.add_mutually_exclusive_group()
    size.add_argument(
        "--quick",
        action="store_true",
        help="1 repeat, pipeline at 100k rows only, drift at the default sample size only",
    )
    size.add_argument(
        "--smoke", action="store_true", help="tiny sizes, 1 repeat: checks the bench code runs (CI)"
    )
    parser.add_argument(
        "--only",
        nargs="+",
        choices=sorted(GROUPS),
        metavar="NAME",
        help=f"subset of: {', '.join(GROUPS)}; the other sections of the results folder's previous "
        "results (same mode) are kept, marked with the run that measured them",
    )
    parser.add_argument("--repeats", type=int, help="override the mode's repeats")
    parser.add_argument(
        "--out", type=Path, default=RESULTS_DIR, help="results folder (default: bench/results)"
    )
    parser.add_argument("--workdir", type=Path, help="keep temporary files here instead of a removed tmp dir")
    parser.add_argument("-v", "--verbose", action="store_true", help="log every child process")
    args = parser.parse_args(argv)

    mode_name = "smoke" if args.smoke else "quick" if args.quick else "full"
    mode = MODES[mode_name]
    if args.repeats:
        mode = Mode(**{**asdict(mode), "repeats": args.repeats})
    wanted = set(args.only or GROUPS)
    root = args.workdir or Path(tempfile.mkdtemp(prefix="mloops-bench-"))
    root.mkdir(parents=True, exist_ok=True)
    ws = Workspace(root=root, verbose=args.verbose)
    started, started_at = time.perf_counter(), dt.datetime.now(dt.UTC)
    host = machine()
    benchmarks: dict[str, Any] = {}
    command = "python -m bench " + " ".join(argv if argv is not None else sys.argv[1:])
    try:
        for group in dict.fromkeys(GROUPS[name] for name in GROUPS if name in wanted):
            names = [n for n, g in GROUPS.items() if g == group and n in wanted]
            group_started = time.perf_counter()
            ws.log(f"[{group_started - started:6.0f}s] {', '.join(names)} ...")
            try:
                benchmarks.update(_run_group(group, wanted, ws, mode))
            except Exception as exc:  # noqa: BLE001 - one broken benchmark must not lose the others' results
                ws.log(traceback.format_exc())
                for name in names:
                    benchmarks[name] = {"title": name, "error": f"{type(exc).__name__}: {exc}"[:4000]}
            for name in names:
                benchmarks[name]["measured_in"] = {
                    "started_at": started_at.isoformat(timespec="seconds"),
                    "command": command.strip(),
                    "mode": mode_name,
                    "repeats": mode.repeats,
                    "section_wall_s": round(time.perf_counter() - group_started, 1),
                }
    finally:
        if args.workdir is None:
            shutil.rmtree(root, ignore_errors=True)
    wall = time.perf_counter() - started
    host["loadavg_1m_end"] = round(os.getloadavg()[0], 2)
    previous_path = args.out / "results.json"
    if args.only and previous_path.exists():
        try:
            previous = json.loads(previous_path.read_text())
        except (OSError, ValueError) as exc:
            ws.log(f"not merging with {previous_path}: {exc}")
            previous = None
        benchmarks = merge_previous(benchmarks, previous, mode_name, ws.log)
    results = {
        "schema": 1,
        "mode": mode_name,
        "settings": asdict(mode),
        "started_at": started_at.isoformat(timespec="seconds"),
        "wall_s": round(wall, 1),
        "command": command,
        "machine": host,
        "budgets": judge(benchmarks),
        "benchmarks": benchmarks,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
    (args.out / "results.md").write_text(render(results))
    ws.log(f"[{wall:6.0f}s] wrote {args.out / 'results.json'} and {args.out / 'results.md'}")
    for budget in results["budgets"]:
        ws.log(f"  {budget['status']:>26}: {budget['text']} (measured {budget['measured']})")
    return 1 if any("error" in b for name, b in benchmarks.items() if name in wanted) else 0
