"""Row-level quarantine (``quality.on_failure: quarantine_rows``): which expectations are row-level, the
share decision, the split of a batch, and GX itself locating the failing rows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mloops import quality
from mloops.adapters import gx_adapter
from mloops.contracts import Status
from mloops.quality import RowViolation

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("spec", "row_level"),
    [
        ({"type": "expect_column_values_to_be_between", "kwargs": {"column": "x", "min_value": 0}}, True),
        ({"type": "expect_column_values_to_be_in_set", "kwargs": {"column": "c", "value_set": ["a"]}}, True),
        ({"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "y"}}, True),
        ({"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "y", "mostly": 1.0}}, True),
        # max_null_fraction: a tolerated share is a table property
        ({"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "x", "mostly": 0.95}}, False),
        ({"type": "expect_column_values_to_match_regex", "kwargs": {"column": "c", "regex": "^a"}}, True),
        ({"type": "expect_column_values_to_be_between", "kwargs": {"column": "x", "mostly": 0.9}}, False),
        ({"type": "expect_table_row_count_to_be_between", "kwargs": {"min_value": 10}}, False),
        ({"type": "expect_column_to_exist", "kwargs": {"column": "x"}}, False),
        ({"type": "expect_column_values_to_be_unique", "kwargs": {"column": "id"}}, False),
        ({"type": "expect_column_mean_to_be_between", "kwargs": {"column": "x", "min_value": 1}}, False),
        ({"type": "expect_column_distinct_values_to_be_in_set", "kwargs": {"column": "t"}}, False),
    ],
)
def test_row_level_or_table_level(spec: dict, row_level: bool) -> None:
    assert quality.is_row_level(spec) is row_level
    rows, table = quality.split_expectations([spec])
    assert (rows, table) == (([spec], []) if row_level else ([], [spec]))


def _v(*rows: int, column: str = "x") -> RowViolation:
    return RowViolation("expect_column_values_to_be_between", (column,), tuple(rows))


@pytest.mark.parametrize(
    ("rows_in", "violations", "max_share", "within", "bad", "why"),
    [
        (100, [_v(1, 2, 3)], 0.05, True, (1, 2, 3), None),
        (100, [_v(1, 2), _v(2, 3, column="y")], 0.03, True, (1, 2, 3), None),  # a row counts once
        (100, [_v(*range(5))], 0.05, True, tuple(range(5)), None),  # at the share exactly: kept
        (100, [_v(*range(6))], 0.05, False, tuple(range(6)), "6 of 100 rows (6.00%)"),
        (100, [_v(*range(10))], 0.05, False, tuple(range(10)), "more than quality.max_bad_row_share 5.00%"),
        (100, [], 0.05, False, (), "only table-level expectations failed"),
        (
            100,
            [_v(1), RowViolation("expect_column_values_to_be_in_type_list", ("x",), None)],
            0.5,
            False,
            (1,),
            "without GX listing the failing rows",
        ),
        (100, [_v(1)], 0.0, False, (1,), "1 of 100 rows (1.00%)"),
    ],
)
def test_share_decision(
    rows_in: int,
    violations: list[RowViolation],
    max_share: float,
    within: bool,
    bad: tuple[int, ...],
    why: str | None,
) -> None:
    decision = quality.decide_rows(rows_in, violations, max_share)
    assert decision.within is within
    assert decision.bad_rows == bad
    assert decision.share == len(bad) / rows_in
    if why:
        assert why in decision.why_whole()


def test_positions_outside_the_batch_are_refused() -> None:
    with pytest.raises(ValueError, match="outside a batch of 3 rows"):
        quality.decide_rows(3, [_v(0, 3)], 0.5)


def test_split_keeps_every_row_once_with_reasons() -> None:
    frame = pd.DataFrame({"x": [1.0, -5.0, 3.0, 900.0, np.nan], "c": ["a", "a", "zz", "a", "a"]})
    violations = [
        RowViolation("expect_column_values_to_be_between", ("x",), (1, 3)),
        RowViolation("expect_column_values_to_be_in_set", ("c",), (2, 3)),
    ]
    kept, bad = quality.split_rows(frame, violations)
    assert len(kept) + len(bad) == len(frame)
    assert kept["x"].tolist()[0] == 1.0 and kept["x"].isna().tolist() == [False, True]
    assert bad[quality.ROW_COLUMN].tolist() == [1, 2, 3]
    assert bad[quality.REASON_COLUMN].tolist() == [
        "expect_column_values_to_be_between(x): x=-5.0",
        "expect_column_values_to_be_in_set(c): c='zz'",
        "expect_column_values_to_be_between(x): x=900.0; expect_column_values_to_be_in_set(c): c='a'",
    ]
    assert bad[["x", "c"]].to_dict("list") == {"x": [-5.0, 3.0, 900.0], "c": ["a", "zz", "a"]}
    assert quality.reasons_summary(violations) == {
        "expect_column_values_to_be_between(x)": 2,
        "expect_column_values_to_be_in_set(c)": 2,
    }


def test_gx_locates_every_failing_row() -> None:
    n = 500  # more bad rows than SUMMARY's partial lists hold
    frame = pd.DataFrame(
        {
            "x": [float(i % 50) if i % 7 else -1.0 for i in range(n)],
            "c": ["a" if i % 11 else "?" for i in range(n)],
            "y": [None if i % 13 == 0 else 1.0 for i in range(n)],
        }
    )
    specs = [
        {"type": "expect_column_values_to_be_between", "kwargs": {"column": "x", "min_value": 0}},
        {"type": "expect_column_values_to_be_in_set", "kwargs": {"column": "c", "value_set": ["a"]}},
        {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "y"}},
        {
            "type": "expect_column_values_to_be_in_type_list",
            "kwargs": {"column": "x", "type_list": ["float64"]},
        },
    ]
    found = {v.label: v.rows for v in gx_adapter.failing_rows(frame, specs)}
    assert found == {
        "expect_column_values_to_be_between(x)": tuple(range(0, n, 7)),
        "expect_column_values_to_be_in_set(c)": tuple(range(0, n, 11)),
        "expect_column_values_to_not_be_null(y)": tuple(range(0, n, 13)),
    }


def test_gx_failure_without_rows_cannot_be_split() -> None:
    frame = pd.DataFrame({"x": [1, 2, 3]})
    specs = [
        {"type": "expect_column_values_to_be_in_type_list", "kwargs": {"column": "x", "type_list": ["str"]}}
    ]
    (violation,) = gx_adapter.failing_rows(frame, specs)
    assert violation.rows is None
    assert not quality.decide_rows(3, [violation], 1.0).within


def test_gx_rows_need_positions_as_index() -> None:
    frame = pd.DataFrame({"x": [1.0, -1.0]}, index=[10, 11])
    spec = {"type": "expect_column_values_to_be_between", "kwargs": {"column": "x", "min_value": 0}}
    with pytest.raises(ValueError, match="RangeIndex"):
        gx_adapter.failing_rows(frame, [spec])


def test_table_level_check_on_kept_rows() -> None:
    kept = pd.DataFrame({"x": [1.0, 2.0, 3.0]})
    specs = [{"type": "expect_table_row_count_to_be_between", "kwargs": {"min_value": 5}}]
    outcome = gx_adapter.check_in_memory(kept, specs)
    assert not outcome.success
    assert outcome.failures[0].expectation == "expect_table_row_count_to_be_between"
    assert gx_adapter.check_in_memory(kept, [{**specs[0], "kwargs": {"min_value": 3}}]).success


@pytest.mark.parametrize(
    ("status", "usable"),
    [
        (Status.PASSED, True),
        (Status.PASSED_WITH_QUARANTINED_ROWS, True),
        ("passed_with_quarantined_rows", True),
        (Status.QUARANTINED, False),
        (Status.MISSING, False),
        (Status.NOT_VALIDATED, False),
        (None, False),
    ],
)
def test_usable_statuses(status: object, usable: bool) -> None:
    assert Status.usable(status) is usable
