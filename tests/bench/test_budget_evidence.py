"""What a budget not met carries into the results: the alternative measured beside it, and for the
model-night the share of its excess that is other budgets' libraries; and the what-ifs change only
what they say they change."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from typing import Any

import pytest

from bench import report
from bench.cli import judge
from tests.helpers import REPO

pytestmark = pytest.mark.unit


def _side(seconds: float) -> dict[str, Any]:
    return {"time_s": seconds, "repeats": 2}


def _benchmarks() -> dict[str, Any]:
    night = {
        "name": "100,000 rows: night, warm",
        "size": 100_000,
        "stage": "night_warm",
        "ratio": 2.2,
        "subject": _side(22.0),
        "baseline": _side(10.0),
        "attribution": {
            "cpu_s": {"great_expectations": 2.5, "evidently": 5.0, "sklearn": 6.0, "mloops": 0.4}
        },
        "baseline_attribution": {"cpu_s": {"sklearn": 5.0, "scipy": 1.0, "bench": 0.2}},
    }
    validation = {
        "name": "1,000,000 rows x 56 expectations",
        "size": 1_000_000,
        "ratio": 7.0,
        "subject": _side(3.5),
        "baseline": _side(0.5),
        "alternatives": [
            {
                "name": "no_decimal_scan",
                "what": "GX without its Decimal scan",
                "subject": _side(1.8),
                "ratio": 3.6,
            }
        ],
    }
    drift = {
        "name": "drift 1M",
        "size": 1_000_000,
        "ratio": 1.5,
        "subject": _side(3.0),
        "baseline": _side(2.0),
    }
    return {
        "fleet": {"cases": [night]},
        "validation": {"cases": [validation]},
        "drift": {"cases": [drift]},
    }


def _verdict(verdicts: list[dict[str, Any]], budget_id: str) -> dict[str, Any]:
    return next(v for v in verdicts if v["id"] == budget_id)


def test_a_budget_not_met_carries_the_alternative_measured_beside_it() -> None:
    verdicts = judge(_benchmarks())
    validation = _verdict(verdicts, "validation_1m")
    assert validation["status"] == "not met"
    assert [a["name"] for a in validation["alternatives"]] == ["no_decimal_scan"]
    # GX is the validation budget's own library: nothing is taken out of it.
    assert validation["without_libraries"] is None


def test_the_night_without_the_excess_of_libraries_whose_budgets_are_not_met() -> None:
    verdicts = judge(_benchmarks())
    night = _verdict(verdicts, "fleet_cpu")
    # GX's budget is not met, so its 2.5 s (the plain night has no GX) come out; Evidently's drift
    # budget is met in these results, so its time stays the night's own.
    assert night["without_libraries"] == {
        "libraries_s": {"great_expectations": 2.5},
        "subject_s": 19.5,
        "ratio": 1.95,
    }
    benchmarks = _benchmarks()
    benchmarks["drift"]["cases"][0]["ratio"] = 3.2
    night = _verdict(judge(benchmarks), "fleet_cpu")
    assert night["without_libraries"]["libraries_s"] == {"great_expectations": 2.5, "evidently": 5.0}
    assert night["without_libraries"]["ratio"] == pytest.approx(1.45)


def test_the_report_shows_what_each_budget_not_met_was_tried_with() -> None:
    benchmarks = _benchmarks()
    benchmarks["drift"]["cases"][0]["ratio"] = 3.2
    budgets = "\n".join(report.unmet_lines(judge(benchmarks)))
    assert "Tried in this run, GX without its Decimal scan: **3.60x** (1.800 s" in budgets
    assert "(great_expectations 2.5 s, evidently 5.0 s;" in budgets and "19.5" not in budgets
    assert "14.500 s, **1.45x**" in budgets
    section = "\n".join(report.tried_lines(benchmarks["validation"]))
    assert section.startswith(
        "Measured alternative of 1,000,000 rows x 56 expectations: GX without its Decimal"
    )
    assert "3.60x the baseline" in section and "the case itself 7.00x" in section


def _in_a_fresh_process(code: str) -> Any:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "plugins"), str(REPO)])}
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


_DAGS = textwrap.dedent("""
    import datetime as dt, json
    from airflow.providers.standard.operators.empty import EmptyOperator
    from airflow.providers.standard.operators.hitl import ApprovalOperator
    from airflow.sdk import DAG, Param
    from bench import dag_parse
    from mloops.operators.training import MLflowTrainModelOperator

    START = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)

    def build(dag_id, description):
        params = {"reason": Param("", type="string", description=description)}
        with DAG(dag_id, schedule=None, start_date=START, default_args={"retries": 2}, params=params) as dag:
            train = MLflowTrainModelOperator(task_id="train", model="churn")
            train >> EmptyOperator(task_id="after", retries=5)
            ApprovalOperator(task_id="approve", subject="?", params={"comment": Param("", type="string")})
        return dag
""")


_WHAT_IF = textwrap.dedent("""
    import airflow.sdk.bases.operator as operator

    calls = []
    merge = operator.get_merged_defaults
    operator.get_merged_defaults = lambda *a, **k: calls.append(1) or merge(*a, **k)

    def built(description):
        calls.clear()
        return dag_parse.fingerprint([build("d", description)]), len(calls)

    plain, other = built("why"), built("other")
    dag_parse.merge_defaults_once()
    print(json.dumps({"plain": plain, "other": other, "patched": built("why")}))
""")


def test_the_parse_what_if_builds_the_same_tasks_merging_each_tasks_defaults_once() -> None:
    """One fresh process (the what-if patches Airflow for the rest of it): plain, then patched."""
    out = _in_a_fresh_process(_DAGS + _WHAT_IF)
    (plain, plain_merges), (patched, patched_merges) = out["plain"], out["patched"]
    assert patched == plain
    # The fingerprint sees a param's description (so the comparison above could fail).
    assert out["other"][0] != plain
    # Train: mloops' __init__ and BaseOperator's; after: one; approve: ApprovalOperator's, HITLOperator's and
    # BaseOperator's. Patched, a task's first wrapper merges and the ones below reuse it, as long as the
    # params are handed down (HITLOperator hands BaseOperator params of its own: approve merges twice).
    assert (plain_merges, patched_merges) == (6, 4)
