"""The bench harness measures what it says, and ``python -m bench`` runs end to end, in seconds.

The harness test runs a real child process (``python -m bench.child``) that burns CPU and allocates
memory, and checks the parent's figures (wall, CPU seconds from ``wait4``, working memory) and the
case row built from them. The CLI test runs ``python -m bench --smoke --only dag_parse`` exactly as
``make bench`` runs it, writing to a tmp folder so the committed results stay untouched. The other
sections' smoke run is ``make bench BENCH_ARGS=--smoke`` (a few minutes: not part of the suite).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from bench.harness import MB, Workspace, case, cpu, wall
from tests.helpers import REPO

pytestmark = pytest.mark.integration


def busy_child(params: dict[str, Any], probe: Any) -> dict[str, Any]:
    """A measured child: spin the CPU for ``seconds``, then hold ``mb`` megabytes."""
    probe.mark_base()
    with probe.timed("work"):
        end = time.process_time() + params["seconds"]
        while time.process_time() < end:
            pass
    # Apart from the spin: touching the pages costs system time that grows with the machine's load.
    with probe.timed("hold"):
        block = bytearray(params["mb"] * MB)
        block[::4096] = b"x" * len(block[::4096])
    return {"held": len(block)}


def test_the_harness_measures_a_real_child(tmp_path: Path) -> None:
    ws = Workspace(root=tmp_path, log=lambda _: None)
    env = ws.env()
    heavy = [
        ws.run("tests.bench.test_bench_smoke:busy_child", {"seconds": 0.6, "mb": 200}, env=env, label="heavy")
    ]
    light = [
        ws.run("tests.bench.test_bench_smoke:busy_child", {"seconds": 0.2, "mb": 20}, env=env, label="light")
    ]
    run = heavy[0]
    assert run.time("work") >= 0.6 and run.cpu("work") >= 0.59
    assert run.cpu_s >= 0.6 and run.wall_s >= run.time("work") + run.time("hold")
    assert 190 * MB <= run.peak_delta <= 260 * MB
    row = case("busy", 1, "seconds", heavy, light, wall("work"), cpu("work"))
    # CPU seconds are what the spin fixes (3x); wall time also holds whatever else the machine runs,
    # so only its presence is checked here.
    assert 2.0 < row["cpu_ratio"] < 4.5 and row["ratio"] is not None
    # 200 MB vs 20 MB held above the pre-work RSS. The peak is the child's own: on Linux wait4's
    # ru_maxrss carries the forking parent's RSS, which made both sides equal inside a large pytest.
    assert row["memory_ratio"] > 4.0
    assert all(r.peak_rss < 1024 * MB for r in heavy + light)


def test_the_cli_writes_results_and_report(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "plugins"), str(REPO)])}
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "--smoke", "--only", "dag_parse", "--out", str(tmp_path)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-6000:]
    results = json.loads((tmp_path / "results.json").read_text())
    (parsed,) = results["benchmarks"]["dag_parse"]["cases"]
    assert parsed["subject"]["time_s"] > 0 and parsed["baseline"]["time_s"] > 0 and parsed["ratio"] > 0
    # The floor builds exactly the bundle's DAGs and tasks, and nothing heavy is imported at parse time.
    assert parsed["extra"]["dags"] == 4 and parsed["extra"]["tasks"] > 10
    assert parsed["extra"]["heavy_modules_loaded"] == []
    # The what-if beside it ran, against the same floor runs, and built the same DAGs (else the run fails).
    (tried,) = parsed["alternatives"]
    assert tried["name"] == "merge_defaults_once" and tried["subject"]["repeats"] == 1 and tried["ratio"] > 0
    assert {b["status"] for b in results["budgets"]} == {"not measured in this mode"}
    markdown = (tmp_path / "results.md").read_text()
    for text in (
        "## Machine",
        "## Budgets",
        "apache-airflow",
        "DAG parse time",
        "Measured alternative of 1 model",
    ):
        assert text in markdown
