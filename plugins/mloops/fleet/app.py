"""The fleet dashboard's FastAPI app, mounted by the Airflow API server (``/mloops/fleet``).

Every route depends on Airflow's own authorization (``requires_access_dag("GET")``: the caller's
JWT, from the ``Authorization`` header or the UI's ``_token`` cookie, must be valid and allow reading
DAGs), so a request without a valid Airflow token is refused and no second password exists.
Pages and JSON read the fleet snapshot (one query) plus two queries of the Airflow database.
"""

from __future__ import annotations

import mimetypes
import os
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


def _fleet(session: Any, settings: Settings) -> list[dict[str, Any]]:
    return view.join_airflow(
        collect.read(settings), airflow_state.latest_runs(session), airflow_state.pending_approvals(session)
    )


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
        session: SessionDep, owner: str | None = None, tag: str | None = None, status: str | None = None
    ) -> dict:
        rows = _fleet(session, get_settings())
        return {"counts": view.status_counts(rows), "models": view.filter_rows(rows, owner, tag, status)}

    @app.get("/api/models/{model}")
    def model_json(session: SessionDep, model: str) -> dict:
        return _model(session, get_settings(), model)

    @app.get("/", response_class=HTMLResponse)
    def fleet_page(
        request: Request,
        session: SessionDep,
        owner: str | None = None,
        tag: str | None = None,
        status: str | None = None,
    ) -> HTMLResponse:
        rows = _fleet(session, get_settings())
        shown = view.filter_rows(rows, owner, tag, status)
        page = TEMPLATES.get_template("fleet.html").render(
            base=request.scope.get("root_path", ""),
            rows=shown,
            total=len(rows),
            counts=view.status_counts(rows),
            choices=view.choices(rows),
            chosen={"owner": owner, "tag": tag, "status": status},
            charts={r["model"]: view.fleet_charts(r) for r in shown},
        )
        return HTMLResponse(page)

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
