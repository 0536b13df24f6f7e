"""Gathering and keeping the fleet snapshot: the inputs of :func:`~mloops.fleet.snapshot.build_row`.

:func:`record` rebuilds one model's row from what the stages already wrote (verdict files, the
metrics and events tables, the model's registry versions: one registry search) and is called after
every stage; :func:`refresh` rebuilds every configured model; :func:`read` and :func:`read_model`
are what the web app and ``make summary`` read (one query for the fleet).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from mloops import store
from mloops.contracts import Alias
from mloops.fleet.snapshot import HISTORY_DAYS, build_row, version_row

if TYPE_CHECKING:
    from mloops.config import ModelConfig
    from mloops.settings import Settings

log = logging.getLogger(__name__)


def validation_page(settings: Settings, config: ModelConfig, partition: str) -> str | None:
    """The Data Docs page of one partition's own validation (GX names its run ``<model>-<date>``), not
    the site index the validation result points at."""
    site = (
        settings.docs_root / config.name / "gx" / "uncommitted" / "data_docs" / "local_site" / "validations"
    )
    pages = sorted(site.glob(f"*/{config.name}-{partition}/*/*.html"))
    return pages[-1].as_uri() if pages else None


def _read_verdicts(settings: Settings, config: ModelConfig) -> list[dict[str, Any]]:
    from mloops import partitions

    staged = settings.data_root / "staged" / config.name
    if not staged.is_dir():
        return []
    found = []
    folders: list[partitions.StoragePath] = sorted(staged.iterdir(), key=lambda p: p.name)
    for folder in folders[-HISTORY_DAYS:]:
        verdict = partitions.read_json(folder / "verdict.json")
        if verdict:
            quarantine = settings.data_root / "quarantine" / config.name / folder.name
            verdict["resolved"] = (
                (quarantine / "resolved.json").exists() if verdict.get("quarantine") else False
            )
            if verdict.get("docs_url"):
                verdict["docs_url"] = (
                    validation_page(settings, config, verdict["partition"]) or verdict["docs_url"]
                )
            found.append(verdict)
    return found


def _scored_dates(settings: Settings, config: ModelConfig) -> list[str]:
    folder = settings.data_root / "predictions" / config.name
    if not folder.is_dir():
        return []
    return sorted(p.name.removeprefix("dt=") for p in folder.iterdir() if p.name.startswith("dt="))


def _drift_reports(settings: Settings, config: ModelConfig) -> dict[str, str]:
    """``{window_end: drift.html uri}`` of the Evidently reports of the model's monitored windows."""
    from mloops import partitions

    folder = settings.data_root / "monitoring" / config.name
    if not folder.is_dir():
        return {}
    return {
        p.name.rsplit("_", 1)[-1]: partitions.to_uri(p / "drift.html")
        for p in folder.iterdir()
        if p.name.startswith("window=")
    }


def _registry_versions(settings: Settings, config: ModelConfig) -> list[dict[str, Any]]:
    from mloops.adapters import mlflow_adapter

    client = mlflow_adapter.client(settings)
    name = config.registered_model_name
    rows = [version_row(v) for v in mlflow_adapter.versions(client, name)]
    # A registry search does not return aliases on every store: ask for the three mloops uses.
    for alias in Alias:
        found = mlflow_adapter.version_by_alias(client, name, alias)
        for row in rows:
            if found is not None and row["version"] == str(found.version) and alias not in row["aliases"]:
                row["aliases"] = sorted([*row["aliases"], alias.value])
    return rows


def record(config: ModelConfig, settings: Settings) -> dict[str, Any]:
    """Rebuild and store the snapshot row of one model; stages call this after they ran."""
    row = build_row(
        config,
        versions=_registry_versions(settings, config),
        verdicts=_read_verdicts(settings, config),
        metrics=store.read_metrics(settings.metrics_db_uri, config.name),
        events=store.read_events(settings.metrics_db_uri, model=config.name),
        scored=_scored_dates(settings, config),
        reports=_drift_reports(settings, config),
    )
    store.write_fleet_row(
        settings.metrics_db_uri, model=config.name, owner=config.owner, tags=list(config.tags), **row
    )
    return row


def record_quietly(model: str) -> None:
    """:func:`record` for stage operators, after each stage (passed or failed): a snapshot failure is
    logged and never fails the stage; the next stage (or ``python -m mloops.fleet refresh``) rebuilds it."""
    from mloops.config_files import find_model_config
    from mloops.settings import get_settings

    try:
        settings = get_settings()
        record(find_model_config(model, settings.models_dir), settings)
    except Exception:  # noqa: BLE001 - the dashboard must not take a pipeline down
        log.exception("fleet snapshot of %s not updated", model)


def refresh(settings: Settings, names: Sequence[str] | None = None) -> list[str]:
    """Rebuild the rows of every configured model (or ``names``) and drop rows of removed models."""
    from mloops.config_files import load_model_configs

    configs, _ = load_model_configs(settings.models_dir)
    chosen = [n for n in sorted(configs) if names is None or n in names]
    for name in chosen:
        record(configs[name], settings)
    if names is None:
        store.delete_fleet_rows(settings.metrics_db_uri, set(configs))
    return chosen


def version(settings: Settings) -> tuple[int, str | None]:
    """The snapshot's version (rows, newest write): what the web app keys its caches on."""
    return store.fleet_version(settings.metrics_db_uri)


def read(settings: Settings) -> list[dict[str, Any]]:
    """The fleet: every model's summary, one query."""
    return [
        row["summary"] | {"updated_at": str(row["updated_at"])}
        for row in store.read_fleet(settings.metrics_db_uri)
    ]


def read_model(settings: Settings, model: str) -> dict[str, Any] | None:
    row = store.read_fleet_detail(settings.metrics_db_uri, model)
    return None if row is None else {**row["summary"], **row["detail"], "updated_at": str(row["updated_at"])}
