"""A per-model summary of the local state: champion, metrics, gates, quarantine, where to look.

``python -m mloops.summary [model ...]`` prints it; ``make run`` prints it after the demo.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any

from mloops import partitions
from mloops.config_files import load_model_configs
from mloops.contracts import Alias, Status, Tag
from mloops.settings import Settings, get_settings


def reported_partitions(verdicts: dict[str, str]) -> dict[str, str]:
    """The verdicts by date from the model's first delivered partition on.

    A training window reaches back ``window_days`` before the first night, so the first runs record
    dates the source never had as ``missing``; listing those would hide the real gaps.
    """
    ordered = sorted(verdicts.items())
    first = next((i for i, (_, status) in enumerate(ordered) if status != Status.MISSING), len(ordered))
    return dict(ordered[first:])


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
    for row in store.read_metrics(settings.metrics_db_uri, name):
        if row["metric"] in ("drift.share", "drift.prediction", "policy.breached"):
            key = (str(row["window_start"]), str(row["window_end"]), row["model_version"])
            drift.setdefault(key, {})[row["metric"]] = row["value"]
    retrains = [
        {"window_end": str(e["partition"]), "reasons": e["message"], "dag_run": e["run_id"]}
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
                lines.append(
                    f"    {h['window']}: v{h['champion']}, {h.get('drift.share', 0):.0%} drifted, prediction "
                    f"{'n/a' if prediction is None else f'{prediction:.3f}'}, "
                    f"{'BREACHED' if h.get('policy.breached') else 'ok'}"
                )
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
