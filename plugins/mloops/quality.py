"""The data contract of a model: expectations derived from its config, and readable failure summaries.

Pure logic: expectations are plain ``{"type": ..., "kwargs": ...}`` specs (GX's own JSON shape), so
this module needs neither Great Expectations nor Airflow; ``adapters.gx_adapter`` turns them into a
suite and runs it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mloops.config import ModelConfig, category_text
from mloops.contracts import Use
from mloops.errors import ModelConfigError

if TYPE_CHECKING:
    import pandas as pd

#: Numeric features must arrive with a numeric dtype; a string column there is a schema change.
#: Categorical features are not type-checked: they are cast to strings and checked by value set.
NUMERIC_TYPES = ["int8", "int16", "int32", "int64", "Int64", "float32", "float64", "Float64"]


@dataclass(frozen=True)
class Failure:
    """One failed expectation, in the words a data engineer needs."""

    expectation: str
    column: str | None
    observed: str
    expected: str

    def describe(self) -> str:
        where = f"({self.column})" if self.column else ""
        return f"{self.expectation}{where}: observed {self.observed}; expected {self.expected}"


@dataclass(frozen=True)
class ValidationOutcome:
    """What a validation run produced; serializable for XCom and the quarantine record."""

    success: bool
    evaluated: int
    failed: int
    failures: tuple[Failure, ...] = ()
    docs_url: str | None = None
    result: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "success": self.success,
            "evaluated": self.evaluated,
            "failed": self.failed,
            "failures": [f.__dict__ for f in self.failures],
            "docs_url": self.docs_url,
        }


def contract_expectations(config: ModelConfig, use: str = Use.TRAINING) -> list[dict[str, Any]]:
    """Expectations implied by the config: schema, types, nulls, ranges, sets, keys, size.

    The scoring contract leaves the target out: a scoring batch is unlabeled (a target column that
    is present is ignored, never required)."""
    q = config.quality
    specs: list[dict[str, Any]] = []
    row_count: dict[str, Any] = {"min_value": q.min_rows}
    if q.max_rows is not None:
        row_count["max_value"] = q.max_rows
    specs.append({"type": "expect_table_row_count_to_be_between", "kwargs": row_count})
    for column in required_columns(config, use):
        specs.append({"type": "expect_column_to_exist", "kwargs": {"column": column}})
    for feature in config.features:
        if feature.type == "numeric":
            specs.append(
                {
                    "type": "expect_column_values_to_be_in_type_list",
                    "kwargs": {"column": feature.name, "type_list": NUMERIC_TYPES},
                }
            )
        null_fraction = (
            feature.max_null_fraction if feature.max_null_fraction is not None else q.max_null_fraction
        )
        specs.append(
            {
                "type": "expect_column_values_to_not_be_null",
                "kwargs": {"column": feature.name, "mostly": round(1.0 - null_fraction, 6)},
            }
        )
        if feature.min is not None or feature.max is not None:
            specs.append(
                {
                    "type": "expect_column_values_to_be_between",
                    "kwargs": {"column": feature.name, "min_value": feature.min, "max_value": feature.max},
                }
            )
        if feature.allowed_values is not None:
            specs.append(
                {
                    "type": "expect_column_values_to_be_in_set",
                    "kwargs": {"column": feature.name, "value_set": list(feature.allowed_values)},
                }
            )
    if use == Use.TRAINING:
        specs += _target_expectations(config)
    if config.id_column:
        specs.append({"type": "expect_column_values_to_be_unique", "kwargs": {"column": config.id_column}})
    return specs


def _target_expectations(config: ModelConfig) -> list[dict[str, Any]]:
    specs: list[dict[str, Any]] = [
        {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": config.target}}
    ]
    if config.task == "classification":
        specs.append(
            {
                "type": "expect_column_distinct_values_to_be_in_set",
                "kwargs": {"column": config.target, "value_set": [0, 1]},
            }
        )
    return specs


def suite_file_expectations(config: ModelConfig, directory: Path) -> list[dict[str, Any]]:
    """Extra expectations from ``<directory>/<quality.suite>.json`` (GX suite JSON), if configured."""
    if not config.quality.suite:
        return []
    path = directory / f"{config.quality.suite}.json"
    try:
        payload = json.loads(path.read_text())
    except FileNotFoundError:
        raise ModelConfigError(
            config.source_file or config.name, [f"field 'quality.suite': no suite file {path}"]
        ) from None
    except json.JSONDecodeError as exc:
        raise ModelConfigError(str(path), [f"invalid JSON: {exc}"]) from None
    expectations = payload.get("expectations") if isinstance(payload, dict) else None
    if not isinstance(expectations, list) or not all(
        isinstance(e, dict) and isinstance(e.get("type"), str) for e in expectations
    ):
        raise ModelConfigError(str(path), ["'expectations' must be a list of {type, kwargs} objects"])
    return [{"type": e["type"], "kwargs": dict(e.get("kwargs", {}))} for e in expectations]


def model_expectations(
    config: ModelConfig, expectations_dir: Path, use: str = Use.TRAINING
) -> list[dict[str, Any]]:
    extra = suite_file_expectations(config, expectations_dir)
    if use != Use.TRAINING:
        extra = [e for e in extra if e["kwargs"].get("column") != config.target]
    return contract_expectations(config, use) + extra


def _expected_text(expectation: str, kwargs: Mapping[str, Any]) -> str:
    shown = {k: v for k, v in kwargs.items() if k not in {"column", "batch_id"}}
    if "mostly" in shown:
        shown["mostly"] = f"{float(shown['mostly']):.2%} of rows"
    if not shown:
        return "to hold" if expectation != "expect_column_to_exist" else "column present"
    return ", ".join(f"{k}={v}" for k, v in shown.items())


def _observed_text(result: Mapping[str, Any], exception: str | None) -> str:
    if exception:
        return f"error: {exception}"
    if "unexpected_percent" in result and result.get("unexpected_percent") is not None:
        sample = result.get("partial_unexpected_list") or []
        sample_text = f", e.g. {sample[:5]}" if sample else ""
        return (
            f"{result.get('unexpected_count')} of {result.get('element_count')} rows unexpected "
            f"({float(result['unexpected_percent']):.2f}%){sample_text}"
        )
    if "observed_value" in result:
        return repr(result["observed_value"])
    return "failed"


def summarize_failures(results: Iterable[Mapping[str, Any]]) -> list[Failure]:
    """Turn GX per-expectation results (``type``, ``kwargs``, ``success``, ``result``,
    ``exception``) into failures."""
    failures = []
    for item in results:
        if item["success"]:
            continue
        kwargs = item.get("kwargs", {})
        failures.append(
            Failure(
                expectation=item["type"],
                column=kwargs.get("column"),
                observed=_observed_text(item.get("result") or {}, item.get("exception")),
                expected=_expected_text(item["type"], kwargs),
            )
        )
    return sorted(failures, key=lambda f: (f.column or "", f.expectation))


def failure_message(
    model: str, partition: str, outcome: ValidationOutcome, quarantine: str | None, why: str | None = None
) -> str:
    """The text of a failed ``validate_batch``: every failed expectation, observed vs expected (and,
    in row mode, ``why`` the batch could not be used without its bad rows)."""
    lines = [
        f"Data-quality gate failed for model {model!r}, partition {partition}: "
        f"{outcome.failed} of {outcome.evaluated} expectations failed."
    ]
    if why:
        lines.append(f"The batch was quarantined whole: {why}.")
    lines += [f"  - {f.describe()}" for f in outcome.failures]
    if quarantine:
        lines.append(
            f"The batch was quarantined (not trained on) at {quarantine}; the original data is unchanged."
        )
    if outcome.docs_url:
        lines.append(f"Data Docs: {outcome.docs_url}")
    return "\n".join(lines)


# ------------------------------------------------------------------- before GX: schema and declared types

#: Expectations on a column that is missing say the same thing again (or fail inside GX): one message instead.
_RENAME_CUTOFF = 0.6


def required_columns(config: ModelConfig, use: str = Use.TRAINING) -> list[str]:
    target = [config.target] if use == Use.TRAINING else []
    return [*(c for c in (config.id_column,) if c), *config.feature_names, *target]


def schema_failures(frame: pd.DataFrame, config: ModelConfig, use: str = Use.TRAINING) -> list[Failure]:
    """One failure per missing column, naming the columns that appeared instead and a likely rename."""
    import difflib

    known = {*required_columns(config), config.target}
    missing = [c for c in required_columns(config, use) if c not in frame.columns]
    appeared = [str(c) for c in frame.columns if c not in known]
    failures = []
    for column in missing:
        observed = "column absent"
        if appeared:
            observed += f"; columns not in the contract: {appeared}"
        rename = _likely_rename(
            frame, config, column, difflib.get_close_matches(column, appeared, 3, _RENAME_CUTOFF)
        )
        if rename:
            observed += (
                f"; {rename!r} looks like a rename of {column!r} (similar name, values fit its declaration)"
            )
        failures.append(Failure("expect_column_to_exist", column, observed, "column present"))
    return failures


def _likely_rename(
    frame: pd.DataFrame, config: ModelConfig, column: str, candidates: list[str]
) -> str | None:
    import pandas as pd

    feature = next((f for f in config.features if f.name == column), None)
    for candidate in candidates:
        values = frame[candidate]
        if feature is None or feature.type == "numeric":
            fits = pd.api.types.is_numeric_dtype(values) or feature is None
        else:
            allowed = set(feature.allowed_values or ())
            seen = {category_text(v) for v in values.dropna().unique()[:1000]}
            fits = not allowed or len(seen & allowed) >= max(1, len(seen) // 2)
        if fits:
            return candidate
    return None


def conform(frame: pd.DataFrame, config: ModelConfig) -> tuple[pd.DataFrame, list[Failure]]:
    """Apply the declared feature types before validation.

    A categorical is compared as text whatever type the file gave it (CSV reads codes ``1..5`` as
    integers); a numeric column delivered as text is parsed, and text that is not a number is
    reported with examples (those cells become missing in the validated copy, never in the source).
    """
    import pandas as pd

    out = frame.copy(deep=False)
    failures = []
    for feature in config.features:
        if feature.name not in out.columns:
            continue
        column = out[feature.name]
        if feature.type == "categorical" and not pd.api.types.is_string_dtype(column):
            out[feature.name] = column.map(
                lambda v: v if isinstance(v, str) or pd.isna(v) else category_text(v)
            )
        elif feature.type == "numeric" and not pd.api.types.is_numeric_dtype(column):
            parsed = pd.to_numeric(column, errors="coerce")
            text = column[column.notna() & parsed.isna()]
            if len(text):
                examples = [str(v) for v in text.unique()[:5]]
                failures.append(
                    Failure(
                        TEXT_IN_NUMERIC,
                        feature.name,
                        f"text in a numeric column: {len(text)} of {len(column)} rows, e.g. {examples}",
                        "numbers (declared type: numeric)",
                    )
                )
            out[feature.name] = parsed
    return out, failures


def text_in_numeric_rows(frame: pd.DataFrame, config: ModelConfig) -> list[RowViolation]:
    """The rows (0-based positions) of each declared-numeric column holding text that is not a number,
    with that text: what :func:`conform` reports as one failure, located row by row so
    ``quality.on_failure: quarantine_rows`` can take those rows out like any row-level failure."""
    import pandas as pd

    found = []
    for feature in config.features:
        if feature.type != "numeric" or feature.name not in frame.columns:
            continue
        column = frame[feature.name].reset_index(drop=True)
        if pd.api.types.is_numeric_dtype(column):
            continue
        bad = column.notna() & pd.to_numeric(column, errors="coerce").isna()
        rows = tuple(int(i) for i in bad.to_numpy().nonzero()[0])
        if rows:
            found.append(
                RowViolation(
                    TEXT_IN_NUMERIC,
                    (feature.name,),
                    rows,
                    tuple(str(column.iat[i]) for i in rows),
                )
            )
    return found


def without_columns(expectations: list[dict[str, Any]], columns: Iterable[str]) -> list[dict[str, Any]]:
    """The expectations that do not read any of ``columns`` (their failure is already explained)."""
    skip = set(columns)
    return [e for e in expectations if e.get("kwargs", {}).get("column") not in skip]


def with_failures(outcome: ValidationOutcome, failures: list[Failure]) -> ValidationOutcome:
    """The GX outcome plus the failures found before GX ran (schema, declared types)."""
    if not failures:
        return outcome
    return ValidationOutcome(
        success=False,
        evaluated=outcome.evaluated + len(failures),
        failed=outcome.failed + len(failures),
        failures=tuple(sorted([*failures, *outcome.failures], key=lambda f: (f.column or "", f.expectation))),
        docs_url=outcome.docs_url,
        result=outcome.result,
    )


# ------------------------------------------------------- row-level quarantine (on_failure: quarantine_rows)

#: Column-map expectations: GX judges each row on its own, and its ``COMPLETE`` result lists the rows
#: that fail. Everything else (row count, schema, uniqueness, means, proportions, distributions) is a
#: property of the table and can only be judged on the batch as a whole.
ROW_LEVEL_TYPES = frozenset(
    {
        "expect_column_values_to_not_be_null",
        "expect_column_values_to_be_null",
        "expect_column_values_to_be_between",
        "expect_column_values_to_be_in_set",
        "expect_column_values_to_not_be_in_set",
        "expect_column_values_to_match_regex",
        "expect_column_values_to_not_match_regex",
        "expect_column_values_to_match_regex_list",
        "expect_column_values_to_not_match_regex_list",
        "expect_column_values_to_match_like_pattern",
        "expect_column_values_to_not_match_like_pattern",
        "expect_column_values_to_match_strftime_format",
        "expect_column_values_to_be_dateutil_parseable",
        "expect_column_values_to_be_json_parseable",
        "expect_column_value_lengths_to_be_between",
        "expect_column_value_lengths_to_equal",
        "expect_column_values_to_be_of_type",
        "expect_column_values_to_be_in_type_list",
        "expect_column_pair_values_to_be_equal",
        "expect_column_pair_values_a_to_be_greater_than_b",
        "expect_multicolumn_sum_to_equal",
        "expect_select_column_values_to_be_unique_within_record",
    }
)

#: The failure of a declared-numeric column holding text (found by :func:`conform`, before GX runs).
TEXT_IN_NUMERIC = "expect_column_values_to_be_in_type_list"

#: Columns added to ``rows.parquet``: the row's position in the batch as delivered, and why it failed.
ROW_COLUMN = "mloops_row"
REASON_COLUMN = "mloops_reason"


def is_row_level(spec: Mapping[str, Any]) -> bool:
    """A column-map expectation that every row must meet (no ``mostly`` below 1).

    A ``mostly`` states a tolerated share (``max_null_fraction`` becomes ``mostly`` on the not-null
    expectation): that share is a property of the table, so such an expectation is table-level. Nulls
    within the tolerance are data the model imputes and are kept; beyond it the batch is broken whole.
    """
    mostly = spec.get("kwargs", {}).get("mostly")
    return spec["type"] in ROW_LEVEL_TYPES and (mostly is None or float(mostly) >= 1.0)


def split_expectations(
    specs: Iterable[Mapping[str, Any]],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``(row_level, table_level)`` of ``specs``, each in its original order."""
    row: list[dict[str, Any]] = []
    table: list[dict[str, Any]] = []
    for spec in specs:
        (row if is_row_level(spec) else table).append(dict(spec))
    return row, table


def spec_columns(kwargs: Mapping[str, Any]) -> tuple[str, ...]:
    """The columns an expectation reads (``column``, ``column_A``/``column_B`` or ``column_list``)."""
    if kwargs.get("column") is not None:
        return (str(kwargs["column"]),)
    pair = tuple(str(kwargs[k]) for k in ("column_A", "column_B") if kwargs.get(k) is not None)
    return pair or tuple(str(c) for c in kwargs.get("column_list") or ())


@dataclass(frozen=True)
class RowViolation:
    """The rows of a batch (0-based positions) that one row-level expectation found unexpected;
    ``rows is None`` when GX reported the failure without listing rows (an error, an aggregate check)."""

    expectation: str
    columns: tuple[str, ...]
    rows: tuple[int, ...] | None
    #: The value each row held as delivered, when the validated copy no longer shows it (text in a
    #: numeric column is missing there); aligned with ``rows``.
    delivered: tuple[str, ...] | None = None

    @property
    def label(self) -> str:
        return f"{self.expectation}({','.join(self.columns)})" if self.columns else self.expectation


@dataclass(frozen=True)
class RowDecision:
    """Whether a batch may be used without its bad rows: the share of rows failing any row-level
    expectation against ``quality.max_bad_row_share``."""

    rows_in: int
    bad_rows: tuple[int, ...]
    max_share: float
    unlocated: tuple[str, ...] = ()

    @property
    def share(self) -> float:
        return len(self.bad_rows) / self.rows_in if self.rows_in else 0.0

    @property
    def within(self) -> bool:
        return not self.unlocated and bool(self.bad_rows) and self.share <= self.max_share

    def why_whole(self) -> str:
        """Why the batch is quarantined whole although row mode is on."""
        if self.unlocated:
            return (
                f"row-level expectation(s) {list(self.unlocated)} failed without GX listing the "
                "failing rows, so the batch cannot be split"
            )
        if not self.bad_rows:
            return "only table-level expectations failed"
        return (
            f"{len(self.bad_rows)} of {self.rows_in} rows ({self.share:.2%}) failed row-level expectations, "
            f"more than quality.max_bad_row_share {self.max_share:.2%}"
        )


def decide_rows(rows_in: int, violations: Iterable[RowViolation], max_share: float) -> RowDecision:
    """The share decision for one batch from the row-level violations GX found."""
    found = list(violations)
    bad = sorted({row for v in found if v.rows for row in v.rows})
    if any(row < 0 or row >= rows_in for row in bad):
        raise ValueError(f"row positions {bad[:5]}... lie outside a batch of {rows_in} rows")
    unlocated = tuple(v.label for v in found if v.rows is None)
    return RowDecision(rows_in, tuple(bad), max_share, unlocated)


def split_rows(frame: pd.DataFrame, violations: Iterable[RowViolation]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(kept, quarantined)`` of ``frame`` (positions as GX reported them on a 0-based RangeIndex).

    Each quarantined row carries :data:`ROW_COLUMN` (its position in the batch) and
    :data:`REASON_COLUMN`: every expectation it failed, with the column and the value it held.
    Kept plus quarantined rows are exactly the input rows.
    """
    import pandas as pd

    reasons: dict[int, list[str]] = {}
    for violation in violations:
        for i, row in enumerate(violation.rows or ()):
            delivered = violation.delivered
            values = ", ".join(
                f"{c}={_value_text(frame[c].iat[row]) if delivered is None else repr(delivered[i])}"
                for c in violation.columns
                if c in frame.columns
            )
            reasons.setdefault(row, []).append(f"{violation.label}: {values}" if values else violation.label)
    bad = sorted(reasons)
    mask = pd.Series(False, index=range(len(frame)))
    mask.iloc[bad] = True
    positions = mask.to_numpy()
    kept = frame[~positions].reset_index(drop=True)
    quarantined = frame[positions].reset_index(drop=True)
    quarantined[ROW_COLUMN] = bad
    quarantined[REASON_COLUMN] = ["; ".join(reasons[row]) for row in bad]
    if len(kept) + len(quarantined) != len(frame):
        raise AssertionError(f"row split lost rows: {len(kept)} kept + {len(quarantined)} != {len(frame)}")
    return kept, quarantined


def _value_text(value: Any) -> str:
    import pandas as pd

    if value is None or (not isinstance(value, (list, tuple, dict)) and pd.isna(value)):
        return "null"
    return repr(value.item() if hasattr(value, "item") else value)


def reasons_summary(violations: Iterable[RowViolation]) -> dict[str, int]:
    """How many rows each row-level expectation found unexpected (a row may count under several)."""
    return {v.label: len(v.rows) for v in violations if v.rows}


def rows_quarantined_message(
    model: str, partition: str, decision: RowDecision, summary: Mapping[str, int], quarantine: str
) -> str:
    """The warning of a row-level quarantine: how many rows went where, and why."""
    reasons = "; ".join(f"{label}: {count} rows" for label, count in summary.items())
    return (
        f"Rows quarantined for model {model!r}, partition {partition}: {len(decision.bad_rows)} of "
        f"{decision.rows_in} rows ({decision.share:.2%}, at most {decision.max_share:.2%} allowed) failed "
        f"row-level expectations ({reasons}) and were written with their reasons to "
        f"{quarantine}/rows.parquet; the other {decision.rows_in - len(decision.bad_rows)} rows are used."
    )
