"""Promotion policy as pure decisions: given a tested candidate and the current champion, what moves.

Aliases (:class:`~mloops.contracts.Alias`): ``challenger`` is the latest tested version, ``champion``
serves, ``previous`` is the champion it replaced (the rollback target). A backfill re-running an old
interval never takes the champion away from a version trained on a newer interval.

Staged rollout (policies ``shadow``, ``shadow_then_approval``): a tested challenger is first scored
beside the champion, never served; :func:`decide_shadow` judges it on the live labels of the rows
both versions scored. An opt-in automatic rollback (:func:`decide_rollback`) watches a new champion's
live quality during its first intervals.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal

from mloops.contracts import ChampionChange, PromotionPolicy, RegistryAction

#: The value of ``mloops.compared_with`` when the challenger was tested while there was no champion.
NO_CHAMPION = "none"


@dataclass(frozen=True)
class Candidate:
    version: str
    interval: str | None


@dataclass(frozen=True)
class PromotionDecision:
    """``promote``: move champion (and previous); ``keep``: leave aliases as they are; ``shadow``:
    leave them, and score the candidate beside the champion until :func:`decide_shadow` judges it."""

    action: Literal["promote", "keep", "shadow"]
    reason: str
    champion: str | None
    previous: str | None


def decide_promotion(policy: str, candidate: Candidate, champion: Candidate | None) -> PromotionDecision:
    if policy == PromotionPolicy.NONE:
        return PromotionDecision(
            "keep",
            "promotion policy is 'none': registered as challenger only",
            champion.version if champion else None,
            None,
        )
    if champion is None:
        return PromotionDecision(
            "promote",
            f"first version of the model: v{candidate.version} bootstraps champion",
            candidate.version,
            None,
        )
    if champion.version == candidate.version:
        return PromotionDecision("keep", f"v{candidate.version} is already champion", champion.version, None)
    if champion.interval and candidate.interval and candidate.interval < champion.interval:
        return PromotionDecision(
            "keep",
            f"champion v{champion.version} was trained on a newer interval ({champion.interval}) than "
            f"v{candidate.version} ({candidate.interval}); a re-run of an old interval does not demote it",
            champion.version,
            None,
        )
    if PromotionPolicy.shadowed(policy):
        return PromotionDecision(
            "shadow",
            f"v{candidate.version} enters shadow beside champion v{champion.version}: scored on the same "
            "batches, never served, until live labels decide",
            champion.version,
            None,
        )
    return PromotionDecision(
        "promote", f"v{candidate.version} replaces v{champion.version}", candidate.version, champion.version
    )


@dataclass(frozen=True)
class Rematch:
    """The challenger against the current champion on the challenger's own holdout (promotion time)."""

    passed: bool
    detail: str


@dataclass(frozen=True)
class ChampionGuard:
    """Compare-and-set on the comparison: ``proceed`` with the promotion, ``recompare`` the challenger
    with the current champion first, or ``refuse`` (champion untouched)."""

    action: Literal["proceed", "recompare", "refuse"]
    reason: str
    recompared: bool = False


def guard_champion(
    candidate: str,
    compared_with: str | None,
    champion: str | None,
    *,
    on_change: str = ChampionChange.RECOMPARE,
    rematch: Rematch | None = None,
) -> ChampionGuard:
    """Whether ``candidate`` may replace ``champion``, given the champion it was tested against.

    ``compared_with`` is the champion version ``test_model`` compared with (``"none"``: there was
    none; ``None``: not recorded, a version registered before mloops recorded it). When the champion
    is another one now, the candidate was never compared with what it would replace: re-compare it
    (``rematch`` is the outcome) or refuse, as ``on_change`` says.
    """
    if champion is None or champion == candidate:
        return ChampionGuard("proceed", "no other champion to replace")
    if compared_with == champion:
        return ChampionGuard("proceed", f"v{candidate} was tested against the current champion v{champion}")
    tested = {None: "an unrecorded champion", NO_CHAMPION: "no champion"}.get(
        compared_with, f"v{compared_with}"
    )
    changed = f"the champion changed since v{candidate} was tested (against {tested}; now v{champion})"
    if on_change == ChampionChange.REFUSE:
        return ChampionGuard(
            "refuse", f"{changed}; promotion.on_champion_change is 'refuse': v{champion} stays champion"
        )
    if rematch is None:
        return ChampionGuard("recompare", f"{changed}: re-compare with v{champion} on the same holdout")
    if rematch.passed:
        return ChampionGuard(
            "proceed",
            f"{changed}; re-compared on the same holdout, v{candidate} still wins: {rematch.detail}",
            recompared=True,
        )
    return ChampionGuard(
        "refuse",
        f"{changed}; re-compared on the same holdout, v{candidate} does not beat v{champion}: "
        f"{rematch.detail}; v{champion} stays champion",
        recompared=True,
    )


def refuse_action(
    action: str,
    *,
    name: str,
    target: str,
    test_status: str,
    champion: str | None,
    allow_failed_tests: bool,
) -> str | None:
    """Why a manual registry action on ``target`` is refused, or ``None`` when it may go ahead."""
    if (
        action in (RegistryAction.PROMOTE, RegistryAction.ROLLBACK)
        and test_status != "passed"
        and not allow_failed_tests
    ):
        return (
            f"{name} v{target} did not pass its tests (mloops.test_status={test_status!r}); "
            "set allow_failed_tests to override (the override is audited)"
        )
    if action == RegistryAction.ARCHIVE and champion == target:
        return f"{name} v{target} is the champion; promote or roll back before archiving it"
    return None


# ------------------------------------------------------------------------------ staged rollout


@dataclass(frozen=True)
class ShadowEvidence:
    """What the label feed says about a challenger in shadow: the prediction intervals with rows
    labeled for both versions, how many such rows, and the live metric of each version on them."""

    intervals: tuple[str, ...]
    rows: int
    challenger: float | None
    champion: float | None


@dataclass(frozen=True)
class ShadowDecision:
    """``wait`` (not enough labels yet), ``promote``, ``approve`` (passed; a person decides) or ``retire``."""

    action: Literal["wait", "promote", "approve", "retire"]
    reason: str


#: Differences this small are float noise: a drop of exactly the tolerance stays within it.
_EPSILON = 1e-9


def _gain(challenger: float, champion: float, greater_is_better: bool) -> float:
    """How much better ``challenger`` is (negative: worse), whichever direction the metric goes."""
    return challenger - champion if greater_is_better else champion - challenger


def decide_shadow(
    evidence: ShadowEvidence,
    *,
    version: str,
    champion: str | None,
    metric: str,
    greater_is_better: bool,
    required_intervals: int,
    min_rows: int,
    tolerance: float,
    approval: bool,
    scored_intervals: int,
    max_intervals: int,
) -> ShadowDecision:
    """Promote a challenger in shadow once labels cover ``required_intervals`` of its intervals, if on the
    same rows it is no worse than the champion by more than ``tolerance``; else retire it. A challenger
    scored in shadow on ``max_intervals`` intervals that still lacks the labels to decide is retired."""
    if champion is None:
        return ShadowDecision(
            "wait", f"v{version} is in shadow but the model has no champion to compare with"
        )
    if champion == version:
        return ShadowDecision("wait", f"v{version} is already champion")
    pending = _pending(evidence, required_intervals, min_rows)
    mine, theirs = evidence.challenger, evidence.champion
    if pending is not None or mine is None or theirs is None:  # not enough evidence: wait, up to a limit
        pending = pending or f"{metric} is undefined on the {evidence.rows} labeled rows"
        if scored_intervals < max_intervals:
            return ShadowDecision(
                "wait",
                f"v{version} in shadow: {pending} (scored on {scored_intervals} of at most "
                f"{max_intervals} intervals)",
            )
        return ShadowDecision(
            "retire",
            f"v{version} retired without a decision: {pending} after {scored_intervals} intervals scored "
            f"in shadow (promotion.shadow_max_intervals: {max_intervals}); champion v{champion} stays",
        )
    covered = len(evidence.intervals)
    gain = _gain(mine, theirs, greater_is_better)
    compared = (
        f"{metric} {mine:.4f} vs champion v{champion}'s {theirs:.4f} on the same "
        f"{evidence.rows} labeled rows of {covered} intervals "
        f"({evidence.intervals[0]}..{evidence.intervals[-1]})"
    )
    if gain < -tolerance - _EPSILON:
        return ShadowDecision(
            "retire",
            f"v{version} retired after its shadow: {compared}, {-gain:.4f} worse (tolerance {tolerance})",
        )
    passed = f"v{version} passed its shadow: {compared} (tolerance {tolerance})"
    if approval:
        return ShadowDecision("approve", f"{passed}; waiting for approval")
    return ShadowDecision("promote", passed)


def _pending(evidence: ShadowEvidence, required_intervals: int, min_rows: int) -> str | None:
    """Why the labels do not cover enough to decide yet, or ``None`` when they do."""
    covered = len(evidence.intervals)
    if covered < required_intervals:
        return (
            f"labels cover {covered} of the {required_intervals} intervals needed "
            f"({', '.join(evidence.intervals) or 'none yet'})"
        )
    if evidence.rows < min_rows:
        return f"{evidence.rows} rows labeled for both versions, fewer than monitoring.min_rows ({min_rows})"
    return None


@dataclass(frozen=True)
class RollbackDecision:
    action: Literal["rollback", "keep"]
    reason: str


def decide_rollback(
    *,
    champion: str,
    previous: str | None,
    promoted_on: dt.date | None,
    by_automatic_rollback: bool,
    today: dt.date,
    within_intervals: int,
    metric: str,
    greater_is_better: bool,
    live: float | None,
    previous_live: float | None,
    tolerance: float,
) -> RollbackDecision:
    """Roll back a champion whose live quality, within ``within_intervals`` of its promotion, is worse
    than the previous champion's recorded live quality by more than ``tolerance``."""
    if previous is None:
        return RollbackDecision("keep", f"champion v{champion} has no previous version to roll back to")
    if by_automatic_rollback:
        return RollbackDecision(
            "keep",
            f"champion v{champion} is back by an automatic rollback; it is not rolled back again "
            "automatically",
        )
    if promoted_on is None:
        return RollbackDecision("keep", f"no promotion of champion v{champion} is recorded: nothing to watch")
    since = (today - promoted_on).days
    if since > within_intervals:
        return RollbackDecision(
            "keep",
            f"champion v{champion} was promoted {since} intervals ago ({promoted_on}), past the "
            f"{within_intervals} intervals watched",
        )
    if live is None:
        return RollbackDecision("keep", f"no live {metric} of champion v{champion} yet (labels pending)")
    if previous_live is None:
        return RollbackDecision("keep", f"no recorded live {metric} of previous v{previous} to compare with")
    drop = -_gain(live, previous_live, greater_is_better)
    compared = (
        f"live {metric} of champion v{champion} is {live:.4f}, previous v{previous} had {previous_live:.4f}"
    )
    if drop > tolerance + _EPSILON:
        return RollbackDecision(
            "rollback",
            f"automatic rollback to v{previous}: {compared}, {drop:.4f} worse (tolerance {tolerance}), "
            f"{since} intervals after its promotion on {promoted_on}",
        )
    return RollbackDecision("keep", f"{compared}: within the tolerance {tolerance}")
