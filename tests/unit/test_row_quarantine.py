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


def test_text_in_a_numeric_column_is_located_row_by_row() -> None:
    from mloops.config_files import find_model_config
    from tests.helpers import REPO

    config = find_model_config("churn", REPO / "include" / "models")
    frame = pd.DataFrame({"monthly_charges": ["10.5", "n/a", None, "7", "twelve"], "age": [1, 2, 3, 4, 5]})
    [found] = quality.text_in_numeric_rows(frame, config)
    assert (found.columns, found.rows, found.delivered) == (("monthly_charges",), (1, 4), ("n/a", "twelve"))
    conformed, failures = quality.conform(frame, config)
    assert [f.expectation for f in failures] == [found.expectation]
    kept, bad = quality.split_rows(conformed, [found])
    assert len(kept) == 3 and bad[quality.ROW_COLUMN].tolist() == [1, 4]
    assert bad[quality.REASON_COLUMN].tolist() == [
        "expect_column_values_to_be_in_type_list(monthly_charges): monthly_charges='n/a'",
        "expect_column_values_to_be_in_type_list(monthly_charges): monthly_charges='twelve'",
    ]


@pytest.mark.parametrize(("bad_rows", "status"), [(6, "passed_with_quarantined_rows"), (30, "quarantined")])
def test_text_rows_are_quarantined_within_the_share(
    tmp_path, monkeypatch: pytest.MonkeyPatch, mloops_home, bad_rows: int, status: str
) -> None:
    """A CSV whose declared-numeric column holds text in 3 % of its rows is staged without them, the
    rows quarantined with the text they held; at 15 % the batch is quarantined whole."""
    import datetime as dt

    from mloops.config_files import load_model_config
    from mloops.settings import get_settings
    from mloops.stages.layout import RunContext
    from mloops.stages.validate import validate_partition
    from mloops_examples.generator import generate_partition
    from tests.helpers import small_churn, write_models

    day = dt.date(2026, 1, 3)
    frame = generate_partition("churn", day, rows=200, seed=7)
    assert frame is not None
    charges = frame["monthly_charges"].round(2).astype(str).astype(object)
    charges.iloc[:bad_rows] = "unknown"  # not one of the texts pandas reads as missing
    frame["monthly_charges"] = charges
    landing = mloops_home / "data" / "landing" / f"dt={day}"
    landing.mkdir(parents=True)
    frame.to_csv(landing / "part.csv", index=False)
    config = small_churn()
    config["source"] = {"kind": "files", "path": "{data_root}/landing/dt={ds}/part.csv", "format": "csv"}
    config["quality"] = {"min_rows": 50, "on_failure": "quarantine_rows", "max_bad_row_share": 0.05}
    models = write_models(tmp_path / "models", churn=config)
    ctx = RunContext(load_model_config(models / "churn.yaml"), day, get_settings())
    from mloops import quality as q

    verdict = validate_partition(
        ctx, q.model_expectations(ctx.config, ctx.settings.expectations_dir, ctx.use), None
    )
    assert verdict["status"] == status, verdict.get("message")
    if status == "quarantined":
        assert "30 of 200 rows (15.00%) failed row-level expectations" in verdict["message"]
        return
    assert (verdict["rows_kept"], verdict["rows_quarantined"]) == (194, 6)
    rows = pd.read_parquet(mloops_home / f"data/quarantine/churn/dt={day}/rows.parquet")
    assert rows[quality.ROW_COLUMN].tolist() == list(range(6))
    assert all("monthly_charges='unknown'" in r for r in rows[quality.REASON_COLUMN])
    staged = pd.read_parquet(mloops_home / f"data/staged/churn/dt={day}/data.parquet")
    assert len(staged) + len(rows) == 200 and staged["monthly_charges"].notna().all()
