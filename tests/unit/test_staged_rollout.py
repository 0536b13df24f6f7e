"""Staged rollout and automatic rollback as pure decisions (tables), and their config checks."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import yaml

from mloops import registry
from mloops.config import MAX_SHADOW_INTERVALS
from mloops.config_files import load_model_config
from mloops.errors import ModelConfigError

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("policy", "candidate", "champion", "action", "new_champion"),
    [
        ("shadow", ("3", "2026-01-03"), ("2", "2026-01-02"), "shadow", "2"),
        ("shadow_then_approval", ("3", "2026-01-03"), ("2", "2026-01-02"), "shadow", "2"),
        ("shadow", ("1", "2026-01-01"), None, "promote", "1"),  # nothing to shadow: the first bootstraps
        ("shadow", ("3", "2026-01-03"), ("3", "2026-01-03"), "keep", "3"),
        ("shadow", ("2", "2026-01-02"), ("3", "2026-01-03"), "keep", "3"),  # a backfill never shadows
    ],
)
def test_decide_promotion_under_a_shadow_policy(policy, candidate, champion, action, new_champion) -> None:
    decision = registry.decide_promotion(
        policy, registry.Candidate(*candidate), registry.Candidate(*champion) if champion else None
    )
    assert (decision.action, decision.champion, decision.previous) == (action, new_champion, None)


TWO = ("2026-01-05", "2026-01-06")


@pytest.mark.parametrize(
    ("evidence", "champion", "greater", "tolerance", "approval", "action", "fragment"),
    [
        ((TWO, 800, 0.80, 0.70), "1", True, 0.0, False, "promote", "passed its shadow: roc_auc 0.8000 vs"),
        ((TWO, 800, 0.70, 0.70), "1", True, 0.0, False, "promote", "passed"),  # equal is no worse
        ((TWO, 800, 0.68, 0.70), "1", True, 0.03, False, "promote", "tolerance 0.03"),
        ((TWO, 800, 0.60, 0.70), "1", True, 0.03, False, "retire", "0.1000 worse (tolerance 0.03)"),
        ((TWO, 800, 0.80, 0.70), "1", True, 0.0, True, "approve", "waiting for approval"),
        ((TWO, 800, 0.60, 0.70), "1", True, 0.0, True, "retire", "retired"),  # no approval for a loser
        ((TWO, 800, 9.0, 10.0), "1", False, 0.0, False, "promote", "passed"),  # rmse: lower is better
        ((TWO, 800, 11.0, 10.0), "1", False, 0.5, False, "retire", "1.0000 worse"),
        ((TWO[:1], 400, 0.90, 0.70), "1", True, 0.0, False, "wait", "labels cover 1 of the 2 intervals"),
        (((), 0, None, None), "1", True, 0.0, False, "wait", "none yet"),
        ((TWO, 50, 0.90, 0.70), "1", True, 0.0, False, "wait", "fewer than monitoring.min_rows (100)"),
        ((TWO, 800, None, 0.70), "1", True, 0.0, False, "wait", "undefined"),
        ((TWO, 800, 0.90, 0.70), None, True, 0.0, False, "wait", "no champion"),
        ((TWO, 800, 0.90, 0.70), "3", True, 0.0, False, "wait", "already champion"),
    ],
)
def test_decide_shadow(evidence, champion, greater, tolerance, approval, action, fragment) -> None:
    decision = registry.decide_shadow(
        registry.ShadowEvidence(*evidence),
        version="3",
        champion=champion,
        metric="roc_auc" if greater else "rmse",
        greater_is_better=greater,
        required_intervals=2,
        min_rows=100,
        tolerance=tolerance,
        approval=approval,
        scored_intervals=2,
        max_intervals=6,
    )
    assert decision.action == action
    assert fragment in decision.reason


@pytest.mark.parametrize(
    ("evidence", "scored", "action", "fragment"),
    [
        (
            ((), 0, None, None),
            5,
            "wait",
            "labels cover 0 of the 2 intervals needed (none yet) (scored on 5 of",
        ),
        (
            ((), 0, None, None),
            6,
            "retire",
            "v3 retired without a decision: labels cover 0 of the 2 intervals needed (none yet) after 6 "
            "intervals scored in shadow (promotion.shadow_max_intervals: 6); champion v1 stays",
        ),
        (
            (TWO[:1], 400, 0.9, 0.7),
            9,
            "retire",
            "labels cover 1 of the 2 intervals needed (2026-01-05) after 9",
        ),
        (
            (TWO, 50, 0.9, 0.7),
            6,
            "retire",
            "50 rows labeled for both versions, fewer than monitoring.min_rows",
        ),
        ((TWO, 800, None, 0.7), 6, "retire", "roc_auc is undefined on the 800 labeled rows after 6"),
        ((TWO, 800, 0.9, 0.7), 6, "promote", "passed its shadow"),  # the evidence is in: the limit is moot
        ((TWO, 800, 0.6, 0.7), 60, "retire", "retired after its shadow"),
    ],
)
def test_a_shadow_without_the_labels_to_decide_is_retired_at_its_limit(
    evidence, scored, action, fragment
) -> None:
    decision = registry.decide_shadow(
        registry.ShadowEvidence(*evidence),
        version="3",
        champion="1",
        metric="roc_auc",
        greater_is_better=True,
        required_intervals=2,
        min_rows=100,
        tolerance=0.0,
        approval=False,
        scored_intervals=scored,
        max_intervals=6,
    )
    assert (decision.action, fragment in decision.reason) == (action, True), decision.reason


PROMOTED = dt.date(2026, 1, 6)


@pytest.mark.parametrize(
    ("changes", "action", "fragment"),
    [
        (
            {},
            "rollback",
            "automatic rollback to v1: live roc_auc of champion v2 is 0.6000, previous v1 had 0.7500",
        ),
        ({"live": 0.72}, "keep", "within the tolerance 0.05"),
        ({"live": 0.70}, "keep", "within"),  # a drop of exactly the tolerance is kept
        ({"today": dt.date(2026, 1, 10)}, "keep", "promoted 4 intervals ago (2026-01-06), past the 3"),
        ({"today": dt.date(2026, 1, 9)}, "rollback", "3 intervals after its promotion"),
        ({"previous": None}, "keep", "no previous version"),
        ({"by_automatic_rollback": True}, "keep", "not rolled back again automatically"),
        ({"promoted_on": None}, "keep", "no promotion of champion v2 is recorded"),
        ({"live": None}, "keep", "labels pending"),
        ({"previous_live": None}, "keep", "no recorded live roc_auc of previous v1"),
        ({"greater_is_better": False, "live": 0.81}, "rollback", "0.0600 worse"),  # e.g. log_loss rose
        ({"greater_is_better": False}, "keep", "within"),
    ],
)
def test_decide_rollback(changes, action, fragment) -> None:
    args = {
        "champion": "2",
        "previous": "1",
        "promoted_on": PROMOTED,
        "by_automatic_rollback": False,
        "today": dt.date(2026, 1, 8),
        "within_intervals": 3,
        "metric": "roc_auc",
        "greater_is_better": True,
        "live": 0.60,
        "previous_live": 0.75,
        "tolerance": 0.05,
    }
    decision = registry.decide_rollback(**{**args, **changes})
    assert decision.action == action
    assert fragment in decision.reason, decision.reason


def _churn(tmp_path: Path, promotion: dict, *, labels: bool = True) -> Path:
    data = yaml.safe_load((REPO / "include/models/churn.yaml").read_text())
    data["promotion"] = promotion
    if not labels:
        data.pop("labels")
    path = tmp_path / "churn.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_shadow_and_rollback_config_loads(tmp_path: Path) -> None:
    promotion = {
        "policy": "shadow_then_approval",
        "shadow_intervals": 2,
        "shadow_tolerance": 0.01,
        "auto_rollback": {"within_intervals": 5, "tolerance": 0.03},
    }
    config = load_model_config(_churn(tmp_path, promotion))
    assert config.promotion.shadow_intervals == 2 and config.promotion.auto_rollback.within_intervals == 5
    # Without shadow_max_intervals, a shadow may wait its intervals plus the label lookback (7 days).
    assert config.promotion.shadow_max_intervals is None and config.shadow_limit == 2 + 7
    assert load_model_config(_churn(tmp_path, {"policy": "auto"})).promotion.auto_rollback is None
    limited = load_model_config(_churn(tmp_path, {**promotion, "shadow_max_intervals": 5}))
    assert limited.shadow_limit == 5
    capped = load_model_config(
        _churn(tmp_path, {"policy": "shadow", "shadow_intervals": MAX_SHADOW_INTERVALS})
    )
    assert capped.shadow_limit == MAX_SHADOW_INTERVALS  # 120 + 7 is capped at the bound


@pytest.mark.parametrize(
    ("promotion", "labels", "field", "fragment"),
    [
        (
            {"policy": "shadow"},
            False,
            "promotion.policy",
            "'shadow' compares the challenger with the champion on live",
        ),
        (
            {"policy": "auto", "auto_rollback": {}},
            False,
            "promotion.auto_rollback",
            "judges the champion on live",
        ),
        ({"policy": "canary"}, True, "promotion.policy", "'shadow_then_approval'"),
        (
            {"policy": "shadow", "shadow_intervals": 0},
            True,
            "promotion.shadow_intervals",
            "greater than or equal to 1",
        ),
        (
            {"policy": "shadow", "shadow_tolerance": -0.1},
            True,
            "promotion.shadow_tolerance",
            "greater than or equal",
        ),
        (
            {"auto_rollback": {"within_intervals": 0}},
            True,
            "promotion.auto_rollback.within_intervals",
            "greater",
        ),
        ({"auto_rollback": {"window": 3}}, True, "promotion.auto_rollback.window", "Extra inputs"),
        (
            {"policy": "shadow", "shadow_intervals": 500},
            True,
            "promotion.shadow_intervals",
            "less than or equal to 120 (got 500)",
        ),
        (
            {"policy": "shadow", "shadow_max_intervals": 1000},
            True,
            "promotion.shadow_max_intervals",
            "less than or equal to 120 (got 1000)",
        ),
        (
            {"policy": "shadow", "shadow_intervals": 4, "shadow_max_intervals": 3},
            True,
            "promotion.shadow_max_intervals",
            "3 is fewer than promotion.shadow_intervals (4)",
        ),
    ],
)
def test_bad_shadow_or_rollback_config_names_the_field(
    tmp_path: Path, promotion, labels, field, fragment
) -> None:
    path = _churn(tmp_path, promotion, labels=labels)
    with pytest.raises(ModelConfigError) as caught:
        load_model_config(path)
    message = str(caught.value)
    assert str(path) in message and fragment in message, message
    assert f"field '{field}'" in message, message
