"""The fleet snapshot's pure logic: timeline, attention, ranking, filters, sparklines, the text table."""

from __future__ import annotations

import datetime as dt
import json
from types import SimpleNamespace

import pytest

from mloops.config_files import load_model_config
from mloops.fleet import snapshot, table, view
from tests.helpers import REPO

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def churn():
    return load_model_config(REPO / "include" / "models" / "churn.yaml")


def _version(v: str, interval: str, aliases=(), status="passed", run_type="scheduled"):
    return {
        "version": v,
        "run_id": f"r{v}",
        "aliases": list(aliases),
        "interval": interval,
        "test_status": status,
        "tests": {"threshold:roc_auc": status == "passed"},
        "metrics": {"roc_auc": 0.8},
        "promoted_by": {"run_type": run_type},
        "promotion_reason": "challenger beats champion",
    }


def _event(kind, at, payload, partition=None, dag="mloops_train_churn", message="m"):
    return {
        "kind": kind,
        "created_at": at,
        "payload": payload,
        "partition": partition,
        "message": message,
        "dag_id": dag,
        "run_id": "run",
    }


def test_champion_timeline_periods_actors_and_reasons() -> None:
    versions = [_version("1", "2026-01-01"), _version("2", "2026-01-02", run_type="asset_triggered")]
    events = [
        _event(
            "model_promoted",
            "2026-01-02 02:00",
            {"champion": "1", "action": "promote", "reason": "first champion"},
        ),
        _event(
            "model_promoted", "2026-01-03 02:00", {"champion": "2", "action": "promote", "reason": "better"}
        ),
        _event(
            "model_rolled_back",
            "2026-01-04 09:00",
            {
                "version": "1",
                "audit": {"by": "alice", "why": "bad predictions", "dag_run": "mloops_registry_ops/x"},
            },
            dag="mloops_registry_ops",
        ),
        _event("drift_detected", "2026-01-04 10:00", {}),
    ]
    timeline = snapshot.champion_timeline(versions, events)
    assert [(t["version"], t["action"]) for t in timeline] == [
        ("1", "promote"),
        ("2", "promote"),
        ("1", "rollback"),
    ]
    assert timeline[0]["until"] == "2026-01-03 02:00" and timeline[-1]["until"] is None
    assert timeline[1]["by"] == "asset_triggered run"
    assert (timeline[2]["by"], timeline[2]["why"], timeline[2]["dag_run"]) == (
        "alice",
        "bad predictions",
        "mloops_registry_ops/x",
    )


def test_quarantined_batch_and_breached_drift_need_attention(churn) -> None:
    verdicts = [{"partition": f"2026-01-0{d}", "status": "passed", "rows": 100} for d in (1, 2, 4)]
    verdicts.append(
        {
            "partition": "2026-01-03",
            "status": "quarantined",
            "quarantine": "/q",
            "failures": [
                {
                    "column": "monthly_charges",
                    "expectation": "expect_column_values_to_not_be_null",
                    "observed": "60%",
                    "expected": "<= 5%",
                }
            ],
        }
    )
    metrics = [
        {
            "model_version": "1",
            "window_start": dt.date(2026, 1, 2),
            "window_end": dt.date(2026, 1, 4),
            "metric": m,
            "value": v,
        }
        for m, v in (("drift.share", 0.5), ("policy.breached", 1.0), ("quality.roc_auc", 0.6))
    ]
    # The label feed's and a shadow's numbers are no drift windows.
    metrics += [
        {**metrics[0], "window_start": dt.date(2026, 1, 1), "metric": m, "value": 1.0}
        for m in ("labels.quality.roc_auc", "shadow.intervals", "shadow.challenger.roc_auc")
    ]
    row = snapshot.build_row(
        churn,
        versions=[_version("1", "2026-01-02", aliases=["champion"])],
        verdicts=verdicts,
        metrics=metrics,
        events=[],
        scored=["2026-01-04"],
    )
    summary = row["summary"]
    assert row["status"] == "attention"
    assert [b["date"] for b in summary["recent_bad"]] == ["2026-01-03"]
    assert any("drift policy breached" in r for r in summary["reasons"])
    assert any("live roc_auc 0.600 < champion 0.800" in r for r in summary["reasons"])
    assert (
        "monthly_charges: expect_column_values_to_not_be_null observed 60%"
        in row["detail"]["partitions"][2]["reason"]
    )
    assert summary["drift"] == [
        {
            "window_end": "2026-01-04",
            "share": 0.5,
            "prediction": None,
            "breached": True,
        }
    ]
    assert len(row["detail"]["drift"]) == 1
    assert (
        row["detail"]["drift"][0]["labeled"] is None
    )  # every field, recorded or not (the model page reads them)


def test_healthy_late_and_untrained_models(churn) -> None:
    passed = [{"partition": "2026-01-04", "status": "passed"}]
    ok = snapshot.build_row(
        churn,
        versions=[_version("1", "2026-01-03", aliases=["champion"])],
        verdicts=passed,
        metrics=[],
        events=[],
        scored=["2026-01-04"],
    )
    assert (ok["status"], ok["summary"]["reasons"]) == ("ok", [])
    late = snapshot.build_row(
        churn,
        versions=[_version("1", "2026-01-03", aliases=["champion"])],
        verdicts=passed,
        metrics=[],
        events=[],
        scored=["2026-01-01"],
    )
    assert late["summary"]["scoring_late"] and late["status"] == "attention"
    untrained = snapshot.build_row(churn, versions=[], verdicts=[], metrics=[], events=[], scored=[])
    assert untrained["status"] == "no champion"


def test_gate_failure_after_the_last_version_is_the_last_training(churn) -> None:
    events = [
        _event(
            "gate_failed",
            "2026-01-05 02:10",
            {},
            partition=dt.date(2026, 1, 5),
            message="threshold:roc_auc 0.61 < 0.70",
        )
    ]
    row = snapshot.build_row(
        churn,
        versions=[_version("1", "2026-01-03", aliases=["champion"])],
        verdicts=[],
        metrics=[],
        events=events,
        scored=[],
    )
    training = row["summary"]["last_training"]
    assert (training["state"], training["partition"], training["gate"]) == (
        "failed",
        "2026-01-05",
        "gate_failed",
    )
    assert "0.61 < 0.70" in training["message"]


def test_airflow_state_ranks_filters_and_draws() -> None:
    rows = [
        {"model": "a", "status": "ok", "reasons": [], "owner": "x", "tags": ["t"]},
        {"model": "b", "status": "no champion", "reasons": [], "owner": "y", "tags": []},
        {"model": "c", "status": "ok", "reasons": [], "owner": "x", "tags": []},
    ]
    runs = {"mloops_train_c": {"run_id": "r", "state": "failed"}}
    approvals = {"a": [{"since": "2026-01-05T10:00:00", "assignees": ["alice"]}]}
    joined = view.join_airflow(rows, runs, approvals)
    assert [r["model"] for r in joined] == ["a", "c", "b"]
    assert joined[0]["reasons"] == ["approval pending since 2026-01-05T10:00 (alice)"]
    assert [r["model"] for r in view.filter_rows(joined, "x", None, "attention")] == ["a", "c"]
    assert [r["model"] for r in view.filter_rows(joined, None, "t", None)] == ["a"]
    svg = view.sparkline([0.1, None, 0.5], label="drift share", threshold=0.3, flags=[False, False, True])
    assert 'data-points="2"' in svg and svg.count('class="breach"') == 1 and "threshold" in svg
    assert 'data-count="1"' in svg and svg.count("<polyline") == 1 and "<circle" not in svg
    assert 'class="breach"' not in view.sparkline([0.1, 0.2], label="x", flags=[False, False])
    assert "empty" in view.sparkline([None], label="x")


def test_text_table_lists_attention_first(churn) -> None:
    bad = snapshot.build_row(
        churn,
        versions=[],
        verdicts=[{"partition": "2026-01-03", "status": "missing", "message": "no file"}],
        metrics=[],
        events=[],
        scored=[],
    )
    good = snapshot.build_row(
        churn,
        versions=[_version("1", "2026-01-03", aliases=["champion"])],
        verdicts=[],
        metrics=[],
        events=[],
        scored=[],
    )
    text = table.render([{**good["summary"], "model": "good"}, {**bad["summary"], "model": "bad"}])
    lines = text.splitlines()
    assert lines[0].startswith("model") and lines[1].startswith("bad") and "2026-01-03 missing" in lines[1]
    assert "v1 (2026-01-03)" in lines[2]
    assert "bad: 2026-01-03 missing" in text


def test_demo_end_state_is_what_the_fleet_page_shows(churn) -> None:
    """``make run`` ends by checking the snapshot the Models page reads: both models, the quarantined
    batch and the drift-triggered retrain."""
    retrained = {**_version("2", "2026-01-09", aliases=["champion"]), "trigger": "drift"}
    inputs = {
        "versions": [_version("1", "2026-01-05"), retrained],
        "verdicts": [
            {"partition": "2026-01-06", "status": "quarantined", "failures": []},
            {"partition": "2026-01-07", "status": "passed"},
        ],
        "metrics": [],
        "events": [],
        "scored": [],
    }
    built = snapshot.build_row(churn, **inputs)
    row = {**built["summary"], **built["detail"]}
    assert snapshot.demo_shown({"churn": row, "house_prices": row}) == []
    assert snapshot.demo_shown({"churn": row, "house_prices": None}) == [
        "house_prices: no row in the fleet snapshot"
    ]
    plain = snapshot.build_row(
        churn, **{**inputs, "versions": [_version("1", "2026-01-05")], "verdicts": inputs["verdicts"][1:]}
    )
    assert snapshot.demo_shown({"churn": {**plain["summary"], **plain["detail"]}}) == [
        "no quarantined batch in the fleet snapshot",
        "no drift-triggered version in the fleet snapshot",
    ]


def test_an_hourly_model_is_watched_per_hour(churn) -> None:
    """Missing and late partitions, drift windows and failures are told apart per hour."""
    hourly = churn.model_copy(update={"schedule": churn.schedule.model_copy(update={"interval": "1h"})})
    keys = [f"2026-01-01T{h:02d}" for h in range(20, 24)] + ["2026-01-02T00", "2026-01-02T01"]
    verdicts = [{"partition": k, "status": "passed", "rows": 50} for k in keys]
    verdicts[1]["status"] = "missing"  # 21:00 and midnight: within the last RECENT_INTERVALS (7) hours
    verdicts[4]["status"] = "missing"
    verdicts.append({"partition": "2026-01-01T12", "status": "missing"})  # the same day, 13 hours back
    hour = dt.timedelta(hours=1)
    metrics = [
        {
            "model_version": "1",
            "window_start": dt.datetime(2026, 1, 1, 22, tzinfo=dt.UTC) + offset * hour,
            "window_end": dt.datetime(2026, 1, 2, 0, tzinfo=dt.UTC) + offset * hour,
            "metric": "drift.share",
            "value": 0.1 * offset,
        }
        for offset in (0, 1)
    ]
    events = [_event("gate_failed", "t", {}, partition=dt.datetime(2026, 1, 2, 1, tzinfo=dt.UTC))]
    row = snapshot.build_row(
        hourly,
        versions=[_version("1", "2026-01-01T23", aliases=["champion"])],
        verdicts=verdicts,
        metrics=metrics,
        events=events,
        scored=["2026-01-01T23"],
    )
    summary = row["summary"]
    assert [b["date"] for b in summary["recent_bad"]] == ["2026-01-01T21", "2026-01-02T00"]
    assert [d["window_end"] for d in row["detail"]["drift"]] == ["2026-01-02T00", "2026-01-02T01"]
    assert summary["last_training"]["partition"] == "2026-01-02T01"
    assert row["detail"]["events"][0]["partition"] == "2026-01-02T01"
    # Scored up to 23:00 while 01:00 arrived: two hours behind is late for an hourly model.
    assert summary["scoring_late"] is True
    on_time = snapshot.build_row(
        hourly,
        versions=[_version("1", "2026-01-01T23", aliases=["champion"])],
        verdicts=verdicts,
        metrics=[],
        events=[],
        scored=["2026-01-02T00"],
    )
    assert on_time["summary"]["scoring_late"] is False


def _registered(version: str, aliases: list[str], tags: dict[str, str]) -> dict:
    """A version row as the collector builds it from the registry (tags parsed by ``version_row``)."""
    info = SimpleNamespace(version=version, run_id=f"r{version}", aliases=aliases, tags=tags)
    return snapshot.version_row(info)


def _shadow_tags(status: str, **state) -> dict[str, str]:
    record = {"status": status, "since": "2026-01-05", "champion": "1", "intervals": 3, **state}
    return {
        "mloops.data_interval_start": "2026-01-04",
        "mloops.test_status": "passed",
        "mloops.shadow.status": status,
        "mloops.shadow": json.dumps(record),
    }


@pytest.mark.parametrize(
    ("versions", "shown", "decided"),
    [
        ([], "none", None),
        (
            [("2", ["challenger"], _shadow_tags("shadowing", reason="v2 enters shadow beside champion v1"))],
            "v2 in shadow since 2026-01-05: 0/3 intervals labeled",
            False,
        ),
        (
            [
                (
                    "2",
                    ["challenger"],
                    _shadow_tags(
                        "shadowing",
                        intervals_labeled=["2026-01-05", "2026-01-06"],
                        intervals_scored=3,
                        max_intervals=10,
                    ),
                )
            ],
            "v2 in shadow since 2026-01-05: 2/3 intervals labeled, scored 3 of at most 10",
            False,
        ),
        (
            [
                ("2", [], _shadow_tags("retired", reason="v2 retired after its shadow: roc_auc 0.61 vs ...")),
                # decided: "champion" holds the champion's metrics, "compared_with" names it
                (
                    "3",
                    ["challenger"],
                    _shadow_tags(
                        "passed",
                        compared_with="1",
                        champion={"roc_auc": 0.7},
                        intervals_labeled=["2026-01-08", "2026-01-09", "2026-01-10"],
                        reason="v3 passed its shadow: ...; waiting for approval",
                    ),
                ),
            ],
            "v3 passed its shadow, waiting for approval (3/3 intervals labeled)",
            True,
        ),
        (
            [("2", [], _shadow_tags("retired", intervals_labeled=["2026-01-05"], reason="v2 retired ..."))],
            "v2 retired after its shadow (1/3 intervals labeled)",
            True,
        ),
    ],
)
def test_shadow_status_per_model(churn, versions, shown, decided) -> None:
    """The fleet row shows the newest shadow: the challenger, intervals labeled so far of those required,
    and the decision once it is made; the text table shows the same line."""
    registered = [_registered("1", ["champion"], {"mloops.data_interval_start": "2026-01-02"})]
    registered += [_registered(v, aliases, tags) for v, aliases, tags in versions]
    row = snapshot.build_row(
        churn, versions=registered, verdicts=[], metrics=[], events=[], scored=["2026-01-06"]
    )
    shadow = row["summary"]["shadow"]
    assert view.shadow_text(shadow) == shown
    if decided is None:
        assert shadow is None
    else:
        assert shadow["version"] == versions[-1][0] and shadow["decided"] is decided
        assert shadow["reason"] == json.loads(versions[-1][2]["mloops.shadow"]).get("reason")
        assert shadow["champion"] == "1"
    header, line = table.render([row["summary"]]).splitlines()[:2]
    assert line[header.index("  shadow  ") + 2 :].startswith(shown)  # in its own column
