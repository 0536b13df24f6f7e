"""The benchmark suite runs end to end in its tiny mode, so the bench code cannot rot.

``python -m bench --smoke`` (1 and 3 model configs, 5k rows, 1 repeat) in a subprocess, exactly as
``make bench`` runs it, writing to a tmp folder so the committed results stay untouched. About a
minute on an idle 2-core machine; the timeout leaves room for a loaded one.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.helpers import REPO

pytestmark = pytest.mark.integration

BENCHMARKS = {"dag_parse", "fleet_scale", "validation", "pipeline", "drift"}


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("bench-results")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "plugins"), str(REPO)])}
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "--smoke", "--out", str(out)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-6000:]
    payload = json.loads((out / "results.json").read_text())
    payload["_markdown"] = (out / "results.md").read_text()
    return payload


def _measured(benchmark: dict) -> list[dict]:
    return [c for c in benchmark["cases"] if not c.get("status")]


def test_every_benchmark_ran_without_error(results: dict) -> None:
    assert set(results["benchmarks"]) == BENCHMARKS
    errors = {name: b["error"] for name, b in results["benchmarks"].items() if "error" in b}
    assert errors == {}


@pytest.mark.parametrize("name", sorted(BENCHMARKS))
def test_every_case_has_positive_times_and_ratio(results: dict, name: str) -> None:
    cases = _measured(results["benchmarks"][name])
    assert cases, f"{name} measured no case"
    for case in cases:
        assert case["subject"]["time_s"] > 0, case["name"]
        assert case["subject"]["repeats"] == results["settings"]["repeats"] == 1
        if case.get("ratio_note"):
            continue  # the plain script has no counterpart for this stage (register)
        assert case["baseline"]["time_s"] > 0, case["name"]
        assert case["ratio"] > 0, case["name"]


def test_memory_is_measured_per_child_and_against_the_data(results: dict) -> None:
    cases = [c for b in results["benchmarks"].values() for c in _measured(b) if "peak_rss_mb" in c["subject"]]
    assert all(
        c["subject"]["peak_rss_mb"] > 50 for c in cases
    )  # an interpreter with pandas or Airflow loaded
    with_data = [c for c in cases if c.get("data_bytes")]
    assert {c["stage"] for c in with_data if c.get("stage")} >= {
        "validate",
        "train",
        "test",
        "pipeline",
        "score",
        "drift",
    }
    assert all(c["memory_ratio"] > 0 for c in with_data)


def test_parse_sizes_and_floor_match_the_bundle(results: dict) -> None:
    cases = {c["size"]: c for c in _measured(results["benchmarks"]["dag_parse"]) if c["size"]}
    assert sorted(cases) == [1, 3]
    extra = cases[3]["extra"]
    assert extra["floor_shape_per_model"], "the bundle builds no DAG per model"
    assert extra["dags"] == 3 * len(extra["floor_shape_per_model"]) + len(extra["floor_shape_fixed"])
    assert extra["heavy_modules_loaded"] == [], "a DAG file imports a heavy library at parse time"
    fleet = _measured(results["benchmarks"]["fleet_scale"])[0]
    assert fleet["extra"]["payload_bytes_subject"] > 0


def test_validation_baseline_agrees_with_gx(results: dict) -> None:
    (case,) = _measured(results["benchmarks"]["validation"])
    assert case["extra"]["expectations"] >= 50
    assert case["extra"]["evaluated_gx"] == case["extra"]["expectations"]
    assert case["extra"]["verdicts_agree"], case["extra"]["disagreements"]


def test_pipeline_reports_every_stage_including_score_and_drift(results: dict) -> None:
    cases = results["benchmarks"]["pipeline"]["cases"]
    assert [c["name"] for c in cases if c.get("status")] == [], "a stage is still a placeholder"
    stages = {c["stage"]: c for c in cases}
    assert {"pipeline", "imports", "validate", "train", "test", "register", "score", "drift"} <= set(stages)
    for name in ("score", "drift"):
        case = stages[name]
        assert case["subject"]["time_s"] > 0 and case["baseline"]["time_s"] > 0, name
        assert case["ratio"] > 0 and case["cpu_ratio"] > 0, name
        assert case["baseline"]["peak_rss_mb"] > 50, name  # the plain step's own process
        assert case["extra"]["parts_subject_s"] and case["extra"]["parts_baseline_s"], name
    assert results["benchmarks"]["pipeline"]["setup"]["features"] >= 30


def test_pipeline_drift_stage_compares_the_same_sample_sizes(results: dict) -> None:
    (drift,) = [c for c in results["benchmarks"]["pipeline"]["cases"] if c.get("stage") == "drift"]
    extra = drift["extra"]
    setup = results["benchmarks"]["pipeline"]["setup"]
    assert extra["sample_size"] == setup["monitoring"]["sample_size"]
    assert (
        extra["rows_compared_mloops"]["current"] == extra["rows_compared_plain"]["current"] == drift["size"]
    )
    assert extra["rows_compared_mloops"]["reference"] == min(setup["reference_rows"], extra["sample_size"])
    # The window's current data is the scored partition only; the other days are skipped, not read.
    assert len(extra["partitions_mloops"]) == 1
    assert len(extra["skipped_mloops"]) == setup["monitoring"]["window_days"] - 1
    assert extra["verdicts_agree"], (extra["drifted_mloops"], extra["drifted_plain"])


def test_drift_benchmark_agrees_with_scipy_at_each_sample_size(results: dict) -> None:
    cases = _measured(results["benchmarks"]["drift"])
    setup = results["benchmarks"]["drift"]["setup"]
    assert setup["features"] >= 30
    assert [c["sample_size"] for c in cases] == [2_000, 5_000]  # smoke: sampled, then unsampled
    for case in cases:
        extra = case["extra"]
        assert extra["rows_compared"] == [case["sample_size"], case["sample_size"]]
        assert extra["columns_compared"] == setup["features"] + 1  # and the prediction
        assert extra["verdicts_agree"], extra["disagreements"]
        assert extra["scores_agree"], extra["max_score_difference"]
        assert 0 < len(extra["drifted_mloops"]) < extra["columns_compared"], (
            "the scenario should drift some columns"
        )
        assert extra["parts_mloops_s"]["evidently_report_run"] > 0


def test_budgets_are_not_judged_at_smoke_sizes(results: dict) -> None:
    assert [b["id"] for b in results["budgets"]] == [
        "dag_parse_300",
        "validation_1m",
        "pipeline_1m",
        "drift_1m",
        "memory_3x",
    ]
    assert {b["status"] for b in results["budgets"]} == {"not measured in this mode"}


def test_markdown_describes_the_machine_and_every_benchmark(results: dict) -> None:
    markdown = results["_markdown"]
    for text in ("## Machine", "## Budgets", "CPU", "RAM", "Python", "apache-airflow", *sorted(BENCHMARKS)):
        assert text in markdown
