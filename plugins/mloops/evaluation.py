"""Model tests as pure functions: each gate is a :class:`Check` stating value vs threshold and pass/fail.

Gates: absolute metric thresholds, challenger vs. champion on the same holdout (no worse than the
champion minus a tolerance), a minimum metric per slice, the logged artifact reproducing the
predictions its training recorded, and a smoke test of the artifact as MLflow serves it.
The report is written as JSON (machine-readable) and Markdown (for the MLflow UI and task logs).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from mloops.config import METRICS, ModelConfig

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class Check:
    """One gate: ``value`` compared with ``threshold`` by ``comparator``; ``detail`` says why."""

    name: str
    kind: str
    metric: str | None
    value: float | None
    threshold: float | None
    comparator: str
    passed: bool
    detail: str = ""

    def describe(self) -> str:
        status = "PASS" if self.passed else "FAIL"
        value = "n/a" if self.value is None else f"{self.value:.4f}"
        threshold = "" if self.threshold is None else f" {self.comparator} {self.threshold:.4f}"
        detail = f" ({self.detail})" if self.detail else ""
        return f"[{status}] {self.name}: {value}{threshold}{detail}"


def _compare(value: float | None, threshold: float, greater_is_better: bool) -> bool:
    if value is None:
        return False
    return value >= threshold if greater_is_better else value <= threshold


def threshold_checks(config: ModelConfig, metrics: Mapping[str, float | None]) -> list[Check]:
    directions = METRICS[config.task]
    checks = []
    for metric, threshold in sorted(config.evaluation.thresholds.items()):
        greater = directions[metric]
        value = metrics.get(metric)
        checks.append(
            Check(
                name=f"threshold:{metric}",
                kind="threshold",
                metric=metric,
                value=value,
                threshold=threshold,
                comparator=">=" if greater else "<=",
                passed=_compare(value, threshold, greater),
                detail="metric undefined on the holdout" if value is None else "",
            )
        )
    return checks


def champion_check(
    config: ModelConfig,
    challenger: Mapping[str, float | None],
    champion: Mapping[str, float | None] | None,
    champion_label: str | None,
    error: str | None = None,
) -> Check:
    """Challenger must be no worse than the champion (on the primary metric) minus the tolerance."""
    metric = config.evaluation.primary_metric
    greater = config.greater_is_better
    value = challenger.get(metric)
    comparator = ">=" if greater else "<="
    if error:
        return Check(f"champion:{metric}", "champion", metric, value, None, comparator, False, error)
    if champion is None:
        return Check(
            f"champion:{metric}",
            "champion",
            metric,
            value,
            None,
            comparator,
            True,
            "no champion yet: bootstrap",
        )
    reference = champion.get(metric)
    if reference is None:
        return Check(
            f"champion:{metric}",
            "champion",
            metric,
            value,
            None,
            comparator,
            True,
            f"{champion_label} has no {metric} on this holdout; comparison not possible",
        )
    tolerance = config.evaluation.champion_tolerance
    threshold = reference - tolerance if greater else reference + tolerance
    return Check(
        f"champion:{metric}",
        "champion",
        metric,
        value,
        threshold,
        comparator,
        _compare(value, threshold, greater),
        f"{champion_label} scores {reference:.4f} on the same holdout; tolerance {tolerance}",
    )


def slice_checks(
    config: ModelConfig,
    holdout: pd.DataFrame,
    metrics_for: Callable[[Any], Mapping[str, float | None]],
) -> list[Check]:
    """A minimum metric per configured slice; a slice too small to judge fails with its row count.

    ``metrics_for`` gets the slice's rows as a boolean mask over the holdout's rows, by position
    (:meth:`mloops.training.Predictions.metrics`), so the holdout is predicted once for all slices.
    """
    import numpy as np

    checks = []
    directions = METRICS[config.task]
    for spec in config.evaluation.slices:
        greater = directions[spec.metric]
        comparator = ">=" if greater else "<="
        rows = (
            (holdout[spec.column].astype(str) == str(spec.value)).to_numpy(dtype=bool)
            if spec.column in holdout
            else np.zeros(len(holdout), dtype=bool)
        )
        count = int(rows.sum())
        name = f"slice:{spec.name}:{spec.metric}"
        if count < spec.min_rows:
            checks.append(
                Check(
                    name,
                    "slice",
                    spec.metric,
                    None,
                    spec.min,
                    comparator,
                    False,
                    f"{count} holdout rows where {spec.column} == {spec.value!r}; need at least "
                    f"{spec.min_rows}",
                )
            )
            continue
        value = metrics_for(rows).get(spec.metric)
        checks.append(
            Check(
                name,
                "slice",
                spec.metric,
                value,
                spec.min,
                comparator,
                _compare(value, spec.min, greater),
                f"{count} rows where {spec.column} == {spec.value!r}",
            )
        )
    return checks


def reproduce_check(rows: int, mismatch: str | None) -> Check:
    """The logged model reproduces the holdout predictions its training recorded (on the first
    ``rows`` rows), so the metrics computed from those predictions are the logged model's."""
    detail = mismatch or f"the logged model predicts the first {rows} holdout rows as its training recorded"
    return Check(
        "reproduce:holdout_predictions", "reproduce", None, None, None, "==", mismatch is None, detail
    )


def smoke_check(predictions: Sequence[Any] | None, expected_rows: int, error: str | None) -> Check:
    """The logged artifact loads through MLflow and returns one finite prediction per input row."""
    import math

    if error:
        return Check("smoke:load_and_predict", "smoke", None, None, None, "==", False, error)
    values = list(predictions or [])
    finite = all(isinstance(v, int | float) and math.isfinite(float(v)) for v in values)
    passed = len(values) == expected_rows and finite
    detail = f"{len(values)} predictions for {expected_rows} rows" + ("" if finite else ", some not finite")
    return Check(
        "smoke:load_and_predict",
        "smoke",
        None,
        float(len(values)),
        float(expected_rows),
        "==",
        passed,
        detail,
    )


def report(
    config: ModelConfig,
    partition: str,
    checks: Sequence[Check],
    metrics: Mapping[str, float | None],
    context: Mapping[str, Any],
) -> dict[str, Any]:
    return {
        "model": config.name,
        "partition": partition,
        "passed": all(c.passed for c in checks),
        "checks": [asdict(c) for c in checks],
        "metrics": dict(metrics),
        **context,
    }


def report_markdown(payload: Mapping[str, Any]) -> str:
    lines = [
        f"# Model tests: {payload['model']} ({payload['partition']})",
        "",
        f"**Result: {'PASSED' if payload['passed'] else 'FAILED'}**",
        "",
        "| check | value | comparator | threshold | result | detail |",
        "|---|---|---|---|---|---|",
    ]
    for check in payload["checks"]:
        value = "n/a" if check["value"] is None else f"{check['value']:.4f}"
        threshold = "" if check["threshold"] is None else f"{check['threshold']:.4f}"
        result = "pass" if check["passed"] else "**FAIL**"
        lines.append(
            f"| {check['name']} | {value} | {check['comparator']} | {threshold} | {result} | "
            f"{check['detail']} |"
        )
    lines += ["", "| metric | holdout value |", "|---|---|"]
    lines += [
        f"| {k} | {'n/a' if v is None else f'{v:.4f}'} |" for k, v in sorted(payload["metrics"].items())
    ]
    return "\n".join(lines) + "\n"


def gate_message(payload: Mapping[str, Any], report_uri: str) -> str:
    failed = [c for c in payload["checks"] if not c["passed"]]
    lines = [
        f"Model gate failed for {payload['model']!r} ({payload['partition']}): {len(failed)} check(s) failed."
    ]
    lines += ["  - " + Check(**c).describe() for c in failed]
    lines.append(f"Report: {report_uri}. The champion is unchanged.")
    return "\n".join(lines)
