"""The one place mloops calls Evidently (0.7 API), with the drift metrics it runs in ``evidently_drift``.

Each drift test is pinned per column (method and threshold from the model config), so the test
never switches silently with sample size. ``Report.run`` takes the current data first: always keywords.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from mloops.partitions import StoragePath, atomic_path

if TYPE_CHECKING:
    import pandas as pd


def _definition(numeric: Sequence[str], categorical: Sequence[str], **kwargs: Any) -> Any:
    from evidently import DataDefinition

    return DataDefinition(numerical_columns=list(numeric), categorical_columns=list(categorical), **kwargs)


def drift_report(
    *,
    reference: pd.DataFrame,
    current: pd.DataFrame,
    numeric: Sequence[str],
    categorical: Sequence[str],
    methods: Mapping[str, tuple[str, float]],
    drift_share: float,
    prediction: tuple[str, str, float] | None,
    out_dir: StoragePath,
    name: str = "drift",
) -> dict[str, Any]:
    """Data drift per column (pinned tests) plus prediction drift; saves HTML and JSON in ``out_dir``.

    ``prediction`` is ``(column, method, threshold)``. Returns the snapshot's ``dict()``: one
    ``PinnedValueDrift`` metric per column (value: the score) and ``PinnedDriftedColumnsCount``.
    The report has what ``DataDriftPreset`` gives (dataset-drift counters, the per-column table) and the
    prediction's drift widget, with each column's drift computed once (see ``evidently_drift``).
    """
    os.environ.setdefault("DO_NOT_TRACK", "1")
    from evidently import Report

    from mloops.adapters.evidently_drift import (
        FrameDataset,
        PinnedDriftTable,
        PinnedValueDrift,
        data_definition,
    )

    columns = [*numeric, *categorical]
    metrics: list[Any] = [
        PinnedDriftTable(
            columns=columns,
            per_column_method={c: methods[c][0] for c in columns},
            per_column_threshold={c: methods[c][1] for c in columns},
            drift_share=drift_share,
        )
    ]
    numeric_all = list(numeric)
    if prediction is not None:
        column, method, threshold = prediction
        metrics.append(PinnedValueDrift(column=column, method=method, threshold=threshold))
        numeric_all.append(column)
    # The frames as they are (no copy; FrameDataset only reads the columns the definition names).
    definition = data_definition(numeric_all, list(categorical))
    snapshot = Report(metrics=metrics).run(
        current_data=FrameDataset(current, definition),
        reference_data=FrameDataset(reference, definition),
    )
    _save(snapshot, out_dir, name)
    return snapshot.dict()


def quality_report(
    *,
    reference: pd.DataFrame,
    current: pd.DataFrame,
    task: str,
    target: str,
    prediction: str,
    out_dir: StoragePath,
    name: str = "quality",
) -> dict[str, Any]:
    """Model quality on delayed labels (current) next to the training reference; saves HTML and JSON."""
    from evidently import BinaryClassification, Dataset, Regression, Report
    from evidently.presets import ClassificationPreset, RegressionPreset

    if task == "classification":
        definition = _definition(
            [prediction],
            [target],
            classification=[BinaryClassification(target=target, prediction_probas=prediction)],
        )
        preset: Any = ClassificationPreset()
    else:
        definition = _definition(
            [prediction, target], [], regression=[Regression(target=target, prediction=prediction)]
        )
        preset = RegressionPreset()
    snapshot = Report(metrics=[preset]).run(
        current_data=Dataset.from_pandas(current[[target, prediction]], data_definition=definition),
        reference_data=Dataset.from_pandas(reference[[target, prediction]], data_definition=definition),
    )
    _save(snapshot, out_dir, name)
    return snapshot.dict()


def _save(snapshot: Any, out_dir: StoragePath, name: str) -> None:
    """Write ``<name>.html`` and ``<name>.json`` atomically (local folder or object storage)."""
    # Evidently writes only when given a str path (a Path is silently ignored).
    for suffix, save in ((".html", snapshot.save_html), (".json", snapshot.save_json)):
        with atomic_path(out_dir / f"{name}{suffix}") as tmp:
            save(str(tmp))
