"""The command line of the example generator: one partition file per day.

    python -m mloops_examples --dataset churn --start 2026-01-01 --end 2026-01-07 --rows 2000 \\
        --out 'landing/{dataset}/dt={ds}/part.parquet' \\
        --scenario null_burst:2026-01-05:2026-01-05:column=monthly_charges,fraction=0.6

Prints ``date rows path`` per day (``date 0 missing`` when a ``missing_partition`` scenario is
active) and exits 2, having written nothing, when an argument is wrong.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mloops.contracts import ScenarioKind
from mloops_examples.generator import (
    DATASETS,
    FORMATS,
    PARAM_KINDS,
    Scenario,
    generate_partition,
    scenario_kind,
    write_partition,
)

PROG = "python -m mloops_examples"


def partition_path(template: str, day: dt.date, **fields: Any) -> str:
    """Fill a path template with ``ds``, ``ds_nodash`` and ``fields`` (``dataset``, ``seed``, ``rows``)."""
    try:
        return template.format(**fields, ds=day.isoformat(), ds_nodash=day.strftime("%Y%m%d"))
    except KeyError as exc:
        known = ", ".join(sorted({"ds", "ds_nodash", *fields}))
        raise ValueError(
            f"path template {template!r} uses unknown field {exc.args[0]!r}; known: {known}"
        ) from None
    except (IndexError, ValueError) as exc:
        raise ValueError(f"path template {template!r} is invalid: {exc}") from None


def _cli_value(kind: ScenarioKind, name: str, text: str) -> Any:
    """Parse a CLI ``key=value`` by the parameter's kind; lists are ``a+b``, ``none`` clears a column."""
    expected = PARAM_KINDS[kind][name]
    if expected in ("number", "non_negative", "fraction"):
        try:
            return float(text)
        except ValueError:
            raise ValueError(f"scenario '{kind}': param {name!r} must be a number, got {text!r}") from None
    if expected == "columns":
        return [part for part in text.split("+") if part] if text else []
    if expected == "optional_name" and text.lower() in ("", "none"):
        return None
    return text


def parse_scenario(spec: str) -> Scenario:
    """Parse ``KIND:START:END[:key=value,key=value]`` (the ``--scenario`` syntax)."""
    parts = spec.split(":", 3)
    if len(parts) < 3:
        raise ValueError(f"scenario {spec!r} is not KIND:START:END[:key=value,...]")
    kind = scenario_kind(parts[0])
    params: dict[str, Any] = {}
    for pair in parts[3].split(",") if len(parts) == 4 and parts[3] else []:
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ValueError(f"scenario '{kind}': {pair!r} is not key=value")
        if key not in PARAM_KINDS[kind]:
            valid = ", ".join(PARAM_KINDS[kind]) or "none"
            raise ValueError(f"scenario '{kind}': unknown param {key!r}; valid params: {valid}")
        params[key] = _cli_value(kind, key, value.strip())
    return Scenario(kind=kind, start=parts[1], end=parts[2], params=params)  # type: ignore[arg-type]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description="Write daily partitions of an example dataset.")
    parser.add_argument("--dataset", required=True, help=f"one of: {', '.join(DATASETS)}")
    parser.add_argument("--start", required=True, type=dt.date.fromisoformat, help="first day, YYYY-MM-DD")
    parser.add_argument(
        "--end", type=dt.date.fromisoformat, help="last day (inclusive), YYYY-MM-DD; default: --start"
    )
    parser.add_argument("--rows", type=int, default=2000, help="rows per day before scenarios (default 2000)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--out",
        required=True,
        help="path template with {dataset}, {ds}, {ds_nodash}, {seed}, {rows}; .parquet or .csv",
    )
    parser.add_argument(
        "--scenario",
        action="append",
        default=[],
        metavar="KIND:START:END[:k=v,...]",
        help=f"repeatable; kinds: {', '.join(ScenarioKind)}; list values as a+b",
    )
    return parser


def _checked(args: argparse.Namespace) -> tuple[dt.date, list[Scenario], dict[str, Any]]:
    """Every argument checked before anything is written: the end, the scenarios, the path template."""
    end = args.end or args.start
    if end < args.start:
        raise ValueError(f"--end {end} is before --start {args.start}")
    scenarios = [parse_scenario(text) for text in args.scenario]
    generate_partition(args.dataset, args.start, rows=0, seed=args.seed, scenarios=scenarios)
    if args.rows < 0:
        raise ValueError(f"--rows must be >= 0, got {args.rows}")
    fields = {"dataset": args.dataset, "seed": args.seed, "rows": args.rows}
    suffix = Path(partition_path(args.out, args.start, **fields)).suffix.lower()
    if suffix not in FORMATS:
        raise ValueError(f"--out {args.out!r}: use a {' or '.join(FORMATS)} suffix")
    return end, scenarios, fields


def main(argv: Sequence[str] | None = None) -> int:
    """Write one partition per day and print ``date rows path|missing`` per day; 2 on a bad argument."""
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 2
    try:
        end, scenarios, fields = _checked(args)
    except (ValueError, TypeError) as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    day = args.start
    while day <= end:
        frame = generate_partition(args.dataset, day, rows=args.rows, seed=args.seed, scenarios=scenarios)
        if frame is None:
            print(f"{day.isoformat()} 0 missing")
        else:
            path = write_partition(frame, partition_path(args.out, day, **fields))
            print(f"{day.isoformat()} {len(frame)} {path}")
        day += dt.timedelta(days=1)
    return 0
