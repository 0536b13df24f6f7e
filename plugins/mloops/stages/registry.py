"""Stages ``register_model`` and ``promote_model``, and the manual, audited registry actions.

Registration makes the tested run a version (once per run) and points ``challenger`` at it.
Promotion applies the policy of :mod:`mloops.registry` to the aliases. Registry actions (promote a
version, roll back, archive) are what the operations DAG runs on a person's request; every change
is tagged on the versions it touches.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import TYPE_CHECKING, Any

from mloops import registry as policy
from mloops.contracts import (
    AUDIT_TAG_PREFIX,
    METRIC_TAG_PREFIX,
    PROMOTED_BY_TAG_PREFIX,
    Alias,
    PromotionResult,
    RegistrationResult,
    RegistryAction,
    RegistryActionResult,
    Tag,
    TestResult,
    TrainingResult,
)
from mloops.errors import RegistryError
from mloops.locks import serialized

if TYPE_CHECKING:
    from mloops.adapters.mlflow_adapter import VersionInfo
    from mloops.stages.layout import RunContext

#: Written on the candidate before its aliases move, set to ``recorded`` once the promotion event is
#: stored: a retry after "already champion" (e.g. the metrics store was down) still records the event.
PROMOTION_PENDING_TAG = Tag.PROMOTION_PENDING
RECORDED = "recorded"


@serialized
def register_model(ctx: RunContext, trained: TrainingResult, tested: TestResult) -> RegistrationResult:
    """Register the tested model once per run (re-runs reuse the version) and set ``challenger``."""
    from mloops.adapters import mlflow_adapter

    client = mlflow_adapter.client(ctx.settings)
    name = ctx.config.registered_model_name
    tags = {
        Tag.TEST_STATUS: "passed" if tested.passed else "failed",
        Tag.TESTS: json.dumps(tested.checks, sort_keys=True),
        Tag.TEST_REPORT: tested.report_uri,
        Tag.IMPORTANCES: json.dumps(tested.importances),
        Tag.DATA_INTERVAL: ctx.ds,
        Tag.DATA_FINGERPRINT: trained.data_fingerprint,
        **{f"{METRIC_TAG_PREFIX}{k}": f"{v:.6f}" for k, v in tested.metrics.items() if v is not None},
        **{k: str(v) for k, v in ctx.lineage.items()},
    }
    existing = mlflow_adapter.versions(client, name, run_id=trained.run_id)
    if existing:
        version = existing[0]
        mlflow_adapter.set_version_tags(client, name, version.version, tags)
    else:
        version = mlflow_adapter.register_version(client, name, trained.model_uri, trained.run_id, tags)
    mlflow_adapter.set_alias(client, name, Alias.CHALLENGER, version.version)
    return RegistrationResult(
        model=ctx.model, registered_model=name, version=version.version, reused=bool(existing)
    )


@serialized
def promote_model(
    ctx: RunContext, registered: RegistrationResult, *, mode: str | None = None
) -> PromotionResult:
    """Apply the promotion policy: move ``champion`` (keeping the old one as ``previous``) or keep it."""
    from mloops.adapters import mlflow_adapter

    client = mlflow_adapter.client(ctx.settings)
    name = ctx.config.registered_model_name
    candidate = mlflow_adapter.get_version(client, name, registered.version)
    champion = mlflow_adapter.version_by_alias(client, name, Alias.CHAMPION)
    pending = candidate.tags.get(PROMOTION_PENDING_TAG)
    if champion and champion.version == candidate.version and pending and pending != RECORDED:
        intent = json.loads(pending)
        return PromotionResult(
            model=ctx.model,
            action="promote",
            reason=f"{intent['reason']} (event recorded on retry)",
            champion=candidate.version,
            previous=intent.get("previous"),
            version=candidate.version,
        )
    decision = policy.decide_promotion(
        mode or ctx.config.promotion.policy,
        policy.Candidate(candidate.version, candidate.tags.get(Tag.DATA_INTERVAL)),
        policy.Candidate(champion.version, champion.tags.get(Tag.DATA_INTERVAL)) if champion else None,
    )
    if decision.action == "promote":
        intent = json.dumps({"previous": decision.previous, "reason": decision.reason})
        mlflow_adapter.set_version_tags(client, name, candidate.version, {PROMOTION_PENDING_TAG: intent})
        move_champion(client, name, expected=champion.version if champion else None, new=candidate.version)
        mlflow_adapter.set_version_tags(
            client,
            name,
            candidate.version,
            {
                Tag.PROMOTED_FROM: decision.previous or "none",
                Tag.PROMOTION_REASON: decision.reason,
                **{f"{PROMOTED_BY_TAG_PREFIX}{k.split('.')[-1]}": str(v) for k, v in ctx.lineage.items()},
            },
        )
    return PromotionResult(
        model=ctx.model,
        action=decision.action,
        reason=decision.reason,
        champion=decision.champion,
        previous=decision.previous,
        version=candidate.version,
    )


def move_champion(client: Any, name: str, *, expected: str | None, new: str) -> None:
    """Compare-and-set on ``champion``: re-read it right before moving it and refuse when another
    writer moved it since this stage decided (the Airflow pool is not the only guard)."""
    from mloops.adapters import mlflow_adapter

    current = mlflow_adapter.version_by_alias(client, name, Alias.CHAMPION)
    found = current.version if current else None
    if found != expected:
        raise RegistryError(
            f"{name}: champion moved from v{expected} to v{found} while this promotion of v{new} was "
            "decided; "
            "nothing was changed, re-run the task to decide again"
        )
    if expected:
        mlflow_adapter.set_alias(client, name, Alias.PREVIOUS, expected)
    mlflow_adapter.set_alias(client, name, Alias.CHAMPION, new)


def promotion_recorded(ctx: RunContext, version: str) -> None:
    """Mark the promotion of ``version`` as fully recorded (its event is stored)."""
    from mloops.adapters import mlflow_adapter

    client = mlflow_adapter.client(ctx.settings)
    mlflow_adapter.set_version_tags(
        client, ctx.config.registered_model_name, version, {PROMOTION_PENDING_TAG: RECORDED}
    )


# --------------------------------------------------------------------------------- registry actions


@serialized
def registry_action(
    ctx: RunContext,
    *,
    action: str,
    version: str | None,
    reason: str,
    actor: str,
    dag_run: str,
    allow_failed_tests: bool = False,
) -> RegistryActionResult:
    """Promote a version to champion, roll ``champion`` back to ``previous``, or archive a version.

    Refuses a version whose tests failed (or that was never tested) unless ``allow_failed_tests``,
    which is recorded. Every change is audited on the versions it touches (who, when, why, which run).
    """
    from mloops.adapters import mlflow_adapter

    if action not in tuple(RegistryAction):
        raise RegistryError(f"action {action!r} is not one of {[a.value for a in RegistryAction]}")
    if not reason or len(reason.strip()) < 5:
        raise RegistryError("reason: say why (at least 5 characters); it is recorded on the model version")
    client = mlflow_adapter.client(ctx.settings)
    name = ctx.config.registered_model_name
    champion = mlflow_adapter.version_by_alias(client, name, Alias.CHAMPION)
    target = _action_target(client, name, action, version)
    refusal = policy.refuse_action(
        action,
        name=name,
        target=target.version,
        test_status=target.tags.get(Tag.TEST_STATUS, "not tested"),
        champion=champion.version if champion else None,
        allow_failed_tests=allow_failed_tests,
    )
    if refusal:
        raise RegistryError(refusal)
    now = dt.datetime.now(dt.UTC)
    audit = {
        "action": action,
        "by": actor,
        "at": now.isoformat(timespec="seconds"),
        "why": reason,
        "dag_run": dag_run,
        "override_failed_tests": bool(allow_failed_tests),
    }
    _apply_action(client, name, action, target, champion)
    touched = {target.version} | (
        {champion.version} if champion and action != RegistryAction.ARCHIVE else set()
    )
    _audit(client, name, touched, {**audit, "target": target.version}, now)
    after = {
        alias.value: info.version
        for alias in (Alias.CHAMPION, Alias.PREVIOUS, Alias.CHALLENGER)
        if (info := mlflow_adapter.version_by_alias(client, name, alias)) is not None
    }
    return RegistryActionResult(
        model=ctx.model,
        action=action,
        version=target.version,
        aliases=after,
        audit=audit,
        from_champion=champion.version if champion else None,
    )


def _audit(client: Any, name: str, versions: set[str], record: dict[str, Any], now: dt.datetime) -> None:
    """Tag every version an action touched: one ``mloops.audit.<time>.<action>`` entry and the last action."""
    from mloops.adapters import mlflow_adapter

    text = json.dumps(record, sort_keys=True)
    key = f"{AUDIT_TAG_PREFIX}{now.strftime('%Y%m%dT%H%M%S%fZ')}.{record['action']}"
    for number in versions:
        mlflow_adapter.set_version_tags(client, name, number, {key: text, Tag.LAST_ACTION: text})


def _action_target(client: Any, name: str, action: str, version: str | None) -> VersionInfo:
    from mloops.adapters import mlflow_adapter

    if action == RegistryAction.ROLLBACK:
        previous = mlflow_adapter.version_by_alias(client, name, Alias.PREVIOUS)
        if previous is None:
            raise RegistryError(f"{name} has no 'previous' alias: nothing to roll back to")
        return previous
    known = {v.version: v for v in mlflow_adapter.versions(client, name)}
    if version is None or str(version) not in known:
        raise RegistryError(
            f"version: {name} has no version {version!r} (versions: {sorted(known, key=int)})"
        )
    return known[str(version)]


def _apply_action(
    client: Any, name: str, action: str, target: VersionInfo, champion: VersionInfo | None
) -> None:
    from mloops.adapters import mlflow_adapter

    if action == RegistryAction.PROMOTE:
        if champion is not None and champion.version != target.version:
            mlflow_adapter.set_alias(client, name, Alias.PREVIOUS, champion.version)
        mlflow_adapter.set_alias(client, name, Alias.CHAMPION, target.version)
    elif action == RegistryAction.ROLLBACK:
        if champion is None:
            raise RegistryError(f"{name} has no champion: nothing to roll back")
        mlflow_adapter.set_alias(client, name, Alias.CHAMPION, target.version)
        mlflow_adapter.set_alias(client, name, Alias.PREVIOUS, champion.version)
    else:
        for alias in target.aliases:
            mlflow_adapter.delete_alias(client, name, alias)
        mlflow_adapter.set_version_tags(client, name, target.version, {Tag.ARCHIVED: "true"})
