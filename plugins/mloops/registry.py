"""Promotion policy as pure decisions: given a tested candidate and the current champion, what moves.

Aliases (:class:`~mloops.contracts.Alias`): ``challenger`` is the latest tested version, ``champion``
serves, ``previous`` is the champion it replaced (the rollback target). A backfill re-running an old
interval never takes the champion away from a version trained on a newer interval.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from mloops.contracts import PromotionPolicy, RegistryAction


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
