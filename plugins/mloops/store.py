"""The metrics and events store: two SQL tables a fleet dashboard can read.

``mloops_metrics`` holds one row per (model, model version, window, metric); re-running a window
replaces its rows. ``mloops_events`` is an append-only log of what happened (quarantine, gate
failure, drift, retrain trigger, promotion, rollback). SQLite by default, Postgres in production
(``MLOOPS_METRICS_DB_URI``); SQLAlchemy Core only, so any SQL database works.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
from collections.abc import Callable, Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar

import sqlalchemy as sa

from mloops.errors import bounded, bounded_payload, service_error

P = ParamSpec("P")
R = TypeVar("R")

#: Seconds a PostgreSQL connection attempt may take: a dead host fails the task in seconds, and the
#: task's retries (not the driver's) decide how long to keep trying.
CONNECT_TIMEOUT = 10

METADATA = sa.MetaData()


class PartitionValue(sa.types.TypeDecorator):
    """A window bound or event partition: a date (daily partitions) or a UTC datetime (the start of a
    sub-daily one), kept as ISO text (``2026-01-01``, ``2026-01-01T13:00:00``) so an hourly model's
    windows stay apart and they sort as time does.

    SQLite stored the former ``DATE`` columns as the same ``YYYY-MM-DD`` text, so existing stores keep
    working; a Postgres store created before keeps ``DATE`` columns, which hold daily windows only
    (``ALTER TABLE ... TYPE varchar(25)`` before an hourly model writes to it).
    """

    impl = sa.String(25)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Any) -> str | None:
        if value is None:
            return None
        if isinstance(value, dt.datetime):
            if value.tzinfo is not None:
                value = value.astimezone(dt.UTC).replace(tzinfo=None)
            return value.isoformat(timespec="seconds")
        if isinstance(value, dt.date):
            return value.isoformat()
        raise TypeError(f"a partition is a date or datetime, got {type(value).__name__} {value!r}")

    def process_result_value(self, value: Any, dialect: Any) -> dt.date | dt.datetime | None:
        if value is None or isinstance(value, dt.date):  # a DATE column of an older store
            return value
        text = str(value)
        if len(text) == 10:
            return dt.date.fromisoformat(text)
        return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)


METRICS = sa.Table(
    "mloops_metrics",
    METADATA,
    sa.Column("model", sa.String(128), nullable=False),
    sa.Column("model_version", sa.String(32), nullable=False),
    sa.Column("window_start", PartitionValue, nullable=False),
    sa.Column("window_end", PartitionValue, nullable=False),
    sa.Column("metric", sa.String(256), nullable=False),
    sa.Column("value", sa.Float, nullable=True),
    sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("run_id", sa.String(256), nullable=True),
    sa.PrimaryKeyConstraint("model", "model_version", "window_start", "window_end", "metric"),
)

EVENTS = sa.Table(
    "mloops_events",
    METADATA,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("model", sa.String(128), nullable=False, index=True),
    sa.Column("kind", sa.String(64), nullable=False, index=True),
    sa.Column("partition", PartitionValue, nullable=True),
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("payload", sa.Text, nullable=False),
    sa.Column("dag_id", sa.String(256), nullable=True),
    sa.Column("run_id", sa.String(256), nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)

#: One row per model: the fleet snapshot the stages keep current (see :mod:`mloops.fleet.snapshot`),
#: so the fleet page is one query, not a registry call per model.
FLEET = sa.Table(
    "mloops_fleet",
    METADATA,
    sa.Column("model", sa.String(128), primary_key=True),
    sa.Column("owner", sa.String(256), nullable=True),
    sa.Column("tags", sa.Text, nullable=False),
    sa.Column("status", sa.String(32), nullable=False),
    sa.Column("summary", sa.Text, nullable=False),
    sa.Column("detail", sa.Text, nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)


def reaching(doing: str) -> Callable[[Callable[Concatenate[str, P], R]], Callable[Concatenate[str, P], R]]:
    """Turn a store function's failure to reach the database into a
    :class:`~mloops.errors.ServiceUnavailableError` naming the metrics DB (password masked) and
    ``doing`` (a refused login: :class:`~mloops.errors.ServiceAuthError`, not retried); SQL errors
    of a reachable database stay what they are."""

    def wrap(function: Callable[Concatenate[str, P], R]) -> Callable[Concatenate[str, P], R]:
        @functools.wraps(function)
        def call(uri: str, /, *args: P.args, **kwargs: P.kwargs) -> R:
            try:
                return function(uri, *args, **kwargs)
            except (sa.exc.OperationalError, sa.exc.InterfaceError, OSError) as exc:
                cause = getattr(exc, "orig", None) or exc
                raise service_error("metrics DB", uri, doing, cause) from exc

        return call

    return wrap


@cache
def engine(uri: str) -> sa.Engine:
    """One engine per URI per process; tables are created on first use."""
    if uri.startswith("sqlite:///"):
        Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    connect_args: dict[str, Any] = {}
    if uri.startswith("sqlite"):
        connect_args = {"timeout": 30}
    elif uri.startswith("postgresql"):
        connect_args = {"connect_timeout": CONNECT_TIMEOUT}
    eng = sa.create_engine(uri, connect_args=connect_args)
    METADATA.create_all(eng)
    return eng


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@reaching("writing metrics")
def write_metrics(
    uri: str,
    *,
    model: str,
    model_version: str,
    window_start: dt.date | dt.datetime,
    window_end: dt.date | dt.datetime,
    metrics: Mapping[str, float | None],
    run_id: str | None = None,
    families: Sequence[str] | None = None,
) -> int:
    """Replace the metrics of one (model, version, window); returns the number of rows written.

    With ``families`` (first dotted parts of metric names, e.g. ``("labels",)``) only the metrics of
    those families are replaced, so two stages can keep numbers on the same window; every metric
    written must belong to one of them.
    """
    key = (
        (METRICS.c.model == model)
        & (METRICS.c.model_version == model_version)
        & (METRICS.c.window_start == window_start)
        & (METRICS.c.window_end == window_end)
    )
    if families is not None:
        stray = sorted(name for name in metrics if name.split(".", 1)[0] not in families)
        if stray:
            raise ValueError(f"metrics {stray} are not in the families {list(families)} being replaced")
        key = key & sa.or_(*(METRICS.c.metric.startswith(f"{family}.") for family in families))
    rows = [
        {
            "model": model,
            "model_version": model_version,
            "window_start": window_start,
            "window_end": window_end,
            "metric": name,
            "value": value,
            "computed_at": _now(),
            "run_id": run_id,
        }
        for name, value in sorted(metrics.items())
    ]
    with engine(uri).begin() as conn:
        conn.execute(METRICS.delete().where(key))
        if rows:
            conn.execute(METRICS.insert(), rows)
    return len(rows)


@reaching("reading metrics")
def read_metrics(uri: str, model: str, metric: str | None = None) -> list[dict[str, Any]]:
    query = sa.select(METRICS).where(METRICS.c.model == model)
    if metric is not None:
        query = query.where(METRICS.c.metric == metric)
    with engine(uri).connect() as conn:
        return [
            dict(r._mapping) for r in conn.execute(query.order_by(METRICS.c.window_end, METRICS.c.metric))
        ]


@reaching("recording an event")
def record_event(
    uri: str,
    *,
    model: str,
    kind: str,
    message: str,
    payload: Mapping[str, Any] | None = None,
    partition: dt.date | dt.datetime | None = None,
    dag_id: str | None = None,
    run_id: str | None = None,
) -> int:
    with engine(uri).begin() as conn:
        result = conn.execute(
            EVENTS.insert().values(
                model=model,
                kind=kind,
                partition=partition,
                message=bounded(message),
                payload=json.dumps(bounded_payload(payload), sort_keys=True, default=str),
                dag_id=dag_id,
                run_id=run_id,
                created_at=_now(),
            )
        )
        # SQLAlchemy types the key as optional; an executed insert always has one.
        return int(result.inserted_primary_key[0])  # type: ignore[index]


@reaching("reading events")
def read_events(uri: str, model: str | None = None, kind: str | None = None) -> list[dict[str, Any]]:
    query = sa.select(EVENTS)
    if model is not None:
        query = query.where(EVENTS.c.model == model)
    if kind is not None:
        query = query.where(EVENTS.c.kind == kind)
    with engine(uri).connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(query.order_by(EVENTS.c.id))]
    for row in rows:
        row["payload"] = json.loads(row["payload"])
    return rows


@reaching("writing the fleet snapshot")
def write_fleet_row(
    uri: str,
    *,
    model: str,
    owner: str | None,
    tags: list[str],
    status: str,
    summary: Mapping[str, Any],
    detail: Mapping[str, Any],
) -> None:
    """Replace the snapshot row of one model: ``summary`` feeds the fleet page, ``detail`` the model page."""
    row = {
        "model": model,
        "owner": owner,
        "tags": json.dumps(sorted(tags)),
        "status": status,
        "summary": json.dumps(dict(summary), sort_keys=True, default=str),
        "detail": json.dumps(dict(detail), sort_keys=True, default=str),
        "updated_at": _now(),
    }
    with engine(uri).begin() as conn:
        conn.execute(FLEET.delete().where(FLEET.c.model == model))
        conn.execute(FLEET.insert().values(**row))


@reaching("reading the fleet snapshot")
def read_fleet(uri: str) -> list[dict[str, Any]]:
    """Every model's snapshot summary (not the detail): one query for the fleet page."""
    columns = [
        FLEET.c.model,
        FLEET.c.owner,
        FLEET.c.tags,
        FLEET.c.status,
        FLEET.c.summary,
        FLEET.c.updated_at,
    ]
    with engine(uri).connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(sa.select(*columns).order_by(FLEET.c.model))]
    for row in rows:
        row["tags"] = json.loads(row["tags"])
        row["summary"] = json.loads(row["summary"])
    return rows


@reaching("reading the fleet snapshot")
def fleet_version(uri: str) -> tuple[int, str | None]:
    """``(rows, newest updated_at)`` of the snapshot: changes whenever a row is written or dropped, so
    readers can keep what they decoded until it does (one cheap query)."""
    with engine(uri).connect() as conn:
        count, newest = conn.execute(sa.select(sa.func.count(), sa.func.max(FLEET.c.updated_at))).one()
    return int(count), None if newest is None else str(newest)


@reaching("reading the fleet snapshot")
def read_fleet_detail(uri: str, model: str) -> dict[str, Any] | None:
    """One model's full snapshot row (summary and detail decoded), or None."""
    with engine(uri).connect() as conn:
        found = conn.execute(sa.select(FLEET).where(FLEET.c.model == model)).first()
    if found is None:
        return None
    row = dict(found._mapping)
    for key in ("tags", "summary", "detail"):
        row[key] = json.loads(row[key])
    return row


@reaching("pruning the fleet snapshot")
def delete_fleet_rows(uri: str, keep: set[str]) -> int:
    """Drop the snapshot rows of models that are no longer configured."""
    with engine(uri).begin() as conn:
        return conn.execute(FLEET.delete().where(FLEET.c.model.not_in(sorted(keep)))).rowcount
