"""The baseline of the nightly pipeline: the same computation as one plain script, in one process.

No Airflow, Great Expectations, MLflow, Evidently or mloops: pandas, scikit-learn and skops only.
It reads the same Parquet partition, runs the same expectation specs (:mod:`bench.pandas_checks`),
splits the same holdout (hash of the id), fits the same preprocessing + estimator pipeline, computes
the same holdout and training metrics, dumps the model with skops (no pickle), then applies the same
gates (thresholds, champion on the holdout, slices, a smoke reload-and-predict) and records the new
version in a JSON file. It reuses what it already has in memory (the holdout scores for the slices)
because that is what the simplest fast script would do. Everything it needs from the model config
comes in a JSON plan written by the benchmark, so this file does not import mloops.

Scoring and drift monitoring run on their own schedules, so their plain versions are separate
scripts (:func:`score_child`, :func:`drift_child`), each in its own process like the mloops stages:
load the skops champion, ``predict_proba``, write Parquet; and the pinned drift tests with scipy
(:mod:`bench.drift_checks`) on the same fixed-seed samples as ``check_drift``, against the training
reference :func:`fit_champion` recorded the way ``stages.write_reference`` does.
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


def fit_champion(plan: Mapping[str, Any], data: str, target: str, reference: str | None = None) -> str:
    """The model the plain script compares against, fitted on an earlier partition (untimed), and
    its training reference for drift: a fixed-seed sample of what it was fitted on, with its scores."""
    import pandas as pd
    import skops.io

    from bench.drift_checks import sample

    frame = pd.read_parquet(data)
    model = build_pipeline(plan).fit(features(frame, plan), frame[plan["target"]].astype("int64"))
    skops.io.dump(model, target)
    if reference is not None:
        m = plan["monitoring"]
        columns = [c for c in (plan["id_column"],) if c] + [
            *plan["numeric"],
            *plan["categorical"],
            plan["target"],
        ]
        recorded = sample(frame[columns], m["sample_size"], m["seed"])
        recorded["prediction"] = model.predict_proba(features(recorded, plan))[:, 1]
        recorded.to_parquet(reference, index=False)
    return target


def run(plan: Mapping[str, Any], data: str, champion: str, out_dir: Path, probe: Any) -> dict[str, Any]:
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
            report = {"gates": gates, "metrics": holdout_metrics, "champion_metrics": champion_metrics}
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
    return {
        "metrics": holdout_metrics,
        "train_metrics": train_metrics,
        "gates": gates,
        "rows_train": len(train),
        "rows_holdout": len(holdout),
        "step_peak_rss": peaks,
    }


def child(params: dict[str, Any], probe: Any) -> dict[str, Any]:
    """Measured entry point: imports first (timed), then the four steps (timed one by one)."""
    with probe.timed("import"):
        import numpy  # noqa: F401
        import pandas  # noqa: F401
        import pyarrow.parquet  # noqa: F401
        import sklearn.compose  # noqa: F401
        import sklearn.ensemble  # noqa: F401
        import sklearn.impute  # noqa: F401
        import sklearn.metrics  # noqa: F401
        import sklearn.preprocessing  # noqa: F401
        import skops.io  # noqa: F401
    plan = json.loads(Path(params["plan"]).read_text())
    out_dir = Path(params["out_dir"])
    out_dir.mkdir(parents=True, exist_ok=True)
    probe.mark_base()
    return run(plan, params["data"], params["champion"], out_dir, probe)


def score_child(params: dict[str, Any], probe: Any) -> dict[str, Any]:
    """The plain scoring script: read the partition, load the skops champion, predict_proba, write Parquet."""
    with probe.timed("import"):
        import numpy  # noqa: F401
        import pandas as pd
        import pyarrow.parquet  # noqa: F401
        import sklearn.compose  # noqa: F401
        import sklearn.ensemble  # noqa: F401
        import skops.io
    plan = json.loads(Path(params["plan"]).read_text())
    Path(params["predictions"]).parent.mkdir(parents=True, exist_ok=True)
    probe.mark_base()
    with probe.timed("score"):
        with probe.timed("score.read"):
            frame = pd.read_parquet(params["data"])
        with probe.timed("score.load_model"):
            model = skops.io.load(params["champion"], trusted=plan["trusted_types"])
        with probe.timed("score.predict"):
            probability = model.predict_proba(features(frame, plan))[:, 1]
        out = pd.DataFrame(index=frame.index)
        if plan["id_column"]:
            out[plan["id_column"]] = frame[plan["id_column"]]
        out["prediction"] = probability
        out["predicted_label"] = (probability >= 0.5).astype("int64")
        out["registered_model"] = plan["registered_model"]
        out["model_version"] = "1"
        out["partition"] = params["partition"]
        with probe.timed("score.write"):
            out.to_parquet(params["predictions"], index=False)
    return {"rows": len(out), "mean_prediction": float(probability.mean())}


def drift_child(params: dict[str, Any], probe: Any) -> dict[str, Any]:
    """The plain drift script: the partition with its predictions against the champion's reference,
    both sampled as check_drift samples them, the pinned tests with scipy, a JSON report."""
    with probe.timed("import"):
        import numpy  # noqa: F401
        import pandas as pd
        import pyarrow.parquet  # noqa: F401
        import scipy.spatial.distance  # noqa: F401
        import scipy.stats  # noqa: F401

        from bench import drift_checks
    plan = json.loads(Path(params["plan"]).read_text())
    m = plan["monitoring"]
    column, method, threshold = m["prediction"]
    probe.mark_base()
    with probe.timed("drift"):
        with probe.timed("drift.read"):
            current = pd.read_parquet(params["data"])
            scored = pd.read_parquet(params["predictions"], columns=[column])
            current[column] = scored[column].to_numpy()
            reference = pd.read_parquet(params["reference"])
        with probe.timed("drift.sample"):
            reference_sample = drift_checks.sample(reference, m["sample_size"], m["seed"])
            current_sample = drift_checks.sample(current, m["sample_size"], m["seed"])
        with probe.timed("drift.tests"):
            found = drift_checks.column_drift(
                reference_sample, current_sample, {**m["methods"], column: [method, threshold]}
            )
        features_found = [v for c, v in found.items() if c != column]
        share = sum(bool(v["drifted"]) for v in features_found) / len(features_found)
        breached = share >= m["drift_share"] or bool(found[column]["drifted"])
        with probe.timed("drift.write"):
            report = {"columns": found, "share": share, "breached": breached}
            (Path(params["out_dir"]) / "drift.json").write_text(json.dumps(report, indent=2))
    return {
        "rows": [len(reference_sample), len(current_sample)],
        "columns": found,
        "share": share,
        "breached": breached,
    }
