"""Stages ``register_model`` and ``promote_model``, and the manual, audited registry actions.

Registration makes the tested run a version (once per run) and points ``challenger`` at it.
Promotion applies the policy of :mod:`mloops.registry` to the aliases. Registry actions (promote a
version, roll back, archive) are what the operations DAG runs on a person's request; every change
is tagged on the versions it touches.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import logging
from collections.abc import Iterable
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from mloops import registry as policy
from mloops.contracts import (
    AUDIT_TAG_PREFIX,
    METRIC_TAG_PREFIX,
    PROMOTED_BY_TAG_PREFIX,
    Alias,
    PromotionPolicy,
    PromotionResult,
    RegistrationResult,
    RegistryAction,
    RegistryActionResult,
    Tag,
    TestResult,
    TrainingResult,
)
from mloops.errors import RegistryError, ServiceUnavailableError
from mloops.locks import serialized

if TYPE_CHECKING:
    from mloops.adapters.mlflow_adapter import VersionInfo
    from mloops.evaluation import Check
    from mloops.stages.layout import RunContext

#: Written on the candidate before its aliases move, set to ``recorded`` once the promotion event is
#: stored: a retry after "already champion" (e.g. the metrics store was down) still records the event.
PROMOTION_PENDING_TAG = Tag.PROMOTION_PENDING
RECORDED = "recorded"
#: ``PromotionResult.action`` of a promotion refused by the compare-and-set (champion untouched).
REFUSE = "refuse"


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
        Tag.COMPARED_WITH: tested.champion_version or policy.NO_CHAMPION,
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
    write_model_card(ctx, client, version.version)
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
        write_model_card(ctx, client, candidate.version)
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
    if decision.action == "shadow":
        from mloops.stages import shadow

        decision = shadow.enter_shadow(ctx, client, candidate, decision)
    reason = decision.reason
    if decision.action == "promote":
        guard = check_champion(ctx, client, candidate, champion)
        if guard.action == "refuse":
            return refuse_promotion(ctx, client, candidate, champion, guard.reason)
        if guard.recompared:
            reason = f"{reason} ({guard.reason})"
        intent = json.dumps({"previous": decision.previous, "reason": reason})
        mlflow_adapter.set_version_tags(client, name, candidate.version, {PROMOTION_PENDING_TAG: intent})
        move_champion(client, name, expected=champion.version if champion else None, new=candidate.version)
        mlflow_adapter.set_version_tags(
            client,
            name,
            candidate.version,
            {
                Tag.PROMOTED_FROM: decision.previous or "none",
                Tag.PROMOTION_REASON: reason,
                Tag.PROMOTED_AT: dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                Tag.PROMOTION_POLICY: _effective_policy(candidate, mode or ctx.config.promotion.policy),
                **{f"{PROMOTED_BY_TAG_PREFIX}{k.split('.')[-1]}": str(v) for k, v in ctx.lineage.items()},
            },
        )
        for number in filter(None, (candidate.version, decision.previous)):  # the old one is previous now
            write_model_card(ctx, client, number)
    return PromotionResult(
        model=ctx.model,
        action=decision.action,
        reason=reason,
        champion=decision.champion,
        previous=decision.previous,
        version=candidate.version,
    )


def _effective_policy(candidate: VersionInfo, mode: str) -> str:
    """The policy a promotion happened under: ``approval`` when a person approved it (the operator
    runs an approved promotion as ``auto``), else the mode in force."""
    try:
        approval = json.loads(candidate.tags.get(Tag.APPROVAL) or "{}")
    except ValueError:
        approval = {}
    approved = isinstance(approval, dict) and approval.get("decision") == "approved"
    return str(PromotionPolicy.APPROVAL) if approved else str(mode)


def check_champion(
    ctx: RunContext, client: Any, candidate: VersionInfo, champion: VersionInfo | None
) -> policy.ChampionGuard:
    """Compare-and-set on the comparison: is ``champion`` the one ``test_model`` compared the candidate
    with? If not, re-compare them on the candidate's holdout (or refuse, as the config says)."""
    from mloops.adapters import mlflow_adapter

    guard = functools.partial(
        policy.guard_champion,
        candidate.version,
        candidate.tags.get(Tag.COMPARED_WITH),
        champion.version if champion else None,
        on_change=ctx.config.promotion.on_champion_change,
    )
    first = guard()
    if first.action != "recompare" or champion is None:
        return first
    check = recompare(ctx, client, candidate, champion)
    mlflow_adapter.set_version_tags(
        client,
        ctx.config.registered_model_name,
        candidate.version,
        {Tag.RECOMPARISON: json.dumps({**asdict(check), "champion": champion.version}, sort_keys=True)},
    )
    return guard(rematch=policy.Rematch(check.passed, check.describe()))


def recompare(ctx: RunContext, client: Any, candidate: VersionInfo, champion: VersionInfo) -> Check:
    """The candidate against ``champion`` on the candidate's own holdout, as ``test_model`` compared
    them; a failing check saying why when they cannot be compared (holdout gone or rewritten)."""
    from mloops import evaluation, partitions, training
    from mloops.adapters import mlflow_adapter
    from mloops.stages.layout import holdout_path

    config = ctx.config
    label = f"champion v{champion.version}"

    def failed(why: str, metrics: dict[str, float | None] | None = None) -> Check:
        return evaluation.champion_check(config, metrics or {}, None, label, why)

    value = candidate.tags.get(Tag.DATA_INTERVAL, "")
    try:
        interval = dt.date.fromisoformat(value)
    except ValueError:
        return failed(f"v{candidate.version} has no valid {Tag.DATA_INTERVAL} tag ({value!r}): no holdout")
    path = holdout_path(ctx.at(interval))
    if not path.exists():
        return failed(f"the holdout of v{candidate.version} ({path}) is gone: cannot re-compare")
    holdout = partitions.read_parquet(path)
    run = mlflow_adapter.get_run(client, candidate.run_id) if candidate.run_id else None
    tested_rows = run.metrics.get("rows_holdout") if run else None
    if tested_rows is not None and int(tested_rows) != len(holdout):
        return failed(
            f"the holdout {path} has {len(holdout)} rows, v{candidate.version} was tested on "
            f"{int(tested_rows)} (the interval was retrained since): cannot re-compare"
        )
    try:
        challenger = training.evaluate(mlflow_adapter.load_sklearn_model(candidate.uri), holdout, config)
    except Exception as exc:  # noqa: BLE001 - an unscorable candidate is a refusal, not a crash
        return failed(f"v{candidate.version} cannot score its holdout: {type(exc).__name__}: {exc}")
    try:
        current = training.evaluate(mlflow_adapter.load_sklearn_model(champion.uri), holdout, config)
    except Exception as exc:  # noqa: BLE001
        return failed(f"{label} cannot score this holdout: {type(exc).__name__}: {exc}", challenger)
    return evaluation.champion_check(config, challenger, current, label)


def refuse_promotion(
    ctx: RunContext, client: Any, candidate: VersionInfo, champion: VersionInfo | None, reason: str
) -> PromotionResult:
    """Record on the candidate why it was not promoted; the champion is not touched."""
    from mloops.adapters import mlflow_adapter

    record = {
        "reason": reason,
        "champion": champion.version if champion else None,
        "compared_with": candidate.tags.get(Tag.COMPARED_WITH),
        "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        **{k.split(".")[-1]: str(v) for k, v in ctx.lineage.items() if k.startswith("airflow.")},
    }
    mlflow_adapter.set_version_tags(
        client,
        ctx.config.registered_model_name,
        candidate.version,
        {Tag.PROMOTION_REFUSED: json.dumps(record, sort_keys=True)},
    )
    write_model_card(ctx, client, candidate.version)
    return PromotionResult(
        model=ctx.model,
        action=REFUSE,
        reason=reason,
        champion=champion.version if champion else None,
        previous=None,
        version=candidate.version,
    )


def write_model_card(ctx: RunContext, client: Any, version: str) -> str:
    """(Re)write the model card of ``version`` from what the registry, its run and the metrics store
    hold now: Markdown and HTML under ``reports/<model>/dt=<interval>/`` and on the MLflow run
    (``model_card/``); the version's ``mloops.model_card`` tag points at the HTML. Returns its URI."""
    from mloops import card, partitions, store
    from mloops.adapters import mlflow_adapter
    from mloops.stages.layout import reports_dir

    name = ctx.config.registered_model_name
    info = mlflow_adapter.get_version(client, name, version)
    run = mlflow_adapter.get_run(client, info.run_id) if info.run_id else None
    run_id = run.run_id if run else None

    def artifact(path: str) -> Any:
        text = mlflow_adapter.read_text_artifact(client, run_id, path) if run_id else None
        try:
            return json.loads(text) if text else None
        except ValueError:
            return None

    importances = artifact("explanation/importances.json")
    replaced = info.tags.get(Tag.PROMOTED_FROM)
    if importances and replaced not in (None, "none", importances.get("champion_version")):
        importances = _compared_with(client, name, importances, replaced)
    try:
        recorded = store.read_metrics(ctx.settings.metrics_db_uri, ctx.model)
    except ServiceUnavailableError as exc:
        # The card is rewritten by the retry (and by every later promotion or action); a metrics DB
        # that is down must fail the step that needs it (recording the event), not the card.
        logging.getLogger(__name__).warning(
            "model card of v%s written without live quality: %s", version, exc
        )
        recorded = []
    live = [
        row
        for row in recorded
        if str(row["model_version"]) == version
        and str(row["metric"]).startswith((card.LIVE_QUALITY_PREFIX, card.SHADOW_PREFIX))
    ]
    document = card.build(
        registered_model=name,
        version=version,
        aliases=info.aliases,
        version_tags=info.tags,
        run_id=run_id,
        run_tags=run.tags if run else {},
        params=run.params if run else {},
        datasets=mlflow_adapter.run_datasets(client, run_id) if run_id else [],
        report=artifact("model_tests/model_tests.json"),
        importances=importances,
        live_quality=live,
        primary_metric=ctx.config.evaluation.primary_metric,
        policy=str(ctx.config.promotion.policy),
        written_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    )
    texts = {card.MARKDOWN_FILE: card.markdown(document), card.HTML_FILE: card.html_page(document)}
    interval = info.tags.get(Tag.DATA_INTERVAL) or ctx.ds
    try:
        folder = reports_dir(ctx.at(dt.date.fromisoformat(interval)))
    except ValueError:
        folder = reports_dir(ctx)
    stem = f"model_card_v{version}"
    partitions.write_text(folder / f"{stem}.md", texts[card.MARKDOWN_FILE])
    uri = partitions.to_uri(partitions.write_text(folder / f"{stem}.html", texts[card.HTML_FILE]))
    if run_id:
        mlflow_adapter.log_texts(client, run_id, texts, card.ARTIFACT_PATH)
    mlflow_adapter.set_version_tags(client, name, version, {Tag.MODEL_CARD: uri})
    return uri


@serialized
def refresh_model_cards(ctx: RunContext, versions: Iterable[str]) -> dict[str, str]:
    """Rewrite the cards of those ``versions`` that are registered, after a stage recorded new live
    numbers of them (``join_labels``); under the registry lock, so a card is never written from a
    state a promotion is changing. Returns ``{version: card URI}``."""
    from mloops.adapters import mlflow_adapter

    wanted = {str(v) for v in versions}
    if not wanted:
        return {}
    client = mlflow_adapter.client(ctx.settings, "rewriting model cards with their live quality")
    registered = [v.version for v in mlflow_adapter.versions(client, ctx.config.registered_model_name)]
    return {v: write_model_card(ctx, client, v) for v in registered if v in wanted}


def _compared_with(client: Any, name: str, table: dict[str, Any], replaced: str) -> dict[str, Any]:
    """The importances table compared with the champion the version actually replaced (when that is
    not the one it was tested against: the champion changed before the promotion)."""
    from mloops import explain
    from mloops.adapters import mlflow_adapter

    other = mlflow_adapter.get_version(client, name, replaced)
    text = None
    if other.run_id:
        text = mlflow_adapter.read_text_artifact(client, other.run_id, "explanation/importances.json")
    try:
        rows = json.loads(text)["features"] if text else []
        previous = {str(r["feature"]): float(r["importance"]) for r in rows}
    except (ValueError, KeyError, TypeError):
        previous = json.loads(other.tags.get(Tag.IMPORTANCES) or "{}")
    current = {str(r["feature"]): float(r["importance"]) for r in table.get("features") or []}
    changes = explain.ranking_changes(current, previous or None)
    return {
        **table,
        "champion_version": replaced,
        "features": changes,
        "shifts": explain.biggest_shifts(changes),
    }


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
    for number in sorted(touched, key=int):  # their status and audit trail changed: rewrite their cards
        write_model_card(ctx, client, number)
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
