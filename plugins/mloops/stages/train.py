"""Stage ``train_model``: fit the model on the validated partitions of its window, tracked in MLflow.

Read top to bottom: select the window's validated partitions, load them, split off the holdout,
reuse a finished run of the same interval and inputs if there is one, else fit, record the drift
reference, and log the run with its lineage, metrics, datasets and the skops-saved model.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mloops import bundle, monitoring, partitions, training
from mloops.contracts import BUNDLE_VERSION, PREDICTION_COLUMN, Tag, TrainingResult
from mloops.errors import InsufficientDataError
from mloops.partitions import DAY
from mloops.stages.layout import (
    RunContext,
    holdout_path,
    holdout_predictions_path,
    payload_digest,
    run_dir,
    staged_root,
    window_verdicts,
)

if TYPE_CHECKING:
    import pandas as pd

    from mloops.adapters.mlflow_adapter import DatasetInput, RunInfo
    from mloops.config import ModelConfig
    from mloops.partitions import StoragePath


#: Slack past a training task's execution timeout before its still-RUNNING MLflow run counts as
#: orphaned (Airflow kills the task at the timeout; the process may take a moment to go).
ORPHAN_MARGIN = dt.timedelta(minutes=10)


@dataclass(frozen=True)
class TrainingData:
    """The window's validated rows split into train and holdout, with what they came from."""

    passed: dict[str, dict[str, Any]]
    excluded: dict[str, str]
    fingerprint: str
    train: pd.DataFrame
    holdout: pd.DataFrame
    holdout_path: StoragePath


def train_model(
    ctx: RunContext,
    *,
    overrides: Mapping[str, Any] | None = None,
    stale_after: dt.timedelta | None = None,
) -> TrainingResult:
    """Fit the pipeline on the validated partitions of the window and log it to MLflow.

    Idempotent: a finished run for the same interval, data fingerprint, config and overrides is
    reused instead of training again, so re-running a date never yields a second model version.
    Runs a killed training left ``RUNNING`` are ended first: this interval's, and with ``stale_after``
    (the task's execution timeout) any of the model's that started longer ago than that.
    """
    from mloops.adapters import mlflow_adapter

    data = load_training_data(ctx)
    client = mlflow_adapter.client(ctx.settings)
    experiment_id = mlflow_adapter.ensure_experiment(client, ctx.settings, ctx.config.experiment_name)
    identity = run_identity(ctx, data, overrides)
    started_before = None
    if stale_after is not None:
        cutoff = dt.datetime.now(dt.UTC) - stale_after - ORPHAN_MARGIN
        started_before = int(cutoff.timestamp() * 1000)
    mlflow_adapter.end_orphan_runs(
        client, experiment_id, run_key(ctx), model=ctx.model, started_before_ms=started_before
    )
    existing = mlflow_adapter.find_run(client, experiment_id, run_key(ctx), identity)
    if existing is not None and existing.tags.get(Tag.MODEL_URI):
        return _result(ctx, data, reused_run(existing))

    model = training.fit(ctx.config, data.train, overrides)
    reference = write_reference(ctx.config, data.train, model, run_dir(ctx) / "reference.parquet")
    scored = training.predictions(model, data.holdout, ctx.config)
    metrics = scored.metrics()
    recorded = partitions.write_parquet(scored.frame(), holdout_predictions_path(ctx))
    train_metrics = {f"train_{k}": v for k, v in training.evaluate(model, data.train, ctx.config).items()}
    logged = mlflow_adapter.log_training_run(
        experiment_id=experiment_id,
        run_name=f"{ctx.model}-{ctx.ds}",
        tags={**identity, **lineage_tags(ctx, data, reference, overrides)},
        params=run_params(ctx.config, overrides),
        metrics={
            **metrics,
            **train_metrics,
            "rows_train": len(data.train),
            "rows_holdout": len(data.holdout),
        },
        datasets=datasets(ctx, data),
        model=model,
        signature_example=training.feature_frame(data.train, ctx.config).head(50),
        trusted_types=training.trusted_types(ctx.config.training.estimator.class_path),
    )
    mlflow_adapter.set_run_tags(client, logged["run_id"], {Tag.MODEL_URI: logged["model_uri"]})
    return _result(
        ctx,
        data,
        {**logged, "metrics": metrics, "reused": False, "predictions_uri": partitions.to_uri(recorded)},
    )


# ------------------------------------------------------------------------------------------ the steps


def load_training_data(ctx: RunContext) -> TrainingData:
    """The window's validated partitions (refusing too few), concatenated and split; the holdout is
    written."""
    import pandas as pd

    t = ctx.config.training
    passed, excluded = window_verdicts(ctx, ctx.config.training_window)
    if ctx.ds not in passed or len(passed) < t.min_partitions:
        raise InsufficientDataError(
            f"model {ctx.model!r}, interval {ctx.ds}: {len(passed)} validated partition(s) in the "
            f"{t.window_text(ctx.config.interval)} window (need {t.min_partitions} including {ctx.ds}); "
            f"excluded: {excluded or 'none'}"
        )
    rows = pd.concat(
        [partitions.read_parquet(partitions.from_uri(v["uri"])) for v in passed.values()], ignore_index=True
    )
    if len(rows) < t.min_rows:
        raise InsufficientDataError(
            f"model {ctx.model!r}, interval {ctx.ds}: {len(rows)} validated rows in the window; "
            f"training.min_rows is {t.min_rows}"
        )
    mask = training.holdout_mask(rows, ctx.config)
    holdout = rows[mask].reset_index(drop=True)
    return TrainingData(
        passed=passed,
        excluded=excluded,
        fingerprint=partitions.combine_digests({d: v["fingerprint"] for d, v in passed.items()}),
        train=rows[~mask].reset_index(drop=True),
        holdout=holdout,
        holdout_path=partitions.write_parquet(holdout, holdout_path(ctx)),
    )


def run_key(ctx: RunContext) -> str:
    return f"{ctx.model}/{ctx.ds}"


def run_identity(ctx: RunContext, data: TrainingData, overrides: Mapping[str, Any] | None) -> dict[str, str]:
    """The tags that make two trainings of an interval the same run."""
    return {
        Tag.DATA_FINGERPRINT: data.fingerprint,
        Tag.CONFIG_FINGERPRINT: ctx.config.fingerprint(),
        Tag.OVERRIDES_FINGERPRINT: payload_digest(dict(overrides or {})),
    }


def reused_run(run: RunInfo) -> dict[str, Any]:
    return {
        "run_id": run.run_id,
        "model_uri": run.tags[Tag.MODEL_URI],
        "metrics": {k: v for k, v in run.metrics.items() if not k.startswith(("train_", "rows_"))},
        "reused": True,
    }


def lineage_tags(
    ctx: RunContext, data: TrainingData, reference: StoragePath, overrides: Mapping[str, Any] | None
) -> dict[str, str]:
    """What the run was trained on and which Airflow run asked for it."""
    passed = data.passed
    tags = {
        Tag.RUN_KEY: run_key(ctx),
        Tag.MODEL: ctx.model,
        Tag.TARGET: ctx.config.target,
        Tag.DATA_INTERVAL: ctx.ds,
        Tag.WINDOW: f"{min(passed)}..{max(passed)}",
        Tag.PARTITIONS: ",".join(sorted(passed)),
        Tag.EXCLUDED_PARTITIONS: json.dumps(data.excluded, sort_keys=True),
        Tag.VALIDATION: json.dumps({d: v["status"] for d, v in passed.items()}, sort_keys=True),
        Tag.VALIDATION_DOCS: next((v.get("docs_url") or "" for v in passed.values()), ""),
        Tag.REFERENCE_URI: partitions.to_uri(reference),
        Tag.CODE_VERSION: bundle.commit(bundle_version=ctx.lineage.get(BUNDLE_VERSION)),
        **{k: str(v) for k, v in ctx.lineage.items()},
    }
    left_out = {d: v["rows_quarantined"] for d, v in passed.items() if v.get("rows_quarantined")}
    if left_out:
        tags[Tag.QUARANTINED_ROWS] = json.dumps(left_out, sort_keys=True)
    if overrides:
        tags[Tag.OVERRIDES] = json.dumps(dict(overrides), sort_keys=True)
    return tags


def run_params(config: ModelConfig, overrides: Mapping[str, Any] | None) -> dict[str, Any]:
    estimator = config.training.estimator
    return {
        "estimator": estimator.class_path,
        **{f"estimator.{k}": v for k, v in {**estimator.params, **(overrides or {})}.items()},
        **(
            {"window_days": config.training_window}
            if config.interval == DAY
            else {"window": config.training.window_text(config.interval)}
        ),
        "holdout_fraction": config.training.holdout_fraction,
        "features": ",".join(config.feature_names),
    }


def datasets(ctx: RunContext, data: TrainingData) -> list[DatasetInput]:
    """The training and holdout rows as MLflow dataset inputs, with our own digests."""
    from mloops.adapters.mlflow_adapter import DatasetInput

    columns = [*ctx.config.feature_names, ctx.config.target]
    return [
        DatasetInput(
            data.train[columns],
            partitions.public_uri(staged_root(ctx)),
            f"{ctx.model}-train-{ctx.ds}",
            "training",
            split_digest(ctx.config, data.fingerprint, "train"),
        ),
        DatasetInput(
            data.holdout[columns],
            partitions.public_uri(data.holdout_path),
            f"{ctx.model}-holdout-{ctx.ds}",
            "evaluation",
            split_digest(ctx.config, data.fingerprint, "holdout"),
        ),
    ]


def split_digest(config: ModelConfig, fingerprint: str, side: str) -> str:
    """The digest of one side of the train/holdout split: the window's data fingerprint plus what
    decides the split, so equal digests mean equal rows without hashing the frames again."""
    t = config.training
    return payload_digest(
        {
            "data": fingerprint,
            "side": side,
            "id": config.id_column,
            "fraction": t.holdout_fraction,
            "seed": t.random_state,
        }
    )


def write_reference(config: ModelConfig, train: pd.DataFrame, model: Any, path: StoragePath) -> StoragePath:
    """Record what the model was trained on (a fixed-seed sample with its own predictions): the
    reference every later drift check of this model version compares against."""
    columns = [c for c in (config.id_column,) if c] + [*config.feature_names, config.target]
    reference = monitoring.sample(train[columns], config.monitoring.sample_size, config.monitoring.seed)
    reference[PREDICTION_COLUMN] = training.scores(model, reference, config)[0]
    return partitions.write_parquet(reference, path)


def _result(ctx: RunContext, data: TrainingData, run: Mapping[str, Any]) -> TrainingResult:
    return TrainingResult(
        model=ctx.model,
        partition=ctx.ds,
        data_fingerprint=data.fingerprint,
        holdout_uri=partitions.to_uri(data.holdout_path),
        rows_train=int(len(data.train)),
        rows_holdout=int(len(data.holdout)),
        partitions=sorted(data.passed),
        excluded=data.excluded,
        run_id=run["run_id"],
        model_uri=run["model_uri"],
        metrics=dict(run["metrics"]),
        reused=bool(run["reused"]),
        model_id=run.get("model_id"),
        holdout_predictions_uri=run.get("predictions_uri"),
    )
