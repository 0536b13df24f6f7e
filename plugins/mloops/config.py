"""Per-model configuration: one YAML file per model under ``include/models/``, validated once.

Everything a model needs (source, features, suite, estimator, window, gates, slices, promotion,
schedule) is declared here as frozen pydantic models; :mod:`mloops.config_files` reads the files.
Only pydantic is imported (already loaded by Airflow), so this module is safe at DAG parse time.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from mloops.contracts import ChampionChange, OnFailure, PromotionPolicy, ScenarioKind
from mloops.data.confinement import SUB_DAILY_PLACEHOLDERS, check_path_template
from mloops.partitions import DAY, interval_text, intervals_in, parse_duration, parse_interval

NAME_PATTERN = r"^[a-z][a-z0-9_]{0,62}$"
#: Template variables of a SQL source that select a sub-daily interval (a ``{{ ds }}`` alone cannot).
SQL_SUB_DAILY_VARIABLES = ("data_interval_start", "data_interval_end", "ts", "ts_nodash", "hour", "partition")
#: An Airflow user name as the auth managers accept it (Simple: the ``user:role`` list; FAB: a login).
APPROVER_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.@+-]{0,127}$"

#: Estimators a config may name. Each is a scikit-learn class whose fitted state serializes with
#: skops without custom code; the extra skops types each one needs live in ``training.TRUSTED_TYPES``.
ESTIMATORS: dict[str, Literal["classification", "regression"]] = {
    "sklearn.ensemble.HistGradientBoostingClassifier": "classification",
    "sklearn.ensemble.RandomForestClassifier": "classification",
    "sklearn.ensemble.GradientBoostingClassifier": "classification",
    "sklearn.linear_model.LogisticRegression": "classification",
    "sklearn.ensemble.HistGradientBoostingRegressor": "regression",
    "sklearn.ensemble.RandomForestRegressor": "regression",
    "sklearn.ensemble.GradientBoostingRegressor": "regression",
    "sklearn.linear_model.Ridge": "regression",
}

#: Metrics per task, with whether greater is better.
METRICS: dict[str, dict[str, bool]] = {
    "classification": {
        "roc_auc": True,
        "accuracy": True,
        "f1": True,
        "precision": True,
        "recall": True,
        "log_loss": False,
    },
    "regression": {"rmse": False, "mae": False, "r2": True},
}


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ScenarioConfig(_Frozen):
    """A data scenario of the example generator, active on a date range (inclusive)."""

    kind: ScenarioKind
    start: dt.date
    end: dt.date
    params: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _ordered(self) -> ScenarioConfig:
        if self.end < self.start:
            raise ValueError(f"end {self.end} is before start {self.start}")
        return self


class FilesSource(_Frozen):
    """Partitioned files; ``path`` is a template with ``{data_root}``, ``{model}``, ``{ds}``,
    ``{ds_nodash}`` and, for sub-daily models, ``{hour}``, ``{ts_nodash}`` or ``{partition}``."""

    kind: Literal["files"]
    path: str
    format: Literal["parquet", "csv"] = "parquet"

    @field_validator("path")
    @classmethod
    def _confined(cls, value: str) -> str:
        from mloops.settings import get_settings

        return check_path_template(value, get_settings().data_root_uri)


class SqlSource(_Frozen):
    """A query through an Airflow connection, rendered with ``{{ ds }}``,
    ``{{ data_interval_start }}``, ..."""

    kind: Literal["sql"]
    conn_id: str
    query: str


class GeneratorSource(_Frozen):
    """The bundled example generator, landed as Parquet under ``{data_root}/raw/<model>/dt=<ds>/``."""

    kind: Literal["generator"]
    dataset: Literal["churn", "house_prices"]
    rows_per_day: int = Field(default=2000, ge=0, le=50_000_000)
    seed: int = 0
    scenarios: tuple[ScenarioConfig, ...] = ()


Source = Annotated[FilesSource | SqlSource | GeneratorSource, Field(discriminator="kind")]


class LabelGeneratorSource(_Frozen):
    """The example generator's label feed: the ground truth of the model's own generated partitions
    (needs ``source.kind: generator``), delivered ``delay_days`` after the events and landed as
    Parquet under ``{data_root}/raw/<model>-labels/dt=<arrival>/``."""

    kind: Literal["generator"]
    delay_days: int = Field(default=2, ge=0, le=60)
    #: Share of the events whose label ever arrives (the others stay unlabeled).
    coverage: float = Field(default=1.0, ge=0.0, le=1.0)
    #: Labels per delivery for ids that were never scored (another system's customers, typos).
    unmatched_rows: int = Field(default=0, ge=0, le=1_000_000)


LabelSource = Annotated[FilesSource | SqlSource | LabelGeneratorSource, Field(discriminator="kind")]


#: Upper bound of ``labels.lookback_days``: each run reads that many prediction partitions.
MAX_LABEL_LOOKBACK_DAYS = 120


class LabelsConfig(_Frozen):
    """Ground truth from a separate feed, joined by id to the predictions that were served.

    ``source`` delivers, for each arrival date ``{ds}``, the labels that arrived that day (same kinds,
    templates and confinement as the model's ``source``). A label joins the newest stored prediction
    of its id among the ``lookback_days`` prediction intervals ending at its arrival date (with
    ``event_date_column``: only the prediction of that date).
    """

    source: LabelSource
    id_column: str | None = None
    label_column: str | None = None
    event_date_column: str | None = None
    expected_delay_days: int = Field(default=1, ge=0, le=365)
    lookback_days: int = Field(default=14, ge=1, le=MAX_LABEL_LOOKBACK_DAYS)

    def label_id_column(self, model: ModelConfig) -> str:
        """The id column of the feed (default: the model's ``id_column``)."""
        return self.id_column or model.id_column or ""

    def label_column_of(self, model: ModelConfig) -> str:
        """The label column of the feed (default: the model's target)."""
        return self.label_column or model.target


def category_text(value: Any) -> str:
    """The text of a categorical value as the contract compares it: ``3``, ``3.0`` and ``"3"`` are
    all ``"3"``."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


class Feature(_Frozen):
    """A model input column; its type drives both preprocessing and the data contract."""

    name: str
    type: Literal["numeric", "categorical"]
    min: float | None = None
    max: float | None = None
    allowed_values: tuple[str, ...] | None = None
    max_null_fraction: float | None = Field(default=None, ge=0.0, le=1.0)

    @field_validator("allowed_values", mode="before")
    @classmethod
    def _values_as_text(cls, value: Any) -> Any:
        """Codes may be written as numbers (``[1, 2, 3]``) or text (``["1", "2", "3"]``): both mean
        the same."""
        if isinstance(value, list | tuple):
            return tuple(
                category_text(v) if isinstance(v, int | float) and not isinstance(v, bool) else v
                for v in value
            )
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Feature:
        if self.type == "categorical" and (self.min is not None or self.max is not None):
            raise ValueError(f"feature {self.name!r}: min/max apply to numeric features only")
        if self.type == "numeric" and self.allowed_values is not None:
            raise ValueError(f"feature {self.name!r}: allowed_values apply to categorical features only")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"feature {self.name!r}: min {self.min} is greater than max {self.max}")
        return self


class QualityConfig(_Frozen):
    """The data contract: generated from the features plus an optional GX suite file."""

    suite: str | None = None
    min_rows: int = Field(default=1, ge=1)
    max_rows: int | None = Field(default=None, ge=1)
    max_null_fraction: float = Field(default=0.05, ge=0.0, le=1.0)
    max_duplicate_ids: int = Field(default=0, ge=0)
    #: ``quarantine_batch``: a failing batch is quarantined whole. ``quarantine_rows``: the rows failing
    #: row-level expectations are quarantined and the others used, while their share is at most
    #: ``max_bad_row_share`` and every table-level expectation holds on the kept rows.
    on_failure: OnFailure = OnFailure.QUARANTINE_BATCH
    max_bad_row_share: float = Field(default=0.05, ge=0.0, le=1.0)

    @model_validator(mode="after")
    def _share_needs_row_mode(self) -> QualityConfig:
        # Compared with the default, not "was it given": a dumped config must validate again.
        default = type(self).model_fields["max_bad_row_share"].default
        if self.max_bad_row_share != default and self.on_failure != OnFailure.QUARANTINE_ROWS:
            raise ValueError(
                f"max_bad_row_share ({self.max_bad_row_share}) applies only with "
                f"on_failure: {OnFailure.QUARANTINE_ROWS} (on_failure is {self.on_failure})"
            )
        return self


class EstimatorConfig(_Frozen):
    """A scikit-learn estimator from :data:`ESTIMATORS` and its constructor parameters."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    class_path: str = Field(alias="class")
    params: dict[str, Any] = Field(default_factory=dict)

    @field_validator("class_path")
    @classmethod
    def _allowed(cls, value: str) -> str:
        if value not in ESTIMATORS:
            raise ValueError(f"{value!r} is not a supported estimator; choose one of {sorted(ESTIMATORS)}")
        return value


#: Upper bound of a window given as a count of intervals (ten years of hours).
MAX_WINDOW_INTERVALS = 24 * 3650


class _Windowed(_Frozen):
    """A window of partitions ending at the run's: ``window_days`` (days), ``window`` (a duration,
    ``7d`` or ``36h``) or ``window_intervals`` (a count of the model's intervals); at most one."""

    #: The window when none of the three is given, in days.
    default_window_days: ClassVar[int] = 7

    window_days: int | None = Field(default=None, ge=1, le=3650)
    window: str | None = None
    window_intervals: int | None = Field(default=None, ge=1, le=MAX_WINDOW_INTERVALS)

    @field_validator("window")
    @classmethod
    def _duration(cls, value: str | None) -> str | None:
        return None if value is None else interval_text(parse_duration(value))

    @model_validator(mode="after")
    def _one_window(self) -> _Windowed:
        given = [n for n in ("window_days", "window", "window_intervals") if getattr(self, n) is not None]
        if len(given) > 1:
            raise ValueError(f"give one of {', '.join(given)}: each sets the window")
        return self

    def window_duration(self) -> dt.timedelta | None:
        """The window as a duration, unless it is given as a count of intervals."""
        if self.window_intervals is not None:
            return None
        if self.window is not None:
            return parse_duration(self.window)
        return dt.timedelta(days=self.window_days or self.default_window_days)

    def window_count(self, interval: dt.timedelta) -> int:
        """How many partitions of ``interval`` the window holds."""
        if self.window_intervals is not None:
            return self.window_intervals
        return intervals_in(self.window_duration() or DAY, interval)

    def window_text(self, interval: dt.timedelta) -> str:
        """``7d`` or ``24 x 1h``: the window as messages and run parameters show it."""
        count = self.window_count(interval)
        return f"{count}d" if interval == DAY else f"{count} x {interval_text(interval)}"


class TrainingConfig(_Windowed):
    """Training window (partitions ending at the run's interval) and the held-out split."""

    min_partitions: int = Field(default=1, ge=1)
    min_rows: int = Field(default=100, ge=2)
    holdout_fraction: float = Field(default=0.2, gt=0.0, lt=0.9)
    random_state: int = 42
    estimator: EstimatorConfig


class SliceConfig(_Frozen):
    """A subset of the holdout (``column == value``) that must reach its own minimum metric."""

    name: str
    column: str
    value: str | float | int | bool
    metric: str
    min: float
    min_rows: int = Field(default=30, ge=1)


class EvaluationConfig(_Frozen):
    """Model gates: absolute thresholds, champion comparison, slices."""

    primary_metric: str
    thresholds: dict[str, float] = Field(default_factory=dict)
    champion_tolerance: float = Field(default=0.0, ge=0.0)
    slices: tuple[SliceConfig, ...] = ()
    smoke_rows: int = Field(default=20, ge=1, le=10_000)
    #: Permutation importance: holdout rows sampled (bounds the cost) and shuffles per feature.
    explain_rows: int = Field(default=2_000, ge=50, le=1_000_000)
    explain_repeats: int = Field(default=3, ge=1, le=50)


class AutoRollbackConfig(_Frozen):
    """Roll ``champion`` back to ``previous`` when, within ``within_intervals`` daily intervals of its
    promotion, the new champion's live quality (``evaluation.primary_metric`` on the label feed) is
    worse than the previous champion's last recorded live quality by more than ``tolerance``."""

    within_intervals: int = Field(default=7, ge=1, le=365)
    tolerance: float = Field(default=0.02, ge=0.0)


#: Most intervals a challenger may spend in shadow (``promotion.shadow_intervals`` and
#: ``promotion.shadow_max_intervals``): a shadow is one step of a rollout, not a second serving line.
MAX_SHADOW_INTERVALS = 120


class PromotionConfig(_Frozen):
    """How a tested version becomes champion.

    Policies ``shadow`` and ``shadow_then_approval`` score a tested challenger beside the champion
    (never served) until the label feed covers ``shadow_intervals`` intervals of its predictions; it
    is promoted (or, with ``shadow_then_approval``, offered for approval) when its live
    ``evaluation.primary_metric`` on the rows labeled for both is no worse than the champion's by
    more than ``shadow_tolerance``, else retired. A challenger scored in shadow on
    ``shadow_max_intervals`` intervals without enough labels to decide is retired too (default:
    ``shadow_intervals`` plus the label feed's lookback, the intervals a label can still reach).
    ``auto_rollback`` (opt-in) watches a new champion.
    """

    policy: PromotionPolicy = PromotionPolicy.AUTO
    approval_timeout_hours: float = Field(default=24.0, gt=0)
    shadow_intervals: int = Field(default=3, ge=1, le=MAX_SHADOW_INTERVALS)
    shadow_max_intervals: int | None = Field(default=None, ge=1, le=MAX_SHADOW_INTERVALS)
    shadow_tolerance: float = Field(default=0.0, ge=0.0)
    auto_rollback: AutoRollbackConfig | None = None
    #: The champion changed between ``test_model`` and ``promote_model`` (e.g. during the approval
    #: wait): ``recompare`` the challenger with the new champion on the same holdout, or ``refuse``.
    on_champion_change: ChampionChange = ChampionChange.RECOMPARE
    #: Airflow user names (auth manager user ids) who may answer the approval step; empty: any user
    #: allowed to answer Required Actions of the DAG. Whoever triggers a run cannot approve it
    #: unless listed here.
    approvers: tuple[str, ...] = ()

    @field_validator("approvers")
    @classmethod
    def _user_names(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        bad = [name for name in value if not re.fullmatch(APPROVER_PATTERN, name)]
        if bad:
            raise ValueError(f"approvers {bad} are not Airflow user names (letters, digits, _.@+-)")
        repeated = sorted({name for name in value if value.count(name) > 1})
        if repeated:
            raise ValueError(f"approvers {repeated} are listed more than once")
        return value


#: Cron presets a schedule may use, as the five fields they stand for.
CRON_PRESETS = {"@hourly": "0 * * * *", "@daily": "0 0 * * *", "@midnight": "0 0 * * *"}


def _check_cron(value: str) -> str:
    value = CRON_PRESETS.get(value.strip(), value)
    if len(value.split()) != 5:
        raise ValueError(
            f"cron {value!r} must have five fields (minute hour day month weekday) or be one of "
            f"{', '.join(CRON_PRESETS)}"
        )
    return value


def cron_cadence(cron: str) -> dt.timedelta | None:
    """How often a cron fires when it fires at a fixed minute every ``n`` hours (``15 * * * *``: 1 h,
    ``0 */6 * * *``: 6 h) or once a day (``0 2 * * *``); ``None`` for any other pattern."""
    minute, hour, *rest = cron.split()
    if not minute.isdigit() or rest != ["*", "*", "*"]:
        return None
    if hour.isdigit():
        return DAY
    if hour == "*":
        return dt.timedelta(hours=1)
    step = hour.removeprefix("*/").removeprefix("0/")
    if step != hour and step.isdigit() and 0 < int(step) < 24 and 24 % int(step) == 0:
        return dt.timedelta(hours=int(step))
    return None


class ScheduleConfig(_Frozen):
    """The data-interval timetables of training and scoring, and the partition interval.

    ``interval`` is the length of a partition (``daily``/``1d``, ``hourly``/``1h``, ``2h`` … ``12h``);
    without it, a ``cron`` firing every ``n`` hours gives ``n`` h partitions and any other cron daily
    ones. ``end_date`` stops time-based runs after that date (backfills before it and drift-triggered
    training runs still happen); simulations such as ``make run`` use it.
    """

    cron: str = "0 2 * * *"
    scoring_cron: str = "0 4 * * *"
    interval: str | None = None
    timezone: str = "UTC"
    start_date: dt.date = dt.date(2026, 1, 1)
    end_date: dt.date | None = None

    _crons = field_validator("cron", "scoring_cron")(classmethod(lambda cls, v: _check_cron(v)))

    @field_validator("interval")
    @classmethod
    def _interval(cls, value: str | None) -> str | None:
        return None if value is None else interval_text(parse_interval(value))

    @property
    def partition_interval(self) -> dt.timedelta:
        if self.interval is not None:
            return parse_interval(self.interval)
        cadence = cron_cadence(self.cron)
        return cadence if cadence is not None and cadence < DAY else DAY


#: Evidently stattests a config may pin, per column type. Pinning matters: Evidently's default picks
#: a p-value test under 1000 reference rows and a distance above, so sample size would silently
#: change what "drift" means.
NUMERIC_DRIFT_METHODS = ("wasserstein", "ks", "psi", "kl_div", "jensenshannon", "hellinger", "energy_dist")
CATEGORICAL_DRIFT_METHODS = ("jensenshannon", "psi", "kl_div", "hellinger", "chisquare", "TVD")


class MonitoringConfig(_Windowed):
    """Drift checks: schedule, windows, pinned tests and the policy that triggers retraining."""

    default_window_days: ClassVar[int] = 3

    cron: str = "0 6 * * *"
    window_days: int | None = Field(default=None, ge=1, le=365)
    sample_size: int = Field(default=100_000, ge=100)
    seed: int = 0
    numeric_method: Literal[NUMERIC_DRIFT_METHODS] = "wasserstein"  # type: ignore[valid-type]
    numeric_threshold: float = Field(default=0.1, gt=0)
    categorical_method: Literal[CATEGORICAL_DRIFT_METHODS] = "jensenshannon"  # type: ignore[valid-type]
    categorical_threshold: float = Field(default=0.1, gt=0)
    drift_share: float = Field(default=0.3, gt=0, le=1)
    prediction_threshold: float = Field(default=0.1, gt=0)
    label_delay_days: int = Field(default=0, ge=0, le=365)
    max_quality_drop: float = Field(default=0.05, ge=0)
    min_rows: int = Field(default=100, ge=1)
    cooldown_hours: float = Field(default=24.0, ge=0)
    retrain_on_drift: bool = True

    _cron = field_validator("cron")(classmethod(lambda cls, v: _check_cron(v)))


class ModelConfig(_Frozen):
    """One model, as declared in ``include/models/<name>.yaml``."""

    name: str = Field(pattern=NAME_PATTERN)
    description: str = ""
    owner: str = "mloops"
    tags: tuple[str, ...] = ()
    task: Literal["classification", "regression"]
    target: str
    id_column: str | None = None
    timestamp_column: str | None = None
    features: tuple[Feature, ...] = Field(min_length=1)
    source: Source
    quality: QualityConfig = QualityConfig()
    training: TrainingConfig
    evaluation: EvaluationConfig
    promotion: PromotionConfig = PromotionConfig()
    schedule: ScheduleConfig = ScheduleConfig()
    monitoring: MonitoringConfig = MonitoringConfig()
    labels: LabelsConfig | None = None
    source_file: str | None = Field(default=None, exclude=True)

    @model_validator(mode="after")
    def _consistent(self) -> ModelConfig:
        names = [f.name for f in self.features]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"features: duplicate names {duplicates}")
        if self.target in names:
            raise ValueError(f"target: {self.target!r} is also listed as a feature")
        estimator_task = ESTIMATORS[self.training.estimator.class_path]
        if estimator_task != self.task:
            raise ValueError(
                f"training.estimator.class: {self.training.estimator.class_path!r} is a {estimator_task} "
                f"estimator but task is {self.task!r}"
            )
        known = METRICS[self.task]
        used = [("evaluation.primary_metric", self.evaluation.primary_metric)]
        used += [(f"evaluation.thresholds.{m}", m) for m in self.evaluation.thresholds]
        used += [("evaluation.slices", s.metric) for s in self.evaluation.slices]
        for where, metric in used:
            if metric not in known:
                raise ValueError(
                    f"{where}: unknown {self.task} metric {metric!r}; choose one of {sorted(known)}"
                )
        for s in self.evaluation.slices:
            if s.column not in names:
                raise ValueError(
                    f"evaluation.slices: slice {s.name!r} uses column {s.column!r}, which is not a feature"
                )
        self._check_labels()
        self._check_live_promotion()
        self._check_interval()
        return self

    def _check_live_promotion(self) -> None:
        """Shadow and automatic rollback judge models on the label feed: they need one."""
        promotion = self.promotion
        if self.labels is None and PromotionPolicy.shadowed(promotion.policy):
            raise ValueError(
                f"promotion.policy: '{promotion.policy}' compares the challenger with the champion on "
                "live labels, so the model needs a labels: feed"
            )
        limit = promotion.shadow_max_intervals
        if limit is not None and limit < promotion.shadow_intervals:
            raise ValueError(
                f"promotion.shadow_max_intervals: {limit} is fewer than promotion.shadow_intervals "
                f"({promotion.shadow_intervals}): the challenger would be retired before enough of its "
                "intervals could be labeled"
            )
        if self.labels is None and promotion.auto_rollback is not None:
            raise ValueError(
                "promotion.auto_rollback: judges the champion on live labels, so the model needs a "
                "labels: feed"
            )

    def _check_interval(self) -> None:
        """Schedules, windows and sources that fit the partition interval."""
        interval = self.interval
        text = interval_text(interval)
        for where, cron in (
            ("schedule.cron", self.schedule.cron),
            ("schedule.scoring_cron", self.schedule.scoring_cron),
        ):
            cadence = cron_cadence(cron)
            if cadence is not None and cadence < interval:
                raise ValueError(
                    f"{where}: {cron!r} runs every {interval_text(cadence)} but a partition is {text}: "
                    f"{int(interval / cadence)} runs would rewrite each partition (set schedule.interval)"
                )
        cadence = cron_cadence(self.schedule.scoring_cron)
        if interval < DAY and cadence != interval:
            hours = "*" if text == "1h" else f"*/{text[:-1]}"
            raise ValueError(
                f"schedule.scoring_cron: {self.schedule.scoring_cron!r} does not run once per {text} "
                f"partition, so partitions would go unscored; use e.g. '15 {hours} * * *'"
            )
        for where, windowed in (("training", self.training), ("monitoring", self.monitoring)):
            try:
                windowed.window_count(interval)
            except ValueError as exc:
                raise ValueError(f"{where}.window: {exc} (the model's partition interval)") from None
        if interval == DAY:
            return
        sources: list[tuple[str, object]] = [("source", self.source)]
        if self.labels is not None:
            sources.append(("labels.source", self.labels.source))
        for where, source in sources:
            if isinstance(source, FilesSource) and not any(
                f"{{{p}}}" in source.path for p in SUB_DAILY_PLACEHOLDERS
            ):
                raise ValueError(
                    f"{where}.path: {source.path!r} has no hour: a {text} partition's path must contain "
                    f"{' or '.join(f'{{{p}}}' for p in SUB_DAILY_PLACEHOLDERS)} so each interval reads its "
                    "own file"
                )
            if isinstance(source, SqlSource) and not any(v in source.query for v in SQL_SUB_DAILY_VARIABLES):
                raise ValueError(
                    f"{where}.query: a {text} partition's query must select its interval with one of "
                    f"{', '.join(f'{{{{ {v} }}}}' for v in SQL_SUB_DAILY_VARIABLES)}"
                )

    @property
    def interval(self) -> dt.timedelta:
        """The length of one partition (one day unless the schedule says otherwise)."""
        return self.schedule.partition_interval

    @property
    def intervals_per_day(self) -> int:
        return int(DAY / self.interval)

    @property
    def training_window(self) -> int:
        """The training window, in partitions."""
        return self.training.window_count(self.interval)

    @property
    def monitoring_window(self) -> int:
        """The drift and live-quality window, in partitions."""
        return self.monitoring.window_count(self.interval)

    @property
    def shadow_limit(self) -> int:
        """Intervals a challenger may be scored in shadow without enough labels before it is retired:
        ``promotion.shadow_max_intervals``, else ``shadow_intervals`` plus the label lookback (a label
        joins only predictions of its lookback, so waiting longer is waiting for nothing)."""
        promotion = self.promotion
        if promotion.shadow_max_intervals is not None:
            return promotion.shadow_max_intervals
        lookback = self.days_as_intervals(self.labels.lookback_days) if self.labels else 0
        return min(MAX_SHADOW_INTERVALS, promotion.shadow_intervals + lookback)

    def days_as_intervals(self, days: int) -> int:
        """A number of days (label lookback) in partitions."""
        return days * self.intervals_per_day

    def _check_labels(self) -> None:
        labels = self.labels
        if labels is None:
            return
        if not self.id_column:
            raise ValueError(
                "labels: a label feed is joined to the predictions by id, so the model needs an id_column "
                "(predictions carry it)"
            )
        if labels.lookback_days <= labels.expected_delay_days:
            raise ValueError(
                f"labels.lookback_days: {labels.lookback_days} must be greater than "
                f"labels.expected_delay_days ({labels.expected_delay_days}), or labels arriving on time "
                "find no prediction to join"
            )
        if isinstance(labels.source, LabelGeneratorSource):
            if not isinstance(self.source, GeneratorSource):
                raise ValueError(
                    "labels.source: kind 'generator' labels the model's generated partitions, but "
                    f"source.kind is {self.source.kind!r}"
                )
            if labels.source.delay_days >= labels.lookback_days:
                raise ValueError(
                    f"labels.source.delay_days: {labels.source.delay_days} is not within "
                    f"labels.lookback_days ({labels.lookback_days}): no delivered label could be joined"
                )
        names = {labels.label_id_column(self), labels.label_column_of(self)}
        if labels.event_date_column in names:
            raise ValueError(
                f"labels.event_date_column: {labels.event_date_column!r} is also the id or label column"
            )
        if len(names) < 2:
            raise ValueError(f"labels.label_column: {labels.label_column_of(self)!r} is also the id column")

    @property
    def feature_names(self) -> list[str]:
        return [f.name for f in self.features]

    @property
    def numeric_features(self) -> list[str]:
        return [f.name for f in self.features if f.type == "numeric"]

    @property
    def categorical_features(self) -> list[str]:
        return [f.name for f in self.features if f.type == "categorical"]

    @property
    def greater_is_better(self) -> bool:
        return METRICS[self.task][self.evaluation.primary_metric]

    @property
    def registered_model_name(self) -> str:
        return f"mloops.{self.name}"

    @property
    def experiment_name(self) -> str:
        return f"mloops/{self.name}"

    def fingerprint(self) -> str:
        """A stable hash of everything that changes what training produces."""
        payload = self.model_dump(
            mode="json", include={"task", "target", "features", "training", "id_column"}
        )
        # Configs written before windows could be durations keep their fingerprint.
        training = payload["training"]
        if training["window"] is None and training["window_intervals"] is None:
            del training["window"], training["window_intervals"]
            training["window_days"] = training["window_days"] or self.training.default_window_days
        if self.interval != DAY:
            payload["interval"] = interval_text(self.interval)
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]
