"""``python -m bench --only NAME`` re-measures one section and keeps the others of the same mode.

Re-running one benchmark must not drop the other sections of the committed results, must never mix
modes (smoke sizes next to full ones), and the report must say which run measured a kept section.
"""

from __future__ import annotations

import pytest

from bench.cli import judge, merge_previous
from bench.report import render

pytestmark = pytest.mark.unit

PREVIOUS = {
    "mode": "full",
    "started_at": "2026-11-27T08:10:00+00:00",
    "command": "python -m bench",
    "wall_s": 500.0,
    "settings": {"repeats": 3},
    "benchmarks": {
        "dag_parse": {"title": "DAG parse", "cases": []},
        "validation": {"title": "Validation", "cases": []},
        "pipeline": {"title": "old pipeline", "cases": []},
    },
}


def test_a_subset_run_keeps_the_other_sections_in_order() -> None:
    now = {"drift": {"title": "new drift", "cases": []}, "pipeline": {"title": "new pipeline", "cases": []}}
    merged = merge_previous(now, PREVIOUS, "full", lambda _: None)
    assert list(merged) == ["dag_parse", "validation", "pipeline", "drift"]
    assert merged["pipeline"]["title"] == "new pipeline"
    assert merged["validation"]["measured_in"]["started_at"] == PREVIOUS["started_at"]
    assert "measured_in" not in PREVIOUS["benchmarks"]["validation"]  # the loaded results are not mutated


def test_a_section_the_suite_no_longer_has_is_dropped() -> None:
    previous = {**PREVIOUS, "benchmarks": {**PREVIOUS["benchmarks"], "fleet_scale": {"cases": []}}}
    merged = merge_previous({"drift": {"title": "drift", "cases": []}}, previous, "full", lambda _: None)
    assert "fleet_scale" not in merged
    assert list(merged) == ["dag_parse", "validation", "pipeline", "drift"]


def test_results_of_another_mode_are_not_mixed_in() -> None:
    now = {"drift": {"title": "drift", "cases": []}}
    assert merge_previous(now, PREVIOUS, "smoke", lambda _: None) == now
    assert merge_previous(now, None, "full", lambda _: None) == now


def test_the_report_marks_kept_sections() -> None:
    merged = merge_previous(
        {"drift": {"title": "drift", "cases": [], "subject": "s", "baseline": "b"}},
        PREVIOUS,
        "full",
        lambda _: None,
    )
    for name in ("dag_parse", "validation", "pipeline"):
        merged[name].update(subject="s", baseline="b")
    results = {
        "mode": "full",
        "settings": {"repeats": 3},
        "started_at": "2026-11-28T09:00:00+00:00",
        "wall_s": 200.0,
        "command": "python -m bench --only drift",
        "machine": {
            "cpu": "cpu",
            "logical_cores": 2,
            "physical_cores": 2,
            "ram_gib": 8,
            "os": "os",
            "python": "py",
            "packages": {},
            "loadavg_1m_start": 0.1,
        },
        "budgets": judge(merged),
        "benchmarks": merged,
    }
    markdown = render(results)
    assert markdown.count("Kept from an earlier run") == 3
    assert "python -m bench` on 2026-11-27T08:10:00+00:00" in markdown
