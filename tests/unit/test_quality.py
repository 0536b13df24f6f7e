"""The data contract derived from a config and how failures are worded."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mloops import quality
from mloops.config_files import find_model_config
from mloops.errors import ModelConfigError

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def churn():
    return find_model_config("churn", REPO / "include/models")


def _types(specs, column=None):
    return [s["type"] for s in specs if column is None or s["kwargs"].get("column") == column]


def test_contract_covers_schema_nulls_ranges_sets_keys(churn) -> None:
    specs = quality.contract_expectations(churn)
    assert specs[0] == {"type": "expect_table_row_count_to_be_between", "kwargs": {"min_value": 100}}
    assert _types(specs, "monthly_charges") == [
        "expect_column_to_exist",
        "expect_column_values_to_be_in_type_list",
        "expect_column_values_to_not_be_null",
        "expect_column_values_to_be_between",
    ]
    assert "expect_column_values_to_be_in_set" in _types(specs, "contract_type")
    assert "expect_column_values_to_be_unique" in _types(specs, "customer_id")
    assert "expect_column_distinct_values_to_be_in_set" in _types(specs, "churned")
    nulls = next(
        s
        for s in specs
        if s["type"] == "expect_column_values_to_not_be_null" and s["kwargs"]["column"] == "age"
    )
    assert nulls["kwargs"]["mostly"] == pytest.approx(0.95)


def test_suite_file_is_appended(churn) -> None:
    specs = quality.model_expectations(churn, REPO / "include/expectations")
    assert len(specs) == len(quality.contract_expectations(churn)) + 3


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (None, "no suite file"),
        ("{not json", "invalid JSON"),
        (json.dumps({"expectations": [{"kwargs": {}}]}), "list of {type, kwargs}"),
    ],
)
def test_bad_suite_files(tmp_path: Path, churn, content, fragment) -> None:
    if content is not None:
        (tmp_path / "churn.json").write_text(content)
    with pytest.raises(ModelConfigError, match=fragment):
        quality.suite_file_expectations(churn, tmp_path)


def test_summarize_failures_and_message() -> None:
    results = [
        {"type": "expect_column_to_exist", "kwargs": {"column": "a"}, "success": True, "result": {}},
        {
            "type": "expect_column_values_to_not_be_null",
            "kwargs": {"column": "monthly_charges", "mostly": 0.95},
            "success": False,
            "result": {"element_count": 100, "unexpected_count": 60, "unexpected_percent": 60.0},
        },
        {
            "type": "expect_table_row_count_to_be_between",
            "kwargs": {"min_value": 100},
            "success": False,
            "result": {"observed_value": 0},
        },
        {
            "type": "expect_column_values_to_be_between",
            "kwargs": {"column": "zz", "min_value": 0},
            "success": False,
            "result": {},
            "exception": 'The column "zz" in BatchData does not exist.',
        },
    ]
    failures = quality.summarize_failures(results)
    assert len(failures) == 3
    texts = [f.describe() for f in failures]
    assert "expect_table_row_count_to_be_between: observed 0; expected min_value=100" in texts
    assert any("60 of 100 rows unexpected (60.00%)" in t and "mostly=95.00% of rows" in t for t in texts)
    assert any('error: The column "zz" in BatchData does not exist.' in t for t in texts)
    outcome = quality.ValidationOutcome(False, 4, 3, tuple(failures), "file:///docs/index.html")
    message = quality.failure_message("churn", "2026-01-05", outcome, "/q/churn/dt=2026-01-05")
    assert message.startswith(
        "Data-quality gate failed for model 'churn', partition 2026-01-05: 3 of 4 expectations failed."
    )
    assert "quarantined (not trained on) at /q/churn/dt=2026-01-05" in message
    assert "Data Docs: file:///docs/index.html" in message
