"""Where mloops keeps its state, resolved from the environment.

Embedded defaults put everything in one git-ignored folder (``<repo>/.mloops``) so the project runs
on a laptop with no services; every location is overridable for production. Values are read on each
call, not cached at import, so tests and workers can point a process elsewhere with env vars.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from mloops.partitions import StoragePath, storage_path

REPO_ROOT = Path(__file__).resolve().parents[2]

#: Environment variables read by :func:`get_settings`, with a description for the README table.
ENVIRONMENT = {
    "MLOOPS_HOME": "Local state folder (default: <repo>/.mloops).",
    "MLOOPS_DATA_ROOT": "Data partitions, staged snapshots, quarantine, reports: a local folder or object "
    "storage "
    "such as s3://<conn_id>@bucket/prefix, read and written through an Airflow connection (default: "
    "$MLOOPS_HOME/data).",
    "MLOOPS_DATA_CONN_ID": "Airflow connection of an object-storage MLOOPS_DATA_ROOT when the URI does not "
    "name one "
    "(e.g. aws_default; its extra may set endpoint_url for an S3-compatible store).",
    "MLOOPS_MODELS_DIR": "Folder of model YAML configs (default: <repo>/include/models).",
    "MLOOPS_EXPECTATIONS_DIR": "Folder of extra GX expectation suites (default: "
    "<repo>/include/expectations).",
    "MLOOPS_DOCS_ROOT": "Great Expectations Data Docs sites (default: $MLOOPS_HOME/data_docs).",
    "MLOOPS_DOCS_INDEX_RUNS": "Validation runs a model's Data Docs index lists, newest first; older "
    "results keep their pages (default: 100).",
    "MLFLOW_TRACKING_URI": "MLflow tracking and registry store (default: "
    "sqlite:///$MLOOPS_HOME/mlflow/mlflow.db).",
    "MLOOPS_MLFLOW_ARTIFACTS": "Artifact root for new experiments on a local store (default: "
    "$MLOOPS_HOME/mlflow/artifacts).",
    "MLOOPS_METRICS_DB_URI": "SQLAlchemy URI of the metrics and events store (default: "
    "sqlite:///$MLOOPS_HOME/metrics.db).",
    "MLOOPS_REGISTRY_POOL": "Airflow pool that serializes registry writes (default: mloops_registry).",
    "MLOOPS_REGISTRY_LOCK_TIMEOUT": "Seconds a registry write waits for another writer of the same model "
    "(mloops.locks) before it fails, retryably (default: 120).",
    "MLOOPS_SOURCE_ROOTS": "Comma-separated folders or object-store prefixes (s3://bucket/landing) that "
    "files sources "
    "may read besides the data root; any other resolved path is refused (default: the data root only).",
}


@dataclass(frozen=True)
class Settings:
    """Resolved locations; build with :func:`get_settings`."""

    home: Path
    data_root_uri: str
    data_conn_id: str | None
    models_dir: Path
    expectations_dir: Path
    docs_root: Path
    mlflow_tracking_uri: str
    mlflow_artifacts: Path
    metrics_db_uri: str
    registry_pool: str
    source_roots: tuple[str, ...] = ()

    @cached_property
    def data_root(self) -> StoragePath:
        """The data root as a path; object storage is resolved on first use, never at DAG parse time
        (building an ``ObjectStoragePath`` with a connection looks the connection up)."""
        return storage_path(self.data_root_uri, conn_id=self.data_conn_id)

    @property
    def uses_local_mlflow(self) -> bool:
        """True when MLflow runs embedded (no tracking server), so artifact roots must be set by us."""
        return not self.mlflow_tracking_uri.startswith(("http://", "https://", "databricks"))


def _path(name: str, default: Path) -> Path:
    value = os.environ.get(name)
    return Path(value).expanduser().resolve() if value else default


def get_settings() -> Settings:
    """Read the environment and return the settings in force for this process."""
    home = _path("MLOOPS_HOME", REPO_ROOT / ".mloops")
    return Settings(
        home=home,
        data_root_uri=os.environ.get("MLOOPS_DATA_ROOT") or str(home / "data"),
        data_conn_id=os.environ.get("MLOOPS_DATA_CONN_ID") or None,
        models_dir=_path("MLOOPS_MODELS_DIR", REPO_ROOT / "include" / "models"),
        expectations_dir=_path("MLOOPS_EXPECTATIONS_DIR", REPO_ROOT / "include" / "expectations"),
        docs_root=_path("MLOOPS_DOCS_ROOT", home / "data_docs"),
        mlflow_tracking_uri=os.environ.get("MLFLOW_TRACKING_URI")
        or f"sqlite:///{home / 'mlflow' / 'mlflow.db'}",
        mlflow_artifacts=_path("MLOOPS_MLFLOW_ARTIFACTS", home / "mlflow" / "artifacts"),
        metrics_db_uri=os.environ.get("MLOOPS_METRICS_DB_URI") or f"sqlite:///{home / 'metrics.db'}",
        registry_pool=os.environ.get("MLOOPS_REGISTRY_POOL", "mloops_registry"),
        source_roots=tuple(
            r.strip() for r in os.environ.get("MLOOPS_SOURCE_ROOTS", "").split(",") if r.strip()
        ),
    )
