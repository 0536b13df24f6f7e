"""The baseline of the nightly pipeline: the same computation as one plain script, in one process.

No Airflow, Great Expectations, MLflow, Evidently or mloops: pandas, scikit-learn and skops only.
It reads the same Parquet partition, runs the same expectation specs (:mod:`bench.pandas_checks`),
splits the same holdout (hash of the id), fits the same preprocessing + estimator pipeline, computes
the same holdout and training metrics, records the same drift reference (a fixed-seed sample of the
training rows with the new model's scores), dumps the model with skops (no pickle), then applies the same
gates (thresholds, champion on the holdout, slices, a smoke reload-and-predict), the permutation
importance of every feature on a fixed-seed holdout sample (scikit-learn's, the primary metric as the
score, as ``mloops.explain`` does) and records the new version in a JSON file. It reuses what it
already has in memory (the holdout scores for the slices) because that is what the simplest fast
script would do. Everything it needs from the model config comes in a JSON plan written by the
benchmark, so this file does not import mloops.

:func:`night_child` is the whole model-night in one process (the fleet-cost baseline): the four
steps, then scoring the partition with the new model and the pinned drift tests with scipy
(:mod:`bench.drift_checks`) on the same fixed-seed samples as ``check_drift``, against the training
reference recorded the way ``stages.train.write_reference`` does.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any


class PeakSampler:
    """RSS sampled every 10 ms on a thread, so each step of one process gets its own peak."""

    def __init__(self, interval: float = 0.01) -> None:
        import psutil

        self._process = psutil.Process()
        self._interval = interval
        self._peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            self._peak = max(self._peak, self._process.memory_info().rss)

    def __enter__(self) -> PeakSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def take(self) -> int:
        """The peak since the last call (then start over from the current RSS)."""
        peak = max(self._peak, self._process.memory_info().rss)
        self._peak = 0
        return peak


def build_pipeline(plan: Mapping[str, Any]) -> Any:
    import importlib

    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    module, name = plan["estimator"].rsplit(".", 1)
    estimator = getattr(importlib.import_module(module), name)(**plan["estimator_params"])
    numeric = Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())])
    categorical = Pipeline(
        [
            ("impute", SimpleImputer(strategy="most_frequent")),
            ("onehot", OneHotEncoder(handle_unknown="ignore")),
        ]
    )
    transformers = [("numeric", numeric, plan["numeric"]), ("categorical", categorical, plan["categorical"])]
    return Pipeline([("preprocess", ColumnTransformer(transformers, remainder="drop")), ("model", estimator)])


def features(frame: Any, plan: Mapping[str, Any]) -> Any:
    out = frame[plan["numeric"] + plan["categorical"]].copy()
    for name in plan["categorical"]:
        out[name] = out[name].astype(object)
    return out


def holdout_mask(frame: Any, plan: Mapping[str, Any]) -> Any:
    import pandas as pd

    hashed = pd.util.hash_pandas_object(frame[plan["id_column"]].astype(str), index=False).to_numpy()
    return (hashed % 10_000) < int(plan["holdout_fraction"] * 10_000)


def metrics(y_true: Any, probability: Any) -> dict[str, float]:
    import numpy as np
    from sklearn import metrics as skm

    predicted = (probability >= 0.5).astype("int64")
    out = {
        "accuracy": skm.accuracy_score(y_true, predicted),
        "f1": skm.f1_score(y_true, predicted, zero_division=0),
        "precision": skm.precision_score(y_true, predicted, zero_division=0),
        "recall": skm.recall_score(y_true, predicted, zero_division=0),
        "roc_auc": skm.roc_auc_score(y_true, probability) if len(np.unique(y_true)) == 2 else float("nan"),
        "log_loss": skm.log_loss(y_true, probability, labels=[0, 1]),
    }
    return {k: float(v) for k, v in out.items()}


def metric(name: str, y_true: Any, probability: Any) -> float:
    """One metric of :func:`metrics` from the labels and the positive-class scores (the others unmade)."""
    from sklearn import metrics as skm

    predicted = (probability >= 0.5).astype("int64")
    compute = {
        "roc_auc": lambda: skm.roc_auc_score(y_true, probability),
        "accuracy": lambda: skm.accuracy_score(y_true, predicted),
        "f1": lambda: skm.f1_score(y_true, predicted, zero_division=0),
        "precision": lambda: skm.precision_score(y_true, predicted, zero_division=0),
        "recall": lambda: skm.recall_score(y_true, predicted, zero_division=0),
        "log_loss": lambda: skm.log_loss(y_true, probability, labels=[0, 1]),
    }
    return float(compute[name]())


def importances(model: Any, holdout: Any, plan: Mapping[str, Any]) -> dict[str, float]:
    """Permutation importance of every feature on a fixed-seed sample of the holdout (the same
    sample, repeats, seed and score as ``mloops.explain.permutation_importances``)."""
    from sklearn.inspection import permutation_importance

    from bench.drift_checks import sample

    e = plan["explain"]
    rows = sample(holdout, e["rows"], e["seed"])
    primary, sign = plan["primary_metric"], e["sign"]
    found = permutation_importance(
        model,
        features(rows, plan),
        rows[plan["target"]].astype("int64"),
        scoring=lambda estimator, x, y: sign * metric(primary, y, estimator.predict_proba(x)[:, 1]),
        n_repeats=e["repeats"],
        random_state=e["seed"],
        n_jobs=1,
    )
    names = plan["numeric"] + plan["categorical"]
    return {n: round(float(v), 6) for n, v in zip(names, found.importances_mean, strict=True)}


def fit_champion(plan: Mapping[str, Any], data: str, target: str, reference: str | None = None) -> str:
    """The model the plain script compares against, fitted on an earlier partition (untimed), and
    its training reference for drift: a fixed-seed sample of what it was fitted on, with its scores."""
    import pandas as pd
    import skops.io

    frame = pd.read_parquet(data)
    model = build_pipeline(plan).fit(features(frame, plan), frame[plan["target"]].astype("int64"))
    skops.io.dump(model, target)
    if reference is not None:
        write_reference(frame, model, plan, reference)
    return target


def write_reference(train: Any, model: Any, plan: Mapping[str, Any], target: Any) -> Any:
    """The drift reference of a fitted model, as ``stages.train.write_reference`` records it: a
    fixed-seed sample of what it was fitted on, with its scores."""
    from bench.drift_checks import sample

    m = plan["monitoring"]
    features_and_target = [*plan["numeric"], *plan["categorical"], plan["target"]]
    columns = [c for c in (plan["id_column"],) if c] + features_and_target
    recorded = sample(train[columns], m["sample_size"], m["seed"])
    recorded["prediction"] = model.predict_proba(features(recorded, plan))[:, 1]
    recorded.to_parquet(target, index=False)
    return recorded


def run(
    plan: Mapping[str, Any],
    data: str,
    champion: str,
    out_dir: Path,
    probe: Any,
    state: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The four training steps; ``state`` (if given) receives the frame, train split, model and its
    drift reference."""
    import pandas as pd
    import skops.io

    from bench.pandas_checks import run_checks

    peaks: dict[str, int] = {}

    @contextmanager
    def step(name: str, sampler: PeakSampler) -> Iterator[None]:
        with probe.timed(name):
            yield
        peaks[name] = sampler.take()

    with PeakSampler() as sampler:
        sampler.take()
        with step("validate", sampler):
            frame = pd.read_parquet(data)
            checks = run_checks(frame, plan["expectations"])
            failed = [c for c in checks if not c["success"]]
            if failed:
                raise RuntimeError(f"validation failed: {failed}")

        with step("train", sampler):
            mask = holdout_mask(frame, plan)
            train, holdout = frame[~mask], frame[mask]
            y_train, y_holdout = (
                train[plan["target"]].astype("int64"),
                holdout[plan["target"]].astype("int64"),
            )
            model = build_pipeline(plan).fit(features(train, plan), y_train)
            x_holdout = features(holdout, plan)
            holdout_scores = model.predict_proba(x_holdout)[:, 1]
            holdout_metrics = metrics(y_holdout, holdout_scores)
            train_metrics = metrics(y_train, model.predict_proba(features(train, plan))[:, 1])
            reference = write_reference(train, model, plan, out_dir / "reference.parquet")
            model_path = out_dir / "model.skops"
            skops.io.dump(model, model_path)

        with step("test", sampler):
            primary = plan["primary_metric"]
            gates = {f"threshold:{m}": holdout_metrics[m] >= v for m, v in plan["thresholds"].items()}
            old = skops.io.load(champion, trusted=plan["trusted_types"])
            champion_metrics = metrics(y_holdout, old.predict_proba(x_holdout)[:, 1])
            gates[f"champion:{primary}"] = (
                holdout_metrics[primary] >= champion_metrics[primary] - plan["champion_tolerance"]
            )
            for spec in plan["slices"]:
                in_slice = (holdout[spec["column"]].astype(str) == str(spec["value"])).to_numpy()
                value = (
                    metrics(y_holdout[in_slice], holdout_scores[in_slice])[spec["metric"]]
                    if in_slice.sum() >= spec["min_rows"]
                    else None
                )
                gates[f"slice:{spec['name']}"] = value is not None and value >= spec["min"]
            reloaded = skops.io.load(model_path, trusted=plan["trusted_types"])
            smoke = reloaded.predict_proba(x_holdout.head(plan["smoke_rows"]))[:, 1]
            gates["smoke"] = len(smoke) == min(plan["smoke_rows"], len(x_holdout))
            report = {
                "gates": gates,
                "metrics": holdout_metrics,
                "champion_metrics": champion_metrics,
                "importances": importances(model, holdout, plan) if plan.get("explain") else None,
            }
            (out_dir / "model_tests.json").write_text(json.dumps(report, indent=2))
            if not all(gates.values()):
                raise RuntimeError(f"model gates failed: {gates}")

        with step("register", sampler):
            record = {
                "version": 2,
                "path": str(model_path),
                "metrics": holdout_metrics,
                "registered_at": time.time(),
            }
            (out_dir / "registry.json").write_text(json.dumps(record, indent=2))
    if state is not None:
        state.update(frame=frame, train=train, model=model, reference=reference)
    return {
        "metrics": holdout_metrics,
        "train_metrics": train_metrics,
        "gates": gates,
        "rows_train": len(train),
        "rows_holdout": len(holdout),
        "step_peak_rss": peaks,
    }


def plan_of(config: Any, settings: Any) -> dict[str, Any]:
    """Everything the plain scripts need from a model config, as JSON (so they never import mloops)."""
    from mloops import monitoring, quality, training

    spec = config.training.estimator
    m = config.monitoring
    return {
        "numeric": config.numeric_features,
        "categorical": config.categorical_features,
        "target": config.target,
        "id_column": config.id_column,
        "holdout_fraction": config.training.holdout_fraction,
        "estimator": spec.class_path,
        "estimator_params": {**spec.params, "random_state": config.training.random_state},
        "expectations": quality.model_expectations(config, settings.expectations_dir),
        "primary_metric": config.evaluation.primary_metric,
        "thresholds": dict(config.evaluation.thresholds),
        "champion_tolerance": config.evaluation.champion_tolerance,
        "slices": [s.model_dump(mode="json") for s in config.evaluation.slices],
        "smoke_rows": config.evaluation.smoke_rows,
        "explain": {
            "rows": config.evaluation.explain_rows,
            "repeats": config.evaluation.explain_repeats,
            "seed": m.seed,
            "sign": 1.0 if config.greater_is_better else -1.0,
        },
        "trusted_types": training.trusted_types(spec.class_path),
        "registered_model": config.registered_model_name,
        "monitoring": {
            "sample_size": m.sample_size,
            "seed": m.seed,
            "methods": {c: list(monitoring.method_for(config, c)) for c in config.feature_names},
            "prediction": ["prediction", m.numeric_method, m.prediction_threshold],
            "drift_share": m.drift_share,
        },
    }


def _imports() -> None:
    import numpy  # noqa: F401
    import pandas  # noqa: F401
    import pyarrow.parquet  # noqa: F401
    import sklearn.compose  # noqa: F401
    import sklearn.ensemble  # noqa: F401
    import sklearn.impute  # noqa: F401
    import sklearn.inspection  # noqa: F401
    import sklearn.metrics  # noqa: F401
    import sklearn.preprocessing  # noqa: F401
    import skops.io  # noqa: F401


def child(params: dict[str, Any], probe: Any) -> dict[str, Any]:
    """Measured entry point: imports first (timed), then the four steps (timed one by one)."""
    with probe.timed("import"):
        _imports()
    plan = json.loads(Path(params["plan"]).read_text())
    out_dir = Path(params["out_dir"])
    out_dir.mkdir(parents=True, exist_ok=True)
    probe.mark_base()
    return run(plan, params["data"], params["champion"], out_dir, probe)


def night_child(params: dict[str, Any], probe: Any) -> dict[str, Any]:
    """A whole model-night in one process: the training steps, then score, then drift (scipy)."""
    with probe.timed("import"):
        _imports()
        import pandas as pd
        import scipy.stats  # noqa: F401

        from bench import drift_checks
    plan = json.loads(Path(params["plan"]).read_text())
    out_dir = Path(params["out_dir"])
    out_dir.mkdir(parents=True, exist_ok=True)
    state: dict[str, Any] = {}
    result = run(plan, params["data"], params["champion"], out_dir, probe, state)
    frame, model, m = state["frame"], state["model"], plan["monitoring"]
    with probe.timed("score"):
        probability = model.predict_proba(features(frame, plan))[:, 1]
        scored = pd.DataFrame({plan["id_column"]: frame[plan["id_column"]], "prediction": probability})
        scored["model_version"] = "2"
        scored.to_parquet(out_dir / "predictions.parquet", index=False)
    with probe.timed("drift"):
        reference = state["reference"]  # recorded by the train step
        current = frame.assign(prediction=probability)
        column, method, threshold = m["prediction"]
        found = drift_checks.column_drift(
            reference,
            drift_checks.sample(current, m["sample_size"], m["seed"]),
            {**m["methods"], column: [method, threshold]},
        )
        (out_dir / "drift.json").write_text(json.dumps(found, indent=2, default=str))
    return {"metrics": result["metrics"], "drifted": sorted(c for c, v in found.items() if v["drifted"])}
