"""What a model's Data Docs index costs to rebuild as its validation history grows, with and without a limit.

``python -m bench.docs_index [--results 150] [--limit 25] [--repeats 5]``

Not a budgeted section of ``python -m bench``: one process. It validates a small churn partition
``--results`` times through :func:`mloops.adapters.gx_adapter.validate_dataframe` (one stored result per
partition, as a model's nights leave them), copies the project twice, and times GX's own Data Docs
update of one result in each copy, ``--repeats`` times: the index listing every result, and listing the
newest ``--limit`` (GX's ``validation_results_limit``, what ``MLOOPS_DOCS_INDEX_RUNS`` sets). The
figures are the medians; the rebuild of one result's page is in both.
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any


def _history(project: Path, results: int) -> None:
    from bench import datasets
    from bench.harness import examples
    from mloops.adapters import gx_adapter
    from mloops.config_files import load_model_config

    config = load_model_config(datasets.CHURN_CONFIG)
    first = dt.date(2025, 1, 1)
    frame = examples().generate_partition("churn", first, rows=500, seed=config.source.seed)
    specs = datasets.validation_suite(config)
    for night in range(results):
        gx_adapter.validate_dataframe(
            frame,
            model="churn",
            partition=first + dt.timedelta(days=night),
            expectations=specs,
            project_dir=project,
        )


def _rebuild_s(project: Path, limit: int | None, repeats: int) -> dict[str, Any]:
    import great_expectations as gx

    from mloops.adapters import gx_adapter

    context = gx.get_context(mode="file", project_root_dir=str(project))
    gx_adapter._bound_docs_index(context, limit)  # None: every result, as GX builds a site by default
    newest = max(context.validation_results_store.list_keys(), key=lambda key: key.run_id.run_time)
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        context.build_data_docs(resource_identifiers=[newest])
        seconds.append(time.perf_counter() - started)
    return {"median_s": round(statistics.median(seconds), 3), "seconds": [round(s, 3) for s in seconds]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.docs_index", description=__doc__)
    parser.add_argument("--results", type=int, default=150, help="validation results in the project")
    parser.add_argument("--limit", type=int, default=25, help="runs the limited index lists")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="mloops-docs-index-") as folder:
        project = Path(folder) / "project"
        started = time.perf_counter()
        _history(project, args.results)
        print(f"{args.results} validation results stored in {time.perf_counter() - started:.0f} s")
        unlimited, limited = Path(folder) / "unlimited", Path(folder) / "limited"
        shutil.copytree(project, unlimited)
        shutil.copytree(project, limited)
        whole = _rebuild_s(unlimited, None, args.repeats)
        newest = _rebuild_s(limited, args.limit, args.repeats)
    print(f"  index listing all {args.results}: {whole['median_s']:.3f} s {whole['seconds']}")
    print(f"  index listing the newest {args.limit}: {newest['median_s']:.3f} s {newest['seconds']}")
    per_result = (whole["median_s"] - newest["median_s"]) / max(args.results - args.limit, 1)
    print(f"  about {1000 * per_result:.1f} ms per listed result")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
