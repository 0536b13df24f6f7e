"""Promotion policy as pure decisions: given a tested candidate and the current champion, what moves.

Aliases (:class:`~mloops.contracts.Alias`): ``challenger`` is the latest tested version, ``champion``
serves, ``previous`` is the champion it replaced (the rollback target). A backfill re-running an old
interval never takes the champion away from a version trained on a newer interval.
"""

from __future__ import annotations

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
    """``promote``: move champion (and previous); ``keep``: leave aliases as they are."""

    action: Literal["promote", "keep"]
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
