"""Stage ``score_batch``: the champion scores the interval's validated partition.

Loads ``models:/mloops.<model>@champion`` and overwrites ``predictions/<model>/dt=<ds>/`` (each
row carries the registered model and version). With no champion yet the stage is an intended skip.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mloops import partitions, training
from mloops.contracts import PREDICTION_COLUMN, Alias, ScoringResult, Status
from mloops.errors import InsufficientDataError, NoChampionError
from mloops.stages.layout import RunContext, predictions_path, read_verdict, status_of

if TYPE_CHECKING:
    import pandas as pd

    from mloops.adapters.mlflow_adapter import VersionInfo


def champion(ctx: RunContext) -> tuple[Any, VersionInfo]:
    """The registry client and the champion version; :class:`NoChampionError` (a skip) when there is none."""
    from mloops.adapters import mlflow_adapter

    client = mlflow_adapter.client(ctx.settings)
    found = mlflow_adapter.version_by_alias(client, ctx.config.registered_model_name, Alias.CHAMPION)
    if found is None:
        raise NoChampionError(
            f"model {ctx.model!r} has no champion yet ({ctx.config.registered_model_name}@champion is not "
            "set): "
            "train and promote a version first"
        )
    return client, found


def score_batch(ctx: RunContext) -> ScoringResult:
    """Score the interval's validated partition with the champion; overwrite its predictions partition."""
    frame, verdict = validated_batch(ctx)
    if frame is None:
        raise InsufficientDataError(
            f"model {ctx.model!r}: partition {ctx.ds} has no validated batch to score (verdict: {verdict})"
        )
    _, version = champion(ctx)
    out = predict(ctx, version, frame)
    path = partitions.write_parquet(out, predictions_path(ctx))
    return ScoringResult(
        model=ctx.model,
        partition=ctx.ds,
        uri=partitions.to_uri(path),
        rows=int(len(out)),
        model_version=version.version,
        mean_prediction=float(out[PREDICTION_COLUMN].mean()) if len(out) else None,
    )


def validated_batch(ctx: RunContext) -> tuple[pd.DataFrame | None, str]:
    """The interval's validated batch and its verdict's status; ``None`` when there is none to score
    (each scoring stage says what that means for it: ``score_batch`` fails, ``score_shadow`` skips)."""
    verdict = read_verdict(ctx)
    if not verdict or not Status.usable(verdict["status"]):
        return None, status_of(verdict)
    return partitions.read_parquet(partitions.from_uri(verdict["uri"])), str(verdict["status"])


def predict(ctx: RunContext, version: VersionInfo, frame: pd.DataFrame) -> pd.DataFrame:
    """The predictions of ``version`` (loaded through the verified path) for a validated batch: id,
    prediction (and label), registered model, version, partition."""
    import pandas as pd

    from mloops.adapters import mlflow_adapter

    model = mlflow_adapter.load_sklearn_model(version.uri)
    score, label = training.scores(model, frame, ctx.config)
    out = pd.DataFrame(index=frame.index)
    if ctx.config.id_column:
        out[ctx.config.id_column] = frame[ctx.config.id_column]
    out[PREDICTION_COLUMN] = score
    if ctx.config.task == "classification":
        out["predicted_label"] = label
    out["registered_model"] = ctx.config.registered_model_name
    out["model_version"] = version.version
    out["partition"] = ctx.ds
    return out
