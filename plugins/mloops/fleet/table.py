"""The fleet as a text table (``make summary``), from the same snapshot the dashboard reads."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from mloops.fleet import view

COLUMNS = (
    "model",
    "status",
    "champion",
    "last training",
    "bad batches (7)",
    "drift share",
    "live quality",
    "shadow",
    "scored",
)


def _cells(row: Mapping[str, Any]) -> tuple[str, ...]:
    champion = row.get("champion") or {}
    training = row.get("last_training") or {}
    drift = (row.get("drift") or [{}])[-1]
    quality, reference = row.get("live_quality"), row.get("champion_metric")
    return (
        row["model"],
        row["status"],
        f"v{champion['version']} ({champion.get('interval')})" if champion else "none",
        f"{training.get('state')} {training.get('partition')}" if training else "never",
        ", ".join(f"{b['date']} {b['status']}" for b in row.get("recent_bad") or []) or "none",
        "n/a"
        if drift.get("share") is None
        else f"{drift['share']:.0%}" + (" BREACHED" if drift.get("breached") else ""),
        "n/a"
        if quality is None
        else f"{quality:.3f}" + ("" if reference is None else f" vs {reference:.3f}"),
        view.shadow_text(row.get("shadow")),
        (row.get("last_scored") or "never") + (" LATE" if row.get("scoring_late") else ""),
    )


def render(rows: Sequence[Mapping[str, Any]]) -> str:
    """Needs-attention first, one line per model, then each model's reasons."""
    ranked = view.rank(rows)
    cells = [COLUMNS, *(_cells(r) for r in ranked)]
    widths = [max(len(c[i]) for c in cells) for i in range(len(COLUMNS))]
    lines = ["  ".join(v.ljust(w) for v, w in zip(c, widths, strict=True)).rstrip() for c in cells]
    for row in ranked:
        for reason in row.get("reasons") or []:
            lines.append(f"  {row['model']}: {reason}")
    return "\n".join(lines) + "\n"
