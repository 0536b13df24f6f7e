"""The DAG-parse bench: its floor's fixed DAGs at every model count, and the 1,000-model budget."""

from __future__ import annotations

import pytest

from bench.cli import judge
from bench.dag_parse import MODEL_DAG

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("dag_id", "per_model"),
    [
        ("mloops_train_model_0001", True),
        ("mloops_monitor_model_0999", True),
        ("mloops_score_model_1000", True),  # "model_0" is not in it: was counted as a fixed DAG
        ("mloops_registry_ops", False),
        ("mloops_config_errors", False),
    ],
)
def test_per_model_dags_are_told_from_fixed_ones(dag_id: str, per_model: bool) -> None:
    assert bool(MODEL_DAG.search(dag_id)) is per_model


def _budget(benchmarks: dict, budget_id: str) -> dict:
    return next(b for b in judge(benchmarks) if b["id"] == budget_id)


def test_slowest_file_budget_reads_the_case_extra() -> None:
    case = {"size": 1000, "ratio": 1.4, "extra": {"slowest_file_s": 11.5}}
    budget = _budget({"dag_parse": {"cases": [case]}}, "dag_parse_1000")
    assert (budget["measured"], budget["status"]) == (11.5, "met")
    case["extra"]["slowest_file_s"] = 16.0
    assert _budget({"dag_parse": {"cases": [case]}}, "dag_parse_1000")["status"] == "not met"
