"""Partition layout, atomic writes and fingerprints: how every task keys its outputs by interval.

Layout under the data root (``<key>`` is the key of the partition's interval, see :class:`Partition`)::

    raw/<model>/dt=<key>/part.parquet          landed input (generator source only; never modified)
    staged/<model>/dt=<key>/data.parquet       snapshot of a batch that passed validation
    staged/<model>/dt=<key>/verdict.json       validation verdict of the batch (passed/quarantined/missing)
    quarantine/<model>/dt=<key>/               copy of a failing batch and its validation result
    runs/<model>/dt=<key>/holdout.parquet      the held-out split used by every model test of the interval
    runs/<model>/dt=<key>/holdout_predictions.parquet  the trained model's predictions of that split
    reports/<model>/dt=<key>/                  model test reports

A daily partition's key is its date (``dt=2026-01-01``); a sub-daily one's is its start to the hour
(``dt=2026-01-01T13``). Re-running an interval rewrites the same paths; nothing is appended.

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
import re
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

if TYPE_CHECKING:
    import pandas as pd
    from airflow.sdk import ObjectStoragePath

#: A local folder or file, or an object in object storage (both are pathlib-like).
StoragePath = Union[Path, "ObjectStoragePath"]


DAY = dt.timedelta(days=1)
#: Sub-daily interval lengths, in hours: whole hours that divide a day, so every day holds the same
#: partitions, aligned to midnight UTC.
SUB_DAILY_HOURS = (1, 2, 3, 4, 6, 8, 12)
_DURATION = re.compile(r"^\s*(\d+)\s*([dh])\s*$")
_NAMED_INTERVALS = {"daily": DAY, "hourly": dt.timedelta(hours=1)}


def parse_duration(value: str) -> dt.timedelta:
    """``"7d"`` or ``"36h"`` as a positive duration; ``ValueError`` naming the value otherwise."""
    match = _DURATION.match(str(value))
    if not match or int(match.group(1)) == 0:
        raise ValueError(
            f"{value!r} is not a duration: write a positive whole number of days or hours (7d, 36h)"
        )
    count = int(match.group(1))
    return dt.timedelta(days=count) if match.group(2) == "d" else dt.timedelta(hours=count)


def parse_interval(value: str) -> dt.timedelta:
    """A partition interval: ``daily``/``1d``, ``hourly``/``1h`` or ``<n>h`` for n in
    :data:`SUB_DAILY_HOURS`; ``ValueError`` naming the value otherwise."""
    named = _NAMED_INTERVALS.get(str(value).strip().lower())
    length = named or parse_duration(value)
    if length != DAY and (length > DAY or length.total_seconds() / 3600 not in SUB_DAILY_HOURS):
        raise ValueError(
            f"{value!r} is not a partition interval: use 1d (daily) or a number of hours that divides a "
            f"day ({', '.join(f'{h}h' for h in SUB_DAILY_HOURS)})"
        )
    return length


def interval_text(length: dt.timedelta) -> str:
    """``1d``, ``1h``, ``36h``: how configs, messages and MLflow params write a whole-hour duration."""
    if length % DAY == dt.timedelta():
        return f"{length.days}d"
    return f"{int(length.total_seconds() // 3600)}h"


def _utc(moment: dt.datetime) -> dt.datetime:
    """A plain aware datetime in UTC (a naive one is taken as UTC, as Airflow stores them; Airflow's
    pendulum datetimes become plain ones, whose arithmetic with timedeltas is exact)."""
    m = moment if moment.tzinfo is None else moment.astimezone(dt.UTC)
    return dt.datetime(m.year, m.month, m.day, m.hour, m.minute, m.second, m.microsecond, tzinfo=dt.UTC)


@dataclass(frozen=True, order=True)
class Partition:
    """One data interval of a model: ``[start, start + length)`` in UTC, aligned to its length.

    ``key`` names it in paths (``dt=<key>``), verdicts, predictions and messages, and sorts as time
    does: a daily partition's key is its date (``2026-01-01``, the layout mloops always had), a
    sub-daily one's is its start to the hour (``2026-01-01T13``). Build one with :meth:`day`,
    :meth:`containing` (the partition of a data interval start) or :meth:`parse` (anything a person
    or an Asset event sets).
    """

    start: dt.datetime
    length: dt.timedelta = DAY

    def __post_init__(self) -> None:
        if not isinstance(self.start, dt.datetime):
            raise TypeError(f"a partition starts at a datetime, got {type(self.start).__name__}")
        start = _utc(self.start)
        object.__setattr__(self, "start", start)
        if self.length != DAY and self.length.total_seconds() / 3600 not in SUB_DAILY_HOURS:
            raise ValueError(f"unsupported partition interval {self.length}")
        if start != Partition._floor(start, self.length):
            raise ValueError(
                f"{start.isoformat()} is not the start of a {interval_text(self.length)} interval"
            )

    @staticmethod
    def _floor(moment: dt.datetime, length: dt.timedelta) -> dt.datetime:
        midnight = moment.replace(hour=0, minute=0, second=0, microsecond=0)
        return midnight + ((moment - midnight) // length) * length

    @classmethod
    def day(cls, day: dt.date) -> Partition:
        """The daily partition of ``day``."""
        return cls(dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC), DAY)

    @classmethod
    def containing(cls, moment: dt.datetime, length: dt.timedelta = DAY) -> Partition:
        """The partition holding ``moment`` (a run's data interval start, on any cron)."""
        utc = _utc(moment)
        return cls(cls._floor(utc, length), length)

    @classmethod
    def parse(cls, value: Any, length: dt.timedelta = DAY) -> Partition:
        """The one parser of a partition set from outside (trigger forms, Asset extras, folder names):
        a date (``2026-01-01``) for a daily model, a datetime on the interval's boundary
        (``2026-01-01T13``, ``2026-01-01T13:00:00+00:00``) for a sub-daily one. Anything else, or a
        datetime inside an interval, raises ``ValueError`` naming the value."""
        daily = length == DAY
        expected = (
            "a date (YYYY-MM-DD)"
            if daily
            else f"a datetime on a {interval_text(length)} boundary in UTC "
            "(YYYY-MM-DDTHH, e.g. 2026-01-01T13)"
        )
        if isinstance(value, dt.datetime):
            moment = value
        elif isinstance(value, dt.date):
            moment = dt.datetime.combine(value, dt.time())
            if not daily:
                raise ValueError(
                    f"partition {value.isoformat()!r} is a date; this model's partition is {expected}"
                )
        elif isinstance(value, str) and value.strip():
            text = value.strip()
            try:
                moment = dt.datetime.fromisoformat(text)
            except ValueError:
                raise ValueError(f"partition {value!r} is not {expected}") from None
            if not daily and len(text) == 10:
                raise ValueError(f"partition {value!r} is a date; this model's partition is {expected}")
        else:
            raise ValueError(f"partition {value!r} is not {expected}")
        utc = _utc(moment)
        if utc != cls._floor(utc, length):
            start = cls._floor(utc, length)
            raise ValueError(
                f"partition {str(value)!r} is not aligned to the model's {interval_text(length)} interval "
                f"(it falls inside the interval starting {cls(start, length).key}); expected {expected}"
            )
        return cls(utc, length)

    @classmethod
    def of(cls, value: Partition | dt.date, length: dt.timedelta = DAY) -> Partition:
        """``value`` if it is a partition, else :meth:`parse` of it (a date names a daily partition)."""
        return value if isinstance(value, Partition) else cls.parse(value, length)

    @property
    def daily(self) -> bool:
        return self.length == DAY

    @property
    def end(self) -> dt.datetime:
        return self.start + self.length

    @property
    def date(self) -> dt.date:
        """The (UTC) day the interval lies in."""
        return self.start.date()

    @property
    def key(self) -> str:
        """The path-safe, sortable name: ``2026-01-01`` (daily) or ``2026-01-01T13`` (sub-daily)."""
        return self.start.strftime("%Y-%m-%d" if self.daily else "%Y-%m-%dT%H")

    @property
    def value(self) -> dt.date | dt.datetime:
        """What the metrics store keeps: the date of a daily partition, the start of a sub-daily one."""
        return self.date if self.daily else self.start

    def isoformat(self) -> str:
        return self.key

    def __repr__(self) -> str:
        return f"Partition({self.key!r}, {interval_text(self.length)})"

    def __str__(self) -> str:
        return self.key

    def shift(self, intervals: int) -> Partition:
        """The partition ``intervals`` intervals later (earlier when negative)."""
        return Partition(self.start + intervals * self.length, self.length)

    def window(self, count: int) -> list[Partition]:
        """The ``count`` partitions ending at this one (inclusive), oldest first."""
        return [self.shift(-offset) for offset in range(count - 1, -1, -1)]

    def fields(self) -> dict[str, str]:
        """The template variables of the interval, for source paths and queries."""
        return {
            "ds": self.start.strftime("%Y-%m-%d"),
            "ds_nodash": self.start.strftime("%Y%m%d"),
            "hour": self.start.strftime("%H"),
            "ts_nodash": self.start.strftime("%Y%m%dT%H%M%S"),
            "partition": self.key,
        }


def in_schedule(value: Any, length: dt.timedelta, start_date: dt.date) -> Partition:
    """:meth:`Partition.parse` of a partition set from outside (``params.partition_date``, a drift
    event's ``partition_date``), refused with a ``ValueError`` naming it when it lies before the
    model's ``schedule.start_date``."""
    partition = Partition.parse(value, length)
    if partition.date < start_date:
        raise ValueError(f"{partition} is before the model's schedule.start_date {start_date}")
    return partition


def key_of(value: Any, length: dt.timedelta = DAY) -> str:
    """The key of the partition (of interval ``length``) a stored value names: a date or datetime from
    the metrics store, or text from a file."""
    if isinstance(value, dt.datetime):
        return Partition.containing(value, length).key
    if isinstance(value, dt.date):
        return Partition.containing(dt.datetime.combine(value, dt.time()), length).key
    text = str(value)
    try:
        return key_of(dt.datetime.fromisoformat(text), length) if len(text) > 10 else text
    except ValueError:
        return text


def start_of(value: dt.date | dt.datetime) -> dt.datetime:
    """The start of a partition as the metrics store returns it (a date, or a sub-daily start)."""
    if isinstance(value, dt.datetime):
        return _utc(value)
    return dt.datetime.combine(value, dt.time(), tzinfo=dt.UTC)


def intervals_in(duration: dt.timedelta, length: dt.timedelta) -> int:
    """How many intervals of ``length`` make ``duration``; ``ValueError`` when it is not a whole number."""
    count, rest = divmod(duration, length)
    if rest or count < 1:
        raise ValueError(
            f"{interval_text(duration)} is not a whole number of {interval_text(length)} intervals"
        )
    return int(count)


def partition_dir(root: StoragePath, area: str, model: str, partition: Partition | dt.date) -> StoragePath:
    """``<root>/<area>/<model>/dt=<key>`` (a date names a daily partition)."""
    return root / area / model / f"dt={Partition.of(partition).key}"


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
