"""Per-model configuration: one YAML file per model under ``include/models/``, validated once.

Everything a model needs (source, features, suite, estimator, window, gates, slices, promotion,
schedule) is declared here as frozen pydantic models. Loading a directory never fails as a whole:
each broken file becomes a :class:`~mloops.errors.ModelConfigError` naming the file and the field,
and the other models load normally. Only pydantic and PyYAML are imported (both already loaded by
Airflow), so this module is safe at DAG parse time.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from mloops.contracts import PromotionPolicy, ScenarioKind
from mloops.data.confinement import check_path_template
from mloops.errors import ModelConfigError

NAME_PATTERN = r"^[a-z][a-z0-9_]{0,62}$"

#: libyaml's safe loader parses configs several times faster than the pure-Python one (DAG files
#: load every config on each parse).
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

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
    ``{ds_nodash}``."""

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


class TrainingConfig(_Frozen):
    """Training window (in daily partitions ending at the run's interval) and the held-out split."""

    window_days: int = Field(default=7, ge=1, le=3650)
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


class PromotionConfig(_Frozen):
    """How a tested version becomes champion."""

    policy: PromotionPolicy = PromotionPolicy.AUTO
    approval_timeout_hours: float = Field(default=24.0, gt=0)


def _check_cron(value: str) -> str:
    if len(value.split()) != 5:
        raise ValueError(f"cron {value!r} must have five fields (minute hour day month weekday)")
    return value


class ScheduleConfig(_Frozen):
    """The nightly data-interval timetables of training and scoring.

    ``end_date`` stops time-based runs after that date (backfills before it and drift-triggered
    training runs still happen); simulations such as ``make run`` use it.
    """

    cron: str = "0 2 * * *"
    scoring_cron: str = "0 4 * * *"
    timezone: str = "UTC"
    start_date: dt.date = dt.date(2026, 1, 1)
    end_date: dt.date | None = None

    _crons = field_validator("cron", "scoring_cron")(classmethod(lambda cls, v: _check_cron(v)))


#: Evidently stattests a config may pin, per column type. Pinning matters: Evidently's default picks
#: a p-value test under 1000 reference rows and a distance above, so sample size would silently
#: change what "drift" means.
NUMERIC_DRIFT_METHODS = ("wasserstein", "ks", "psi", "kl_div", "jensenshannon", "hellinger", "energy_dist")
CATEGORICAL_DRIFT_METHODS = ("jensenshannon", "psi", "kl_div", "hellinger", "chisquare", "TVD")


class MonitoringConfig(_Frozen):
    """Drift checks: schedule, windows, pinned tests and the policy that triggers retraining."""

    cron: str = "0 6 * * *"
    window_days: int = Field(default=3, ge=1, le=365)
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
        return self

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
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def _location(error: Mapping[str, Any]) -> str:
    parts = [str(p) for p in error.get("loc", ()) if not (isinstance(p, str) and p in _DISCRIMINATOR_TAGS)]
    return ".".join(parts) or "<root>"


_DISCRIMINATOR_TAGS = {"files", "sql", "generator"}


def _line_of(text: str, field_path: str) -> int | None:
    """Best-effort line number of the first key of a dotted field path, for error messages."""
    key = field_path.split(".")[0]
    match = re.search(rf"^{re.escape(key)}\s*:", text, flags=re.MULTILINE)
    return text.count("\n", 0, match.start()) + 1 if match else None


def load_model_config(path: str | Path) -> ModelConfig:
    """Read and validate one model file; raise :class:`ModelConfigError` naming the file and fields."""
    path = Path(path)
    shown = str(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ModelConfigError(shown, [f"cannot read file: {exc.strerror}"]) from exc
    try:
        raw = yaml.load(text, Loader=_YAML_LOADER)  # noqa: S506 - a safe loader (libyaml's when available)
    except yaml.YAMLError as exc:
        raise ModelConfigError(shown, [f"invalid YAML: {exc}"]) from exc
    if not isinstance(raw, dict):
        raise ModelConfigError(shown, ["expected a mapping of fields at the top level"])
    raw.setdefault("name", path.stem)
    if raw["name"] != path.stem:
        raise ModelConfigError(shown, [f"name: {raw['name']!r} must match the file name {path.stem!r}"])
    try:
        return ModelConfig.model_validate({**raw, "source_file": shown})
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            where, message = _location(error), error["msg"]
            if where == "<root>":
                message = message.removeprefix("Value error, ")
                head, _, rest = message.partition(": ")
                if rest and re.fullmatch(r"[A-Za-z_][\w.\[\]]*", head):
                    where, message = head, rest
            line = _line_of(text, where)
            at = f" (line {line})" if line else ""
            problems.append(f"field '{where}'{at}: {message}")
        raise ModelConfigError(shown, problems) from None


def load_model_configs(
    directory: str | Path, index_dir: str | Path | None = None
) -> tuple[dict[str, ModelConfig], list[ModelConfigError]]:
    """Load every ``*.yaml``/``*.yml`` in ``directory``; return the valid configs and the errors.

    With ``index_dir``, valid configs come from a compiled index (``config_index.json`` there) while
    their file is unchanged (same path, ``mtime_ns`` and size), so each DAG file of a parse does not
    re-read every YAML file; a changed, new or invalid file is read and validated as without it.
    """
    configs: dict[str, ModelConfig] = {}
    errors: list[ModelConfigError] = []
    index = _ConfigIndex(Path(index_dir)) if index_dir is not None else None
    for path in _config_files(Path(directory)):
        config = index.get(path) if index else None
        if config is None:
            try:
                config = load_model_config(path)
            except ModelConfigError as exc:
                errors.append(exc)
                continue
            if index:
                index.put(path, config)
        configs[config.name] = config
    if index:
        index.save()
    return configs, errors


class _ConfigIndex:
    """Validated configs as JSON keyed by each YAML file's ``(mtime_ns, size)``; no pickle.

    A hit skips only the YAML parse: the JSON is validated again (so validators that read the
    settings, e.g. the data-root confinement, still run). An entry is only written when its JSON
    validates back to an equal config, and the index is dropped when this module changes (its own
    key is part of the file).
    """

    def __init__(self, folder: Path) -> None:
        self.path = folder / "config_index.json"
        self.code = _file_key(Path(__file__))
        self.entries: dict[str, dict[str, Any]] = {}
        self.changed = False
        try:
            data = json.loads(self.path.read_text())
            if data.get("code") == self.code:
                self.entries = data["entries"]
        except (OSError, ValueError, KeyError, TypeError):
            pass

    def get(self, path: Path) -> ModelConfig | None:
        entry = self.entries.get(str(path))
        if not entry or entry.get("key") != _file_key(path):
            return None
        try:
            return ModelConfig.model_validate({**json.loads(entry["config"]), "source_file": str(path)})
        except (ValidationError, ValueError):
            return None  # e.g. the settings changed: read the file and report its own errors

    def put(self, path: Path, config: ModelConfig) -> None:
        text = config.model_dump_json()
        if ModelConfig.model_validate({**json.loads(text), "source_file": str(path)}) == config:
            self.entries[str(path)] = {"key": _file_key(path), "config": text}
            self.changed = True

    def save(self) -> None:
        if not self.changed:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}")
            tmp.write_text(json.dumps({"code": self.code, "entries": self.entries}))
            os.replace(tmp, self.path)
        except OSError:
            pass  # a read-only home only loses the speed-up


def _file_key(path: Path) -> list[int]:
    stat = path.stat()
    return [stat.st_mtime_ns, stat.st_size]


def model_names(directory: str | Path) -> list[str]:
    """The model names configured in ``directory`` (file stems), without validating the files."""
    return [p.stem for p in _config_files(Path(directory))]


def _config_files(directory: Path) -> Iterable[Path]:
    if not directory.is_dir():
        return []
    return sorted(
        p for p in directory.iterdir() if p.suffix in {".yaml", ".yml"} and not p.name.startswith(".")
    )


def find_model_config(name: str, directory: str | Path) -> ModelConfig:
    """Load the config of one model by name (what operators do at run time)."""
    directory = Path(directory)
    for suffix in (".yaml", ".yml"):
        candidate = directory / f"{name}{suffix}"
        if candidate.exists():
            return load_model_config(candidate)
    raise ModelConfigError(str(directory / f"{name}.yaml"), ["no such model config file"])
