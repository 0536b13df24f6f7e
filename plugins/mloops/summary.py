"""A per-model summary of the local state: champion, metrics, gates, quarantine, where to look.

``python -m mloops.summary [model ...]`` prints it; ``make run`` prints it after the demo.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from mloops import partitions
from mloops.config_files import load_model_configs
from mloops.contracts import ANY_VERSION, Alias, Status, Tag
from mloops.settings import Settings, get_settings

if TYPE_CHECKING:
    from mloops.config import ModelConfig


def reported_partitions(verdicts: dict[str, str]) -> dict[str, str]:
    """The verdicts by partition key from the model's first delivered partition on (keys sort as
    time does, so this works per interval: days, or hours of an hourly model).

    A training window reaches back before the first run, so the first runs record partitions the
    source never had as ``missing``; listing those would hide the real gaps.
    """
    ordered = sorted(verdicts.items())
    first = next((i for i, (_, status) in enumerate(ordered) if status != Status.MISSING), len(ordered))
    return dict(ordered[first:])


def _config_of(name: str, settings: Settings) -> ModelConfig | None:
    from mloops.config_files import find_model_config
    from mloops.errors import ModelConfigError

    try:
        return find_model_config(name, settings.models_dir)
    except ModelConfigError:
        return None


def model_summary(name: str, settings: Settings) -> dict[str, Any]:
    from mloops.adapters import mlflow_adapter

    client = mlflow_adapter.client(settings)
    registered = f"mloops.{name}"
    versions = mlflow_adapter.versions(client, registered)
    aliases = {
        alias: info.version
        for alias in (Alias.CHAMPION, Alias.PREVIOUS, Alias.CHALLENGER)
        if (info := mlflow_adapter.version_by_alias(client, registered, alias)) is not None
    }
    champion = next((v for v in versions if v.version == aliases.get(Alias.CHAMPION)), None)
    config = _config_of(name, settings)
    verdicts: dict[str, str] = {}
    staged = settings.data_root / "staged" / name
    if staged.is_dir():
        folders: list[partitions.StoragePath] = sorted(staged.iterdir(), key=lambda p: p.name)
        for folder in folders:
            verdict = partitions.read_json(folder / "verdict.json")
            if verdict:
                verdicts[verdict["partition"]] = verdict["status"]
    quarantine_root = settings.data_root / "quarantine" / name
    quarantined = (
        sorted(str(p) for p in quarantine_root.iterdir() if p.is_dir() and not (p / "resolved.json").exists())
        if quarantine_root.is_dir()
        else []
    )
    gates = None
    if champion is not None and Tag.TESTS in champion.tags:
        gates = json.loads(champion.tags[Tag.TESTS])
    from mloops import store

    drift: dict[tuple[str, str, Any], dict[str, Any]] = {}
    feed: dict[tuple[str, str, Any], dict[str, Any]] = {}
    primary = f"quality.{config.evaluation.primary_metric}" if config else None
    length = config.interval if config else partitions.DAY
    for row in store.read_metrics(settings.metrics_db_uri, name):
        key = (
            partitions.key_of(row["window_start"], length),
            partitions.key_of(row["window_end"], length),
            row["model_version"],
        )
        if row["metric"] in ("drift.share", "drift.prediction", "policy.breached", "rows.labeled", primary):
            drift.setdefault(key, {})[row["metric"]] = row["value"]
        elif str(row["metric"]).startswith("labels."):
            feed.setdefault(key, {})[row["metric"].removeprefix("labels.")] = row["value"]
    retrains = [
        {
            "window_end": partitions.key_of(e["partition"], length),
            "reasons": e["message"],
            "dag_run": e["run_id"],
        }
        for e in store.read_events(settings.metrics_db_uri, model=name, kind="retrain_triggered")
    ]
    return {
        "model": name,
        "registered_model": registered,
        "drift_history": [
            {"window": f"{k[0]}..{k[1]}", "champion": k[2], **v}
            for k, v in sorted(drift.items(), key=lambda kv: kv[0][1])
        ],
        "retrains": retrains,
        "primary_metric": config.evaluation.primary_metric if config else None,
        "label_feed": label_feed_summary(feed),
        "champion_trigger": champion.tags.get("airflow.run_type") if champion else None,
        "versions": [v.version for v in versions],
        "aliases": aliases,
        "champion_interval": champion.tags.get(Tag.DATA_INTERVAL) if champion else None,
        "champion_metrics": {
            k.removeprefix("metric."): float(v)
            for k, v in (champion.tags if champion else {}).items()
            if k.startswith("metric.")
        },
        "champion_gates": gates,
        "partitions": reported_partitions(verdicts),
        "quarantined": quarantined,
        "data_docs": str(
            settings.docs_root / name / "gx" / "uncommitted" / "data_docs" / "local_site" / "index.html"
        ),
        "reports": str(settings.data_root / "reports" / name),
        "drift_reports": str(settings.data_root / "monitoring" / name),
    }


def label_feed_summary(feed: dict[tuple[str, str, Any], dict[str, Any]]) -> dict[str, Any]:
    """The label feed's latest numbers: deliveries (by arrival), coverage (by prediction interval and
    version), live quality (by version and window)."""
    deliveries, coverage, quality = [], [], []
    for (start, end, version), numbers in sorted(feed.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        if version == ANY_VERSION:
            deliveries.append({"arrival": end, **numbers})
            continue
        if start == end and "coverage" in numbers:
            coverage.append({"partition": start, "version": version, **numbers})
        if any(k.startswith("quality.") for k in numbers):
            quality.append({"window": f"{start}..{end}", "version": version, **numbers})
    return {"deliveries": deliveries[-3:], "coverage": coverage[-4:], "quality": quality[-2:]}


def render(summaries: Sequence[dict[str, Any]], settings: Settings) -> str:
    lines = ["", "=" * 78, "mloops summary", "=" * 78]
    for s in summaries:
        lines.append(f"\nModel {s['model']}  (registered model {s['registered_model']})")
        lines.append(
            f"  versions: {', '.join(s['versions']) or 'none'}; aliases: "
            + (", ".join(f"{a}=v{v}" for a, v in s["aliases"].items()) or "none")
        )
        if s["aliases"].get("champion"):
            metrics = ", ".join(f"{k}={v:.4f}" for k, v in sorted(s["champion_metrics"].items()))
            lines.append(
                f"  champion v{s['aliases']['champion']} trained on the window ending "
                f"{s['champion_interval']}: {metrics}"
            )
            if s["champion_gates"]:
                lines.append(
                    "  gates: "
                    + ", ".join(f"{k}={'pass' if v else 'FAIL'}" for k, v in s["champion_gates"].items())
                )
        statuses = ", ".join(f"{d}:{v}" for d, v in s["partitions"].items())
        lines.append(f"  partitions: {statuses or 'none validated'}")
        lines.append(f"  quarantined: {', '.join(s['quarantined']) if s['quarantined'] else 'none'}")
        if s["drift_history"]:
            lines.append(
                "  drift history (window: champion, share of drifted features, prediction drift, policy):"
            )
            for h in s["drift_history"]:
                prediction = h.get("drift.prediction")
                quality = h.get(f"quality.{s['primary_metric']}")
                live = (
                    f", {s['primary_metric']} {quality:.3f} on {h.get('rows.labeled', 0):.0f} labeled rows"
                    if quality is not None
                    else ""
                )
                lines.append(
                    f"    {h['window']}: v{h['champion']}, {h.get('drift.share', 0):.0%} drifted, prediction "
                    f"{'n/a' if prediction is None else f'{prediction:.3f}'}{live}, "
                    f"{'BREACHED' if h.get('policy.breached') else 'ok'}"
                )
        lines.extend(_label_feed_lines(s))
        for r in s["retrains"]:
            lines.append(
                f"  retrain triggered by drift in the window ending {r['window_end']}: {r['reasons']}"
            )
        lines.append(f"  Data Docs: file://{s['data_docs']}")
        lines.append(f"  model test reports: {s['reports']}")
        lines.append(f"  drift reports (Evidently HTML/JSON): {s['drift_reports']}")
    lines.append(
        f"\nMLflow store: {settings.mlflow_tracking_uri}  (UI: make mlflow-ui, then http://localhost:5000)"
    )
    lines.append(f"Airflow home: {settings.home / 'airflow'}  (UI: make ui, then http://localhost:8080)")
    return "\n".join(lines) + "\n"


def _label_feed_lines(s: dict[str, Any]) -> list[str]:
    feed = s.get("label_feed") or {}
    if not any(feed.values()):
        return []
    lines = ["  label feed (deliveries by arrival date; coverage by prediction interval):"]
    for d in feed["deliveries"]:
        lines.append(
            f"    arrived {d['arrival']}: {d.get('arrived', 0):.0f} labels, "
            f"{d.get('matched', 0):.0f} joined, {d.get('unmatched', 0):.0f} unmatched, "
            f"{d.get('rejected', 0):.0f} rejected"
        )
    for c in feed["coverage"]:
        late = c.get("lateness_median_days")
        lines.append(
            f"    predictions of {c['partition']} (v{c['version']}): {c.get('labeled', 0):.0f}/"
            f"{c.get('predictions', 0):.0f} labeled ({(c.get('coverage') or 0):.0%})"
            + (f", median {late:.0f} days late" if late is not None else "")
        )
    metric = f"quality.{s['primary_metric']}"
    for q in feed["quality"]:
        value = q.get(metric)
        shown = f"{s['primary_metric']}={value:.4f}" if value is not None else "too few labels"
        lines.append(
            f"    live quality {q['window']} (v{q['version']}): {shown} "
            f"on {q.get('quality.rows', 0):.0f} rows"
        )
    return lines


def fleet_table(settings: Settings, names: Sequence[str]) -> str:
    """The fleet table of the dashboard, from the same snapshot (rebuilt here for the models named)."""
    from mloops.fleet import collect, table

    collect.refresh(settings, names)
    return "Fleet (as on the Models page of the Airflow UI):\n" + table.render(
        [row for row in collect.read(settings) if row["model"] in names]
    )


def main(argv: Sequence[str] | None = None) -> int:
    settings = get_settings()
    names = list(argv if argv is not None else sys.argv[1:])
    if not names:
        configs, _ = load_model_configs(settings.models_dir)
        names = sorted(configs)
    print(render([model_summary(n, settings) for n in names], settings))
    print(fleet_table(settings, names))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
