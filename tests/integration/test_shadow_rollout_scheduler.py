"""Staged rollout and automatic rollback through a real scheduler (issue 15), driven over the REST API.

The story of :mod:`tests.integration.rollout_story` (v1 on the old world, v2 on the new one), as the
supervised components of ``make ui`` run it: manual runs of the real training, scoring and monitoring
DAGs, each task a process of the scheduler's LocalExecutor, registry tasks in the registry pool.

* ``churn_up`` and ``churn_down`` (policy ``shadow``, side by side): the training DAG puts each v2 in
  shadow; the scoring DAG scores it beside v1 on 01-05; the monitoring DAG joins each label delivery
  and ``decide_shadow`` judges. The new world lasts for ``churn_up``: v2 waits for its second
  labelled interval, then is promoted. It was a blip for ``churn_down``: v2 is retired, v1 stays.
  Every label delivery rewrites the champion's model card with its newest live window.
* ``churn_rb`` (policy ``auto``, ``auto_rollback``): v2, trained on the blip, is promoted at once by the
  training DAG; when its live labels arrive far below v1's, ``check_rollback`` rolls champion back,
  audited like a manual rollback, with its event.

Set-up that other tests cover (v1's training, the serving of 01-06 and of the rollback story, the
rollback story's first label join) runs as stage functions in this process, on the stack's stores.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from tests.helpers import write_models
from tests.integration.rollout_story import (
    BLIP,
    DAY,
    LASTING,
    RB_BLIP,
    ROLLBACK,
    ROWS,
    SHADOW,
    card,
    config,
    ctx,
    events,
    land,
    live_windows,
    serve,
    shadow_record,
    train_and_promote,
    validate,
    versions,
)
from tests.integration.scheduler_api import local_stack

pytestmark = pytest.mark.integration
MODELS = {"churn_up": SHADOW, "churn_down": SHADOW, "churn_rb": ROLLBACK}
RUN_TIMEOUT = 600  # a few runs side by side on a loaded 2-core machine


def _train(model: str) -> str:
    return f"mloops_train_{model}"


def _score(model: str) -> str:
    return f"mloops_score_{model}"


def _monitor(model: str) -> str:
    return f"mloops_monitor_{model}"


def _on(day) -> dict[str, str]:
    return {"partition_date": day.isoformat()}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, airflow_db: Path):
    root = tmp_path_factory.mktemp("rollout")
    models = write_models(root / "models", **{m: config(m, p) for m, p in MODELS.items()})
    dag_ids = [f(m) for m in MODELS for f in (_train, _score, _monitor)]
    with local_stack(root, models, dag_ids) as local:
        yield local


TRAINED = {
    "check_params": "success",
    "validate_batch": "success",
    "train_model": "success",
    "test_model": "success",
    "register_model": "success",
    "approve_promotion": "skipped",
}
MONITORED = {"join_labels": "success", "check_drift": "success", "trigger_retraining": "skipped"}


def test_shadow_challengers_are_promoted_or_retired_on_live_labels(stack) -> None:
    from mloops.settings import get_settings

    data = get_settings().data_root
    scored = [DAY[5], DAY[6]]
    land(data, "churn_up", LASTING, scored, {DAY[6]: [DAY[5]], DAY[7]: [DAY[6]]})
    land(data, "churn_down", BLIP, scored, {DAY[7]: [DAY[5], DAY[6]]})
    for model in ("churn_up", "churn_down"):
        assert train_and_promote(model, DAY[2]) == "1"
        validate(model, DAY[3])  # the first day of v2's window; the training DAG validates the second

    # Training DAGs of both models side by side: each v2 enters shadow, nothing moves.
    trained = stack.api.run_all([(_train(m), _on(DAY[4])) for m in ("churn_up", "churn_down")], RUN_TIMEOUT)
    assert trained == [{**TRAINED, "promote_model": "skipped"}] * 2, trained
    for model in ("churn_up", "churn_down"):
        stack.api.set_paused(_train(model), True)
        found = versions(model)
        assert found["aliases"] == {"champion": "1", "previous": None, "challenger": "2"}
        assert found["tags"]["2"]["mloops.shadow.status"] == "shadowing"
        (started,) = events(model, "shadow_started")
        assert "v2 enters shadow beside champion v1" in started["message"]

    # Scoring DAGs on 01-05: v1 serves, v2 is scored beside it on the same batch (01-06: stage functions).
    states = stack.api.run_all([(_score(m), _on(DAY[5])) for m in ("churn_up", "churn_down")], RUN_TIMEOUT)
    assert states == [{"validate_batch": "success", "score_batch": "success", "score_shadow": "success"}] * 2
    for model in ("churn_up", "churn_down"):
        served = pd.read_parquet(data / f"predictions/{model}/dt=2026-01-05/predictions.parquet")
        shadowed = pd.read_parquet(data / f"shadow/{model}/dt=2026-01-05/version=2/predictions.parquet")
        assert set(served["model_version"]) == {"1"} and set(shadowed["model_version"]) == {"2"}
        assert list(served["customer_id"]) == list(shadowed["customer_id"])
        serve(model, [DAY[6]], shadow=True)

    # Monitoring: churn_up on 01-06 (one shadow interval labelled: wait) then 01-07 (two: decide);
    # churn_down on 01-07 (both intervals labelled at once) beside them.
    runs = [(_monitor("churn_up"), _on(DAY[6])), (_monitor("churn_down"), _on(DAY[7]))]
    runs.append((_monitor("churn_up"), _on(DAY[7])))
    waited, down_decided, up_decided = stack.api.run_all(runs, RUN_TIMEOUT)
    assert waited == {**MONITORED, "decide_shadow": "skipped"}, waited
    assert down_decided == up_decided == {**MONITORED, "decide_shadow": "success"}, (down_decided, up_decided)

    # churn_up: v2 was better on the same rows of both intervals and is champion, audited as a promotion.
    up = versions("churn_up")
    assert up["aliases"] == {"champion": "2", "previous": "1", "challenger": "2"}
    v2 = up["tags"]["2"]
    assert v2["mloops.shadow.status"] == "promoted" and v2["mloops.promoted_from"] == "1"
    assert v2["mloops.promoted_by.dag_id"] == "mloops_monitor_churn_up"
    assert v2["mloops.promoted_by.run_type"] == "manual" and v2["mloops.promotion.pending"] == "recorded"
    evidence = shadow_record(v2)
    assert evidence["intervals_labeled"] == ["2026-01-05", "2026-01-06"] and evidence["rows"] == 2 * ROWS
    assert (
        evidence["intervals_scored"] == 2
        and evidence["challenger"]["roc_auc"] > evidence["champion"]["roc_auc"]
    )
    (promoted,) = events("churn_up", "model_promoted")
    assert (
        promoted["message"].startswith("v2 passed its shadow: roc_auc")
        and promoted["payload"]["version"] == "2"
    )
    assert promoted["dag_id"] == "mloops_monitor_churn_up"

    # The champion's card was rewritten by each label delivery: the later labelled interval is on it.
    assert live_windows(card("churn_up", "1")) == ["2026-01-04..2026-01-06", "2026-01-05..2026-01-07"]
    promoted_card = card("churn_up", "2")
    assert (
        "- **Status:** champion" in promoted_card
        and "- **Shadow:** promoted (in shadow from" in promoted_card
    )

    # churn_down: v1 was better on the live labels: v2 is retired with the reason, v1 untouched.
    down = versions("churn_down")
    assert down["aliases"] == {"champion": "1", "previous": None, "challenger": "2"}
    v2 = down["tags"]["2"]
    assert v2["mloops.shadow.status"] == "retired" and "mloops.promoted_from" not in v2
    reason = shadow_record(v2)["reason"]
    assert reason.startswith("v2 retired after its shadow: roc_auc") and "worse (tolerance 0.0)" in reason
    (retired,) = events("churn_down", "shadow_retired")
    assert reason in retired["message"] and retired["dag_id"] == "mloops_monitor_churn_down"
    assert events("churn_down", "model_promoted") == []  # (v1 bootstrapped as a stage function: no event)
    retired_card = card("churn_down", "2")
    assert (
        "- **Status:** retired after its shadow" in retired_card
        and f"- **Shadow decision:** {reason}" in retired_card
    )


def test_a_degraded_promotion_is_rolled_back_automatically(stack) -> None:
    from mloops.settings import get_settings
    from mloops.stages import labels

    data = get_settings().data_root
    land(
        data,
        "churn_rb",
        RB_BLIP,
        [DAY[3], DAY[4], DAY[7], DAY[8]],
        {DAY[5]: [DAY[3], DAY[4]], DAY[9]: [DAY[7], DAY[8]]},
    )

    # v1 serves 01-03 and 01-04; their labels arrive on 01-05 and record v1's live quality.
    assert train_and_promote("churn_rb", DAY[2]) == "1"
    serve("churn_rb", [DAY[3], DAY[4]], shadow=False)
    labels.join_labels(ctx("churn_rb", DAY[5], "scoring"))
    assert live_windows(card("churn_rb", "1")) == ["2026-01-03..2026-01-05"]

    # v2, trained on the blip, passes its holdout tests and the training DAG promotes it at once.
    validate("churn_rb", DAY[5])
    (trained,) = stack.api.run_all([(_train("churn_rb"), _on(DAY[6]))], RUN_TIMEOUT)
    assert trained == {**TRAINED, "promote_model": "success"}, trained
    stack.api.set_paused(_train("churn_rb"), True)
    assert versions("churn_rb")["aliases"] == {"champion": "2", "previous": "1", "challenger": "2"}
    serve("churn_rb", [DAY[7], DAY[8]], shadow=False)

    # 01-09: v2's live labels arrive, far below v1's: check_rollback moves champion back to v1.
    (rolled,) = stack.api.run_all([(_monitor("churn_rb"), _on(DAY[9]))], RUN_TIMEOUT)
    assert rolled == {**MONITORED, "check_rollback": "success"}, rolled
    rb = versions("churn_rb")
    assert rb["aliases"] == {"champion": "1", "previous": "2", "challenger": "2"}
    audit = json.loads(rb["tags"]["1"]["mloops.last_action"])
    assert audit["action"] == "rollback" and audit["by"] == "mloops (automatic rollback on live quality)"
    assert audit["dag_run"].startswith("mloops_monitor_churn_rb/manual__") and audit["target"] == "1"
    assert rb["tags"]["2"]["mloops.last_action"] == rb["tags"]["1"]["mloops.last_action"]
    assert any(k.startswith("mloops.audit.") and k.endswith(".rollback") for k in rb["tags"]["1"])
    (event,) = events("churn_rb", "model_rolled_back")
    assert event["message"].startswith("automatic rollback of mloops.churn_rb from v2 to v1")
    assert event["dag_id"] == "mloops_monitor_churn_rb"
    check = event["payload"]["check"]
    assert check["previous"] - check["champion"] > 0.05 and check["promoted_on"] == "2026-01-06"
    degraded = card("churn_rb", "2")  # its live quality, and the rollback in its audit trail
    assert (
        live_windows(degraded) == ["2026-01-07..2026-01-09"] and "| rollback | mloops (automatic" in degraded
    )
    assert "- **Status:** previous champion (the rollback target)" in degraded
