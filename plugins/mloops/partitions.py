"""Partition layout, atomic writes and fingerprints: how every task keys its outputs by interval.

Layout under the data root (``{ds}`` is the data interval's start date)::

    raw/<model>/dt=<ds>/part.parquet          landed input (generator source only; never modified)
    staged/<model>/dt=<ds>/data.parquet       snapshot of a batch that passed validation
    staged/<model>/dt=<ds>/verdict.json       validation verdict of the batch (passed/quarantined/missing)
    quarantine/<model>/dt=<ds>/               copy of a failing batch and its validation result
    runs/<model>/dt=<ds>/holdout.parquet      the held-out split used by every model test of the interval
    reports/<model>/dt=<ds>/                  model test reports

Re-running an interval rewrites the same paths; nothing is appended.

The data root is a local folder or, in production, object storage: an Airflow
``ObjectStoragePath`` such as ``s3://<conn_id>@bucket/prefix`` whose credentials come from an Airflow
connection. Everything here takes either kind of path. Object stores have no rename, so a write
goes to a local temporary file first and is uploaded in one PUT when it is complete: readers see
the old object or the new one, never half of it. URIs handed between tasks keep the connection id
(``s3://conn@bucket/key``) so any worker can open them again with :func:`from_uri`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

if TYPE_CHECKING:
    import pandas as pd
    from airflow.sdk import ObjectStoragePath

#: A local folder or file, or an object in object storage (both are pathlib-like).
StoragePath = Union[Path, "ObjectStoragePath"]


def window_dates(end: dt.date, days: int) -> list[dt.date]:
    """The ``days`` daily partitions ending at ``end`` (inclusive), oldest first."""
    return [end - dt.timedelta(days=offset) for offset in range(days - 1, -1, -1)]


def partition_dir(root: StoragePath, area: str, model: str, day: dt.date) -> StoragePath:
    return root / area / model / f"dt={day.isoformat()}"


def is_local(path: StoragePath) -> bool:
    return isinstance(path, Path)


def to_uri(path: StoragePath) -> str:
    """A URI :func:`from_uri` opens again: ``file:///…`` or ``s3://conn@bucket/key``."""
    return path.as_uri() if isinstance(path, Path) else str(path)


def public_uri(path: StoragePath) -> str:
    """The URI without an Airflow connection id, for people and lineage (MLflow dataset sources)."""
    return path.as_uri()


def from_uri(uri: str) -> StoragePath:
    """The path of a URI written by :func:`to_uri` (a plain path is local)."""
    from urllib.parse import unquote, urlparse

    parsed = urlparse(uri)
    if parsed.scheme in ("", "file"):
        return Path(unquote(parsed.path) if parsed.scheme else uri)
    from airflow.sdk import ObjectStoragePath

    return ObjectStoragePath(uri)


def storage_path(value: str, conn_id: str | None = None) -> StoragePath:
    """A configured location: a local path, or object storage when it has a scheme (``s3://…``)."""
    if "://" not in value or value.startswith("file://"):
        return from_uri(value).expanduser().resolve()
    from airflow.sdk import ObjectStoragePath

    from mloops.errors import StorageError

    # Without a connection id the provider's default credentials apply (e.g. an IAM role).
    path = ObjectStoragePath(value, conn_id=conn_id or None)
    try:
        if path.conn_id is not None:
            # The S3 hook falls back to anonymous access when its connection is missing: look it up first.
            from airflow.sdk import Connection

            Connection.get(path.conn_id)
        path.fs  # noqa: B018 - builds the filesystem now, so a broken connection is reported here
    except Exception as exc:  # noqa: BLE001 - any lookup failure means the data root is unusable
        raise StorageError(
            f"data root {value!r} (MLOOPS_DATA_ROOT): Airflow connection {path.conn_id!r} cannot be used: "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    return path


@contextmanager
def atomic_path(target: StoragePath) -> Iterator[Path]:
    """Yield a local temporary file for ``target``; on success it replaces ``target`` in one step.

    Local targets get a sibling renamed over them; object-storage targets get a local file uploaded
    in one PUT (object stores have no rename).
    """
    if not isinstance(target, Path):
        fd, tmp = tempfile.mkstemp(prefix="mloops-", suffix=f".{target.name}.tmp")
        os.close(fd)
        tmp_path = Path(tmp)
        try:
            yield tmp_path
            target.fs.put_file(str(tmp_path), target.path)
        finally:
            tmp_path.unlink(missing_ok=True)
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, target)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def json_text(payload: Mapping[str, Any]) -> str:
    """How every JSON file here is written (stable key order, dates as strings)."""
    return json.dumps(payload, indent=2, sort_keys=True, default=str)


def write_json(target: StoragePath, payload: Mapping[str, Any]) -> StoragePath:
    return write_text(target, json_text(payload))


def read_json(path: StoragePath) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None


def write_text(target: StoragePath, text: str) -> StoragePath:
    with atomic_path(target) as tmp:
        tmp.write_text(text)
    return target


def write_parquet(frame: pd.DataFrame, target: StoragePath) -> StoragePath:
    with atomic_path(target) as tmp:
        frame.to_parquet(tmp, index=False)
    return target


def _read(path: StoragePath, reader: Any) -> pd.DataFrame:
    """``reader`` on a local path directly (native I/O), on an object through an open handle."""
    if isinstance(path, Path):
        return reader(path)
    with path.open("rb") as handle:
        return reader(handle)


def read_parquet(path: StoragePath) -> pd.DataFrame:
    import pandas as pd

    return _read(path, pd.read_parquet)


def read_csv(path: StoragePath) -> pd.DataFrame:
    import pandas as pd

    return _read(path, pd.read_csv)


def download(source: StoragePath, target: Path) -> Path:
    """Copy one file (local or object storage) to a local path."""
    if isinstance(source, Path):
        shutil.copy2(source, target)
    else:
        source.fs.get_file(source.path, str(target))
    return target


def remove_tree(path: StoragePath) -> None:
    """Delete a folder (or prefix) and everything under it; nothing happens if it is absent."""
    if isinstance(path, Path):
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists():
        path.fs.rm(path.path, recursive=True)


def replace_dir(source: Path, target: StoragePath) -> None:
    """Copy the local folder ``source`` over ``target`` so the target ends up exactly as the source
    (re-runs overwrite). On object storage each file is one PUT after the old prefix is removed."""
    if not isinstance(target, Path):
        remove_tree(target)
        for file in sorted(p for p in source.rglob("*") if p.is_file()):
            target.fs.put_file(str(file), (target / file.relative_to(source).as_posix()).path)
        return
    staging = target.with_name(f".{target.name}.staging")
    if staging.exists():
        shutil.rmtree(staging)
    shutil.copytree(source, staging)
    if target.exists():
        shutil.rmtree(target)
    os.replace(staging, target)


def file_digest(path: StoragePath, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def combine_digests(digests: Mapping[str, str]) -> str:
    """One fingerprint for several partitions, independent of dict order."""
    digest = hashlib.sha256()
    for key in sorted(digests):
        digest.update(f"{key}={digests[key]};".encode())
    return digest.hexdigest()[:16]
