"""Pure presentation logic of the fleet pages: join, rank, filter, draw (no Airflow, no I/O)."""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any

from mloops.contracts import ShadowStatus
from mloops.fleet.snapshot import Attention

FAILED_STATES = {"failed", "upstream_failed"}


def join_airflow(
    summaries: Sequence[Mapping[str, Any]],
    runs: Mapping[str, Mapping[str, Any]],
    approvals: Mapping[str, Sequence[Mapping[str, Any]]],
) -> list[dict[str, Any]]:
    """Add each model's newest Airflow runs and pending approvals; re-rank what they change."""
    out = []
    for summary in summaries:
        row = dict(summary)
        name = row["model"]
        row["runs"] = {kind: runs.get(f"mloops_{kind}_{name}") for kind in ("train", "score", "monitor")}
        row["approvals"] = list(approvals.get(name, []))
        reasons = list(row.get("reasons") or [])
        for kind, run in row["runs"].items():
            if (
                run
                and run["state"] in FAILED_STATES
                and not any(r.startswith(f"{kind} run") for r in reasons)
            ):
                reasons.append(f"{kind} run {run['run_id']} {run['state']}")
        if row["approvals"]:
            first = row["approvals"][0]
            reasons.append(f"approval pending since {first['since'][:16]} ({', '.join(first['assignees'])})")
        row["reasons"] = reasons
        if reasons:
            row["status"] = Attention.ATTENTION
        out.append(row)
    return rank(out)


def shadow_text(shadow: Mapping[str, Any] | None) -> str:
    """One line of a model's shadow stage: the challenger, its labeled intervals so far of those
    required (and intervals scored of the limit) while it waits, the decision once it is made."""
    if not shadow:
        return "none"
    version = f"v{shadow['version']}"
    status = shadow["status"]
    if status == ShadowStatus.SHADOWING:
        scored = (
            f", scored {shadow['scored']} of at most {shadow['max_intervals']}"
            if shadow.get("scored") is not None
            else ""
        )
        return (
            f"{version} in shadow since {shadow.get('since')}: {shadow.get('labeled', 0)}/"
            f"{shadow.get('required', '?')} intervals labeled{scored}"
        )
    outcome = {
        ShadowStatus.PASSED: "passed its shadow, waiting for approval",
        ShadowStatus.PROMOTED: "promoted after its shadow",
        ShadowStatus.RETIRED: "retired after its shadow",
        ShadowStatus.SUPERSEDED: "superseded in shadow",
    }.get(status, status)
    return f"{version} {outcome} ({shadow.get('labeled', 0)}/{shadow.get('required', '?')} intervals labeled)"


def rank(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Needs-attention first (more reasons first), then no champion, then healthy; by name within."""
    order = {status: i for i, status in enumerate(Attention.ORDER)}
    return sorted(
        (dict(r) for r in rows),
        key=lambda r: (order.get(r["status"], 0), -len(r.get("reasons") or []), r["model"]),
    )


def matches(
    row: Mapping[str, Any], owner: str | None = None, tag: str | None = None, status: str | None = None
) -> bool:
    return (
        (not owner or row.get("owner") == owner)
        and (not tag or tag in (row.get("tags") or []))
        and (not status or row.get("status") == status)
    )


def filter_rows(
    rows: Sequence[Mapping[str, Any]], owner: str | None, tag: str | None, status: str | None
) -> list[dict[str, Any]]:
    return [dict(r) for r in rows if matches(r, owner, tag, status)]


def choices(rows: Sequence[Mapping[str, Any]]) -> dict[str, list[str]]:
    """The values offered by the filters."""
    return {
        "owner": sorted({r["owner"] for r in rows if r.get("owner")}),
        "tag": sorted({t for r in rows for t in r.get("tags") or []}),
        "status": [s for s in Attention.ORDER if any(r["status"] == s for r in rows)],
    }


def sparkline(
    values: Sequence[float | None],
    *,
    label: str,
    threshold: float | None = None,
    flags: Sequence[bool] | None = None,
    width: int = 120,
    height: int = 28,
) -> str:
    """An inline SVG polyline of the values (None leaves a gap); flagged points drawn red.

    Compact on purpose (the fleet page draws two per model, 600 at 300 models): one polyline and
    two paths of round dots (every window, the flagged ones), never an element per point.
    """
    points = [(i, v) for i, v in enumerate(values) if v is not None]
    title = html.escape(f"{label}: " + ", ".join("n/a" if v is None else f"{v:.3g}" for v in values))
    if not points:
        return (
            f'<svg class="spark empty" role="img" width="{width}" height="{height}">'
            f"<title>{title}</title></svg>"
        )
    top = max([v for _, v in points] + ([threshold] if threshold is not None else [])) or 1.0
    step = width / max(len(values) - 1, 1)

    def y(v: float) -> float:
        return round(height - 2 - (height - 4) * (v / top if top else 0), 1)

    xy = [(i, f"{round(i * step, 1):g}", f"{y(v):g}") for i, v in points]
    breached = [(x, yv) for i, x, yv in xy if flags and i < len(flags) and flags[i]]
    parts = [
        f'<svg class="spark" role="img" data-label="{html.escape(label)}" data-points="{len(points)}" '
        f'width="{width}" height="{height}" viewBox="0 0 {width} {height}"><title>{title}</title>'
    ]
    if threshold is not None:
        parts.append(
            f'<line class="threshold" x1="0" x2="{width}" y1="{y(threshold)}" y2="{y(threshold)}" '
            'stroke="#999" stroke-dasharray="3,2"/>'
        )
    parts.append(
        f'<polyline fill="none" stroke="#1f6feb" stroke-width="1.5" '
        f'points="{" ".join(f"{x},{yv}" for _, x, yv in xy)}"/>'
        # a dot per window, so a single window still shows
        f'<path class="point" stroke="#1f6feb" stroke-width="3" stroke-linecap="round" '
        f'd="{"".join(f"M{x} {yv}h0" for _, x, yv in xy)}"/>'
    )
    if breached:
        parts.append(
            f'<path class="breach" data-count="{len(breached)}" stroke="#d1242f" stroke-width="5" '
            f'stroke-linecap="round" d="{"".join(f"M{x} {yv}h0" for x, yv in breached)}"/>'
        )
    parts.append("</svg>")
    return "".join(parts)


def fleet_charts(row: Mapping[str, Any], drift_share_policy: float | None = None) -> dict[str, str]:
    drift = row.get("drift") or []
    flags = [bool(d.get("breached")) for d in drift]
    return {
        "share": sparkline(
            [d.get("share") for d in drift], label="drift share", threshold=drift_share_policy, flags=flags
        ),
        "prediction": sparkline([d.get("prediction") for d in drift], label="prediction drift", flags=flags),
    }


def status_counts(rows: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    counts = {s: 0 for s in Attention.ORDER}
    for row in rows:
        counts[row["status"]] = counts.get(row["status"], 0) + 1
    return counts
