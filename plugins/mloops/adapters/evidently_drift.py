"""Evidently drift metrics with the test pinned per column, each column's drift computed once.

Evidently's ``DataDriftPreset`` computes every column's drift three times: once for
``DriftedColumnsCount`` (its legacy ``DatasetDriftMetric``), once for the ``DataDriftTable`` its HTML
shows, and once per ``ValueDrift``. Each legacy pass re-infers the column types over a concatenation of
both frames, each ``ValueDrift`` copies the whole frame, and ``Dataset.from_pandas`` copies both frames
and computes statistics of every column that drift never reads. At 1M rows that was 10x the cost of the
same tests in scipy. The metrics here keep Evidently as the engine (its stat tests, its per-column
drift calculation ``get_one_column_drift``, its renderers) and change only how often it is asked:

- :class:`FrameDataset`: an Evidently ``Dataset`` over the caller's frame as it is (no copy, no type
  inference: mloops names the numeric and categorical columns; statistics only if a metric asks).
- :class:`PinnedValueDrift`: one column's drift with the method and threshold mloops pinned
  (``monitoring.method_for``), so Evidently neither detects the column type nor picks a test by sample
  size. Its value is the drift score, as ``ValueDrift``'s is; standalone it renders ``ValueDrift``'s widget.
- :class:`PinnedDriftedColumnsCount`: the count and share of drifted columns, from those results.
- :class:`PinnedDriftTable`: the preset's part of the report (the dataset-drift counters and the
  per-column drift table, drawn by Evidently's own renderers) built from the same per-column results.

The per-column results of one report run are kept per Evidently ``Context`` (:func:`_results`), so the
count and the table read what :class:`PinnedValueDrift` computed instead of computing it again.
"""

import weakref
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from evidently.core.container import MetricContainer
from evidently.core.datasets import DataDefinition, DatasetColumn, DatasetStats, PandasDataset
from evidently.core.metric_types import (
    BoundTest,
    ColumnMetric,
    CountCalculation,
    CountMetric,
    MetricTestResult,
    SingleValue,
    SingleValueCalculation,
    SingleValueMetric,
)
from evidently.core.report import Context
from evidently.legacy.calculations.data_drift import (
    ColumnDataDriftMetrics,
    get_dataset_drift,
    get_one_column_drift,
)
from evidently.legacy.core import ColumnType
from evidently.legacy.metric_results import DatasetColumns, DatasetUtilityColumns
from evidently.legacy.metrics import DataDriftTable, DatasetDriftMetric
from evidently.legacy.metrics.data_drift.data_drift_table import DataDriftTableResults
from evidently.legacy.metrics.data_drift.dataset_drift_metric import DatasetDriftMetricResults
from evidently.legacy.model.widget import BaseWidgetInfo
from evidently.legacy.options import ColorOptions
from evidently.legacy.options.base import Options
from evidently.legacy.options.data_drift import DataDriftOptions
from evidently.legacy.renderers.base_renderer import DEFAULT_RENDERERS
from evidently.legacy.suite.base_suite import find_metric_renderer
from evidently.legacy.tests.base_test import TestStatus
from evidently.metrics.column_statistics import ValueDriftBoundTest, ValueDriftCalculation, ValueDriftTest
from evidently.tests import lt

#: The column types a pinned drift test accepts (mloops features are numeric or categorical).
_DRIFT_TYPES = (ColumnType.Numerical, ColumnType.Categorical)


def data_definition(numerical: list[str], categorical: list[str]) -> DataDefinition:
    """A complete definition: every type list set, so Evidently infers nothing."""
    return DataDefinition(
        numerical_columns=list(numerical),
        categorical_columns=list(categorical),
        text_columns=[],
        datetime_columns=[],
        unknown_columns=[],
        list_columns=[],
    )


class FrameDataset(PandasDataset):
    """An Evidently dataset over ``frame`` itself, typed by ``definition``.

    ``PandasDataset`` copies the frame and computes per-column statistics when it is built; drift reads
    neither. This one holds the frame as given (so it must not be modified while the report runs) and
    computes the statistics only when a metric asks for them (:meth:`stats`).
    """

    def __init__(self, frame: pd.DataFrame, definition: DataDefinition) -> None:
        named = [*definition.get_numerical_columns(), *definition.get_categorical_columns()]
        missing = [c for c in named if c not in frame.columns]
        if missing:
            raise KeyError(f"FrameDataset: column(s) {missing} of the data definition are not in the frame")
        self._data = frame
        self._data_definition = definition
        self._dataset_stats: DatasetStats | None = None
        self._metadata: dict[str, Any] = {}
        self._tags: list[str] = []

    def stats(self) -> DatasetStats:
        if self._dataset_stats is None:
            rows, columns = self._data.shape
            self._dataset_stats = DatasetStats(
                rows,
                columns,
                {
                    c: self._collect_stats(self._data_definition.get_column_type(c), self._data[c])
                    for c in self._data.columns
                },
            )
        return self._dataset_stats

    def add_column(self, key: str, data: DatasetColumn, add_to_descriptor_list: bool = True) -> None:
        # The frame is the caller's: adding a descriptor column would change it under them.
        raise TypeError(f"FrameDataset does not add columns (asked to add {key!r}); use Dataset.from_pandas")


@dataclass
class _RunResults:
    """What one report run computed per column, keyed by the ``PinnedValueDrift`` metric id."""

    drifts: dict[str, ColumnDataDriftMetrics] = field(default_factory=dict)
    #: Metric ids whose widgets a :class:`PinnedDriftTable` draws (their own would be thrown away).
    in_table: set[str] = field(default_factory=set)


_RUNS: "weakref.WeakKeyDictionary[Context, _RunResults]" = weakref.WeakKeyDictionary()


def _results(context: Context) -> _RunResults:
    run = _RUNS.get(context)
    if run is None:
        run = _RUNS[context] = _RunResults()
    return run


def column_drift(
    current: pd.Series, reference: pd.Series, column_type: ColumnType, method: str, threshold: float
) -> ColumnDataDriftMetrics:
    """Evidently's drift of one column with the test pinned (what ``ValueDrift`` computes).

    The frames handed to ``get_one_column_drift`` hold this column only: with the whole frame, its
    scatter step copies every column of it, once per column.
    """
    name = str(current.name)
    if column_type not in _DRIFT_TYPES:
        raise ValueError(f"column {name!r} has type {column_type.value!r}; pinned drift needs num or cat")
    numerical = column_type == ColumnType.Numerical
    return get_one_column_drift(
        current_data=current.to_frame(name),
        reference_data=reference.to_frame(name),
        column_name=name,
        options=DataDriftOptions(all_features_stattest=method, all_features_threshold=threshold),
        dataset_columns=DatasetColumns(
            utility_columns=DatasetUtilityColumns(date=None, id=None, target=None, prediction=None),
            target_type=None,
            task=None,
            num_feature_names=[name] if numerical else [],
            cat_feature_names=[] if numerical else [name],
            text_feature_names=[],
            datetime_feature_names=[],
            target_names=None,
        ),
        column_type=column_type,
        agg_data=True,
    )


class PinnedValueDrift(ColumnMetric, SingleValueMetric):
    """Drift of one column by ``method`` at ``threshold`` (both required); the value is the score."""

    method: str
    threshold: float


class PinnedValueDriftCalculation(SingleValueCalculation[PinnedValueDrift]):
    def calculate(self, context: Context, current_data: Any, reference_data: Any) -> SingleValue:
        metric = self.metric
        if reference_data is None:
            raise ValueError(f"PinnedValueDrift({metric.column!r}) needs reference data")
        column = current_data.column(metric.column)
        drift = column_drift(
            column.data,
            reference_data.column(metric.column).data,
            column.type,
            metric.method,
            metric.threshold,
        )
        run = _results(context)
        run.drifts[metric.metric_id] = drift
        result = self.result(drift.drift_score)
        if metric.metric_id in run.in_table:
            result.widget = []
        else:  # ValueDrift's own widget (it uses no state of its calculation)
            result.widget = ValueDriftCalculation._render(self, drift, Options(), ColorOptions())
        if metric.tests is None and context.configuration.include_tests:
            result.set_tests([self._drift_test(drift)])
        return result

    def _drift_test(self, drift: ColumnDataDriftMetrics) -> MetricTestResult:
        """The test ``ValueDrift`` attaches when the report includes tests: fails when the column drifted."""
        return MetricTestResult(
            id="drift",
            name=f"Value Drift for column {self.metric.column}",
            description=f"Drift score is {drift.drift_score:0.2f}. "
            f"The drift detection method is {drift.stattest_name}. "
            f"The drift threshold is {drift.stattest_threshold:0.2f}.",
            status=TestStatus.FAIL if drift.drift_detected else TestStatus.SUCCESS,
            metric_config=self.to_metric_config(),
            test_config={},
            bound_test=ValueDriftBoundTest(test=ValueDriftTest(), metric_fingerprint=self.metric.metric_id),
        )

    def display_name(self) -> str:
        return f"Value drift for {self.metric.column}"


def _drift_of(context: Context, metric: PinnedValueDrift) -> ColumnDataDriftMetrics:
    """The column's drift of this run, computed now if no metric asked for it yet."""
    run = _results(context)
    if metric.metric_id not in run.drifts:
        context.calculate_metric(metric.to_calculation())
    return run.drifts[metric.metric_id]


class _PinnedColumns:
    """The columns and their pinned tests, shared by the count and the table."""

    columns: list[str]
    per_column_method: dict[str, str]
    per_column_threshold: dict[str, float]

    def column_metrics(self) -> list[PinnedValueDrift]:
        missing = [
            c for c in self.columns if c not in self.per_column_method or c not in self.per_column_threshold
        ]
        if missing:
            raise ValueError(f"no pinned drift method or threshold for column(s) {missing}")
        return [
            PinnedValueDrift(
                column=c, method=self.per_column_method[c], threshold=self.per_column_threshold[c]
            )
            for c in self.columns
        ]


class PinnedDriftedColumnsCount(_PinnedColumns, CountMetric):
    """How many of ``columns`` drifted, and their share (``DriftedColumnsCount`` over pinned tests)."""

    columns: list[str]
    per_column_method: dict[str, str]
    per_column_threshold: dict[str, float]
    drift_share: float = 0.5

    def _default_tests_with_reference(self, context: Context) -> list[BoundTest]:
        return [lt(self.drift_share).bind_count(self.get_fingerprint(), is_count=False)]


class PinnedDriftedColumnsCountCalculation(CountCalculation[PinnedDriftedColumnsCount]):
    def calculate(self, context: Context, current_data: Any, reference_data: Any) -> Any:
        drifts = {m.column: _drift_of(context, m) for m in self.metric.column_metrics()}
        found = get_dataset_drift(drifts, self.metric.drift_share)
        return self.result(found.number_of_drifted_columns, found.dataset_drift_score)

    def display_name(self) -> str:
        return "Count of Drifted Columns"

    def share_display_name(self) -> str:
        return "Share of Drifted Columns"


class PinnedDriftTable(_PinnedColumns, MetricContainer):
    """What ``DataDriftPreset`` puts in a report, over pinned tests computed once per column.

    Metrics: :class:`PinnedDriftedColumnsCount` and one :class:`PinnedValueDrift` per column. HTML: the
    preset's dataset-drift counters and per-column drift table (columns by score, each with its
    distributions and drift plot), drawn by Evidently's ``DatasetDriftMetric`` and ``DataDriftTable``
    renderers from those results.
    """

    columns: list[str]
    per_column_method: dict[str, str]
    per_column_threshold: dict[str, float]
    drift_share: float = 0.5

    def count_metric(self) -> PinnedDriftedColumnsCount:
        return PinnedDriftedColumnsCount(
            columns=self.columns,
            per_column_method=self.per_column_method,
            per_column_threshold=self.per_column_threshold,
            drift_share=self.drift_share,
        )

    def generate_metrics(self, context: Context) -> list[Any]:
        columns = self.column_metrics()
        _results(context).in_table.update(m.metric_id for m in columns)
        return [self.count_metric(), *columns]

    def render(
        self, context: Context, child_widgets: list[tuple[Any, list[BaseWidgetInfo]]] | None = None
    ) -> list[BaseWidgetInfo]:
        drifts = {m.column: _drift_of(context, m) for m in self.column_metrics()}
        found = get_dataset_drift(drifts, self.drift_share)
        counts = {
            "number_of_columns": len(drifts),
            "number_of_drifted_columns": found.number_of_drifted_columns,
            "share_of_drifted_columns": found.dataset_drift_score,
            "dataset_drift": found.dataset_drift,
        }
        numerical = [c for c, d in drifts.items() if d.column_type == ColumnType.Numerical.value]
        summary = DatasetDriftMetricResults(drift_share=self.drift_share, **counts)
        table = DataDriftTableResults(
            **counts,
            drift_by_columns=drifts,
            dataset_columns=DatasetColumns(
                utility_columns=DatasetUtilityColumns(date=None, id=None, target=None, prediction=None),
                target_type=None,
                task=None,
                num_feature_names=numerical,
                cat_feature_names=[c for c in drifts if c not in numerical],
                text_feature_names=[],
                datetime_feature_names=[],
                target_names=None,
            ),
        )
        return [
            *_render_legacy(DatasetDriftMetric(columns=self.columns, drift_share=self.drift_share), summary),
            *_render_legacy(DataDriftTable(columns=self.columns), table),
        ]


def _render_legacy(metric: Any, result: Any) -> list[BaseWidgetInfo]:
    """A legacy metric's HTML widgets for a result computed elsewhere (as ``Context.get_legacy_metric``
    renders one: the result is bound to the metric, then its registered renderer draws it)."""
    object.__setattr__(metric, "get_result", lambda: result)
    return list(find_metric_renderer(type(metric), DEFAULT_RENDERERS).render_html(metric))
