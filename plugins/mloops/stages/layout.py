"""The run context every stage takes, and the shared mechanics of the partition layout.

A stage works on one model's partition (the data interval it is keyed by, a
:class:`~mloops.partitions.Partition`) with the settings in force;
:class:`RunContext` carries the three, frozen, in that order. This module owns where each area of
a partition lives (staged snapshot, verdict, quarantine, run outputs, reports, predictions, shadow
predictions, joined labels, drift reports) and how verdicts are read and written, so no stage
builds a path of its own.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from mloops import partitions
from mloops.contracts import Status, Use
from mloops.data.hashing import RowHashes, row_hashes
from mloops.errors import StateFileError
from mloops.partitions import Partition

if TYPE_CHECKING:
    import pandas as pd

    from mloops.config import ModelConfig
    from mloops.partitions import StoragePath
    from mloops.settings import Settings

VERDICT_FILE = "verdict.json"
STAGED_FILE = "data.parquet"
#: The rows a row-level quarantine took out of a batch, each with its reason (in the quarantine folder).
QUARANTINED_ROWS_FILE = "rows.parquet"


@dataclass(frozen=True)
class RunContext:
    """One model, one partition, the settings in force, the Airflow run that asked (lineage tags), and
    whose batches it works on: training's (the labeled contract) or scoring's (no target required)."""

    config: ModelConfig
    partition: Partition
    settings: Settings
    lineage: Mapping[str, str] = field(default_factory=dict)
    use: Use = Use.TRAINING

    def __post_init__(self) -> None:
        # A date is accepted for a daily model's partition (and checked like any partition set from outside).
        object.__setattr__(self, "partition", Partition.of(self.partition, self.config.interval))

    @property
    def model(self) -> str:
        return self.config.name

    @property
    def ds(self) -> str:
        """The partition's key (``2026-01-01``, or ``2026-01-01T13`` for a sub-daily model)."""
        return self.partition.key

    def at(self, partition: Partition | dt.date) -> RunContext:
        """The same run, looking at another partition (e.g. one of its training window)."""
        return replace(self, partition=Partition.of(partition, self.partition.length))

    def at_key(self, key: str) -> RunContext:
        """The same run, looking at the partition named ``key`` (as written in files)."""
        return self.at(Partition.parse(key, self.partition.length))

    def for_use(self, use: Use) -> RunContext:
        """The same run, on the batches validated for ``use``."""
        return replace(self, use=use)

    def where(self) -> str:
        """How messages name what a stage worked on."""
        return f"model {self.model!r}, partition {self.ds}"


# ---------------------------------------------------------------------------------------------- areas


def area_dir(ctx: RunContext, area: str) -> StoragePath:
    return partitions.partition_dir(ctx.settings.data_root, area, ctx.model, ctx.partition)


def staged_dir(ctx: RunContext) -> StoragePath:
    """``staged/<model>/dt=<ds>/``: the snapshot of a batch that passed, and the verdict of every batch
    (``staged-scoring/`` for batches validated for scoring)."""
    return area_dir(ctx, "staged" if ctx.use == Use.TRAINING else "staged-scoring")


def staged_root(ctx: RunContext) -> StoragePath:
    """The folder of every staged partition of the model (the training data's lineage source)."""
    return staged_dir(ctx).parent


def quarantine_dir(ctx: RunContext) -> StoragePath:
    """``quarantine/<model>/dt=<ds>/``: a copy of a failing batch with its validation result
    (``quarantine-scoring/`` for scoring)."""
    return area_dir(ctx, "quarantine" if ctx.use == Use.TRAINING else "quarantine-scoring")


def run_dir(ctx: RunContext) -> StoragePath:
    """``runs/<model>/dt=<ds>/``: the holdout and the training reference of the interval's run."""
    return area_dir(ctx, "runs")


def holdout_path(ctx: RunContext) -> StoragePath:
    """``runs/<model>/dt=<ds>/holdout.parquet``: the held-out rows every model test of the interval uses."""
    return run_dir(ctx) / "holdout.parquet"


def holdout_predictions_path(ctx: RunContext) -> StoragePath:
    """``runs/<model>/dt=<ds>/holdout_predictions.parquet``: the trained model's predictions of the
    holdout, row by row, recorded by the training that made them (the model tests reuse them)."""
    return run_dir(ctx) / "holdout_predictions.parquet"


def reports_dir(ctx: RunContext) -> StoragePath:
    """``reports/<model>/dt=<ds>/``: the model-test reports."""
    return area_dir(ctx, "reports")


def predictions_path(ctx: RunContext) -> StoragePath:
    """``predictions/<model>/dt=<ds>/predictions.parquet``."""
    return area_dir(ctx, "predictions") / "predictions.parquet"


def labeled_dir(ctx: RunContext) -> StoragePath:
    """``labeled/<model>/dt=<ds>/``: the labels joined to the predictions of this interval, one file per
    serving version and label arrival (``version=<v>/arrival=<date>.parquet``)."""
    return area_dir(ctx, "labeled")


def labeled_path(ctx: RunContext, version: str, arrival: Partition | dt.date) -> StoragePath:
    """The labels that arrived in ``arrival`` for the predictions of this interval served by ``version``."""
    key = Partition.of(arrival, ctx.partition.length).key
    return labeled_dir(ctx) / f"version={version}" / f"arrival={key}.parquet"


def labeled_files(ctx: RunContext) -> list[tuple[str, Partition, StoragePath]]:
    """Every ``(version, arrival, path)`` joined to this interval's predictions, oldest arrival first."""
    return _versioned_arrivals(labeled_dir(ctx), ctx.partition.length)


def _versioned_arrivals(root: StoragePath, length: dt.timedelta) -> list[tuple[str, Partition, StoragePath]]:
    if not root.exists():
        return []
    found = []
    for folder in root.iterdir():
        if not folder.name.startswith("version="):
            continue
        for path in folder.iterdir():
            name = path.name
            if name.startswith("arrival=") and name.endswith(".parquet"):
                arrival = Partition.parse(name.removeprefix("arrival=").removesuffix(".parquet"), length)
                found.append((folder.name.removeprefix("version="), arrival, path))
    return sorted(found, key=lambda item: (item[1], item[0]))


def shadow_predictions_path(ctx: RunContext, version: str) -> StoragePath:
    """``shadow/<model>/dt=<ds>/version=<v>/predictions.parquet``: what a challenger in shadow predicted
    for this interval's batch (never served)."""
    return area_dir(ctx, "shadow") / f"version={version}" / "predictions.parquet"


def shadow_prediction_files(ctx: RunContext) -> list[tuple[str, StoragePath]]:
    """Every ``(version, path)`` of shadow predictions of this interval."""
    root = area_dir(ctx, "shadow")
    if not root.exists():
        return []
    found = []
    for folder in root.iterdir():
        version = folder.name.removeprefix("version=")
        path = folder / "predictions.parquet"
        if folder.name.startswith("version=") and version.isdigit() and path.exists():
            found.append((version, path))
    return sorted(found, key=lambda item: int(item[0]))


def shadow_labeled_path(ctx: RunContext, version: str, arrival: Partition | dt.date) -> StoragePath:
    """``labeled-shadow/<model>/dt=<ds>/version=<v>/arrival=<key>.parquet``: the labels that arrived in
    ``arrival`` joined to the shadow predictions of this interval by ``version``."""
    key = Partition.of(arrival, ctx.partition.length).key
    return area_dir(ctx, "labeled-shadow") / f"version={version}" / f"arrival={key}.parquet"


def shadow_labeled_files(ctx: RunContext) -> list[tuple[str, Partition, StoragePath]]:
    """Every ``(version, arrival, path)`` joined to this interval's shadow predictions, oldest first."""
    return _versioned_arrivals(area_dir(ctx, "labeled-shadow"), ctx.partition.length)


def unmatched_labels_path(ctx: RunContext) -> StoragePath:
    """``labels-unmatched/<model>/dt=<arrival>/labels.parquet``: the labels of a delivery that joined no
    prediction or could not be used, each with its reason."""
    return area_dir(ctx, "labels-unmatched") / "labels.parquet"


def monitoring_root(data_root: StoragePath, model: str) -> StoragePath:
    """``monitoring/<model>/``: every drift report of the model lies below it."""
    return data_root / "monitoring" / model


def monitoring_dir(ctx: RunContext, window_start: Partition) -> StoragePath:
    """``monitoring/<model>/window=<start>_<end>/``: the drift reports of the window ending at the
    partition."""
    return monitoring_root(ctx.settings.data_root, ctx.model) / f"window={window_start}_{ctx.ds}"


def window(ctx: RunContext, count: int) -> list[RunContext]:
    """The contexts of the ``count`` partitions (intervals) ending at this one, oldest first."""
    return [ctx.at(partition) for partition in ctx.partition.window(count)]


# ------------------------------------------------------------------------------------------- verdicts


def read_verdict(ctx: RunContext) -> dict[str, Any] | None:
    """The partition's validation verdict, or ``None`` when it was never validated.

    A corrupt verdict raises :class:`StateFileError` naming the file and the way out (re-validating
    the date rewrites it; the current date's own verdict is never read before it is rewritten).
    """
    path = staged_dir(ctx) / VERDICT_FILE
    try:
        verdict = partitions.read_json(path)
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
        verdict, problem = {}, f"{type(exc).__name__}: {str(exc)[:200]}"
    else:
        if verdict is None or (isinstance(verdict, dict) and "status" in verdict):
            return verdict
        problem = "not a verdict (no 'status' field)"
    raise StateFileError(
        f"model {ctx.model!r}: verdict file {path} of partition {ctx.ds} is corrupt ({problem}); "
        "re-validate that "
        f"date (trigger mloops_train_{ctx.model} with partition_date={ctx.ds}, or delete the file)"
    )


def write_verdict(ctx: RunContext, verdict: Mapping[str, Any]) -> None:
    partitions.write_json(staged_dir(ctx) / VERDICT_FILE, verdict)


def status_of(verdict: Mapping[str, Any] | None) -> str:
    return str(verdict["status"]) if verdict else Status.NOT_VALIDATED


def window_verdicts(ctx: RunContext, count: int) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """The usable verdicts of the ``count`` partitions ending at this one (by key; passed, also with
    quarantined rows) and the status of the others."""
    passed: dict[str, dict[str, Any]] = {}
    excluded: dict[str, str] = {}
    for day in window(ctx, count):
        verdict = read_verdict(day)
        if verdict is not None and Status.usable(verdict["status"]):
            passed[day.ds] = verdict
        else:
            excluded[day.ds] = status_of(verdict)
    return passed, excluded


# --------------------------------------------------------------------------------------- fingerprints


def frame_fingerprint(frame: pd.DataFrame, hashes: RowHashes | None = None) -> str:
    """A digest of a frame's columns and values (order-sensitive), stable across processes:
    pandas' row hashes (``hashes`` if the caller computed them for GX too)."""
    digest = hashlib.sha256(",".join(map(str, frame.columns)).encode())
    digest.update((hashes or row_hashes(frame)).without_index.tobytes())
    return digest.hexdigest()[:16]


def payload_digest(payload: Any) -> str:
    """A digest of a JSON-able value (config parts, overrides)."""
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]
