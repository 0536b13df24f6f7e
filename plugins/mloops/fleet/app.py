"""The fleet dashboard's FastAPI app, mounted by the Airflow API server (``/mloops/fleet``).

Every route depends on Airflow's own authorization (``requires_access_dag("GET")``: the caller's
JWT, from the ``Authorization`` header or the UI's ``_token`` cookie, must be valid and allow reading
DAGs), so a request without a valid Airflow token is refused and no second password exists.
Pages and JSON read the fleet snapshot (one query) plus two queries of the Airflow database.

Built for 300+ models: the decoded snapshot is kept while its version (rows, newest write; one cheap
query) is unchanged, and every answer (JSON or page) is encoded once, plain and gzipped, per snapshot
version, Airflow state and filters; a repeated request costs the three small queries and a lookup.
FastAPI's own response encoding is bypassed: ``jsonable_encoder`` over 300 summaries alone took 0.3 s.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import mimetypes
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

from airflow.api_fastapi.common.db.common import SessionDep  # noqa: TC002 - FastAPI reads it at run time
from airflow.api_fastapi.core_api.security import requires_access_dag
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape

from mloops.fleet import airflow_state, collect, view
from mloops.settings import Settings, get_settings

TEMPLATES = Environment(
    loader=FileSystemLoader(Path(__file__).with_name("templates")), autoescape=select_autoescape(["html"])
)
MLFLOW_UI_ENV = "MLOOPS_MLFLOW_UI_URL"


def mlflow_ui() -> str:
    """Where people open MLflow (``MLOOPS_MLFLOW_UI_URL``; default the ``make mlflow-ui`` address)."""
    return os.environ.get(MLFLOW_UI_ENV, "http://localhost:5000").rstrip("/")


def file_link(root_path: str, settings: Settings, uri: str | None) -> str | None:
    """A link through this app to a report under the data root or the Data Docs root (browsers do not
    open ``file://`` links from an http page)."""
    if not uri:
        return None
    path = unquote(uri.removeprefix("file://"))
    for name, root in (("data", str(settings.data_root_uri)), ("docs", str(settings.docs_root))):
        if path.startswith(root.rstrip("/") + "/"):
            return f"{root_path}/files/{name}/{quote(path[len(root.rstrip('/')) + 1 :])}"
    return None


class AnswerCache:
    """What one API-server process keeps of the snapshot: the decoded fleet and encoded answers, all
    dropped when the snapshot's version changes (a stage wrote a row, a model was removed)."""

    MAX_ANSWERS = 256

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._version: tuple[Any, ...] | None = None
        self._rows: list[dict[str, Any]] = []
        self._answers: dict[tuple[Any, ...], tuple[bytes, bytes]] = {}

    def fleet(self, settings: Settings) -> tuple[tuple[Any, ...], list[dict[str, Any]]]:
        current = (settings.metrics_db_uri, *collect.version(settings))
        with self._lock:
            if current == self._version:
                return current, self._rows
        rows = collect.read(settings)
        with self._lock:
            self._version, self._rows, self._answers = current, rows, {}
        return current, rows

    def answer(self, key: tuple[Any, ...], build: Callable[[], bytes]) -> tuple[bytes, bytes]:
        """``(plain, gzipped)`` bytes of one answer, built on the first request for ``key``."""
        with self._lock:
            found = self._answers.get(key)
        if found is None:
            body = build()
            found = (body, gzip.compress(body, compresslevel=5))
            with self._lock:
                if len(self._answers) >= self.MAX_ANSWERS:
                    self._answers.clear()
                self._answers[key] = found
        return found


CACHE = AnswerCache()


def _airflow_state(session: Any) -> tuple[dict[str, Any], dict[str, Any], str]:
    runs, approvals = airflow_state.latest_runs(session), airflow_state.pending_approvals(session)
    digest = hashlib.sha1(
        json.dumps([runs, approvals], sort_keys=True, default=str).encode(), usedforsecurity=False
    ).hexdigest()
    return runs, approvals, digest


def _fleet(session: Any, settings: Settings) -> tuple[tuple[Any, ...], list[dict[str, Any]]]:
    """The joined fleet and the key of everything it was built from."""
    version, rows = CACHE.fleet(settings)
    runs, approvals, digest = _airflow_state(session)
    return (*version, digest), view.join_airflow(rows, runs, approvals)


def _encoded(request: Request, body: tuple[bytes, bytes], media_type: str) -> Response:
    """The gzipped body when the client accepts it (browsers do), else the plain one."""
    if "gzip" in request.headers.get("accept-encoding", ""):
        return Response(
            body[1], media_type=media_type, headers={"Content-Encoding": "gzip", "Vary": "Accept-Encoding"}
        )
    return Response(body[0], media_type=media_type, headers={"Vary": "Accept-Encoding"})


def _json(value: Any) -> bytes:
    return json.dumps(value, default=str, separators=(",", ":")).encode()


def _model(session: Any, settings: Settings, model: str) -> dict[str, Any]:
    found = collect.read_model(settings, model)
    if found is None:
        raise HTTPException(404, f"no snapshot of model {model!r}: unknown model, or no stage has run yet")
    joined = view.join_airflow(
        [found],
        airflow_state.latest_runs(session, f"mloops_%_{model}"),
        airflow_state.pending_approvals(session),
    )[0]
    joined["airflow_runs"] = airflow_state.runs_of(
        session, [f"{p}{model}" for p in airflow_state.PREFIXES] + ["mloops_registry_ops"], limit=30
    )
    return joined


def create_app() -> FastAPI:
    app = FastAPI(title="mloops fleet", dependencies=[Depends(requires_access_dag("GET"))])

    @app.get("/api/fleet")
    def fleet_json(
        request: Request,
        session: SessionDep,
        owner: str | None = None,
        tag: str | None = None,
        status: str | None = None,
    ) -> Response:
        key, rows = _fleet(session, get_settings())
        body = CACHE.answer(
            ("json", key, owner, tag, status),
            lambda: _json(
                {"counts": view.status_counts(rows), "models": view.filter_rows(rows, owner, tag, status)}
            ),
        )
        return _encoded(request, body, "application/json")

    @app.get("/api/models/{model}")
    def model_json(request: Request, session: SessionDep, model: str) -> Response:
        body = _json(_model(session, get_settings(), model))
        return _encoded(request, (body, gzip.compress(body, compresslevel=5)), "application/json")

    @app.get("/", response_class=HTMLResponse)
    def fleet_page(
        request: Request,
        session: SessionDep,
        owner: str | None = None,
        tag: str | None = None,
        status: str | None = None,
    ) -> Response:
        settings = get_settings()
        key, rows = _fleet(session, settings)
        base = request.scope.get("root_path", "")

        def render() -> bytes:
            shown = view.filter_rows(rows, owner, tag, status)
            return (
                TEMPLATES.get_template("fleet.html")
                .render(
                    base=base,
                    rows=shown,
                    total=len(rows),
                    counts=view.status_counts(rows),
                    choices=view.choices(rows),
                    chosen={"owner": owner, "tag": tag, "status": status},
                    charts={r["model"]: view.fleet_charts(r) for r in shown},
                    link=lambda uri: file_link(base, settings, uri),
                    shadow_text=view.shadow_text,
                )
                .encode()
            )

        body = CACHE.answer(("html", key, base, owner, tag, status), render)
        return _encoded(request, body, "text/html; charset=utf-8")

    @app.get("/models/{model}", response_class=HTMLResponse)
    def model_page(request: Request, session: SessionDep, model: str) -> HTMLResponse:
        settings = get_settings()
        row = _model(session, settings, model)
        base = request.scope.get("root_path", "")
        drift = row["drift"]
        flags = [bool(d.get("breached")) for d in drift]
        charts = {
            "share": view.sparkline(
                [d.get("share") for d in drift], label="drift share", flags=flags, width=600, height=80
            ),
            "prediction": view.sparkline(
                [d.get("prediction") for d in drift],
                label="prediction drift",
                flags=flags,
                width=600,
                height=80,
            ),
            "quality": view.sparkline(
                [d.get("quality") for d in drift],
                label=f"live {row['primary_metric']}",
                threshold=row.get("champion_metric"),
                width=600,
                height=80,
            ),
        }
        page = TEMPLATES.get_template("model.html").render(
            base=base,
            m=row,
            charts=charts,
            mlflow=mlflow_ui(),
            link=lambda uri: file_link(base, settings, uri),
        )
        return HTMLResponse(page)

    @app.get("/files/{root}/{path:path}")
    def report_file(root: str, path: str) -> Response:
        settings = get_settings()
        base = {"data": settings.data_root, "docs": settings.docs_root}.get(root)
        if base is None or ".." in Path(path).parts:
            raise HTTPException(404, "not a report location")
        target = base / path
        if not target.is_file():
            raise HTTPException(404, f"{root}/{path} does not exist")
        media = mimetypes.guess_type(str(path))[0] or "application/octet-stream"
        return Response(target.read_bytes(), media_type=media)

    return app
