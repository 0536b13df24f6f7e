"""Model gates and promotion decisions, including every way they fail."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from mloops import evaluation, registry
from mloops.config_files import find_model_config

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def churn():
    return find_model_config("churn", REPO / "include/models")


@pytest.fixture(scope="module")
def houses():
    return find_model_config("house_prices", REPO / "include/models")


@pytest.mark.parametrize(
    ("metrics", "passed"),
    [
        ({"roc_auc": 0.80, "f1": 0.50}, {"threshold:f1": True, "threshold:roc_auc": True}),
        ({"roc_auc": 0.69, "f1": 0.50}, {"threshold:f1": True, "threshold:roc_auc": False}),
        ({"roc_auc": None, "f1": 0.10}, {"threshold:f1": False, "threshold:roc_auc": False}),
    ],
)
def test_threshold_checks(churn, metrics, passed) -> None:
    checks = evaluation.threshold_checks(churn, metrics)
    assert {c.name: c.passed for c in checks} == passed
    undefined = [c for c in checks if c.value is None]
    assert all("undefined" in c.detail for c in undefined)


def test_lower_is_better_threshold(houses) -> None:
    config = houses.model_copy(
        update={"evaluation": houses.evaluation.model_copy(update={"thresholds": {"rmse": 100.0}})}
    )
    assert evaluation.threshold_checks(config, {"rmse": 99.0})[0].passed
    failing = evaluation.threshold_checks(config, {"rmse": 101.0})[0]
    assert not failing.passed and failing.comparator == "<="


@pytest.mark.parametrize(
    ("challenger", "champion", "error", "passed", "detail"),
    [
        (0.80, None, None, True, "bootstrap"),
        (0.80, 0.82, None, True, "tolerance 0.03"),
        (0.78, 0.82, None, False, "scores 0.8200"),
        (0.80, 0.80, "cannot score", False, "cannot score"),
    ],
)
def test_champion_check(churn, challenger, champion, error, passed, detail) -> None:
    check = evaluation.champion_check(
        churn,
        {"roc_auc": challenger},
        None if champion is None else {"roc_auc": champion},
        "champion v1",
        error,
    )
    assert check.passed is passed
    assert detail in check.detail
    if champion is not None and error is None:
        assert check.threshold == pytest.approx(champion - 0.03)


def test_slice_checks_small_slice_fails_with_row_count(churn) -> None:
    holdout = pd.DataFrame(
        {"contract_type": ["month-to-month"] * 10 + ["one-year"] * 100, "region": ["north"] * 110}
    )
    checks = {c.name: c for c in evaluation.slice_checks(churn, holdout, lambda s: {"roc_auc": 0.9})}
    small = checks["slice:month_to_month:roc_auc"]
    assert not small.passed and "10 holdout rows" in small.detail
    assert checks["slice:north:roc_auc"].passed


def test_slice_checks_metric_below_minimum(churn) -> None:
    holdout = pd.DataFrame({"contract_type": ["month-to-month"] * 100, "region": ["north"] * 100})
    checks = evaluation.slice_checks(churn, holdout, lambda s: {"roc_auc": 0.55})
    assert [c.passed for c in checks] == [False, False]


@pytest.fixture(scope="module")
def fitted(churn):
    """A churn model fitted on one generated day, and another day as its holdout (index not 0..n-1)."""
    import datetime as dt

    from mloops import training
    from mloops_examples.generator import generate_partition

    train = generate_partition("churn", dt.date(2026, 1, 1), rows=1_500, seed=1)
    holdout = generate_partition("churn", dt.date(2026, 1, 2), rows=800, seed=2)
    holdout.index = holdout.index[::-1] * 3
    return training.fit(churn, train), holdout


def test_slices_from_one_prediction_match_predicting_each_slice(churn, fitted) -> None:
    """The slices' metrics come from the holdout predicted once, by row position, and equal
    predicting each slice's rows again (a shuffled, non-unique-looking index included)."""
    from mloops import training

    model, holdout = fitted
    scored = training.predictions(model, holdout, churn)
    once = evaluation.slice_checks(churn, holdout, scored.metrics)
    again = evaluation.slice_checks(
        churn,
        holdout,
        lambda rows: training.evaluate(model, holdout[rows], churn),
    )
    assert [c.value for c in once] == pytest.approx([c.value for c in again])
    assert all(c.value is not None for c in once)
    assert [c.detail for c in once] == [c.detail for c in again]
    assert scored.metrics() == pytest.approx(training.evaluate(model, holdout, churn))


def test_recorded_predictions_are_refused_when_they_do_not_fit_the_holdout(churn, fitted) -> None:
    from mloops import training

    model, holdout = fitted
    recorded = training.predictions(model, holdout, churn).frame()
    assert list(recorded.columns) == [training.PREDICTED_COLUMN, training.PROBABILITY_COLUMN]
    with pytest.raises(ValueError, match="799 recorded predictions for 800 rows"):
        training.Predictions.recorded(recorded.head(799), holdout, churn)
    with pytest.raises(ValueError, match="no probability column"):
        training.Predictions.recorded(recorded[[training.PREDICTED_COLUMN]], holdout, churn)


def test_a_model_that_does_not_reproduce_recorded_predictions_is_named_by_row(churn, fitted) -> None:
    from mloops import training

    model, holdout = fitted
    recorded = training.predictions(model, holdout, churn).frame()
    intact = training.Predictions.recorded(recorded, holdout, churn)
    assert intact.reproduced_by(model, holdout, churn, rows=20) is None
    assert intact.metrics() == pytest.approx(training.evaluate(model, holdout, churn))
    recorded.loc[7, training.PROBABILITY_COLUMN] = 0.123
    changed = training.Predictions.recorded(recorded, holdout, churn)
    why = changed.reproduced_by(model, holdout, churn, rows=20)
    assert why is not None and why.startswith("row 7 of the holdout: recorded 0.123, the model predicts ")
    assert changed.reproduced_by(model, holdout, churn, rows=7) is None
    check = evaluation.reproduce_check(20, why)
    assert not check.passed and check.detail == why
    assert evaluation.reproduce_check(20, None).passed


def test_a_regressors_recorded_predictions_are_its_values_alone(houses) -> None:
    import datetime as dt

    from mloops import training
    from mloops_examples.generator import generate_partition

    train = generate_partition("house_prices", dt.date(2026, 1, 1), rows=600, seed=3)
    holdout = generate_partition("house_prices", dt.date(2026, 1, 2), rows=300, seed=4)
    model = training.fit(houses, train)
    recorded = training.predictions(model, holdout, houses).frame()
    assert list(recorded.columns) == [training.PREDICTED_COLUMN]
    scored = training.Predictions.recorded(recorded, holdout, houses)
    assert scored.probability is None and scored.reproduced_by(model, holdout, houses, rows=20) is None
    assert scored.metrics() == pytest.approx(training.evaluate(model, holdout, houses))
    recorded.loc[0, training.PREDICTED_COLUMN] += 1.0
    why = training.Predictions.recorded(recorded, holdout, houses).reproduced_by(
        model, holdout, houses, rows=20
    )
    assert why is not None and why.startswith("row 0 of the holdout: recorded ")


@pytest.mark.parametrize(
    ("predictions", "rows", "error", "passed"),
    [
        ([0.1, 0.2], 2, None, True),
        ([0.1], 2, None, False),
        ([float("nan"), 1.0], 2, None, False),
        (None, 2, "boom", False),
    ],
)
def test_smoke_check(predictions, rows, error, passed) -> None:
    assert evaluation.smoke_check(predictions, rows, error).passed is passed


def test_report_and_gate_message(churn) -> None:
    checks = evaluation.threshold_checks(churn, {"roc_auc": 0.5, "f1": 0.5})
    payload = evaluation.report(churn, "2026-01-03", checks, {"roc_auc": 0.5, "f1": 0.5}, {"run_id": "r"})
    assert payload["passed"] is False
    markdown = evaluation.report_markdown(payload)
    assert "| threshold:roc_auc | 0.5000 | >= | 0.7000 | **FAIL** |" in markdown
    message = evaluation.gate_message(payload, "file:///r.md")
    assert "[FAIL] threshold:roc_auc: 0.5000 >= 0.7000" in message and "champion is unchanged" in message
    assert "threshold:f1" not in message


@pytest.mark.parametrize(
    ("policy", "candidate", "champion", "action", "new_champion", "previous"),
    [
        ("auto", ("3", "2026-01-03"), None, "promote", "3", None),
        ("auto", ("3", "2026-01-03"), ("2", "2026-01-02"), "promote", "3", "2"),
        ("approval", ("3", "2026-01-03"), ("2", "2026-01-02"), "promote", "3", "2"),
        ("auto", ("3", "2026-01-03"), ("3", "2026-01-03"), "keep", "3", None),
        ("auto", ("2", "2026-01-02"), ("3", "2026-01-03"), "keep", "3", None),
        ("none", ("3", "2026-01-03"), ("2", "2026-01-02"), "keep", "2", None),
        ("none", ("1", "2026-01-01"), None, "keep", None, None),
    ],
)
def test_decide_promotion(policy, candidate, champion, action, new_champion, previous) -> None:
    decision = registry.decide_promotion(
        policy, registry.Candidate(*candidate), registry.Candidate(*champion) if champion else None
    )
    assert (decision.action, decision.champion, decision.previous) == (action, new_champion, previous)
    assert decision.reason


WINS, LOSES = registry.Rematch(True, "0.81 >= 0.78"), registry.Rematch(False, "0.70 >= 0.78")


@pytest.mark.parametrize(
    ("compared_with", "champion", "on_change", "rematch", "action", "says"),
    [
        ("2", "2", "recompare", None, "proceed", "tested against the current champion v2"),
        ("none", None, "recompare", None, "proceed", "no other champion"),
        ("2", None, "recompare", None, "proceed", "no other champion"),  # champion alias removed since
        ("3", "3", "recompare", None, "proceed", "tested against"),
        ("2", "5", "recompare", None, "proceed", "no other champion"),  # candidate 5 already champion
        ("2", "4", "recompare", None, "recompare", "against v2; now v4): re-compare with v4"),
        ("none", "4", "recompare", None, "recompare", "against no champion; now v4"),
        (None, "4", "recompare", None, "recompare", "against an unrecorded champion; now v4"),
        ("2", "4", "recompare", WINS, "proceed", "v5 still wins: 0.81 >= 0.78"),
        ("2", "4", "recompare", LOSES, "refuse", "v5 does not beat v4: 0.70 >= 0.78; v4 stays champion"),
        ("2", "4", "refuse", None, "refuse", "on_champion_change is 'refuse': v4 stays champion"),
        ("2", "4", "refuse", WINS, "refuse", "on_champion_change is 'refuse'"),
    ],
)
def test_guard_champion(compared_with, champion, on_change, rematch, action, says) -> None:
    """Compare-and-set of the champion comparison: candidate v5 was tested against ``compared_with``."""
    guard = registry.guard_champion("5", compared_with, champion, on_change=on_change, rematch=rematch)
    assert guard.action == action
    assert says in guard.reason
    assert guard.recompared is (rematch is not None and on_change == "recompare")


@pytest.mark.parametrize(
    ("approval", "mode", "recorded"),
    [
        ('{"decision": "approved"}', "auto", "approval"),
        ('{"decision": "rejected"}', "auto", "auto"),
        (None, "auto", "auto"),
        ("not json", "approval", "approval"),
    ],
)
def test_promotion_policy_recorded_on_the_version(approval, mode, recorded) -> None:
    """An approved promotion runs as ``auto`` in the operator; the version says it was approved."""
    from mloops.adapters.mlflow_adapter import VersionInfo
    from mloops.stages.registry import _effective_policy

    tags = {} if approval is None else {"mloops.approval": approval}
    assert _effective_policy(VersionInfo("mloops.churn", "3", None, "", tags, ()), mode) == recorded


@pytest.mark.parametrize(
    ("task", "y_true", "predicted", "probability"),
    [
        ("classification", [0, 1, 1, 0, 1], [0, 1, 0, 0, 1], [0.2, 0.9, 0.4, 0.1, 0.7]),
        ("classification", [1, 1, 1], [1, 0, 1], [0.8, 0.3, 0.6]),  # one class: roc_auc undefined
        ("regression", [1.0, 2.5, 3.0], [1.2, 2.0, 3.5], None),
        ("classification", [], [], []),
    ],
)
def test_one_metric_equals_the_full_set(task, y_true, predicted, probability) -> None:
    """The permutation-importance score computes only the primary metric: the same value as the full set."""
    from mloops import config, training

    everything = training.compute_metrics(task, y_true, predicted, probability)
    assert set(everything) == set(config.METRICS[task])
    for name in config.METRICS[task]:
        assert training.compute_metrics(task, y_true, predicted, probability, only=name) == {
            name: everything[name]
        }
