"""Model training as pure scikit-learn: feature preparation, the pipeline, the holdout split, metrics.

Preprocessing is derived from the feature types in the config (median-impute and scale numeric
columns, most-frequent-impute and one-hot encode categorical ones), so adding a model never needs
code. Heavy imports happen inside functions: this module is imported by operators at parse time.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mloops.config import METRICS, ModelConfig
from mloops.errors import TrainingError

if TYPE_CHECKING:
    import pandas as pd
    from sklearn.pipeline import Pipeline

#: The exact extra types skops must trust to load each estimator's pipeline (checked at log time;
#: anything else is refused, never pickled).
TRUSTED_TYPES: dict[str, tuple[str, ...]] = {
    "sklearn.ensemble.HistGradientBoostingClassifier": (
        "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    ),
    "sklearn.ensemble.HistGradientBoostingRegressor": (
        "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    ),
    "sklearn.ensemble.RandomForestClassifier": ("sklearn.tree._tree.Tree",),
    "sklearn.ensemble.RandomForestRegressor": ("sklearn.tree._tree.Tree",),
    "sklearn.ensemble.GradientBoostingClassifier": ("sklearn.tree._tree.Tree",),
    "sklearn.ensemble.GradientBoostingRegressor": ("sklearn.tree._tree.Tree",),
    "sklearn.linear_model.LogisticRegression": (),
    "sklearn.linear_model.Ridge": (),
}
COMMON_TRUSTED_TYPES = ("numpy.dtype",)


def trusted_types(class_path: str) -> list[str]:
    return [*COMMON_TRUSTED_TYPES, *TRUSTED_TYPES[class_path]]


def estimator_class(class_path: str) -> type:
    module, name = class_path.rsplit(".", 1)
    return getattr(importlib.import_module(module), name)


def check_estimator_params(class_path: str, params: Mapping[str, Any]) -> None:
    """Refuse parameters the estimator does not take, naming them and the valid ones."""
    valid = set(estimator_class(class_path)().get_params())
    unknown = sorted(set(params) - valid)
    if unknown:
        raise TrainingError(
            f"estimator {class_path} does not accept parameter(s) {unknown}; valid parameters: "
            f"{sorted(valid)}"
        )


def build_pipeline(config: ModelConfig, overrides: Mapping[str, Any] | None = None) -> Pipeline:
    """The preprocessing + estimator pipeline for ``config`` (``overrides`` replace estimator params)."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    spec = config.training.estimator
    params = {**spec.params, **(overrides or {})}
    check_estimator_params(spec.class_path, params)
    cls = estimator_class(spec.class_path)
    if "random_state" in cls().get_params() and "random_state" not in params:
        params["random_state"] = config.training.random_state
    try:
        estimator = cls(**params)
        # sklearn checks parameter values only at fit time; ask now so a bad value fails before any work.
        validate = getattr(estimator, "_validate_params", None)
        if validate is not None:
            validate()
    except (TypeError, ValueError) as exc:
        raise TrainingError(f"estimator {spec.class_path} rejected parameters {params}: {exc}") from exc

    transformers = []
    if config.numeric_features:
        numeric = Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())])
        transformers.append(("numeric", numeric, config.numeric_features))
    if config.categorical_features:
        categorical = Pipeline(
            [
                ("impute", SimpleImputer(strategy="most_frequent")),
                ("onehot", OneHotEncoder(handle_unknown="ignore")),
            ]
        )
        transformers.append(("categorical", categorical, config.categorical_features))
    return Pipeline([("preprocess", ColumnTransformer(transformers, remainder="drop")), ("model", estimator)])


def feature_frame(frame: pd.DataFrame, config: ModelConfig) -> pd.DataFrame:
    """Select the features with stable dtypes: float64 for numeric, object strings for categorical.

    Casting here means training, the MLflow signature and scoring all see the same types (MLflow
    refuses int64 input for a double column, and pandas 3 string dtypes upset some consumers).
    """
    import numpy as np
    import pandas as pd

    missing = [c for c in config.feature_names if c not in frame.columns]
    if missing:
        raise TrainingError(f"model {config.name!r}: feature column(s) {missing} missing from the data")
    out = pd.DataFrame(index=frame.index)
    for name in config.numeric_features:
        out[name] = pd.to_numeric(frame[name], errors="coerce").astype("float64")
    for name in config.categorical_features:
        column = frame[name]
        out[name] = column.astype("string").astype(object).where(column.notna(), np.nan)
    return out[config.feature_names]


def target_series(frame: pd.DataFrame, config: ModelConfig) -> pd.Series:
    if config.target not in frame.columns:
        raise TrainingError(f"model {config.name!r}: target column {config.target!r} missing from the data")
    target = frame[config.target]
    return target.astype("int64") if config.task == "classification" else target.astype("float64")


def holdout_mask(frame: pd.DataFrame, config: ModelConfig) -> pd.Series:
    """Rows that go to the holdout: by a hash of the id column (a row always lands on the same side)
    when one is configured, otherwise by a seeded random draw."""
    import numpy as np
    import pandas as pd

    fraction = config.training.holdout_fraction
    if config.id_column and config.id_column in frame.columns:
        hashed = pd.util.hash_pandas_object(frame[config.id_column].astype(str), index=False).to_numpy()
        return pd.Series((hashed % 10_000) < int(fraction * 10_000), index=frame.index)
    rng = np.random.default_rng(config.training.random_state)
    return pd.Series(rng.random(len(frame)) < fraction, index=frame.index)


def _safe(value: float) -> float | None:
    return None if value is None or math.isnan(value) or math.isinf(value) else float(value)


def compute_metrics(
    task: str,
    y_true: Any,
    predicted: Any,
    probability: Any | None = None,
    only: str | None = None,
) -> dict[str, float | None]:
    """Every metric of ``task`` in :data:`~mloops.config.METRICS` (or just ``only``, e.g. the primary
    metric of a permutation-importance score); ``None`` where it is undefined."""
    import numpy as np
    from sklearn import metrics as skm

    y_true = np.asarray(y_true)
    if len(y_true) == 0:
        return dict.fromkeys([only] if only is not None else METRICS[task])
    if task == "classification":
        two_classes = only in (None, "roc_auc") and len(np.unique(y_true)) == 2
        compute = {
            "accuracy": lambda: skm.accuracy_score(y_true, predicted),
            "f1": lambda: skm.f1_score(y_true, predicted, zero_division=0),
            "precision": lambda: skm.precision_score(y_true, predicted, zero_division=0),
            "recall": lambda: skm.recall_score(y_true, predicted, zero_division=0),
            "roc_auc": lambda: (
                skm.roc_auc_score(y_true, probability) if two_classes and probability is not None else None
            ),
            "log_loss": lambda: (
                skm.log_loss(y_true, probability, labels=[0, 1]) if probability is not None else None
            ),
        }
    else:
        compute = {
            "rmse": lambda: float(np.sqrt(skm.mean_squared_error(y_true, predicted))),
            "mae": lambda: skm.mean_absolute_error(y_true, predicted),
            "r2": lambda: skm.r2_score(y_true, predicted) if len(y_true) > 1 else None,
        }
    out = {name: compute[name]() for name in ([only] if only is not None else compute)}
    return {k: _safe(v) if v is not None else None for k, v in out.items()}


#: The columns of a recorded set of predictions (:meth:`Predictions.frame`).
PREDICTED_COLUMN, PROBABILITY_COLUMN = "predicted", "probability"


@dataclass(frozen=True)
class Predictions:
    """A model's predictions of a frame's rows beside their labels, in row order: the metrics of all
    the rows or of any subset of them (a slice), without predicting again."""

    task: str
    labels: Any
    predicted: Any
    probability: Any | None

    def metrics(self, rows: Any | None = None) -> dict[str, float | None]:
        """Every metric of the task over all rows, or over ``rows`` (a boolean mask by position)."""
        if rows is None:
            return compute_metrics(self.task, self.labels, self.predicted, self.probability)
        probability = None if self.probability is None else self.probability[rows]
        return compute_metrics(self.task, self.labels[rows], self.predicted[rows], probability)

    def frame(self) -> pd.DataFrame:
        """The predictions as a frame to record (labels are not copied: they stay in the holdout)."""
        import pandas as pd

        columns = {PREDICTED_COLUMN: self.predicted}
        if self.probability is not None:
            columns[PROBABILITY_COLUMN] = self.probability
        return pd.DataFrame(columns)

    @classmethod
    def recorded(cls, recorded: pd.DataFrame, frame: pd.DataFrame, config: ModelConfig) -> Predictions:
        """Predictions recorded by :meth:`frame`, with the labels of the ``frame`` they predicted;
        refused (:class:`ValueError`, naming both lengths or the missing column) if they do not fit it."""
        if len(recorded) != len(frame):
            raise ValueError(f"{len(recorded)} recorded predictions for {len(frame)} rows")
        classifier = config.task == "classification"
        missing = [
            c
            for c in (PREDICTED_COLUMN, *([PROBABILITY_COLUMN] if classifier else []))
            if c not in recorded.columns
        ]
        if missing:
            raise ValueError(f"the recorded predictions have no {', '.join(missing)} column")
        return cls(
            config.task,
            target_series(frame, config).to_numpy(),
            recorded[PREDICTED_COLUMN].to_numpy(),
            recorded[PROBABILITY_COLUMN].to_numpy() if classifier else None,
        )

    def reproduced_by(self, model: Any, frame: pd.DataFrame, config: ModelConfig, rows: int) -> str | None:
        """Why ``model`` does not reproduce the first ``rows`` predictions of ``frame`` (``None`` if it
        does, to floating-point rounding): the first row that differs, with both values."""
        import numpy as np

        head = frame.head(rows)
        recorded = self.predicted if self.probability is None else self.probability
        ours = np.asarray(recorded[: len(head)], dtype=float)
        theirs = np.asarray(scores(model, head, config)[0], dtype=float)  # what monitoring compares too
        close = np.isclose(ours, theirs, rtol=1e-9, atol=1e-12, equal_nan=True)
        if close.all():
            return None
        row = int(np.flatnonzero(~close)[0])
        return (
            f"row {row} of the holdout: recorded {float(ours[row])!r}, "
            f"the model predicts {float(theirs[row])!r}"
        )


def predictions(model: Any, frame: pd.DataFrame, config: ModelConfig) -> Predictions:
    """``model``'s predictions of every row of ``frame``, with the frame's labels."""
    predicted, probability = predict(model, feature_frame(frame, config), config.task)
    return Predictions(config.task, target_series(frame, config).to_numpy(), predicted, probability)


def predict(model: Any, features: pd.DataFrame, task: str) -> tuple[Any, Any | None]:
    """Predictions (and positive-class probabilities for classifiers) of a fitted pipeline."""
    if task == "classification" and hasattr(model, "predict_proba"):
        probability = model.predict_proba(features)[:, 1]
        return (probability >= 0.5).astype("int64"), probability
    return model.predict(features), None


def scores(model: Any, frame: pd.DataFrame, config: ModelConfig) -> tuple[Any, Any]:
    """What monitoring compares: the positive-class probability (classifiers) or the predicted value,
    and the predicted label (classifiers) or the value again."""
    predicted, probability = predict(model, feature_frame(frame, config), config.task)
    return (probability if probability is not None else predicted), predicted


def evaluate(model: Any, frame: pd.DataFrame, config: ModelConfig) -> dict[str, float | None]:
    return predictions(model, frame, config).metrics()


def fit(config: ModelConfig, train: pd.DataFrame, overrides: Mapping[str, Any] | None = None) -> Pipeline:
    """Fit the configured pipeline on ``train``; refuse data it cannot learn from."""
    y = target_series(train, config)
    if config.task == "classification" and y.nunique() < 2:
        raise TrainingError(
            f"model {config.name!r}: the training data holds one class only ({y.unique().tolist()})"
        )
    pipeline = build_pipeline(config, overrides)
    pipeline.fit(feature_frame(train, config), y)
    return pipeline
