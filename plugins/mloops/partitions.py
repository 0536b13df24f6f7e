"""Partition layout, atomic writes and fingerprints: how every task keys its outputs by interval.

Layout under the data root (``{ds}`` is the data interval's start date)::

    raw/<model>/dt=<ds>/part.parquet          landed input (generator source only; never modified)
    staged/<model>/dt=<ds>/data.parquet       snapshot of a batch that passed validation
    staged/<model>/dt=<ds>/verdict.json       validation verdict of the batch (passed/quarantined/missing)
    quarantine/<model>/dt=<ds>/               copy of a failing batch and its validation result
    runs/<model>/dt=<ds>/holdout.parquet      the held-out split used by every model test of the interval
    reports/<model>/dt=<ds>/                  model test reports

Re-running an interval rewrites the same paths; nothing is appended.
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
from typing import Any


def window_dates(end: dt.date, days: int) -> list[dt.date]:
    """The ``days`` daily partitions ending at ``end`` (inclusive), oldest first."""
    return [end - dt.timedelta(days=offset) for offset in range(days - 1, -1, -1)]


def partition_dir(root: Path, area: str, model: str, day: dt.date) -> Path:
    return root / area / model / f"dt={day.isoformat()}"


@contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """Yield a temporary sibling of ``target``; on success rename it over ``target``."""
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


def write_json(target: Path, payload: Mapping[str, Any]) -> Path:
    with atomic_path(target) as tmp:
        tmp.write_text(json.dumps(payload, indent=2, sort_keys=True, default=str))
    return target


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None


def write_text(target: Path, text: str) -> Path:
    with atomic_path(target) as tmp:
        tmp.write_text(text)
    return target


def replace_dir(source: Path, target: Path) -> None:
    """Copy ``source`` over ``target`` so the target ends up exactly as the source (re-runs overwrite)."""
    staging = target.with_name(f".{target.name}.staging")
    if staging.exists():
        shutil.rmtree(staging)
    shutil.copytree(source, staging)
    if target.exists():
        shutil.rmtree(target)
    os.replace(staging, target)


def file_digest(path: Path, chunk: int = 1 << 20) -> str:
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


def path_from_uri(uri: str) -> Path:
    """The local path of a ``file://`` URI (``Path.as_uri`` percent-encodes ``=`` in ``dt=``)."""
    from urllib.parse import unquote, urlparse

    parsed = urlparse(uri)
    if parsed.scheme not in ("", "file"):
        raise ValueError(f"not a local file URI: {uri}")
    return Path(unquote(parsed.path))
