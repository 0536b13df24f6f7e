"""Stage ``check_rollback``: the automatic rollback of a new champion that degrades on live labels.

Opt-in per model (``promotion.auto_rollback``). After ``join_labels`` has written today's live quality
per serving version, the champion's live ``evaluation.primary_metric`` over the monitoring window is
compared with the previous champion's last recorded live value; within ``within_intervals`` of the
champion's promotion, a drop of more than ``tolerance`` rolls ``champion`` back to ``previous``
through the audited registry action (the manual rollback's own code path), as ``mloops (automatic
rollback ...)``. A champion that is back by an automatic rollback is never rolled back automatically
again (no ping-pong). Anything else is a skip with the reason.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import TYPE_CHECKING, Any

from mloops import registry as policy
from mloops import store
from mloops.contracts import (
    AUTOMATIC_ACTOR,
    Alias,
    EventKind,
    RegistryAction,
    RollbackCheckResult,
    Tag,
)
from mloops.errors import SkipStage

if TYPE_CHECKING:
    from mloops.adapters.mlflow_adapter import VersionInfo
    from mloops.stages.layout import RunContext


def check_rollback(ctx: RunContext, *, dag_run: str) -> RollbackCheckResult:
    """Roll the champion back when its live quality fell below the previous champion's; else skip."""
    from mloops.adapters import mlflow_adapter
    from mloops.stages import registry

    watch = ctx.config.promotion.auto_rollback
    if watch is None:
        raise SkipStage(f"model {ctx.model!r}: promotion.auto_rollback is not configured")
    client = mlflow_adapter.client(ctx.settings)
    name = ctx.config.registered_model_name
    champion = mlflow_adapter.version_by_alias(client, name, Alias.CHAMPION)
    if champion is None:
        raise SkipStage(f"model {ctx.model!r} has no champion: nothing to roll back")
    previous = mlflow_adapter.version_by_alias(client, name, Alias.PREVIOUS)
    metric = ctx.config.evaluation.primary_metric
    promoted_on, automatic = champion_since(ctx, champion)
    live = live_quality(ctx, champion.version, metric, ending=ctx.partition.value)
    previous_live = live_quality(ctx, previous.version, metric) if previous else None
    decision = policy.decide_rollback(
        champion=champion.version,
        previous=previous.version if previous else None,
        promoted_on=promoted_on,
        by_automatic_rollback=automatic,
        today=ctx.partition.date,
        within_intervals=watch.within_intervals,
        metric=metric,
        greater_is_better=ctx.config.greater_is_better,
        live=live,
        previous_live=previous_live,
        tolerance=watch.tolerance,
    )
    if decision.action == "keep":
        raise SkipStage(decision.reason)
    done = registry.registry_action(
        ctx,
        action=RegistryAction.ROLLBACK,
        version=None,
        reason=decision.reason,
        actor=AUTOMATIC_ACTOR,
        dag_run=dag_run,
    )
    return RollbackCheckResult(
        model=ctx.model,
        action="rollback",
        reason=decision.reason,
        champion_version=champion.version,
        previous_version=previous.version if previous else None,
        metric=metric,
        champion=live,
        previous=previous_live,
        promoted_on=promoted_on.isoformat() if promoted_on else None,
        rollback=done.to_xcom(),
    )


def champion_since(ctx: RunContext, champion: VersionInfo) -> tuple[dt.date | None, bool]:
    """The interval on which ``champion`` last took over (its latest promotion or rollback event), and
    whether that was an automatic rollback (from the event or the version's last audited action)."""
    events = [
        e
        for e in store.read_events(ctx.settings.metrics_db_uri, ctx.model)
        if e["kind"] in (EventKind.MODEL_PROMOTED, EventKind.MODEL_ROLLED_BACK)
        and str(e["payload"].get("version")) == champion.version
    ]
    automatic = _automatic(champion.tags.get(Tag.LAST_ACTION), champion.version)
    if not events:
        return None, automatic
    last = events[-1]
    audit = last["payload"].get("audit") or {}
    automatic = automatic or (
        last["kind"] == EventKind.MODEL_ROLLED_BACK and audit.get("by") == AUTOMATIC_ACTOR
    )
    day = last["partition"]
    return (dt.date.fromisoformat(str(day)) if day else None), automatic


def _automatic(last_action: str | None, version: str) -> bool:
    try:
        record: Any = json.loads(last_action or "{}")
    except ValueError:
        return False
    return (
        isinstance(record, dict)
        and record.get("action") == RegistryAction.ROLLBACK
        and record.get("by") == AUTOMATIC_ACTOR
        and str(record.get("target")) == version
    )


def live_quality(
    ctx: RunContext, version: str, metric: str, *, ending: dt.date | dt.datetime | None = None
) -> float | None:
    """A version's live ``metric`` recorded by ``join_labels``: over the window ending at ``ending``, or
    (without it) its latest recorded value."""
    rows = [
        r
        for r in store.read_metrics(ctx.settings.metrics_db_uri, ctx.model, f"labels.quality.{metric}")
        if r["model_version"] == version
        and r["value"] is not None
        and (ending is None or r["window_end"] == ending)
    ]
    return float(rows[-1]["value"]) if rows else None
