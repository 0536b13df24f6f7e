"""The nightly stages, each one call: validate, train, test, register, promote.

Every stage takes a model config, the partition date (the data interval's start) and the settings,
reads and writes only the partitions keyed by that date, and returns a small JSON-able dict that the
operators push to XCom. Nothing here imports Airflow, so each stage runs the same from a task, a test
or a notebook. Failures raise the typed errors of :mod:`mloops.errors`, carrying the same dict in
``.result`` so the operator can publish the failing report before the task fails.
"""

from __future__ import annotations

import datetime as dt
import json
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mloops import evaluation, monitoring, partitions, quality, registry, store, training
from mloops.config import ModelConfig
from mloops.data.sources import SqlReader, extract_partition
from mloops.errors import (
    InsufficientDataError,
    MloopsError,
    ModelGateFailedError,
    PartitionMissingError,
    ValidationFailedError,
)
from mloops.settings import Settings

PASSED, QUARANTINED, MISSING = "passed", "quarantined", "missing"


def _fail(error: type[MloopsError], message: str, result: Mapping[str, Any]) -> MloopsError:
    exc = error(message)
    exc.result = dict(result)  # type: ignore[attr-defined]
    return exc


def _staged(settings: Settings, config: ModelConfig, day: dt.date) -> partitions.StoragePath:
    return partitions.partition_dir(settings.data_root, "staged", config.name, day)


def _quarantine(settings: Settings, config: ModelConfig, day: dt.date) -> partitions.StoragePath:
    return partitions.partition_dir(settings.data_root, "quarantine", config.name, day)


def read_verdict(settings: Settings, config: ModelConfig, day: dt.date) -> dict[str, Any] | None:
    return partitions.read_json(_staged(settings, config, day) / "verdict.json")


def frame_fingerprint(frame: Any) -> str:
    import hashlib

    import pandas as pd

    digest = hashlib.sha256(",".join(map(str, frame.columns)).encode())
    digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return digest.hexdigest()[:16]


# --------------------------------------------------------------------------------------------- validate


def _validate_partition(
    config: ModelConfig, day: dt.date, settings: Settings, expectations: list[dict[str, Any]], sql_reader: SqlReader | None
) -> dict[str, Any]:
    from mloops.adapters import gx_adapter

    staged = _staged(settings, config, day)
    try:
        extracted = extract_partition(config, day, settings.data_root, sql_reader)
    except PartitionMissingError as exc:
        verdict = {"partition": day.isoformat(), "status": MISSING, "message": str(exc)}
        partitions.write_json(staged / "verdict.json", verdict)
        (staged / "data.parquet").unlink(missing_ok=True)
        return verdict
    frame = extracted.frame
    outcome = gx_adapter.validate_dataframe(
        frame, model=config.name, partition=day, expectations=expectations, project_dir=settings.docs_root / config.name
    )
    verdict: dict[str, Any] = {
        "partition": day.isoformat(),
        "rows": int(len(frame)),
        "fingerprint": frame_fingerprint(frame),
        "source_uri": extracted.source_uri,
        **outcome.to_dict(),
    }
    quarantine = _quarantine(settings, config, day)
    if outcome.success:
        partitions.write_parquet(frame, staged / "data.parquet")
        verdict["status"] = PASSED
        verdict["uri"] = partitions.to_uri(staged / "data.parquet")
        if quarantine.exists():
            partitions.write_json(quarantine / "resolved.json", {"resolved_by": "a later validation that passed"})
    else:
        (staged / "data.parquet").unlink(missing_ok=True)
        with tempfile.TemporaryDirectory(prefix=f"mloops-quarantine-{config.name}-") as folder:
            incoming = Path(folder)
            if extracted.source_files:
                for path in extracted.source_files:
                    partitions.download(path, incoming / path.name)
            else:
                frame.to_parquet(incoming / "data.parquet", index=False)
            partitions.write_json(incoming / "validation_result.json", outcome.result)
            partitions.write_text(
                incoming / "failures.txt",
                quality.failure_message(config.name, day.isoformat(), outcome, None) + f"\nSource: {extracted.source_uri}\n",
            )
            partitions.replace_dir(incoming, quarantine)
        verdict["status"] = QUARANTINED
        verdict["quarantine"] = str(quarantine)
        verdict["message"] = quality.failure_message(config.name, day.isoformat(), outcome, str(quarantine))
    partitions.write_json(staged / "verdict.json", verdict)
    return verdict


def validate_batch(
    config: ModelConfig, day: dt.date, settings: Settings, *, sql_reader: SqlReader | None = None
) -> dict[str, Any]:
    """Validate the interval's partition, plus any partition of the training window never validated.

    A failing batch is copied (with its validation result) to the quarantine area and its staged
    snapshot removed, so training can never read it; the source data is left untouched.
    """
    expectations = quality.model_expectations(config, settings.expectations_dir)
    checked: dict[str, dict[str, Any]] = {}
    for date in partitions.window_dates(day, config.training.window_days):
        if date != day and read_verdict(settings, config, date) is not None:
            continue
        checked[date.isoformat()] = _validate_partition(config, date, settings, expectations, sql_reader)
    current = checked[day.isoformat()]
    result = {
        "model": config.name,
        "partition": day.isoformat(),
        "status": current["status"],
        "rows": current.get("rows", 0),
        "fingerprint": current.get("fingerprint"),
        "uri": current.get("uri"),
        "docs_url": current.get("docs_url"),
        "failures": current.get("failures", []),
        "quarantine": current.get("quarantine"),
        "also_validated": {d: v["status"] for d, v in checked.items() if d != day.isoformat()},
    }
    if current["status"] == MISSING:
        raise _fail(PartitionMissingError, current["message"], result)
    if current["status"] == QUARANTINED:
        raise _fail(ValidationFailedError, current["message"], result)
    return result


# ------------------------------------------------------------------------------------------------ train


def _window(config: ModelConfig, day: dt.date, settings: Settings) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    passed: dict[str, dict[str, Any]] = {}
    excluded: dict[str, str] = {}
    for date in partitions.window_dates(day, config.training.window_days):
        verdict = read_verdict(settings, config, date)
        status = verdict["status"] if verdict else "not validated"
        if status == PASSED:
            passed[date.isoformat()] = verdict
        else:
            excluded[date.isoformat()] = status
    return passed, excluded


def _hash(payload: Any) -> str:
    import hashlib

    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]


def train_model(
    config: ModelConfig,
    day: dt.date,
    settings: Settings,
    *,
    lineage: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Fit the pipeline on the validated partitions of the window and log it to MLflow.

    Idempotent: a finished run for the same interval, data fingerprint, config and overrides is
    reused instead of training again, so re-running a date never yields a second model version.
    """
    import pandas as pd

    from mloops.adapters import mlflow_adapter

    passed, excluded = _window(config, day, settings)
    if day.isoformat() not in passed or len(passed) < config.training.min_partitions:
        raise InsufficientDataError(
            f"model {config.name!r}, interval {day}: {len(passed)} validated partition(s) in the "
            f"{config.training.window_days}-day window (need {config.training.min_partitions} including {day}); "
            f"excluded: {excluded or 'none'}"
        )
    frames = [partitions.read_parquet(partitions.from_uri(v["uri"])) for v in passed.values()]
    data = pd.concat(frames, ignore_index=True)
    if len(data) < config.training.min_rows:
        raise InsufficientDataError(
            f"model {config.name!r}, interval {day}: {len(data)} validated rows in the window; "
            f"training.min_rows is {config.training.min_rows}"
        )
    fingerprint = partitions.combine_digests({d: v["fingerprint"] for d, v in passed.items()})
    mask = training.holdout_mask(data, config)
    train, holdout = data[~mask].reset_index(drop=True), data[mask].reset_index(drop=True)
    run_dir = partitions.partition_dir(settings.data_root, "runs", config.name, day)
    holdout_path = run_dir / "holdout.parquet"
    partitions.write_parquet(holdout, holdout_path)

    client = mlflow_adapter.client(settings)
    experiment_id = mlflow_adapter.ensure_experiment(client, settings, config.experiment_name)
    run_key = f"{config.name}/{day.isoformat()}"
    identity = {
        "mloops.data_fingerprint": fingerprint,
        "mloops.config_fingerprint": config.fingerprint(),
        "mloops.overrides_fingerprint": _hash(dict(overrides or {})),
    }
    result = {
        "model": config.name,
        "partition": day.isoformat(),
        "data_fingerprint": fingerprint,
        "holdout_uri": partitions.to_uri(holdout_path),
        "rows_train": int(len(train)),
        "rows_holdout": int(len(holdout)),
        "partitions": sorted(passed),
        "excluded": excluded,
    }
    existing = mlflow_adapter.find_run(client, experiment_id, run_key, identity)
    if existing is not None and existing.data.tags.get("mloops.model_uri"):
        return {
            **result,
            "run_id": existing.info.run_id,
            "model_uri": existing.data.tags["mloops.model_uri"],
            "metrics": {k: v for k, v in existing.data.metrics.items() if not k.startswith(("train_", "rows_"))},
            "reused": True,
        }

    model = training.fit(config, train, overrides)
    reference_path = write_reference(config, train, model, run_dir / "reference.parquet")
    metrics = training.evaluate(model, holdout, config)
    train_metrics = {f"train_{k}": v for k, v in training.evaluate(model, train, config).items()}
    features = training.feature_frame(train, config)
    columns = [*config.feature_names, config.target]
    tags = {
        **identity,
        mlflow_adapter.RUN_KEY_TAG: run_key,
        "mloops.model": config.name,
        "mloops.target": config.target,
        registry.INTERVAL_TAG: day.isoformat(),
        "mloops.window": f"{min(passed)}..{max(passed)}",
        "mloops.partitions": ",".join(sorted(passed)),
        "mloops.excluded_partitions": json.dumps(excluded, sort_keys=True),
        "mloops.validation": json.dumps({d: v["status"] for d, v in passed.items()}, sort_keys=True),
        "mloops.validation_docs": next((v.get("docs_url") or "" for v in passed.values()), ""),
        "mloops.reference_uri": partitions.to_uri(reference_path),
        **{k: str(v) for k, v in (lineage or {}).items()},
    }
    if overrides:
        tags["mloops.overrides"] = json.dumps(dict(overrides), sort_keys=True)
    staged_root = partitions.partition_dir(settings.data_root, "staged", config.name, day).parent
    logged = mlflow_adapter.log_training_run(
        experiment_id=experiment_id,
        run_name=f"{config.name}-{day.isoformat()}",
        tags=tags,
        params={
            "estimator": config.training.estimator.class_path,
            **{f"estimator.{k}": v for k, v in {**config.training.estimator.params, **(overrides or {})}.items()},
            "window_days": config.training.window_days,
            "holdout_fraction": config.training.holdout_fraction,
            "features": ",".join(config.feature_names),
        },
        metrics={**metrics, **train_metrics, "rows_train": len(train), "rows_holdout": len(holdout)},
        datasets=[
            (train[columns], partitions.public_uri(staged_root), f"{config.name}-train-{day.isoformat()}", "training",
             split_digest(config, fingerprint, "train")),
            (holdout[columns], partitions.public_uri(holdout_path), f"{config.name}-holdout-{day.isoformat()}", "evaluation",
             split_digest(config, fingerprint, "holdout")),
        ],
        model=model,
        input_example=features.head(50),
        trusted_types=training.trusted_types(config.training.estimator.class_path),
    )
    mlflow_adapter.set_run_tags(client, logged["run_id"], {"mloops.model_uri": logged["model_uri"]})
    return {**result, **logged, "metrics": metrics, "reused": False}


def split_digest(config: ModelConfig, fingerprint: str, side: str) -> str:
    """The digest of one side of the train/holdout split: the window's data fingerprint plus what
    decides the split, so equal digests mean equal rows without hashing the frames again."""
    t = config.training
    return _hash({"data": fingerprint, "side": side, "id": config.id_column, "fraction": t.holdout_fraction,
                  "seed": t.random_state})


def write_reference(config: ModelConfig, train: Any, model: Any, path: partitions.StoragePath) -> partitions.StoragePath:
    """Record what the model was trained on (a fixed-seed sample with its own predictions): the
    reference every later drift check of this model version compares against."""
    columns = [c for c in (config.id_column,) if c] + [*config.feature_names, config.target]
    reference = monitoring.sample(train[columns], config.monitoring.sample_size, config.monitoring.seed)
    reference[monitoring.PREDICTION] = training.scores(model, reference, config)[0]
    return partitions.write_parquet(reference, path)


# ------------------------------------------------------------------------------------------------- test


def test_model(  # noqa: PT028 - a stage, not a pytest test
    config: ModelConfig, day: dt.date, settings: Settings, trained: Mapping[str, Any]
) -> dict[str, Any]:
    """Run every model gate on the interval's holdout and write the report (JSON + Markdown)."""
    from mloops.adapters import mlflow_adapter

    client = mlflow_adapter.client(settings)
    holdout = partitions.read_parquet(partitions.from_uri(trained["holdout_uri"]))
    challenger = mlflow_adapter.load_sklearn_model(trained["model_uri"])
    metrics = training.evaluate(challenger, holdout, config)
    checks = evaluation.threshold_checks(config, metrics)

    champion = mlflow_adapter.version_by_alias(client, config.registered_model_name, registry.CHAMPION)
    champion_metrics, champion_error, label = None, None, None
    if champion is not None:
        label = f"champion v{champion.version}"
        if champion.run_id == trained["run_id"]:
            champion_metrics = metrics
            label += " (this run)"
        else:
            try:
                champion_metrics = training.evaluate(mlflow_adapter.load_sklearn_model(champion.uri), holdout, config)
            except Exception as exc:  # noqa: BLE001 - an unscorable champion is a reported failure, not a crash
                champion_error = f"{label} cannot score this holdout: {type(exc).__name__}: {exc}"
    checks.append(evaluation.champion_check(config, metrics, champion_metrics, label, champion_error))
    checks += evaluation.slice_checks(config, holdout, lambda subset: training.evaluate(challenger, subset, config))

    sample = training.feature_frame(holdout.head(config.evaluation.smoke_rows), config)
    try:
        predictions = mlflow_adapter.load_pyfunc_model(trained["model_uri"]).predict(sample)
        smoke = evaluation.smoke_check([float(v) for v in predictions], len(sample), None)
    except Exception as exc:  # noqa: BLE001 - the smoke test reports any load or predict failure
        smoke = evaluation.smoke_check(None, len(sample), f"{type(exc).__name__}: {exc}")
    checks.append(smoke)

    payload = evaluation.report(
        config,
        day.isoformat(),
        checks,
        metrics,
        {
            "run_id": trained["run_id"],
            "model_uri": trained["model_uri"],
            "champion_version": champion.version if champion else None,
            "champion_metrics": champion_metrics,
            "holdout_rows": int(len(holdout)),
        },
    )
    report_dir = partitions.partition_dir(settings.data_root, "reports", config.name, day)
    reports = {"model_tests.json": partitions.json_text(payload), "model_tests.md": evaluation.report_markdown(payload)}
    json_path, md_path = (partitions.write_text(report_dir / name, text) for name, text in reports.items())
    mlflow_adapter.log_texts(client, trained["run_id"], reports, artifact_path="model_tests")
    status = "passed" if payload["passed"] else "failed"
    mlflow_adapter.set_run_tags(client, trained["run_id"], {registry.TEST_STATUS_TAG: status})
    result = {
        "model": config.name,
        "partition": day.isoformat(),
        "passed": payload["passed"],
        "report_uri": partitions.to_uri(json_path),
        "checks": {c.name: c.passed for c in checks},
        "metrics": metrics,
        "champion_version": payload["champion_version"],
    }
    if not payload["passed"]:
        raise _fail(ModelGateFailedError, evaluation.gate_message(payload, partitions.to_uri(md_path)), result)
    return result


# -------------------------------------------------------------------------------------------- registry


def register_model(
    config: ModelConfig,
    day: dt.date,
    settings: Settings,
    trained: Mapping[str, Any],
    tested: Mapping[str, Any],
    *,
    lineage: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Register the tested model once per run (re-runs reuse the version) and set ``challenger``."""
    from mloops.adapters import mlflow_adapter

    client = mlflow_adapter.client(settings)
    name = config.registered_model_name
    tags = {
        registry.TEST_STATUS_TAG: "passed" if tested["passed"] else "failed",
        "mloops.tests": json.dumps(tested["checks"], sort_keys=True),
        "mloops.test_report": tested["report_uri"],
        registry.INTERVAL_TAG: day.isoformat(),
        "mloops.data_fingerprint": trained["data_fingerprint"],
        **{f"metric.{k}": f"{v:.6f}" for k, v in tested["metrics"].items() if v is not None},
        **{k: str(v) for k, v in (lineage or {}).items()},
    }
    existing = mlflow_adapter.versions(client, name, run_id=trained["run_id"])
    if existing:
        version = existing[0]
        mlflow_adapter.set_version_tags(client, name, version.version, tags)
    else:
        version = mlflow_adapter.register_version(client, name, trained["model_uri"], trained["run_id"], tags)
    mlflow_adapter.set_alias(client, name, registry.CHALLENGER, version.version)
    return {"model": config.name, "registered_model": name, "version": version.version, "reused": bool(existing)}


def promote_model(
    config: ModelConfig,
    day: dt.date,
    settings: Settings,
    registered: Mapping[str, Any],
    *,
    policy: str | None = None,
    lineage: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Apply the promotion policy: move ``champion`` (keeping the old one as ``previous``) or keep it."""
    from mloops.adapters import mlflow_adapter

    client = mlflow_adapter.client(settings)
    name = config.registered_model_name
    candidate_info = mlflow_adapter.get_version(client, name, registered["version"])
    champion_info = mlflow_adapter.version_by_alias(client, name, registry.CHAMPION)
    decision = registry.decide_promotion(
        policy or config.promotion.policy,
        registry.Candidate(candidate_info.version, candidate_info.tags.get(registry.INTERVAL_TAG)),
        registry.Candidate(champion_info.version, champion_info.tags.get(registry.INTERVAL_TAG)) if champion_info else None,
    )
    if decision.action == "promote":
        if decision.previous:
            mlflow_adapter.set_alias(client, name, registry.PREVIOUS, decision.previous)
        mlflow_adapter.set_alias(client, name, registry.CHAMPION, candidate_info.version)
        mlflow_adapter.set_version_tags(
            client,
            name,
            candidate_info.version,
            {
                "mloops.promoted_from": decision.previous or "none",
                "mloops.promotion_reason": decision.reason,
                **{f"mloops.promoted_by.{k.split('.')[-1]}": str(v) for k, v in (lineage or {}).items()},
            },
        )
    return {
        "model": config.name,
        "action": decision.action,
        "reason": decision.reason,
        "champion": decision.champion,
        "previous": decision.previous,
        "version": candidate_info.version,
    }
test_model.__test__ = False  # type: ignore[attr-defined]  # keep pytest from collecting it


# ------------------------------------------------------------------------------------------------ score


class NoChampionError(MloopsError):
    """The model has no champion yet: nothing to score or monitor (an intended skip, not a failure)."""


def _champion(config: ModelConfig, settings: Settings) -> tuple[Any, Any]:
    from mloops.adapters import mlflow_adapter

    client = mlflow_adapter.client(settings)
    champion = mlflow_adapter.version_by_alias(client, config.registered_model_name, registry.CHAMPION)
    if champion is None:
        raise NoChampionError(
            f"model {config.name!r} has no champion yet ({config.registered_model_name}@champion is not set): "
            "train and promote a version first"
        )
    return client, champion


def predictions_path(settings: Settings, config: ModelConfig, day: dt.date) -> partitions.StoragePath:
    return partitions.partition_dir(settings.data_root, "predictions", config.name, day) / "predictions.parquet"


def score_batch(config: ModelConfig, day: dt.date, settings: Settings) -> dict[str, Any]:
    """Score the interval's validated partition with the champion; overwrite its predictions partition."""
    import pandas as pd

    from mloops.adapters import mlflow_adapter

    verdict = read_verdict(settings, config, day)
    if not verdict or verdict["status"] != PASSED:
        raise InsufficientDataError(
            f"model {config.name!r}: partition {day} has no validated batch to score "
            f"(verdict: {verdict['status'] if verdict else 'not validated'})"
        )
    _, champion = _champion(config, settings)
    frame = partitions.read_parquet(partitions.from_uri(verdict["uri"]))
    model = mlflow_adapter.load_sklearn_model(champion.uri)
    score, label = training.scores(model, frame, config)
    out = pd.DataFrame(index=frame.index)
    if config.id_column:
        out[config.id_column] = frame[config.id_column]
    out[monitoring.PREDICTION] = score
    if config.task == "classification":
        out["predicted_label"] = label
    out["registered_model"] = config.registered_model_name
    out["model_version"] = champion.version
    out["partition"] = day.isoformat()
    path = predictions_path(settings, config, day)
    partitions.write_parquet(out, path)
    return {
        "model": config.name,
        "partition": day.isoformat(),
        "uri": partitions.to_uri(path),
        "rows": int(len(out)),
        "model_version": champion.version,
        "mean_prediction": float(out[monitoring.PREDICTION].mean()) if len(out) else None,
    }


# ------------------------------------------------------------------------------------------------ drift


def _current_window(config: ModelConfig, end: dt.date, settings: Settings) -> tuple[Any, list[str], dict[str, str]]:
    import pandas as pd

    frames, used, skipped = [], [], {}
    for day in partitions.window_dates(end, config.monitoring.window_days):
        verdict = read_verdict(settings, config, day)
        scored = predictions_path(settings, config, day)
        if not verdict or verdict["status"] != PASSED:
            skipped[day.isoformat()] = verdict["status"] if verdict else "not validated"
            continue
        if not scored.exists():
            skipped[day.isoformat()] = "not scored"
            continue
        data = partitions.read_parquet(partitions.from_uri(verdict["uri"]))
        predictions = partitions.read_parquet(scored)
        if len(predictions) != len(data):
            raise monitoring.DriftInputError(
                f"model {config.name!r}: predictions of {day} have {len(predictions)} rows, the batch {len(data)}; re-run scoring"
            )
        data[monitoring.PREDICTION] = predictions[monitoring.PREDICTION].to_numpy()
        data["_partition"] = day.isoformat()
        frames.append(data)
        used.append(day.isoformat())
    current = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    return current, used, skipped


def compare_samples(
    config: ModelConfig, reference: Any, current: Any, out_dir: partitions.StoragePath
) -> tuple[dict[str, Any], list[monitoring.ColumnDrift]]:
    """Run the model's pinned drift tests (features and prediction) on two prepared samples.

    Returns Evidently's snapshot dict (reports saved in ``out_dir``) and the findings for columns that
    could not be compared; :func:`monitoring.summarize` turns both into a :class:`DriftSummary`.
    """
    from mloops.adapters import evidently_adapter

    m = config.monitoring
    comparable, unevaluable = monitoring.check_inputs(config, reference, current)
    snapshot = evidently_adapter.drift_report(
        reference=reference,
        current=current,
        numeric=[c for c in config.numeric_features if c in comparable],
        categorical=[c for c in config.categorical_features if c in comparable],
        methods={c: monitoring.method_for(config, c) for c in comparable},
        drift_share=m.drift_share,
        prediction=(monitoring.PREDICTION, m.numeric_method, m.prediction_threshold),
        out_dir=out_dir,
    )
    return snapshot, unevaluable


def check_drift(
    config: ModelConfig, end: dt.date, settings: Settings, *, run_id: str | None = None
) -> dict[str, Any]:
    """Compare the current window (validated partitions with their predictions) with the champion's
    training reference: data drift per feature, prediction drift, quality on delayed labels.

    Saves the Evidently reports (HTML + JSON) per model and window, appends the numbers to the
    metrics store, and returns the findings with the policy verdict.
    """

    from mloops.adapters import evidently_adapter, mlflow_adapter

    window = partitions.window_dates(end, config.monitoring.window_days)
    client, champion = _champion(config, settings)
    current, used, skipped = _current_window(config, end, settings)
    if current.empty:
        raise monitoring.DriftInputError(
            f"model {config.name!r}: no validated and scored partition in the window {window[0]}..{end} ({skipped})"
        )
    reference_uri = mlflow_adapter.get_run(client, champion.run_id).data.tags.get("mloops.reference_uri")
    if not reference_uri:
        raise monitoring.DriftInputError(f"champion v{champion.version} of {config.name!r} has no recorded training reference")
    reference = partitions.read_parquet(partitions.from_uri(reference_uri))
    m = config.monitoring
    reference_sample = monitoring.sample(reference, m.sample_size, m.seed)
    current_sample = monitoring.sample(current, m.sample_size, m.seed)
    out_dir = settings.data_root / "monitoring" / config.name / f"window={window[0]}_{end}"
    snapshot, unevaluable = compare_samples(config, reference_sample, current_sample, out_dir)

    labeled_days = {d.isoformat() for d in monitoring.labeled_partitions(window, end, m.label_delay_days)}
    labeled = current[current["_partition"].isin(labeled_days) & current[config.target].notna()]
    quality_metrics: dict[str, float | None] = {}
    if len(labeled) >= m.min_rows:
        label = (labeled[monitoring.PREDICTION] >= 0.5).astype("int64") if config.task == "classification" else labeled[monitoring.PREDICTION]
        probability = labeled[monitoring.PREDICTION] if config.task == "classification" else None
        quality_metrics = training.compute_metrics(config.task, training.target_series(labeled, config), label, probability)
        evidently_adapter.quality_report(
            reference=reference_sample.assign(**{config.target: training.target_series(reference_sample, config)}),
            current=labeled.assign(**{config.target: training.target_series(labeled, config)}),
            task=config.task,
            target=config.target,
            prediction=monitoring.PREDICTION,
            out_dir=out_dir,
        )
    reference_metric = champion.tags.get(f"metric.{config.evaluation.primary_metric}")
    summary = monitoring.summarize(
        config, snapshot, unevaluable, quality_metrics,
        float(reference_metric) if reference_metric is not None else None, int(len(labeled)),
    )
    verdict = monitoring.evaluate_policy(config, summary)

    numbers: dict[str, float | None] = {
        "drift.share": summary.share,
        "drift.count": float(len(summary.drifted_columns)),
        "rows.current": float(len(current)),
        "rows.reference": float(len(reference)),
        "rows.labeled": float(len(labeled)),
        "policy.breached": float(verdict.breached),
        **{f"drift.column.{c.column}": c.score for c in summary.columns},
        **{f"quality.{k}": v for k, v in quality_metrics.items()},
    }
    if summary.prediction is not None:
        numbers["drift.prediction"] = summary.prediction.score
    store.write_metrics(
        settings.metrics_db_uri, model=config.name, model_version=champion.version, window_start=window[0],
        window_end=end, metrics=numbers, run_id=run_id,
    )
    result = {
        "model": config.name,
        "champion_version": champion.version,
        "window_start": window[0].isoformat(),
        "window_end": end.isoformat(),
        "partitions": used,
        "skipped": skipped,
        **summary.to_dict(),
        "breached": verdict.breached,
        "reasons": list(verdict.reasons),
        "report_uri": partitions.to_uri(out_dir / "drift.html"),
        "report_json_uri": partitions.to_uri(out_dir / "drift.json"),
    }
    return result


# ------------------------------------------------------------------------------------ fleet operations

REGISTRY_ACTIONS = ("promote", "rollback", "archive")


def registry_action(
    config: ModelConfig,
    settings: Settings,
    *,
    action: str,
    version: str | None,
    reason: str,
    actor: str,
    dag_run: str,
    allow_failed_tests: bool = False,
) -> dict[str, Any]:
    """Promote a version to champion, roll champion back to ``previous``, or archive a version.

    Refuses a version whose tests failed (or that was never tested) unless ``allow_failed_tests``,
    which is recorded. Every change is audited on the versions it touches (who, when, why, which run).
    """
    from mloops.adapters import mlflow_adapter
    from mloops.errors import RegistryError

    if action not in REGISTRY_ACTIONS:
        raise RegistryError(f"action {action!r} is not one of {REGISTRY_ACTIONS}")
    if not reason or len(reason.strip()) < 5:
        raise RegistryError("reason: say why (at least 5 characters); it is recorded on the model version")
    client = mlflow_adapter.client(settings)
    name = config.registered_model_name
    champion = mlflow_adapter.version_by_alias(client, name, registry.CHAMPION)
    previous = mlflow_adapter.version_by_alias(client, name, registry.PREVIOUS)
    known = {v.version: v for v in mlflow_adapter.versions(client, name)}

    if action == "rollback":
        if previous is None:
            raise RegistryError(f"{name} has no 'previous' alias: nothing to roll back to")
        target = previous
    else:
        if version is None or str(version) not in known:
            raise RegistryError(f"version: {name} has no version {version!r} (versions: {sorted(known, key=int)})")
        target = known[str(version)]
    if action in ("promote", "rollback"):
        status = target.tags.get(registry.TEST_STATUS_TAG, "not tested")
        if status != "passed" and not allow_failed_tests:
            raise RegistryError(
                f"{name} v{target.version} did not pass its tests (mloops.test_status={status!r}); "
                "set allow_failed_tests to override (the override is audited)"
            )
    if action == "archive" and champion is not None and champion.version == target.version:
        raise RegistryError(f"{name} v{target.version} is the champion; promote or roll back before archiving it")

    now = dt.datetime.now(dt.UTC)
    at = now.isoformat(timespec="seconds")
    audit = {"action": action, "by": actor, "at": at, "why": reason, "dag_run": dag_run,
             "override_failed_tests": bool(allow_failed_tests)}
    if action == "promote":
        if champion is not None and champion.version != target.version:
            mlflow_adapter.set_alias(client, name, registry.PREVIOUS, champion.version)
        mlflow_adapter.set_alias(client, name, registry.CHAMPION, target.version)
    elif action == "rollback":
        assert champion is not None
        mlflow_adapter.set_alias(client, name, registry.CHAMPION, target.version)
        mlflow_adapter.set_alias(client, name, registry.PREVIOUS, champion.version)
    else:
        for alias in target.aliases:
            mlflow_adapter.delete_alias(client, name, alias)
        mlflow_adapter.set_version_tags(client, name, target.version, {"mloops.archived": "true"})
    stamp = now.strftime("%Y%m%dT%H%M%S%fZ")
    touched = {target.version} | ({champion.version} if champion and action != "archive" else set())
    for number in touched:
        mlflow_adapter.set_version_tags(
            client, name, number,
            {f"mloops.audit.{stamp}.{action}": json.dumps({**audit, "target": target.version}, sort_keys=True),
             "mloops.last_action": json.dumps({**audit, "target": target.version}, sort_keys=True)},
        )
    after = {
        alias: info.version
        for alias in (registry.CHAMPION, registry.PREVIOUS, registry.CHALLENGER)
        if (info := mlflow_adapter.version_by_alias(client, name, alias)) is not None
    }
    return {"model": config.name, "action": action, "version": target.version, "aliases": after, "audit": audit,
            "from_champion": champion.version if champion else None}
