"""The baseline for data validation: the same expectation specs, checked directly with vectorised pandas.

Each check computes exactly the condition its Great Expectations namesake evaluates (nulls are
ignored by the column-map checks, ``mostly`` is a fraction of non-null rows for them and of all rows
for ``not_be_null``) and reports the unexpected count and up to ten unexpected values, like GX's
``SUMMARY`` result format. No framework: only pandas and numpy.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

PARTIAL = 10


def _within(value: float, low: float | None, high: float | None) -> bool:
    return (low is None or value >= low) and (high is None or value <= high)


def _column_map(series: pd.Series, unexpected: pd.Series, mostly: float) -> dict[str, Any]:
    """Result of a column-map check; ``unexpected`` is a boolean mask over the non-null values."""
    count = int(unexpected.sum())
    nonnull = len(unexpected)
    return {
        "success": nonnull == 0 or (nonnull - count) / nonnull >= mostly,
        "unexpected_count": count,
        "partial_unexpected_list": series[unexpected].head(PARTIAL).tolist() if count else [],
    }


def row_count_between(frame: pd.DataFrame, kw: Mapping[str, Any]) -> dict[str, Any]:
    rows = len(frame)
    return {"success": _within(rows, kw.get("min_value"), kw.get("max_value")), "observed": rows}


def column_exists(frame: pd.DataFrame, kw: Mapping[str, Any]) -> dict[str, Any]:
    return {"success": kw["column"] in frame.columns}


def in_type_list(frame: pd.DataFrame, kw: Mapping[str, Any]) -> dict[str, Any]:
    dtype = frame[kw["column"]].dtype
    return {"success": str(dtype) in kw["type_list"] or dtype.name in kw["type_list"], "observed": str(dtype)}


def not_null(frame: pd.DataFrame, kw: Mapping[str, Any]) -> dict[str, Any]:
    nulls = int(frame[kw["column"]].isna().sum())
    rows = len(frame)
    mostly = kw.get("mostly", 1.0)
    return {"success": rows == 0 or (rows - nulls) / rows >= mostly, "unexpected_count": nulls}


def between(frame: pd.DataFrame, kw: Mapping[str, Any]) -> dict[str, Any]:
    values = frame[kw["column"]].dropna()
    low, high = kw.get("min_value"), kw.get("max_value")
    unexpected = pd.Series(False, index=values.index)
    if low is not None:
        unexpected |= values < low
    if high is not None:
        unexpected |= values > high
    return _column_map(values, unexpected, kw.get("mostly", 1.0))


def in_set(frame: pd.DataFrame, kw: Mapping[str, Any]) -> dict[str, Any]:
    values = frame[kw["column"]].dropna()
    return _column_map(values, ~values.isin(kw["value_set"]), kw.get("mostly", 1.0))


def distinct_in_set(frame: pd.DataFrame, kw: Mapping[str, Any]) -> dict[str, Any]:
    observed = set(pd.unique(frame[kw["column"]].dropna()).tolist())
    return {"success": observed <= set(kw["value_set"]), "observed": sorted(observed, key=str)}


def unique(frame: pd.DataFrame, kw: Mapping[str, Any]) -> dict[str, Any]:
    values = frame[kw["column"]].dropna()
    return _column_map(values, values.duplicated(keep=False), kw.get("mostly", 1.0))


def _aggregate(
    stat: Callable[[pd.Series], float],
) -> Callable[[pd.DataFrame, Mapping[str, Any]], dict[str, Any]]:
    def check(frame: pd.DataFrame, kw: Mapping[str, Any]) -> dict[str, Any]:
        value = float(stat(frame[kw["column"]]))
        return {
            "success": not np.isnan(value) and _within(value, kw.get("min_value"), kw.get("max_value")),
            "observed": value,
        }

    return check


CHECKS: dict[str, Callable[[pd.DataFrame, Mapping[str, Any]], dict[str, Any]]] = {
    "expect_table_row_count_to_be_between": row_count_between,
    "expect_column_to_exist": column_exists,
    "expect_column_values_to_be_in_type_list": in_type_list,
    "expect_column_values_to_not_be_null": not_null,
    "expect_column_values_to_be_between": between,
    "expect_column_values_to_be_in_set": in_set,
    "expect_column_distinct_values_to_be_in_set": distinct_in_set,
    "expect_column_values_to_be_unique": unique,
    "expect_column_mean_to_be_between": _aggregate(lambda s: s.mean()),
    "expect_column_stdev_to_be_between": _aggregate(lambda s: s.std()),
    "expect_column_min_to_be_between": _aggregate(lambda s: s.min()),
    "expect_column_max_to_be_between": _aggregate(lambda s: s.max()),
    "expect_column_median_to_be_between": _aggregate(lambda s: s.median()),
    "expect_column_proportion_of_unique_values_to_be_between": _aggregate(
        lambda s: s.nunique() / max(s.count(), 1)
    ),
}


def run_checks(frame: pd.DataFrame, specs: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Every spec's outcome, in order; a check on a missing column fails like GX's does."""
    results = []
    for spec in specs:
        kwargs = spec["kwargs"]
        column = kwargs.get("column")
        if column is not None and spec["type"] != "expect_column_to_exist" and column not in frame.columns:
            outcome: dict[str, Any] = {"success": False, "exception": f"column {column!r} not found"}
        else:
            outcome = CHECKS[spec["type"]](frame, kwargs)
        results.append({"type": spec["type"], "column": column, **outcome})
    return results
