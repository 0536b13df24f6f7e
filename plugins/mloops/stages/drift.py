"""Stage ``check_drift``: the current window against the champion's training reference (Evidently).

Data drift per feature with the test pinned per column type, prediction drift, and quality on the
labels that have arrived. Reports (HTML + JSON) are saved per window, the numbers appended to the
metrics store, and the retrain policy of :mod:`mloops.monitoring` gives the verdict.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from mloops import monitoring, partitions, store, training
from mloops.contracts import DRIFT_METRIC_FAMILIES, PREDICTION_COLUMN, DriftResult, Status, Tag
from mloops.errors import DriftInputError
from mloops.stages.layout import (
    RunContext,
    monitoring_dir,
    predictions_path,
    read_verdict,
    status_of,
    window,
)
from mloops.stages.score import champion

if TYPE_CHECKING:
    import pandas as pd

    from mloops.adapters.mlflow_adapter import VersionInfo
    from mloops.config import ModelConfig
    from mloops.monitoring import DriftSummary, PolicyVerdict
    from mloops.partitions import Partition, StoragePath


def check_drift(ctx: RunContext, *, run_id: str | None = None) -> DriftResult:
    """Compare the current window (validated partitions with their predictions) with the champion's
    training reference; save the reports, append the numbers to the metrics store, apply the policy."""
    m = ctx.config.monitoring
    days = window(ctx, ctx.config.monitoring_window)
    start = days[0].partition
    client, version = champion(ctx)
    current, used, skipped = current_window(ctx)
    if current.empty:
        raise DriftInputError(
            f"model {ctx.model!r}: no validated and scored partition in the window {start}..{ctx.ds} "
            f"({skipped})"
        )
    reference = training_reference(ctx, client, version)
    reference_sample = monitoring.sample(reference, m.sample_size, m.seed)
    current_sample = monitoring.sample(current, m.sample_size, m.seed)
    out_dir = monitoring_dir(ctx, start)
    snapshot, unevaluable = compare_samples(ctx.config, reference_sample, current_sample, out_dir)
    labeled = labeled_rows(ctx, current, [d.partition for d in days], version.version)
    quality = live_quality(ctx.config, reference_sample, labeled, out_dir)
    reference_metric = version.tags.get(f"metric.{ctx.config.evaluation.primary_metric}")
    summary = monitoring.summarize(
        ctx.config,
        snapshot,
        unevaluable,
        quality,
        float(reference_metric) if reference_metric is not None else None,
        int(len(labeled)),
    )
    verdict = monitoring.evaluate_policy(ctx.config, summary)
    record_numbers(
        ctx,
        version.version,
        start,
        summary,
        verdict,
        rows=(len(current), len(reference), len(labeled)),
        quality=quality,
        run_id=run_id,
    )
    return DriftResult(
        model=ctx.model,
        champion_version=version.version,
        window_start=start.key,
        window_end=ctx.ds,
        partitions=used,
        skipped=skipped,
        **summary.to_dict(),
        breached=verdict.breached,
        reasons=list(verdict.reasons),
        report_uri=partitions.to_uri(out_dir / "drift.html"),
        report_json_uri=partitions.to_uri(out_dir / "drift.json"),
    )


def training_reference(ctx: RunContext, client: Any, version: VersionInfo) -> pd.DataFrame:
    """What the champion was trained on (the sample recorded by its training run)."""
    from mloops.adapters import mlflow_adapter

    reference_uri = mlflow_adapter.get_run(client, version.run_id or "").tags.get(Tag.REFERENCE_URI)
    if not reference_uri:
        raise DriftInputError(
            f"champion v{version.version} of {ctx.model!r} has no recorded training reference"
        )
    return partitions.read_parquet(partitions.from_uri(reference_uri))


def record_numbers(
    ctx: RunContext,
    version: str,
    start: Partition,
    summary: DriftSummary,
    verdict: PolicyVerdict,
    *,
    rows: tuple[int, int, int],
    quality: dict[str, float | None],
    run_id: str | None,
) -> None:
    """Append the check's numbers to the metrics store (model, version, window, metric -> value)."""
    current, reference, labeled = rows
    numbers: dict[str, float | None] = {
        "drift.share": summary.share,
        "drift.count": float(len(summary.drifted_columns)),
        "rows.current": float(current),
        "rows.reference": float(reference),
        "rows.labeled": float(labeled),
        "policy.breached": float(verdict.breached),
        **{f"drift.column.{c.column}": c.score for c in summary.columns},
        **{f"quality.{k}": v for k, v in quality.items()},
    }
    if summary.prediction is not None:
        numbers["drift.prediction"] = summary.prediction.score
    store.write_metrics(
        ctx.settings.metrics_db_uri,
        model=ctx.model,
        model_version=version,
        window_start=start.value,
        window_end=ctx.partition.value,
        metrics=numbers,
        run_id=run_id,
        families=DRIFT_METRIC_FAMILIES,
    )


def current_window(ctx: RunContext) -> tuple[pd.DataFrame, list[str], dict[str, str]]:
    """The validated, scored partitions of the window, each batch with its served predictions."""
    import pandas as pd

    frames, used, skipped = [], [], {}
    for day in window(ctx, ctx.config.monitoring_window):
        verdict = read_verdict(day)
        scored = predictions_path(day)
        if not verdict or not Status.usable(verdict["status"]):
            skipped[day.ds] = status_of(verdict)
            continue
        if not scored.exists():
            skipped[day.ds] = "not scored"
            continue
        data = partitions.read_parquet(partitions.from_uri(verdict["uri"]))
        predictions = partitions.read_parquet(scored)
        if len(predictions) != len(data):
            raise DriftInputError(
                f"model {ctx.model!r}: predictions of {day.ds} have {len(predictions)} rows, "
                f"the batch {len(data)}; re-run scoring"
            )
        data[PREDICTION_COLUMN] = predictions[PREDICTION_COLUMN].to_numpy()
        data["_partition"] = day.ds
        frames.append(data)
        used.append(day.ds)
    current = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    return current, used, skipped


def labeled_rows(
    ctx: RunContext, current: pd.DataFrame, days: list[Partition], version: str | None = None
) -> pd.DataFrame:
    """The rows of the window whose labels have arrived: from the label feed (the rows ``version``
    served, with their joined labels) when the model has one, else the batch's own target on the
    partitions older than ``monitoring.label_delay_days``."""
    if ctx.config.labels is not None:
        from mloops.stages.labels import feed_labeled_rows

        return feed_labeled_rows(ctx, current, days, version)
    if ctx.config.target not in current.columns:  # unlabeled scoring batches: no label has arrived
        return current.iloc[0:0]
    delay = dt.timedelta(days=ctx.config.monitoring.label_delay_days)
    labeled_days = {d.key for d in monitoring.labeled_partitions(days, ctx.partition, delay)}
    return current[current["_partition"].isin(labeled_days) & current[ctx.config.target].notna()]


def live_quality(
    config: ModelConfig, reference: pd.DataFrame, labeled: pd.DataFrame, out_dir: StoragePath
) -> dict[str, float | None]:
    """The configured metrics on the labeled rows (with Evidently's quality report), when there are enough."""
    from mloops.adapters import evidently_adapter

    if len(labeled) < config.monitoring.min_rows:
        return {}
    metrics = monitoring.served_metrics(
        config.task, training.target_series(labeled, config), labeled[PREDICTION_COLUMN]
    )
    evidently_adapter.quality_report(
        reference=reference.assign(**{config.target: training.target_series(reference, config)}),
        current=labeled.assign(**{config.target: training.target_series(labeled, config)}),
        task=config.task,
        target=config.target,
        prediction=PREDICTION_COLUMN,
        out_dir=out_dir,
    )
    return metrics


def compare_samples(
    config: ModelConfig, reference: pd.DataFrame, current: pd.DataFrame, out_dir: StoragePath
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
        prediction=(PREDICTION_COLUMN, m.numeric_method, m.prediction_threshold),
        out_dir=out_dir,
    )
    return snapshot, unevaluable
