"""Staged rollout on live labels and the automatic rollback (issue 15), through ``dag.test()`` of the
real DAGs; ``test_shadow_rollout_scheduler.py`` tells the main stories again through a real scheduler.

The story (:mod:`tests.integration.rollout_story`): v1 is trained on the old world, v2 on the new one
from 2026-01-03; the live labels decide.

* ``churn_up`` (policy ``shadow``): the new world lasts. v2 is scored in shadow beside v1 on 01-05 and
  01-06; when the labels of both intervals have arrived, v2 is better on the same rows and is promoted.
  Each label delivery rewrites the champion's card with its newest live window.
* ``churn_down`` (policy ``shadow``): the change was a blip, the old world is back on 01-05. v2 looked
  good on its holdout, but on the live labels v1 is better: v2 is retired, v1 stays champion.
* ``churn_ok`` (``shadow_then_approval``): v2 passes its shadow, then waits for a person.
* ``churn_rb`` (policy ``auto``, ``auto_rollback``): the same blip without a shadow. v2 (trained on
  the blip) is promoted at once; when its live quality arrives, far below v1's, champion rolls back.

Setup that other tests cover (validation, training, serving) runs as stage functions; what this
issue adds runs as ``dag.test()`` of the real DAGs: the training DAG's shadow entry and its
degraded promotion, the scoring DAG's ``score_shadow``, the monitoring DAG's ``join_labels`` ->
``decide_shadow`` / ``check_rollback`` (``check_drift`` is left out: drift has its own tests).
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import os
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from tests.helpers import REPO, write_models
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
    train_and_promote,
    v2_in_shadow,
    validate,
    versions,
)

pytestmark = pytest.mark.integration


@functools.cache
def _bag(models_dir: str) -> Any:
    """The DAG bag of a test's models folder, parsed once (the configs do not change within a test)."""
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(REPO / "dags"))
    assert bag.import_errors == {}, models_dir
    return bag


def _dag_test(dag_id: str, day: dt.date, hour: int, tasks: list[str] | None = None) -> dict[str, str]:
    """``dag.test()`` of the real DAG (or of the named tasks and their upstream) for ``day``'s interval."""
    dag = _bag(os.environ["MLOOPS_MODELS_DIR"]).dags[dag_id]
    if tasks:
        dag = dag.partial_subset(task_ids=tasks, include_upstream=True)
    run_after = dt.datetime.combine(day, dt.time(hour), tzinfo=dt.UTC) + dt.timedelta(days=1)
    run = dag.test(logical_date=run_after)
    return {ti.task_id: ti.state for ti in run.get_task_instances()}


@pytest.fixture
def models(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mloops_home: Path, airflow_db: Path) -> Path:
    directory = write_models(
        tmp_path / "models",
        churn_up=config("churn_up", SHADOW),
        churn_down=config("churn_down", SHADOW),
        churn_ok=config("churn_ok", {**SHADOW, "policy": "shadow_then_approval"}),
        churn_rb=config("churn_rb", ROLLBACK),
    )
    monkeypatch.setenv("MLOOPS_MODELS_DIR", str(directory))
    return directory


def test_shadow_challengers_are_promoted_or_retired_on_live_labels(models: Path, mloops_home: Path) -> None:
    data = mloops_home / "data"
    scored = [DAY[5], DAY[6]]
    land(data, "churn_up", LASTING, scored, {DAY[6]: [DAY[5]], DAY[7]: [DAY[6]]})
    land(data, "churn_down", BLIP, scored, {DAY[7]: [DAY[5], DAY[6]]})
    land(data, "churn_ok", LASTING, scored, {DAY[7]: [DAY[5], DAY[6]]})

    # v1 bootstraps champion; v2 (new world) enters shadow: the real training DAG for churn_up.
    assert train_and_promote("churn_up", DAY[2]) == "1"
    validate("churn_up", DAY[3])  # the first day of v2's window; the DAG validates the second
    assert _dag_test("mloops_train_churn_up", DAY[4], hour=2) == {
        "check_params": "success",
        "validate_batch": "success",
        "train_model": "success",
        "test_model": "success",
        "register_model": "success",
        "approve_promotion": "skipped",
        "promote_model": "skipped",  # nothing moves: v2 is in shadow
    }
    up = versions("churn_up")
    assert up["aliases"] == {"champion": "1", "previous": None, "challenger": "2"}
    assert up["tags"]["2"]["mloops.shadow.status"] == "shadowing"
    assert json.loads(up["tags"]["2"]["mloops.shadow"])["champion"] == "1"
    (started,) = events("churn_up", "shadow_started")
    assert "v2 enters shadow beside champion v1" in started["message"]

    # Scoring: the real scoring DAG on 01-05 (score_batch beside score_shadow), stage functions on 01-06.
    validate_state = _dag_test("mloops_score_churn_up", DAY[5], hour=4)
    assert validate_state == {
        "validate_batch": "success",
        "score_batch": "success",
        "score_shadow": "success",
    }
    serve("churn_up", [DAY[6]], shadow=True)
    served = pd.read_parquet(data / "predictions/churn_up/dt=2026-01-05/predictions.parquet")
    shadowed = pd.read_parquet(data / "shadow/churn_up/dt=2026-01-05/version=2/predictions.parquet")
    assert set(served["model_version"]) == {"1"} and set(shadowed["model_version"]) == {"2"}
    assert list(served["customer_id"]) == list(shadowed["customer_id"])  # the same batch, never served

    # 01-06: labels of one shadow interval only: the decision waits (a skip, with the reason).
    assert _dag_test("mloops_monitor_churn_up", DAY[6], hour=6, tasks=["decide_shadow"]) == {
        "join_labels": "success",
        "decide_shadow": "skipped",
    }
    assert versions("churn_up")["aliases"]["champion"] == "1"
    assert (data / "labeled-shadow/churn_up/dt=2026-01-05/version=2/arrival=2026-01-06.parquet").exists()
    # The label join rewrote the champion's card with its live quality; the decision, the challenger's.
    assert live_windows(card("churn_up", "1")) == ["2026-01-04..2026-01-06"]
    waiting = card("churn_up", "2")
    assert "- **Status:** challenger in shadow" in waiting
    assert "- **Shadow evidence:** labels cover 1 of the 2 intervals needed, 500 rows" in waiting

    # 01-07: two intervals labeled for both versions: v2 is better on the same rows and is promoted.
    assert _dag_test("mloops_monitor_churn_up", DAY[7], hour=6, tasks=["decide_shadow"]) == {
        "join_labels": "success",
        "decide_shadow": "success",
    }
    up = versions("churn_up")
    assert up["aliases"] == {"champion": "2", "previous": "1", "challenger": "2"}
    v2 = up["tags"]["2"]
    assert v2["mloops.shadow.status"] == "promoted" and v2["mloops.promoted_from"] == "1"
    assert v2["mloops.promoted_by.dag_id"] == "mloops_monitor_churn_up"
    assert v2["mloops.promotion.pending"] == "recorded"
    evidence = json.loads(v2["mloops.shadow"])
    assert evidence["intervals_labeled"] == ["2026-01-05", "2026-01-06"] and evidence["rows"] == 2 * ROWS
    assert evidence["challenger"]["roc_auc"] > evidence["champion"]["roc_auc"]
    (promoted,) = events("churn_up", "model_promoted")
    assert (
        promoted["message"].startswith("v2 passed its shadow: roc_auc")
        and promoted["payload"]["version"] == "2"
    )
    # The later labelled interval (01-06, arrived 01-07) is on v1's card now, beside the earlier one.
    assert live_windows(card("churn_up", "1")) == ["2026-01-04..2026-01-06", "2026-01-05..2026-01-07"]
    promoted_card = card("churn_up", "2")
    assert "- **Status:** champion" in promoted_card
    assert "- **Shadow:** promoted (in shadow from 2026-01-04 beside champion v1" in promoted_card
    assert "| 2026-01-04..2026-01-07 | 2 | 1000 | " in promoted_card  # its shadow so far vs the champion

    # churn_down: the same v1 and v2, but the old world is back: v2 is retired, v1 untouched.
    v2_in_shadow("churn_down", scored)
    assert _dag_test("mloops_monitor_churn_down", DAY[7], hour=6, tasks=["decide_shadow"]) == {
        "join_labels": "success",
        "decide_shadow": "success",
    }
    down = versions("churn_down")
    assert down["aliases"] == {"champion": "1", "previous": None, "challenger": "2"}
    v2 = down["tags"]["2"]
    assert v2["mloops.shadow.status"] == "retired" and "mloops.promoted_from" not in v2
    reason = json.loads(v2["mloops.shadow"])["reason"]
    assert reason.startswith("v2 retired after its shadow: roc_auc") and "worse (tolerance 0.0)" in reason
    (retired,) = events("churn_down", "shadow_retired")
    assert reason in retired["message"]
    assert events("churn_down", "model_promoted") == []
    assert f"- **Shadow decision:** {reason}" in card("churn_down", "2")
    # A retired challenger is never shadow-scored again.
    from mloops.contracts import RegistrationResult
    from mloops.errors import SkipStage
    from mloops.stages import shadow

    with pytest.raises(SkipStage, match="no challenger in shadow"):
        shadow.score_shadow(ctx("churn_down", DAY[8], "scoring"))

    # churn_ok (shadow_then_approval): v2 passes its shadow, then waits for a person (approve_promotion
    # reads decide_shadow's XCom as the registration); once approved, promote_shadow promotes it.
    v2_in_shadow("churn_ok", scored)
    assert _dag_test("mloops_monitor_churn_ok", DAY[7], hour=6, tasks=["decide_shadow"]) == {
        "join_labels": "success",
        "decide_shadow": "success",
    }
    ok = versions("churn_ok")
    assert ok["aliases"]["champion"] == "1" and ok["tags"]["2"]["mloops.shadow.status"] == "passed"
    (passed,) = events("churn_ok", "shadow_passed")
    assert passed["payload"]["action"] == "approve" and "waiting for approval" in passed["message"]
    approved = shadow.promote_passed(ctx("churn_ok", DAY[7]), RegistrationResult.from_xcom(passed["payload"]))
    assert approved.action == "promote" and approved.reason.endswith("; approved")
    ok = versions("churn_ok")
    assert ok["aliases"] == {"champion": "2", "previous": "1", "challenger": "2"}
    assert ok["tags"]["2"]["mloops.shadow.status"] == "promoted"


def test_a_degraded_promotion_is_rolled_back_automatically(models: Path, mloops_home: Path) -> None:
    from mloops.stages import labels

    data = mloops_home / "data"
    land(
        data,
        "churn_rb",
        RB_BLIP,
        [DAY[3], DAY[4], DAY[7], DAY[8]],
        {DAY[5]: [DAY[3], DAY[4]], DAY[9]: [DAY[7], DAY[8]]},
    )

    # v1 serves 01-03 and 01-04; their labels (01-05) record v1's live quality.
    assert train_and_promote("churn_rb", DAY[2]) == "1"
    serve("churn_rb", [DAY[3], DAY[4]], shadow=False)
    joined = labels.join_labels(ctx("churn_rb", DAY[5], "scoring"))
    assert list(joined.model_cards) == ["1"] and live_windows(card("churn_rb", "1")) == [
        "2026-01-03..2026-01-05"
    ]

    # v2, trained on the blip, passes its holdout tests and is promoted at once (the real training DAG).
    validate("churn_rb", DAY[5])
    states = _dag_test("mloops_train_churn_rb", DAY[6], hour=2)
    assert states["promote_model"] == "success", states
    assert versions("churn_rb")["aliases"] == {"champion": "2", "previous": "1", "challenger": "2"}
    serve("churn_rb", [DAY[7], DAY[8]], shadow=False)

    # 01-09: v2's live labels arrive, far below v1's: check_rollback moves champion back to v1.
    assert _dag_test("mloops_monitor_churn_rb", DAY[9], hour=6, tasks=["check_rollback"]) == {
        "join_labels": "success",
        "check_rollback": "success",
    }
    rb = versions("churn_rb")
    assert rb["aliases"] == {"champion": "1", "previous": "2", "challenger": "2"}
    audit = json.loads(rb["tags"]["1"]["mloops.last_action"])
    assert audit["action"] == "rollback" and audit["by"] == "mloops (automatic rollback on live quality)"
    assert audit["dag_run"].startswith("mloops_monitor_churn_rb/") and audit["target"] == "1"
    assert rb["tags"]["2"]["mloops.last_action"] == rb["tags"]["1"]["mloops.last_action"]
    assert any(k.startswith("mloops.audit.") and k.endswith(".rollback") for k in rb["tags"]["1"])
    (event,) = events("churn_rb", "model_rolled_back")
    assert event["message"].startswith("automatic rollback of mloops.churn_rb from v2 to v1")
    check = event["payload"]["check"]
    assert check["previous"] - check["champion"] > 0.05 and check["promoted_on"] == "2026-01-06"
    degraded = card("churn_rb", "2")  # its live quality, and the rollback in its audit trail
    assert (
        live_windows(degraded) == ["2026-01-07..2026-01-09"] and "| rollback | mloops (automatic" in degraded
    )

    # The rolled-back champion is not rolled back again by a re-run: a skip with the reason.
    assert (
        _dag_test("mloops_monitor_churn_rb", DAY[9], hour=7, tasks=["check_rollback"])["check_rollback"]
        == "skipped"
    )
    assert versions("churn_rb")["aliases"]["champion"] == "1"
