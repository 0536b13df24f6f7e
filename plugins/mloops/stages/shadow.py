"""The shadow stage (policies ``shadow`` and ``shadow_then_approval``): a staged rollout on live labels.

1. ``promote_model`` (training) puts a tested challenger *in shadow* instead of promoting it
   (:func:`enter_shadow`: tag ``mloops.shadow.status = shadowing``, the champion it shadows).
2. ``score_shadow`` (scoring, beside ``score_batch``) scores the same validated batch with the
   challenger and writes ``shadow/<model>/dt=<ds>/version=<v>/predictions.parquet``: never served,
   no Asset event.
3. ``join_labels`` (monitoring) joins each label delivery to the shadow predictions too
   (``labeled-shadow/``, same layout as ``labeled/``).
4. ``decide_shadow`` (monitoring, registry pool) pairs, per prediction interval since the shadow
   began, the rows labeled for both the challenger's shadow predictions and the champion's served
   ones, and applies :func:`mloops.registry.decide_shadow`: wait, promote (through
   :func:`mloops.stages.registry.promote_model`, with its audit tags), offer for approval, or retire
   with the reason (tags; the champion is untouched).
"""

from __future__ import annotations

import datetime as dt
import json
from typing import TYPE_CHECKING, Any

from mloops import labels, partitions, store
from mloops import registry as policy
from mloops.contracts import (
    PREDICTION_COLUMN,
    SHADOW_METRIC_FAMILIES,
    Alias,
    PromotionPolicy,
    RegistrationResult,
    ShadowDecisionResult,
    ShadowMetric,
    ShadowScoringResult,
    ShadowStatus,
    Tag,
)
from mloops.errors import RegistryError, SkipStage
from mloops.stages.layout import RunContext, shadow_predictions_path

if TYPE_CHECKING:
    import pandas as pd

    from mloops.adapters.mlflow_adapter import VersionInfo
    from mloops.partitions import Partition

#: Most prediction intervals a shadow decision reads back (a shadow whose labels never come waits).
MAX_SHADOW_DAYS = 120


def shadow_state(version: VersionInfo) -> dict[str, Any]:
    """The ``mloops.shadow`` record of a version (``{}`` when it never was in shadow or it is unreadable)."""
    try:
        state = json.loads(version.tags.get(Tag.SHADOW, "{}"))
    except ValueError:
        return {}
    return state if isinstance(state, dict) else {}


def _set_state(client: Any, ctx: RunContext, version: str, status: str, state: dict[str, Any]) -> None:
    from mloops.adapters import mlflow_adapter

    record = {**state, "status": status, "at_interval": ctx.ds}
    mlflow_adapter.set_version_tags(
        client,
        ctx.config.registered_model_name,
        version,
        {Tag.SHADOW_STATUS: status, Tag.SHADOW: json.dumps(record, sort_keys=True, default=str)},
    )


def _conclude(client: Any, ctx: RunContext, version: str, status: str, state: dict[str, Any]) -> None:
    """Record where the shadow stands and rewrite the version's model card to show it."""
    from mloops.stages import registry

    _set_state(client, ctx, version, status, state)
    registry.write_model_card(ctx, client, version)


def enter_shadow(
    ctx: RunContext, client: Any, candidate: VersionInfo, decision: policy.PromotionDecision
) -> policy.PromotionDecision:
    """Put ``candidate`` in shadow beside the champion (once: a re-run keeps what was decided); a
    version still in shadow before it is superseded (only the challenger is ever decided)."""
    status = candidate.tags.get(Tag.SHADOW_STATUS)
    if status:
        reason = shadow_state(candidate).get("reason", "")
        return policy.PromotionDecision(
            "keep",
            f"v{candidate.version} is already {status} in shadow. {reason}".strip(),
            decision.champion,
            None,
        )
    from mloops.adapters import mlflow_adapter

    for older in mlflow_adapter.versions(client, ctx.config.registered_model_name):
        if older.version != candidate.version and older.tags.get(Tag.SHADOW_STATUS) == ShadowStatus.SHADOWING:
            state = {**shadow_state(older), "reason": f"superseded by v{candidate.version} before a decision"}
            _set_state(client, ctx, older.version, ShadowStatus.SUPERSEDED, state)
    _set_state(
        client,
        ctx,
        candidate.version,
        ShadowStatus.SHADOWING,
        {
            "since": ctx.ds,
            "champion": decision.champion,
            "intervals": ctx.config.promotion.shadow_intervals,
            "tolerance": ctx.config.promotion.shadow_tolerance,
            "reason": decision.reason,
        },
    )
    return decision


def in_shadow(client: Any, ctx: RunContext) -> tuple[VersionInfo, VersionInfo | None]:
    """The challenger in shadow and the champion; a skip when no challenger is in shadow."""
    from mloops.adapters import mlflow_adapter

    name = ctx.config.registered_model_name
    challenger = mlflow_adapter.version_by_alias(client, name, Alias.CHALLENGER)
    if challenger is None or challenger.tags.get(Tag.SHADOW_STATUS) != ShadowStatus.SHADOWING:
        state = challenger.tags.get(Tag.SHADOW_STATUS, "not in shadow") if challenger else "none"
        raise SkipStage(f"model {ctx.model!r}: no challenger in shadow (challenger: {state})")
    _check_version(challenger.version)
    return challenger, mlflow_adapter.version_by_alias(client, name, Alias.CHAMPION)


def _check_version(version: str) -> None:
    """A version number sets a folder name of the shadow areas: only digits."""
    if not str(version).isdigit():
        raise RegistryError(f"model version {version!r} is not a registry version number")


# --------------------------------------------------------------------------------------- scoring


def score_shadow(ctx: RunContext) -> ShadowScoringResult:
    """Score the interval's validated batch with the challenger in shadow; write its shadow predictions."""
    from mloops.adapters import mlflow_adapter
    from mloops.stages import score

    client = mlflow_adapter.client(ctx.settings)
    challenger, champion = in_shadow(client, ctx)
    if champion is not None and champion.version == challenger.version:
        raise SkipStage(f"model {ctx.model!r}: v{challenger.version} is champion; nothing to shadow")
    frame, verdict = score.validated_batch(ctx)
    if frame is None:
        raise SkipStage(f"{ctx.where()}: no validated batch to score in shadow (verdict: {verdict})")
    out = score.predict(ctx, challenger, frame)
    path = partitions.write_parquet(out, shadow_predictions_path(ctx, challenger.version))
    return ShadowScoringResult(
        model=ctx.model,
        partition=ctx.ds,
        uri=partitions.to_uri(path),
        rows=int(len(out)),
        model_version=challenger.version,
        champion_version=champion.version if champion else None,
        mean_prediction=float(out[PREDICTION_COLUMN].mean()) if len(out) else None,
    )


# -------------------------------------------------------------------------------------- decision


def paired_rows(ctx: RunContext, challenger: str, champion: str) -> pd.DataFrame:
    """The labeled rows of this interval that both the champion served and the challenger shadowed:
    id, label, ``champion`` and ``challenger`` predictions (latest label per id)."""
    import pandas as pd

    from mloops.stages.labels import read_labeled, read_shadow_labeled

    id_name = ctx.config.id_column or ""
    served = read_labeled(ctx)
    shadow = read_shadow_labeled(ctx)
    if served.empty or shadow.empty:
        return pd.DataFrame(columns=[id_name, labels.LABEL, "champion", "challenger"])
    served = served[served[labels.VERSION].astype(str) == champion]
    shadow = shadow[shadow[labels.VERSION].astype(str) == challenger]
    left = served[[id_name, labels.LABEL, PREDICTION_COLUMN]].rename(columns={PREDICTION_COLUMN: "champion"})
    right = shadow[[id_name, PREDICTION_COLUMN]].rename(columns={PREDICTION_COLUMN: "challenger"})
    left = left.assign(**{id_name: left[id_name].astype("string")})
    right = right.assign(**{id_name: right[id_name].astype("string")})
    return left.merge(right, on=id_name, how="inner")


def shadow_window(ctx: RunContext, since: dt.date) -> list[Partition]:
    """The intervals of the shadow so far: every interval of the days from ``since`` to the run's
    (shadow decisions count whole days of intervals), at most :data:`MAX_SHADOW_DAYS` days."""
    days = max(1, min((ctx.partition.date - since).days + 1, MAX_SHADOW_DAYS))
    return ctx.partition.window(days * ctx.config.intervals_per_day)


def scored_intervals(ctx: RunContext, challenger: str, since: dt.date) -> int:
    """How many intervals of the shadow so far the challenger has shadow predictions for."""
    return sum(shadow_predictions_path(ctx.at(day), challenger).exists() for day in shadow_window(ctx, since))


def shadow_evidence(
    ctx: RunContext, challenger: str, champion: str, since: dt.date
) -> tuple[policy.ShadowEvidence, dict[str, float | None], dict[str, float | None]]:
    """The evidence for a decision: paired rows of every interval from ``since`` to the run's date,
    and the task's live metrics of each version on them."""
    import pandas as pd

    from mloops import monitoring

    frames, intervals = [], []
    for day in shadow_window(ctx, since):
        rows = paired_rows(ctx.at(day), challenger, champion)
        if len(rows):
            frames.append(rows)
            intervals.append(day.key)
    task = ctx.config.task
    if not frames:
        empty: dict[str, float | None] = {}
        return policy.ShadowEvidence((), 0, None, None), empty, empty
    rows = pd.concat(frames, ignore_index=True)
    truth = rows[labels.LABEL].astype("int64" if task == "classification" else "float64")
    mine = monitoring.served_metrics(task, truth, rows["challenger"].astype("float64"))
    theirs = monitoring.served_metrics(task, truth, rows["champion"].astype("float64"))
    metric = ctx.config.evaluation.primary_metric
    evidence = policy.ShadowEvidence(tuple(intervals), int(len(rows)), mine.get(metric), theirs.get(metric))
    return evidence, mine, theirs


def decide_shadow(ctx: RunContext, *, run_id: str | None = None) -> ShadowDecisionResult:
    """Judge the challenger in shadow on the live labels; promote, offer for approval, retire, or wait
    (a skip with the reason). The shadow numbers are recorded in the metrics store either way."""
    from mloops.adapters import mlflow_adapter

    client = mlflow_adapter.client(ctx.settings)
    challenger, champion = in_shadow(client, ctx)
    state = shadow_state(challenger)
    promotion = ctx.config.promotion
    metric = ctx.config.evaluation.primary_metric
    if champion is not None and champion.version == challenger.version:
        # A promotion of an earlier try moved the alias and stopped before its shadow status was set.
        return _promote(ctx, client, challenger, None, "finishing the promotion decided earlier", metric)
    since = _date(state.get("since"), ctx.partition.date)
    evidence, mine, theirs = shadow_evidence(
        ctx, challenger.version, champion.version if champion else "", since
    )
    scored = scored_intervals(ctx, challenger.version, since)
    limit = ctx.config.shadow_limit
    _record(ctx, challenger.version, since, evidence, scored, mine, theirs, run_id)
    decision = policy.decide_shadow(
        evidence,
        version=challenger.version,
        champion=champion.version if champion else None,
        metric=metric,
        greater_is_better=ctx.config.greater_is_better,
        required_intervals=promotion.shadow_intervals,
        min_rows=ctx.config.monitoring.min_rows,
        tolerance=promotion.shadow_tolerance,
        approval=promotion.policy == PromotionPolicy.SHADOW_THEN_APPROVAL,
        scored_intervals=scored,
        max_intervals=limit,
    )
    record = {
        **state,
        "reason": decision.reason,
        "compared_with": champion.version if champion else None,
        "intervals": promotion.shadow_intervals,
        "intervals_labeled": list(evidence.intervals),
        "intervals_scored": scored,
        "max_intervals": limit,
        "rows": evidence.rows,
        "challenger": mine,
        "champion": theirs,
    }
    if decision.action == "promote":
        _set_state(client, ctx, challenger.version, ShadowStatus.SHADOWING, record)  # evidence, before moving
        return _promote(ctx, client, challenger, champion, decision.reason, metric, evidence, record)
    status = {"wait": ShadowStatus.SHADOWING, "retire": ShadowStatus.RETIRED, "approve": ShadowStatus.PASSED}
    _conclude(client, ctx, challenger.version, status[decision.action], record)
    if decision.action == "wait":
        raise SkipStage(decision.reason)
    return _result(ctx, challenger, champion, decision.action, decision.reason, metric, evidence)


def promote_passed(ctx: RunContext, registered: RegistrationResult) -> ShadowDecisionResult:
    """Promote a challenger that passed its shadow, after a person approved it."""
    from mloops.adapters import mlflow_adapter

    client = mlflow_adapter.client(ctx.settings)
    _check_version(registered.version)
    version = mlflow_adapter.get_version(client, ctx.config.registered_model_name, registered.version)
    if version.tags.get(Tag.SHADOW_STATUS) not in (ShadowStatus.PASSED, ShadowStatus.PROMOTED):
        raise RegistryError(
            f"{ctx.config.registered_model_name} v{version.version} has not passed its shadow "
            f"({Tag.SHADOW_STATUS}={version.tags.get(Tag.SHADOW_STATUS)!r}); nothing was changed"
        )
    champion = mlflow_adapter.version_by_alias(client, ctx.config.registered_model_name, Alias.CHAMPION)
    reason = shadow_state(version).get("reason", "passed its shadow") + "; approved"
    return _promote(ctx, client, version, champion, reason, ctx.config.evaluation.primary_metric)


def _promote(
    ctx: RunContext,
    client: Any,
    challenger: VersionInfo,
    champion: VersionInfo | None,
    reason: str,
    metric: str,
    evidence: policy.ShadowEvidence | None = None,
    record: dict[str, Any] | None = None,
) -> ShadowDecisionResult:
    """Promote through the one promotion path (compare-and-set on champion, audit tags, pending intent)."""
    from mloops.stages import registry

    registered = RegistrationResult(
        model=ctx.model,
        registered_model=ctx.config.registered_model_name,
        version=challenger.version,
        reused=True,
    )
    promoted = registry.promote_model(ctx, registered, mode=PromotionPolicy.AUTO)
    state = {**(record or shadow_state(challenger)), "reason": reason}
    if promoted.action != "promote":
        if promoted.champion == challenger.version:  # already champion, event recorded: finish quietly
            _conclude(client, ctx, challenger.version, ShadowStatus.PROMOTED, state)
            raise SkipStage(f"v{challenger.version} is champion already: {promoted.reason}")
        retired = (
            f"v{challenger.version} retired: it passed its shadow but cannot be promoted ({promoted.reason})"
        )
        _conclude(client, ctx, challenger.version, ShadowStatus.RETIRED, {**state, "reason": retired})
        return _result(ctx, challenger, champion, "retire", retired, metric, evidence)
    _conclude(client, ctx, challenger.version, ShadowStatus.PROMOTED, state)
    result = _result(ctx, challenger, champion, "promote", reason, metric, evidence)
    return ShadowDecisionResult.from_xcom({**result.to_xcom(), "promotion": promoted.to_xcom()})


def _result(
    ctx: RunContext,
    challenger: VersionInfo,
    champion: VersionInfo | None,
    action: str,
    reason: str,
    metric: str,
    evidence: policy.ShadowEvidence | None,
) -> ShadowDecisionResult:
    return ShadowDecisionResult(
        model=ctx.model,
        registered_model=ctx.config.registered_model_name,
        version=challenger.version,
        champion_version=champion.version if champion else None,
        action=action,
        reason=reason,
        metric=metric,
        intervals=list(evidence.intervals) if evidence else [],
        rows=evidence.rows if evidence else 0,
        challenger=evidence.challenger if evidence else None,
        champion=evidence.champion if evidence else None,
    )


def _date(value: Any, default: dt.date) -> dt.date:
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        return default


def _record(
    ctx: RunContext,
    version: str,
    since: dt.date,
    evidence: policy.ShadowEvidence,
    scored: int,
    mine: dict[str, float | None],
    theirs: dict[str, float | None],
    run_id: str | None,
) -> None:
    """``shadow.*`` metrics of the challenger over its shadow so far (window = shadow start..run date)."""
    numbers: dict[str, float | None] = {
        ShadowMetric.INTERVALS: float(len(evidence.intervals)),
        ShadowMetric.SCORED: float(scored),
        ShadowMetric.ROWS: float(evidence.rows),
        **{f"{ShadowMetric.CHALLENGER}{k}": v for k, v in mine.items()},
        **{f"{ShadowMetric.CHAMPION}{k}": v for k, v in theirs.items()},
    }
    store.write_metrics(
        ctx.settings.metrics_db_uri,
        model=ctx.model,
        model_version=version,
        window_start=min(since, ctx.partition.date),
        window_end=ctx.partition.value,
        metrics=numbers,
        run_id=run_id,
        families=SHADOW_METRIC_FAMILIES,
    )
