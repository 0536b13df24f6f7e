"""Where ``validate_dataframe``'s time goes, and what would be left if GX skipped two of its own steps.

``python -m bench.validation_profile [--rows 1000000] [--repeats 3] [--out FILE.json]``

Not a budgeted section of ``python -m bench``: one process, imports done, the bench's partition and
suite (:mod:`bench.validation`). Each variant runs ``repeats`` times, interleaved, on a project whose
suite is already stored (a model's second night); the median is reported with GX's own steps timed by
wrapping them (their code is not changed):

* ``decimal_scan_s``: ``great_expectations.util.does_ndarray_contain_decimal_dtype``, which the pandas
  ``column.mean`` and ``column.standard_deviation`` metrics call on every value of the column, in
  Python, before the one vectorised call that computes the statistic;
* ``batch_hash_s``: ``hash_pandas_dataframe``, GX's fingerprint of each batch it loads;
* ``data_docs_s``: the checkpoint's actions (the Data Docs update);
* ``mloops_hash_s``: :func:`mloops.data.hashing.row_hashes` (the whole frame's marker, once);
* ``cpu_s``: the process's CPU seconds during the run (steadier than wall time on a loaded machine);
* ``peak_delta_mb``: the process's peak RSS during the run above its RSS before it (Linux: the
  high-water mark is reset before each run).

Variants: ``stock`` (``checkpoint.run`` on the whole frame, what mloops did before), ``mloops`` (what
``validate_dataframe`` does), ``pandas`` (the bench's baseline) and two what-ifs that patch GX **in this
process only**, to size what is left inside GX: ``what_if_no_decimal_scan`` (the scan skipped for
non-object arrays, which cannot hold a ``Decimal``: same results) and
``what_if_no_decimal_scan_no_batch_hash`` (GX also not fingerprinting any batch; mloops' own batches
already are not, since its data source's engine skips the hash, so for them this equals the first).
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import statistics
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

VARIANTS = ("stock", "mloops", "pandas", "what_if_no_decimal_scan", "what_if_no_decimal_scan_no_batch_hash")


class Timers:
    """Seconds spent in wrapped functions, per name, for the current run."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)

    def wrap(self, name: str, function: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                self.seconds[name] += time.perf_counter() - started

        return timed


@contextmanager
def _patched(owner: Any, name: str, value: Any) -> Iterator[None]:
    original = getattr(owner, name)
    setattr(owner, name, value)
    try:
        yield
    finally:
        setattr(owner, name, original)


def _reset_peak() -> int:
    """Reset this process's RSS high-water mark (Linux); return the current RSS in bytes."""
    import psutil

    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass
    return int(psutil.Process().memory_info().rss)


def _peak() -> int:
    from bench.child import peak_rss_now

    return peak_rss_now()


def _data(rows: int, folder: Path) -> tuple[Any, list[dict[str, Any]]]:
    import pandas as pd

    from bench.validation import prep_child

    class _NoProbe:
        pass

    data, suite = folder / "partition.parquet", folder / "suite.json"
    prep_child({"rows": rows, "data": str(data), "suite": str(suite)}, _NoProbe())
    return pd.read_parquet(data), json.loads(suite.read_text())


def profile(rows: int, repeats: int, folder: Path) -> dict[str, Any]:
    import great_expectations as gx
    import great_expectations.util as gx_util
    from great_expectations.checkpoint.checkpoint import Checkpoint
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.execution_engine import pandas_execution_engine as gx_engine

    from bench.pandas_checks import run_checks
    from bench.validation import numeric_arrays_skipped
    from mloops.adapters import gx_adapter

    frame, specs = _data(rows, folder)
    project = folder / "gx-project"
    day = dt.date(2026, 1, 10)
    # The suite and checkpoint are stored by a first (small) run, as on any night after the first.
    gx_adapter.validate_dataframe(
        frame.head(100), model="churn", partition=day, expectations=specs, project_dir=project
    )
    context = gx.get_context(mode="file", project_root_dir=str(project))
    stock_checkpoint = context.checkpoints.get("churn")

    decimal_scan = gx_util.does_ndarray_contain_decimal_dtype
    batch_hash = gx_engine.hash_pandas_dataframe
    numeric_skip = numeric_arrays_skipped(decimal_scan)

    runs: dict[str, list[dict[str, float]]] = defaultdict(list)
    verdicts: dict[str, dict[str, bool]] = {}
    for repeat in range(repeats):
        order = VARIANTS if repeat % 2 == 0 else tuple(reversed(VARIANTS))
        for variant in order:
            timers = Timers()
            scan = numeric_skip if variant.startswith("what_if") else decimal_scan
            hasher = (lambda df: "") if variant.endswith("no_batch_hash") else batch_hash
            partition = day + dt.timedelta(days=1 + repeat)
            with (
                _patched(gx_util, "does_ndarray_contain_decimal_dtype", timers.wrap("decimal_scan_s", scan)),
                _patched(gx_engine, "hash_pandas_dataframe", timers.wrap("batch_hash_s", hasher)),
                _patched(Checkpoint, "_run_actions", timers.wrap("data_docs_s", Checkpoint._run_actions)),
                _patched(gx_adapter, "row_hashes", timers.wrap("mloops_hash_s", gx_adapter.row_hashes)),
            ):
                gc.collect()
                rss_before = _reset_peak()
                started, cpu_started = time.perf_counter(), time.process_time()
                if variant == "pandas":
                    checks = run_checks(frame, specs)
                    outcome = {f"{r['type']}({r['column'] or ''})": bool(r["success"]) for r in checks}
                elif variant == "stock":
                    result = stock_checkpoint.run(
                        batch_parameters={"dataframe": frame},
                        run_id=RunIdentifier(run_name=f"stock-{repeat}", run_time=dt.datetime.now(dt.UTC)),
                    )
                    outcome = _verdicts(next(iter(result.run_results.values())).describe_dict())
                else:
                    validated = gx_adapter.validate_dataframe(
                        frame, model="churn", partition=partition, expectations=specs, project_dir=project
                    )
                    outcome = _verdicts(validated.result)
                seconds, cpu_s = time.perf_counter() - started, time.process_time() - cpu_started
                peak_mb = max(_peak() - rss_before, 0) / 2**20
            runs[variant].append(
                {"total_s": seconds, "cpu_s": cpu_s, **timers.seconds, "peak_delta_mb": peak_mb}
            )
            verdicts[variant] = outcome
    reference = verdicts["pandas"]
    return {
        "rows": rows,
        "expectations": len(specs),
        "repeats": repeats,
        "variants": {
            name: {key: round(statistics.median(r.get(key, 0.0) for r in measured), 3) for key in measured[0]}
            for name, measured in runs.items()
        },
        "verdicts_agree_with_pandas": {name: v == reference for name, v in verdicts.items()},
    }


def _verdicts(described: Any) -> dict[str, bool]:
    return {
        f"{e['expectation_type']}({(e.get('kwargs') or {}).get('column') or ''})": bool(e["success"])
        for e in described["expectations"]
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.validation_profile", description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, help="also write the figures as JSON here")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="mloops-validation-profile-") as folder:
        report = profile(args.rows, args.repeats, Path(folder))
    pandas_s = report["variants"]["pandas"]["total_s"]
    print(f"{report['rows']:,} rows x {report['expectations']} expectations, median of {args.repeats}:")
    for name, figures in report["variants"].items():
        parts = ", ".join(f"{k} {v:.2f}" for k, v in figures.items() if k != "total_s" and v)
        ratio_cpu = figures["cpu_s"] / report["variants"]["pandas"]["cpu_s"]
        ratio = figures["total_s"] / pandas_s if pandas_s else float("nan")
        print(
            f"  {name:<38} {figures['total_s']:6.2f} s ({ratio:5.2f}x pandas; CPU {ratio_cpu:5.2f}x)  {parts}"
        )
    print(f"  verdicts agree with pandas: {report['verdicts_agree_with_pandas']}")
    if args.out:
        args.out.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
