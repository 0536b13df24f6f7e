"""The validation baseline computes what GX computes: same verdict per expectation, failures included.

Without this, a faster but laxer baseline would make the GX ratio look worse than it is (or a
stricter one better). The partition is corrupted on purpose so that several checks fail.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from bench import datasets
from bench.pandas_checks import run_checks
from mloops.config_files import load_model_config
from mloops_examples.generator import Scenario, generate_partition

pytestmark = pytest.mark.integration

DAY = dt.date(2026, 1, 10)


def _scenario(kind: str, **params: object) -> Scenario:
    return Scenario(kind=kind, start=DAY, end=DAY, params=params)


@pytest.mark.parametrize(
    "scenarios",
    [
        pytest.param([], id="clean"),
        pytest.param(
            [
                _scenario("null_burst", column="monthly_charges", fraction=0.6),
                _scenario("out_of_range", column="age", fraction=0.05),
                _scenario("out_of_range", column="region", fraction=0.02),
                _scenario("duplicate_rows", fraction=0.02),
                _scenario("missing_column", column="has_partner"),
            ],
            id="corrupted",
        ),
    ],
)
def test_pandas_checks_match_gx_verdicts(tmp_path: Path, scenarios: list[Scenario]) -> None:
    from mloops.adapters.gx_adapter import validate_dataframe

    config = load_model_config(datasets.CHURN_CONFIG)
    frame = generate_partition("churn", DAY, rows=3000, seed=7, scenarios=scenarios)
    specs = datasets.validation_suite(config)
    assert len(specs) >= 50

    outcome = validate_dataframe(
        frame, model="churn", partition=DAY, expectations=specs, project_dir=tmp_path / "gx"
    )
    gx = {
        datasets.spec_key(e["expectation_type"], e.get("kwargs") or {}): bool(e["success"])
        for e in outcome.result["expectations"]
    }
    plain = {
        datasets.spec_key(r["type"], {"column": r["column"]}): bool(r["success"])
        for r in run_checks(frame, specs)
    }

    assert gx == plain
    if scenarios:
        failed = {key for key, ok in plain.items() if not ok}
        assert {
            "expect_column_values_to_not_be_null(monthly_charges)",
            "expect_column_values_to_be_between(age)",
            "expect_column_values_to_be_in_set(region)",
            "expect_column_values_to_be_unique(customer_id)",
            "expect_column_to_exist(has_partner)",
        } <= failed
    else:
        assert all(plain.values())
