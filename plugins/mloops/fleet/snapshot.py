"""The fleet snapshot: one row per model that the fleet page reads with one query.

This module is the pure part: :func:`build_row` turns what the stages wrote into a row, so it is
tested without MLflow or files; :mod:`mloops.fleet.collect` gathers those inputs, stores the row
and reads it back. Nothing here imports Airflow: what only the Airflow database knows (run states,
pending approvals) is joined in by the web app at read time (:mod:`mloops.fleet.airflow_state`).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from mloops.contracts import (
    AUDIT_TAG_PREFIX,
    DRIFT_METRIC_FAMILIES,
    METRIC_TAG_PREFIX,
    PROMOTED_BY_TAG_PREFIX,
    Alias,
    EventKind,
    ShadowStatus,
    Status,
    Tag,
    shadowed_champion,
)
from mloops.partitions import DAY, Partition, key_of

if TYPE_CHECKING:
    from mloops.config import ModelConfig

log = logging.getLogger(__name__)

SPARK_WINDOWS = 30  # drift windows drawn on the fleet page
RECENT_INTERVALS = 7  # intervals checked for quarantined or missing batches
HISTORY_DAYS = 90  # history kept on the model page
EVENTS_KEPT = 20
VERSIONS_KEPT = 30


class Attention:
    """Row statuses, worst first (the fleet page sorts on this order)."""

    ATTENTION = "attention"
    NO_CHAMPION = "no champion"
    OK = "ok"
    ORDER = (ATTENTION, NO_CHAMPION, OK)


def _key(value: Any, length: dt.timedelta = DAY) -> str | None:
    """The partition key of a stored window bound or event partition (``None`` stays ``None``)."""
    return None if value is None else key_of(value, length)


def shadow_row(tags: Mapping[str, str]) -> dict[str, Any] | None:
    """A version's shadow stage from its tags (``None``: never in shadow): status, since when, beside
    which champion, intervals labeled for both versions so far / required, intervals scored / limit,
    and the reason of the last decision (the decision itself once it is made)."""
    try:
        state = json.loads(tags.get(Tag.SHADOW) or "{}")
    except ValueError:
        state = {}
    status = tags.get(Tag.SHADOW_STATUS)
    if not status or not isinstance(state, dict):
        return None
    return {
        "status": status,
        "since": state.get("since"),
        "champion": shadowed_champion(state),
        "labeled": len(state.get("intervals_labeled") or []),
        "required": state.get("intervals"),
        "scored": state.get("intervals_scored"),
        "max_intervals": state.get("max_intervals"),
        "decided": status != ShadowStatus.SHADOWING,
        "reason": state.get("reason"),
        "at": state.get("at_interval"),
    }


def version_row(info: Any) -> dict[str, Any]:
    tags = dict(info.tags)
    try:
        tests = json.loads(tags.get(Tag.TESTS, "{}"))
    except ValueError:
        tests = {}
    return {
        "version": str(info.version),
        "run_id": info.run_id,
        "aliases": sorted(info.aliases),
        "interval": tags.get(Tag.DATA_INTERVAL),
        "test_status": tags.get(Tag.TEST_STATUS),
        "tests": tests,
        "test_report": tags.get(Tag.TEST_REPORT),
        "model_card": tags.get(Tag.MODEL_CARD),
        "metrics": {
            k.removeprefix(METRIC_TAG_PREFIX): float(v)
            for k, v in tags.items()
            if k.startswith(METRIC_TAG_PREFIX)
        },
        "archived": tags.get(Tag.ARCHIVED) == "true",
        "promoted_from": tags.get(Tag.PROMOTED_FROM),
        "promotion_reason": tags.get(Tag.PROMOTION_REASON),
        "promoted_by": {
            k.removeprefix(PROMOTED_BY_TAG_PREFIX): v
            for k, v in tags.items()
            if k.startswith(PROMOTED_BY_TAG_PREFIX)
        },
        "audit": sorted(
            (
                json.loads(v) | {"key": k.removeprefix(AUDIT_TAG_PREFIX)}
                for k, v in tags.items()
                if k.startswith(AUDIT_TAG_PREFIX)
            ),
            key=lambda a: str(a.get("at", "")),
        ),
        "shadow": shadow_row(tags),
        "trigger": tags.get(Tag.TRIGGER),
        "dag_run": "/".join(filter(None, (tags.get("airflow.dag_id"), tags.get("airflow.run_id")))) or None,
    }


def champion_timeline(
    versions: Sequence[Mapping[str, Any]], events: Sequence[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """Which version was champion from when to when, who or what made it so and why.

    The events table holds every promotion and rollback with its time (the automatic promotions of
    the training DAG and the audited actions of the registry-ops DAG alike); the versions' audit and
    promotion tags say who and why. The last entry is the current champion (``until`` is None).
    """
    by_version = {v["version"]: v for v in versions}
    changes: list[dict[str, Any]] = []
    for event in events:
        payload = event.get("payload") or {}
        if event["kind"] == EventKind.MODEL_PROMOTED:
            version = str(payload.get("champion") or payload.get("version") or "")
        elif event["kind"] == EventKind.MODEL_ROLLED_BACK:
            version = str(payload.get("version") or "")
        else:
            continue
        if not version:
            continue
        audit = payload.get("audit") or {}
        tags = by_version.get(version, {})
        trigger = (tags.get("promoted_by") or {}).get("run_type") if not audit else None
        changes.append(
            {
                "version": version,
                "since": str(event["created_at"]),
                "until": None,
                "action": "rollback"
                if event["kind"] == EventKind.MODEL_ROLLED_BACK
                else str(payload.get("action") or "promote"),
                "by": audit.get("by") or (f"{trigger} run" if trigger else "training DAG"),
                "why": audit.get("why")
                or payload.get("reason")
                or tags.get("promotion_reason")
                or event.get("message"),
                "dag_run": audit.get("dag_run")
                or "/".join(filter(None, (event.get("dag_id"), event.get("run_id"))))
                or None,
            }
        )
    changes.sort(key=lambda c: c["since"])
    for current, following in zip(changes, changes[1:], strict=False):
        current["until"] = following["since"]
    return changes


def _failure_text(failure: Any) -> str:
    if not isinstance(failure, Mapping):
        return str(failure)
    column = f"{failure['column']}: " if failure.get("column") else ""
    observed, expected = failure.get("observed"), failure.get("expected")
    return f"{column}{failure.get('expectation')} observed {observed}, expected {expected}"


def _partition_rows(verdicts: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for verdict in sorted(verdicts, key=lambda v: v["partition"]):
        failures = verdict.get("failures") or []
        reason = (
            verdict.get("message")
            if verdict.get("status") in (Status.MISSING, Status.PASSED_WITH_QUARANTINED_ROWS)
            else "; ".join(_failure_text(f) for f in failures[:5])
        )
        rows.append(
            {
                "date": verdict["partition"],
                "status": verdict.get("status"),
                "usable": Status.usable(verdict.get("status")),
                "rows": verdict.get("rows"),
                "rows_quarantined": verdict.get("rows_quarantined", 0),
                "docs_url": verdict.get("docs_url"),
                "quarantine": verdict.get("quarantine"),
                "reason": reason or None,
                "resolved": bool(verdict.get("resolved")),
            }
        )
    return rows[-HISTORY_DAYS:]


def drift_history(
    metrics: Sequence[Mapping[str, Any]], primary_metric: str, length: dt.timedelta = DAY
) -> list[dict[str, Any]]:
    """One entry per monitored window (oldest first): share, prediction drift, policy, live quality;
    windows are told apart by partition keys of the model's interval ``length``."""
    windows: dict[tuple[str, str], dict[str, Any]] = {}
    for row in metrics:
        if str(row["metric"]).split(".", 1)[0] not in DRIFT_METRIC_FAMILIES:  # the label feed's, a shadow's
            continue
        key = (_key(row["window_start"], length) or "", _key(row["window_end"], length) or "")
        entry = windows.setdefault(  # every window has every field (a label-fed model's has no quality.*)
            key,
            {
                "window_start": key[0],
                "window_end": key[1],
                "version": row["model_version"],
                "share": None,
                "prediction": None,
                "breached": False,
                "quality": None,
                "labeled": None,
            },
        )
        name = row["metric"]
        if name == "drift.share":
            entry["share"] = row["value"]
        elif name == "drift.prediction":
            entry["prediction"] = row["value"]
        elif name == "policy.breached":
            entry["breached"] = bool(row["value"])
        elif name == f"quality.{primary_metric}":
            entry["quality"] = row["value"]
        elif name == "rows.labeled":
            entry["labeled"] = row["value"]
    return [windows[k] for k in sorted(windows, key=lambda k: k[1])][-HISTORY_DAYS:]


def _last_training(
    versions: Sequence[Mapping[str, Any]], events: Sequence[Mapping[str, Any]], length: dt.timedelta = DAY
) -> dict[str, Any] | None:
    """The newest training outcome the stores know: a registered version, or a failed gate/batch after it."""
    latest = max(versions, key=lambda v: (v.get("interval") or "", int(v["version"])), default=None)
    outcome = None
    if latest is not None:
        outcome = {
            "partition": latest.get("interval"),
            "state": "passed" if latest.get("test_status") == "passed" else "failed",
            "version": latest["version"],
            "gate": None,
            "failed_checks": sorted(k for k, ok in latest["tests"].items() if not ok),
        }
    failures = [
        e
        for e in events
        if e["kind"] in (EventKind.GATE_FAILED, EventKind.BATCH_QUARANTINED, EventKind.BATCH_MISSING)
        and str(e.get("dag_id") or "").startswith("mloops_train_")
    ]
    failure = failures[-1] if failures else None
    if failure is not None and (
        outcome is None or (_key(failure["partition"], length) or "") >= (outcome["partition"] or "")
    ):
        outcome = {
            "partition": _key(failure["partition"], length),
            "state": "failed",
            "version": None,
            "gate": failure["kind"],
            "message": failure["message"],
            "dag_run": f"{failure['dag_id']}/{failure['run_id']}",
        }
    return outcome


def _attention(summary: Mapping[str, Any], config: ModelConfig) -> list[str]:
    """Why a person should look at this model now (empty: nothing to do)."""
    reasons = []
    training = summary.get("last_training") or {}
    if training.get("state") == "failed":
        reasons.append(
            f"training of {training.get('partition')} failed"
            + (
                f": {training['gate']}"
                if training.get("gate")
                else f" checks {training.get('failed_checks')}"
            )
        )
    if summary["recent_bad"]:
        reasons.append(", ".join(f"{b['date']} {b['status']}" for b in summary["recent_bad"]))
    last = (summary.get("drift") or [{}])[-1]
    if last.get("breached"):
        reasons.append(f"drift policy breached in the window ending {last.get('window_end')}")
    quality, reference = summary.get("live_quality"), summary.get("champion_metric")
    if (
        quality is not None
        and reference is not None
        and quality < reference - config.monitoring.max_quality_drop
    ):
        reasons.append(f"live {config.evaluation.primary_metric} {quality:.3f} < champion {reference:.3f}")
    if summary.get("scoring_late"):
        reasons.append(f"scoring late: last scored {summary.get('last_scored') or 'never'}")
    return reasons


def latest_shadow(versions: Sequence[Mapping[str, Any]]) -> dict[str, Any] | None:
    """The shadow of the model's newest version that went through one: the challenger in shadow now,
    or how the last shadow ended (``None``: no version was ever in shadow)."""
    shadowed = [v for v in versions if v.get("shadow")]
    if not shadowed:
        return None
    newest = max(shadowed, key=lambda v: int(v["version"]))
    return {"version": newest["version"], **newest["shadow"]}


def _partition(key: str | None, length: dt.timedelta) -> Partition | None:
    """The partition a key names, or ``None`` (no key, or one written under another interval)."""
    try:
        return Partition.parse(key, length) if key else None
    except ValueError:
        return None


def build_row(
    config: ModelConfig,
    *,
    versions: Sequence[Mapping[str, Any]],
    verdicts: Sequence[Mapping[str, Any]],
    metrics: Sequence[Mapping[str, Any]],
    events: Sequence[Mapping[str, Any]],
    scored: Sequence[str],
    reports: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The snapshot row of one model from plain inputs: ``{"status", "summary", "detail"}``."""
    primary = config.evaluation.primary_metric
    champion = next((v for v in versions if Alias.CHAMPION in v["aliases"]), None)
    timeline = champion_timeline(versions, events)
    partitions = _partition_rows(verdicts)
    newest = max([p["date"] for p in partitions] + list(scored), default=None)
    length = config.interval
    # Per interval: the last RECENT_INTERVALS partitions (days, or hours of an hourly model).
    end = _partition(newest, length)
    recent = {p.key for p in end.window(RECENT_INTERVALS)} if end else set()
    recent_bad = [
        p for p in partitions if p["date"] in recent and p["status"] in (Status.QUARANTINED, Status.MISSING)
    ]
    drift = drift_history(metrics, primary, length)
    last_scored = max(scored, default=None)
    quality = next((d["quality"] for d in reversed(drift) if d.get("quality") is not None), None)
    summary: dict[str, Any] = {
        "model": config.name,
        "registered_model": config.registered_model_name,
        "description": config.description,
        "owner": config.owner,
        "tags": list(config.tags),
        "primary_metric": primary,
        "policy": str(config.promotion.policy),
        "champion": None
        if champion is None
        else {
            "version": champion["version"],
            "interval": champion.get("interval"),
            "since": timeline[-1]["since"]
            if timeline and timeline[-1]["version"] == champion["version"]
            else None,
            "run_id": champion.get("run_id"),
            "model_card": champion.get("model_card"),
        },
        "champion_metric": (champion or {}).get("metrics", {}).get(primary),
        "live_quality": quality,
        "shadow": latest_shadow(versions),
        "last_training": _last_training(versions, events, length),
        "recent_bad": recent_bad,
        "drift": [
            {k: d.get(k) for k in ("window_end", "share", "prediction", "breached")}
            for d in drift[-SPARK_WINDOWS:]
        ],
        "last_scored": last_scored,
        "scoring_late": bool(champion and end and (last_scored or "") < end.shift(-1).key),
        "last_events": [
            {"kind": e["kind"], "at": str(e["created_at"]), "message": e["message"][:300]}
            for e in events[-3:]
        ][::-1],
    }
    reasons = _attention(summary, config)
    summary["reasons"] = reasons
    status = Attention.ATTENTION if reasons else (Attention.OK if champion else Attention.NO_CHAMPION)
    summary["status"] = status
    detail = {
        "versions": list(versions)[-VERSIONS_KEPT:],
        "timeline": timeline,
        "partitions": partitions,
        "drift": drift,
        "reports": {d["window_end"]: (reports or {}).get(d["window_end"]) for d in drift},
        "events": [
            {**e, "created_at": str(e["created_at"]), "partition": _key(e.get("partition"), length)}
            for e in events[-EVENTS_KEPT:]
        ][::-1],
    }
    return {"status": status, "summary": summary, "detail": detail}


def demo_shown(detail_rows: Mapping[str, Mapping[str, Any] | None]) -> list[str]:
    """What the fleet page would fail to show at the end of ``make run`` (empty: all of it): a row for
    every example model, and across them a quarantined batch and a drift-triggered version.

    ``detail_rows`` maps each model to its full snapshot row (summary and detail), or None."""
    problems = [f"{m}: no row in the fleet snapshot" for m, row in detail_rows.items() if row is None]
    rows = [row for row in detail_rows.values() if row is not None]
    if not any(p.get("status") == Status.QUARANTINED for r in rows for p in r.get("partitions") or []):
        problems.append("no quarantined batch in the fleet snapshot")
    if not any(v.get("trigger") == "drift" for r in rows for v in r.get("versions") or []):
        problems.append("no drift-triggered version in the fleet snapshot")
    return problems


# ------------------------------------------------------------------------------------------- I/O
