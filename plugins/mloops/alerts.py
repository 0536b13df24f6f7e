"""Events worth telling someone about, and the notifiers that tell them.

Every event (a quarantined batch, a failed gate, drift, a retrain trigger, a promotion, a rollback,
an approval decision) is logged, appended to the events table of the metrics store, and sent to the
notifiers configured in ``MLOOPS_ALERT_CONN_IDS``: a comma-separated list of Airflow connection ids,
off by default. Connection types:

* ``http``/``https`` (a webhook): the event is POSTed as JSON to the connection's URL
  (``schema://host:port/path`` where the path comes from the connection's ``extra["endpoint"]``).
* ``smtp`` / ``email``: a plain-text mail through the connection's host and port (login and password
  if set); ``extra`` holds ``from`` and ``to`` (a list or comma-separated string).

A notifier that fails is logged and does not fail the task: the event is already in the store.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import smtplib
import urllib.request
from collections.abc import Callable, Mapping
from email.message import EmailMessage
from typing import Any

from mloops import store
from mloops.contracts import EventKind
from mloops.errors import bounded, bounded_payload
from mloops.partitions import Partition
from mloops.settings import get_settings

log = logging.getLogger(__name__)

KINDS = tuple(EventKind)

ConnectionGetter = Callable[[str], Any]


def _airflow_connection(conn_id: str) -> Any:
    from airflow.sdk import BaseHook

    return BaseHook.get_connection(conn_id)


def _extra(connection: Any) -> dict[str, Any]:
    extra = getattr(connection, "extra_dejson", None)
    if extra is None:
        raw = getattr(connection, "extra", None) or "{}"
        extra = json.loads(raw) if isinstance(raw, str) else dict(raw)
    return dict(extra)


def send_webhook(connection: Any, event: Mapping[str, Any], timeout: float = 10.0) -> None:
    scheme = (
        connection.conn_type if connection.conn_type in ("http", "https") else (connection.schema or "http")
    )
    port = f":{connection.port}" if connection.port else ""
    endpoint = _extra(connection).get("endpoint", "").lstrip("/")
    if scheme not in ("http", "https"):
        raise ValueError(f"connection {connection.conn_id!r}: webhook scheme {scheme!r} is not http or https")
    url = f"{scheme}://{connection.host}{port}/{endpoint}"
    request = urllib.request.Request(  # noqa: S310 - scheme checked above
        url,
        data=json.dumps(event, default=str).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - URL from an Airflow connection
        if response.status >= 300:
            raise RuntimeError(f"webhook {url} answered {response.status}")


def send_mail(connection: Any, event: Mapping[str, Any], timeout: float = 10.0) -> None:
    extra = _extra(connection)
    recipients = extra.get("to") or []
    if isinstance(recipients, str):
        recipients = [r.strip() for r in recipients.split(",") if r.strip()]
    if not recipients:
        raise ValueError(f"connection {connection.conn_id!r} has no 'to' in its extra")
    message = EmailMessage()
    message["Subject"] = f"[mloops] {event['kind']}: {event['model']}"
    message["From"] = extra.get("from", "mloops@localhost")
    message["To"] = ", ".join(recipients)
    message.set_content(f"{event['message']}\n\n{json.dumps(event, indent=2, default=str)}\n")
    with smtplib.SMTP(connection.host, connection.port or 25, timeout=timeout) as smtp:
        if connection.login:
            smtp.starttls()
            smtp.login(connection.login, connection.password or "")
        smtp.send_message(message)


SENDERS: dict[str, Callable[[Any, Mapping[str, Any]], None]] = {
    "http": send_webhook,
    "https": send_webhook,
    "smtp": send_mail,
    "email": send_mail,
}


def emit(
    kind: str,
    model: str,
    message: str,
    *,
    payload: Mapping[str, Any] | None = None,
    partition: Partition | dt.date | None = None,
    dag_id: str | None = None,
    run_id: str | None = None,
    get_connection: ConnectionGetter = _airflow_connection,
) -> dict[str, Any]:
    """Log, store and notify one event; returns the event as sent."""
    if kind not in KINDS:
        raise ValueError(f"unknown event kind {kind!r}; known: {KINDS}")
    settings = get_settings()
    message, payload = bounded(message), bounded_payload(payload)
    event: dict[str, Any] = {
        "kind": kind,
        "model": model,
        "message": message,
        "partition": partition.isoformat() if partition else None,  # a Partition's is its key
        "dag_id": dag_id,
        "run_id": run_id,
        "payload": dict(payload or {}),
    }
    log.warning("mloops event %s for %s: %s", kind, model, message)
    event["id"] = store.record_event(
        settings.metrics_db_uri,
        model=model,
        kind=kind,
        message=message,
        payload=payload,
        partition=partition.value if isinstance(partition, Partition) else partition,
        dag_id=dag_id,
        run_id=run_id,
    )
    for conn_id in [c.strip() for c in os.environ.get("MLOOPS_ALERT_CONN_IDS", "").split(",") if c.strip()]:
        try:
            connection = get_connection(conn_id)
            sender = SENDERS.get(connection.conn_type)
            if sender is None:
                raise ValueError(
                    f"connection type {connection.conn_type!r} is not a notifier ({sorted(SENDERS)})"
                )
            sender(connection, event)
        except Exception:  # noqa: BLE001 - a notifier outage must not fail the pipeline; the event is stored
            log.exception("notifier %s failed for event %s of %s", conn_id, kind, model)
    return event
