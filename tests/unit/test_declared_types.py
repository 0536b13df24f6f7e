"""Declared types applied before validation, and schema changes explained once (pure functions)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from mloops import quality
from mloops.config import category_text
from mloops.config_files import find_model_config

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def churn():
    return find_model_config("churn", REPO / "include/models")


@pytest.mark.parametrize(("value", "text"), [(3, "3"), (3.0, "3"), (2.5, "2.5"), ("3", "3"), ("a", "a")])
def test_category_text(value, text) -> None:
    assert category_text(value) == text


def test_conform_casts_coded_categories_and_parses_numeric_text(churn) -> None:
    frame = pd.DataFrame({"contract_type": [1, 2.0, None], "tenure_months": ["3", "x", None]})
    out, failures = quality.conform(frame, churn)
    assert out["contract_type"].tolist()[:2] == ["1", "2"] and pd.isna(out["contract_type"].iloc[2])
    assert out["tenure_months"].iloc[0] == 3 and pd.isna(out["tenure_months"].iloc[1])
    (failure,) = failures
    assert failure.column == "tenure_months" and "1 of 3 rows, e.g. ['x']" in failure.observed
    assert frame["tenure_months"].tolist()[:2] == ["3", "x"]  # the input is not modified


def test_missing_column_is_one_failure_naming_what_appeared(churn) -> None:
    columns = {c: [1.0] for c in quality.required_columns(churn) if c != "monthly_charges"}
    frame = pd.DataFrame({**columns, "monthly_charge": [12.5], "unrelated": ["x"]})
    (failure,) = quality.schema_failures(frame, churn)
    assert failure.column == "monthly_charges"
    assert "columns not in the contract: ['monthly_charge', 'unrelated']" in failure.observed
    assert "'monthly_charge' looks like a rename of 'monthly_charges'" in failure.observed
    kept = quality.without_columns(quality.contract_expectations(churn), ["monthly_charges"])
    assert all(e["kwargs"].get("column") != "monthly_charges" for e in kept)
