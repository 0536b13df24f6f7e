"""Stage ``join_labels``: the ground truth that arrived today, joined to the predictions actually served.

For the run's interval (the arrival date) it reads the label delivery of ``labels.source``, joins
it by id to the stored predictions of the ``labels.lookback_days`` intervals ending there, and
writes the join under the *prediction's* interval and serving version
(``labeled/<model>/dt=<prediction>/version=<v>/arrival=<date>.parquet``). Labels that join nothing,
or cannot be used, go to ``labels-unmatched/<model>/dt=<arrival>/``. Then it measures coverage and
lateness per prediction interval and the live quality per version over the monitoring window,
writes both to the metrics store, and rewrites the model cards of those versions (their "live
quality since" now ends at this arrival). The same delivery is joined to the shadow predictions of a
challenger in shadow (``labeled-shadow/``, see :mod:`mloops.stages.shadow`); those never count as
served.

Re-running an arrival date rewrites its own files (and removes the ones it no longer produces); a
label delivered again on a later date supersedes the earlier one, because readers keep the latest
arrival per id (:func:`read_labeled`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from mloops import labels, monitoring, partitions, store
from mloops.contracts import (
    ANY_VERSION,
    LABEL_METRIC_FAMILIES,
    PREDICTION_COLUMN,
    LabelJoinResult,
)
from mloops.data.sources import SqlReader, extract_labels
from mloops.errors import LabelFeedError, PartitionMissingError, SkipStage
from mloops.stages import registry
from mloops.stages.layout import (
    RunContext,
    labeled_files,
    labeled_path,
    predictions_path,
    shadow_labeled_files,
    shadow_labeled_path,
    shadow_prediction_files,
    unmatched_labels_path,
    window,
)

if TYPE_CHECKING:
    import pandas as pd

    from mloops.config import LabelsConfig
    from mloops.partitions import Partition, StoragePath

Metrics = dict[str, float | None]


def join_labels(
    ctx: RunContext,
    *,
    sql_reader: SqlReader | None = None,
    run_id: str | None = None,
    refresh_cards: bool = True,
) -> LabelJoinResult:
    """Join the labels that arrived on the run's date to the served predictions; record coverage,
    unmatched labels and live quality; rewrite the model cards of the versions measured (unless
    ``refresh_cards`` is false: the join alone, with no registry, as its unit tests run it)."""
    feed = ctx.config.labels
    if feed is None:
        raise SkipStage(f"model {ctx.model!r} has no labels: block; nothing to join")
    arrival = ctx.partition
    delivery, source_uri, delivered = read_delivery(ctx, feed, sql_reader)
    lookback = window(ctx, ctx.config.days_as_intervals(feed.lookback_days))
    served = served_predictions(ctx, lookback)
    joined = labels.join(delivery, served, ctx.config, arrival)
    written = write_join(ctx, lookback, joined.matched)
    shadow_written = join_shadow(ctx, lookback, delivery)
    unmatched_uri = partitions.to_uri(partitions.write_parquet(joined.unmatched, unmatched_labels_path(ctx)))
    coverage = lookback_coverage(ctx, lookback, served)
    quality_window = [d.partition for d in window(ctx, ctx.config.monitoring_window)]
    quality_start = quality_window[0]
    quality = window_quality(ctx, quality_window)
    counts = {
        "arrived": delivery.arrived,
        "matched": int(len(joined.matched)),
        "unmatched": int((joined.unmatched[labels.REASON] == labels.NO_PREDICTION).sum()),
        "rejected": int(len(delivery.rejected)),
        "duplicates": delivery.duplicates,
    }
    record_numbers(ctx, counts, coverage, quality, quality_start, run_id=run_id)
    # The cards of the versions whose live quality changed (the champion's, a previous one's), so a
    # card shows the newest labeled window; a re-run of the arrival rewrites the same files.
    cards = registry.refresh_model_cards(ctx, quality) if refresh_cards else {}
    return LabelJoinResult(
        model=ctx.model,
        arrival=ctx.ds,
        delivered=delivered,
        source_uri=source_uri,
        **counts,
        unmatched_uri=unmatched_uri,
        lookback_start=lookback[0].ds,
        coverage=coverage,
        quality_window_start=quality_start.key,
        quality=quality,
        labeled_uris=[partitions.to_uri(p) for p in written],
        shadow_labeled_uris=[partitions.to_uri(p) for p in shadow_written],
        model_cards=cards,
    )


def read_delivery(
    ctx: RunContext, feed: LabelsConfig, sql_reader: SqlReader | None
) -> tuple[labels.Delivery, str, bool]:
    """The checked delivery of the arrival date; an empty one when no labels arrived that day."""
    import pandas as pd

    try:
        extracted = extract_labels(ctx.config, ctx.partition, ctx.settings.data_root, sql_reader)
        frame, uri, delivered = extracted.frame, extracted.source_uri, True
    except PartitionMissingError as exc:
        columns = [feed.label_id_column(ctx.config), feed.label_column_of(ctx.config)]
        if feed.event_date_column:
            columns.append(feed.event_date_column)
        frame, uri, delivered = pd.DataFrame(columns=columns), str(exc), False
    return labels.check_delivery(frame, ctx.config, f"{uri} (arrival {ctx.ds})"), uri, delivered


def served_predictions(ctx: RunContext, lookback: Sequence[RunContext]) -> pd.DataFrame:
    """Every stored prediction of the lookback intervals (id, prediction, version, interval)."""
    import pandas as pd

    id_name = ctx.config.id_column or ""
    frames = []
    for day in lookback:
        path = predictions_path(day)
        if not path.exists():
            continue
        frame = partitions.read_parquet(path)
        if id_name not in frame.columns:
            raise LabelFeedError(
                f"model {ctx.model!r}: predictions {path} have no id column {id_name!r} to join labels "
                f"to; re-run scoring of {day.ds} (mloops_score_{ctx.model}, partition_date={day.ds})"
            )
        frame = frame[[id_name, PREDICTION_COLUMN, labels.VERSION]].assign(**{labels.PARTITION: day.ds})
        frames.append(frame)
    if not frames:
        return pd.DataFrame(columns=[id_name, PREDICTION_COLUMN, labels.VERSION, labels.PARTITION])
    return pd.concat(frames, ignore_index=True)


def write_join(ctx: RunContext, lookback: Sequence[RunContext], matched: pd.DataFrame) -> list[StoragePath]:
    """Write the arrival's matches per (prediction interval, version), then remove the files an
    earlier run of the same arrival wrote and this one did not (a crash in between is retried)."""
    written = []
    for (partition, version), rows in matched.groupby([labels.PARTITION, labels.VERSION], sort=True):
        day = ctx.at_key(str(partition))
        path = labeled_path(day, str(version), ctx.partition)
        written.append(partitions.write_parquet(rows.reset_index(drop=True), path))
    _remove_unwritten(ctx, lookback, labeled_files, written)
    return written


def join_shadow(
    ctx: RunContext, lookback: Sequence[RunContext], delivery: labels.Delivery
) -> list[StoragePath]:
    """Join the delivery to the shadow predictions of the lookback as well, each shadow version on its
    own (``labeled-shadow/``, same layout and re-run rules as the served join)."""
    import pandas as pd

    id_name = ctx.config.id_column or ""
    written = []
    by_version: dict[str, list[pd.DataFrame]] = {}
    for day in lookback:
        for version, path in shadow_prediction_files(day):
            frame = partitions.read_parquet(path)[[id_name, PREDICTION_COLUMN]]
            by_version.setdefault(version, []).append(
                frame.assign(**{labels.VERSION: version, labels.PARTITION: day.ds})
            )
    for version, frames in sorted(by_version.items()):
        matched = labels.join(
            delivery, pd.concat(frames, ignore_index=True), ctx.config, ctx.partition
        ).matched
        for partition, rows in matched.groupby(labels.PARTITION, sort=True):
            day = ctx.at_key(str(partition))
            path = shadow_labeled_path(day, version, ctx.partition)
            written.append(partitions.write_parquet(rows.reset_index(drop=True), path))
    _remove_unwritten(ctx, lookback, shadow_labeled_files, written)
    return written


def _remove_unwritten(
    ctx: RunContext,
    lookback: Sequence[RunContext],
    files_of: Callable[[RunContext], list[tuple[str, Partition, StoragePath]]],
    written: list[StoragePath],
) -> None:
    """Remove the files of this arrival that an earlier run wrote and this one did not."""
    keep = {str(p) for p in written}
    for day in lookback:
        for _, arrival, path in files_of(day):
            if arrival == ctx.partition and str(path) not in keep:
                path.unlink()


def read_shadow_labeled(ctx: RunContext) -> pd.DataFrame:
    """The labels joined to this interval's shadow predictions, one per (id, version) (latest arrival)."""
    import pandas as pd

    files = shadow_labeled_files(ctx)
    if not files:
        return pd.DataFrame()
    joined = pd.concat([partitions.read_parquet(path) for _, _, path in files], ignore_index=True)
    ordered = joined.sort_values(labels.ARRIVAL, kind="stable")
    keys = [ctx.config.id_column or "", labels.VERSION]
    return ordered.drop_duplicates(subset=keys, keep="last").reset_index(drop=True)


def read_labeled(ctx: RunContext) -> pd.DataFrame:
    """The labels joined to this interval's predictions, one per served row (latest arrival wins)."""
    import pandas as pd

    files = labeled_files(ctx)
    if not files:
        return pd.DataFrame()
    joined = pd.concat([partitions.read_parquet(path) for _, _, path in files], ignore_index=True)
    return labels.latest_per_id(joined, ctx.config.id_column or "")


def lookback_coverage(
    ctx: RunContext, lookback: Sequence[RunContext], served: pd.DataFrame
) -> list[dict[str, object]]:
    """Coverage and lateness per (prediction interval, version) of the lookback."""
    out: list[dict[str, object]] = []
    if served.empty:
        return out
    for day in lookback:
        rows = served[served[labels.PARTITION] == day.ds]
        if rows.empty:
            continue
        joined = read_labeled(day)
        for version, group in rows.groupby(labels.VERSION, sort=True):
            mine = joined[joined[labels.VERSION].astype(str) == str(version)] if len(joined) else joined
            out.append(
                {
                    "partition": day.ds,
                    "model_version": str(version),
                    **labels.coverage(int(len(group)), mine),
                }
            )
    return out


def window_quality(ctx: RunContext, days: Sequence[Partition]) -> dict[str, Metrics]:
    """The configured metrics per serving version on the labeled predictions of ``days`` (when a
    version has at least ``monitoring.min_rows`` labeled rows), plus their row count."""
    import pandas as pd

    frames = [read_labeled(ctx.at(day)) for day in days]
    frames = [f for f in frames if len(f)]
    if not frames:
        return {}
    joined = pd.concat(frames, ignore_index=True)
    out: dict[str, Metrics] = {}
    for version, rows in joined.groupby(labels.VERSION, sort=True):
        metrics: Metrics = {"rows": float(len(rows))}
        if len(rows) >= ctx.config.monitoring.min_rows:
            metrics.update(
                monitoring.served_metrics(
                    ctx.config.task,
                    rows[labels.LABEL].astype("int64" if ctx.config.task == "classification" else "float64"),
                    rows[PREDICTION_COLUMN],
                )
            )
        out[str(version)] = metrics
    return out


def feed_labeled_rows(
    ctx: RunContext, current: pd.DataFrame, days: Sequence[Partition], version: str | None
) -> pd.DataFrame:
    """The drift window's rows with their label from the feed (the batch's own target is ignored),
    restricted to the rows ``version`` served."""
    import pandas as pd

    id_name, target = ctx.config.id_column or "", ctx.config.target
    frames = [read_labeled(ctx.at(day)) for day in days]
    frames = [f for f in frames if len(f)]
    if not frames or current.empty:
        return current.iloc[0:0]
    joined = pd.concat(frames, ignore_index=True)
    if version is not None:
        joined = joined[joined[labels.VERSION].astype(str) == str(version)]
    keys = joined[[id_name, labels.PARTITION, labels.LABEL]].rename(
        columns={labels.PARTITION: "_partition", labels.LABEL: target}
    )
    keys[id_name] = keys[id_name].astype("string")
    rows = current.drop(columns=[target], errors="ignore")
    rows = rows.assign(_join_id=rows[id_name].astype("string"))
    merged = rows.merge(
        keys.rename(columns={id_name: "_join_id"}), on=["_join_id", "_partition"], how="inner"
    )
    return merged.drop(columns=["_join_id"])


def record_numbers(
    ctx: RunContext,
    counts: dict[str, int],
    coverage: list[dict[str, object]],
    quality: dict[str, Metrics],
    quality_start: Partition,
    *,
    run_id: str | None,
) -> None:
    """Write the ``labels.*`` metrics: the delivery's counts (version ``*``, window = arrival date),
    coverage per (version, prediction interval), live quality per (version, monitoring window)."""
    rows: dict[tuple[str, Partition, Partition], Metrics] = {
        (ANY_VERSION, ctx.partition, ctx.partition): {f"labels.{k}": float(v) for k, v in counts.items()}
    }
    for entry in coverage:
        day = ctx.at_key(str(entry["partition"])).partition
        numbers = rows.setdefault((str(entry["model_version"]), day, day), {})
        for name in ("predictions", "labeled", "coverage", "lateness_median_days", "lateness_max_days"):
            value = entry[name]
            numbers[f"labels.{name}"] = float(value) if isinstance(value, int | float) else None
    for version, metrics in quality.items():
        numbers = rows.setdefault((version, quality_start, ctx.partition), {})
        numbers.update({f"labels.quality.{k}": v for k, v in metrics.items()})
    for (version, start, end), numbers in rows.items():
        store.write_metrics(
            ctx.settings.metrics_db_uri,
            model=ctx.model,
            model_version=version,
            window_start=start.value,
            window_end=end.value,
            metrics=numbers,
            run_id=run_id,
            families=LABEL_METRIC_FAMILIES,
        )
