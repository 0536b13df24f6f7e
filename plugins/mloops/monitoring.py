"""Drift monitoring as pure logic: input checks, sampling, reading Evidently's numbers, the policy.

The Evidently call itself lives in ``adapters.evidently_adapter``; this module decides what goes in
(a fixed-seed sample of each side, the columns that can be compared) and what comes out (per-column
scores, the share of drifted features, prediction drift, delayed-label quality, a retrain verdict).
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from mloops.contracts import PREDICTION_COLUMN as PREDICTION
from mloops.errors import DriftInputError
from mloops.partitions import start_of

if TYPE_CHECKING:
    import pandas as pd

    from mloops.config import ModelConfig, MonitoringConfig
    from mloops.partitions import Partition


@dataclass(frozen=True)
class ColumnDrift:
    column: str
    method: str
    score: float | None
    threshold: float
    drifted: bool
    detail: str = ""


@dataclass(frozen=True)
class DriftSummary:
    """Everything one drift check found; JSON-able through :meth:`to_dict`."""

    columns: tuple[ColumnDrift, ...]
    share: float
    prediction: ColumnDrift | None
    quality: Mapping[str, float | None] = field(default_factory=dict)
    quality_reference: float | None = None
    labeled_rows: int = 0

    @property
    def drifted_columns(self) -> dict[str, float | None]:
        return {c.column: c.score for c in self.columns if c.drifted}

    def to_dict(self) -> dict[str, Any]:
        return {
            "columns": [asdict(c) for c in self.columns],
            "share": self.share,
            "drifted_columns": self.drifted_columns,
            "prediction": asdict(self.prediction) if self.prediction else None,
            "quality": dict(self.quality),
            "quality_reference": self.quality_reference,
            "labeled_rows": self.labeled_rows,
        }


@dataclass(frozen=True)
class PolicyVerdict:
    breached: bool
    reasons: tuple[str, ...]


def sample(frame: pd.DataFrame, size: int, seed: int) -> pd.DataFrame:
    """A fixed-seed sample of at most ``size`` rows, so drift cost is bounded and repeatable.

    The rows keep the frame's order (a partition's is its arrival order): the per-column plot of
    Evidently's report draws values in row order against the reference's band, which shows a trend
    within the interval only if the sample is not shuffled.
    """
    if len(frame) <= size:
        return frame.reset_index(drop=True)
    return frame.sample(n=size, random_state=seed).sort_index().reset_index(drop=True)


def method_for(config: ModelConfig, column: str) -> tuple[str, float]:
    m = config.monitoring
    if column in config.categorical_features:
        return m.categorical_method, m.categorical_threshold
    return m.numeric_method, m.numeric_threshold


def check_inputs(
    config: ModelConfig, reference: pd.DataFrame, current: pd.DataFrame
) -> tuple[list[str], list[ColumnDrift]]:
    """Columns Evidently can compare, and findings for those it cannot (all values missing).

    Raises :class:`DriftInputError` for an empty or too small window and for features missing from
    either side: a schema change is a data problem to fix, not a drift score.
    """
    minimum = config.monitoring.min_rows
    for side, frame in (("reference", reference), ("current", current)):
        if len(frame) < minimum:
            raise DriftInputError(
                f"model {config.name!r}: the {side} data has {len(frame)} rows; monitoring.min_rows is "
                f"{minimum}"
            )
        missing = [c for c in config.feature_names if c not in frame.columns]
        if missing:
            raise DriftInputError(
                f"model {config.name!r}: feature column(s) {missing} missing from the {side} data"
            )
    comparable, findings = [], []
    for column in config.feature_names:
        method, threshold = method_for(config, column)
        if current[column].isna().all():
            findings.append(
                ColumnDrift(column, method, None, threshold, True, "all values missing in the current window")
            )
        elif reference[column].isna().all():
            findings.append(
                ColumnDrift(column, method, None, threshold, False, "all values missing in the reference")
            )
        else:
            comparable.append(column)
    return comparable, findings


def drift_detected(method: str, score: float, threshold: float) -> bool:
    """Evidently's direction: p-value tests drift below the threshold, distances at or above it."""
    if method in {
        "ks",
        "chisquare",
        "z",
        "anderson",
        "cramer_von_mises",
        "fisher_exact",
        "g_test",
        "mannw",
        "t_test",
    }:
        return score <= threshold if method == "ks" else score < threshold
    return score >= threshold


#: A per-column drift metric of the snapshot: ``PinnedValueDrift`` (``adapters.evidently_drift``, what
#: mloops runs) or Evidently's own ``ValueDrift`` (same config and value).
_VALUE_DRIFT = re.compile(
    r"^(?:Pinned)?ValueDrift\(column=(?P<column>[^,]+),method=(?P<method>[^,]+),"
    r"threshold=(?P<threshold>[^)]+)\)$"
)


def value_drifts(snapshot: Mapping[str, Any]) -> dict[str, tuple[str, float, float]]:
    """``{column: (method, score, threshold)}`` from an Evidently snapshot's ``dict()``."""
    out = {}
    for metric in snapshot.get("metrics", []):
        match = _VALUE_DRIFT.match(metric.get("metric_name", ""))
        if match:
            config = metric.get("config") or {}
            column = config.get("column") or match["column"]
            out[column] = (
                config.get("method") or match["method"],
                float(metric["value"]),
                float(match["threshold"]),
            )
    return out


def _finite(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def summarize(
    config: ModelConfig,
    snapshot: Mapping[str, Any],
    unevaluable: Sequence[ColumnDrift],
    quality: Mapping[str, float | None] | None = None,
    quality_reference: float | None = None,
    labeled_rows: int = 0,
) -> DriftSummary:
    scores = value_drifts(snapshot)
    columns = list(unevaluable)
    for column in config.feature_names:
        if column in scores:
            method, score, threshold = scores[column]
            columns.append(
                ColumnDrift(
                    column, method, _finite(score), threshold, drift_detected(method, score, threshold)
                )
            )
    columns.sort(key=lambda c: config.feature_names.index(c.column))
    prediction = None
    if PREDICTION in scores:
        method, score, threshold = scores[PREDICTION]
        prediction = ColumnDrift(
            PREDICTION, method, _finite(score), threshold, drift_detected(method, score, threshold)
        )
    share = sum(c.drifted for c in columns) / len(columns) if columns else 0.0
    return DriftSummary(
        tuple(columns), share, prediction, dict(quality or {}), quality_reference, labeled_rows
    )


def evaluate_policy(config: ModelConfig, summary: DriftSummary) -> PolicyVerdict:
    """Whether the findings breach the model's drift policy, and why."""
    m: MonitoringConfig = config.monitoring
    reasons = []
    if summary.share >= m.drift_share:
        drifted = ", ".join(
            f"{k}={v:.3f}" if v is not None else k for k, v in summary.drifted_columns.items()
        )
        reasons.append(f"{summary.share:.0%} of features drifted (policy: {m.drift_share:.0%}): {drifted}")
    if summary.prediction is not None and summary.prediction.drifted:
        reasons.append(
            f"prediction drift {summary.prediction.method}={summary.prediction.score:.3f} "
            f"(threshold {summary.prediction.threshold})"
        )
    metric = config.evaluation.primary_metric
    current = summary.quality.get(metric)
    if current is not None and summary.quality_reference is not None:
        drop = (
            summary.quality_reference - current
            if config.greater_is_better
            else current - summary.quality_reference
        )
        if drop > m.max_quality_drop:
            reasons.append(
                f"{metric} on {summary.labeled_rows} labeled rows is {current:.4f}, {drop:.4f} worse than "
                "the "
                f"champion's test value {summary.quality_reference:.4f} (policy: {m.max_quality_drop})"
            )
    return PolicyVerdict(bool(reasons), tuple(reasons))


def served_metrics(task: str, y_true: Any, prediction: pd.Series) -> dict[str, float | None]:
    """The task's metrics of served predictions against their labels (a classifier's label is its
    score at 0.5, as scoring serves it)."""
    from mloops import training

    if task == "classification":
        return training.compute_metrics(task, y_true, (prediction >= 0.5).astype("int64"), prediction)
    return training.compute_metrics(task, y_true, prediction, None)


def cooldown_blocks(
    last_trigger: dt.date | dt.datetime | None, window_end: dt.date | dt.datetime, hours: float
) -> bool:
    """A retrain was triggered for a window ending less than ``hours`` of data time before this one.

    Measured in data time (window ends), not wall time, so backfills and simulations behave the same.
    """
    if last_trigger is None:
        return False
    last, end = start_of(last_trigger), start_of(window_end)
    return (end - last) < dt.timedelta(hours=hours) and end >= last


def labeled_partitions(window: Sequence[Partition], end: Partition, delay: dt.timedelta) -> list[Partition]:
    """Partitions whose labels have arrived by ``end`` (labels land ``delay`` after the data)."""
    return [d for d in window if d.start + delay <= end.start]
