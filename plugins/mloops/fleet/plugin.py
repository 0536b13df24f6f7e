"""The Airflow plugin of the fleet dashboard: a FastAPI app and a "Models" entry in the UI menu.

The app is built on the first request (:class:`LazyApp`), so loading the plugin (which every
Airflow component does) imports nothing of FastAPI, SQLAlchemy or the API server's security.
"""

from __future__ import annotations

from typing import Any

from airflow.plugins_manager import AirflowPlugin

URL_PREFIX = "/mloops/fleet"


class LazyApp:
    """An ASGI app that builds :func:`mloops.fleet.app.create_app` when the API server first calls it."""

    def __init__(self) -> None:
        self._app: Any = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if self._app is None:
            from mloops.fleet.app import create_app

            self._app = create_app()
        await self._app(scope, receive, send)


class MloopsFleetPlugin(AirflowPlugin):
    name = "mloops_fleet"
    fastapi_apps = [{"name": "mloops_fleet", "app": LazyApp(), "url_prefix": URL_PREFIX}]
    external_views = [
        {
            "name": "Models",
            "href": f"{URL_PREFIX}/",
            "destination": "nav",
            "url_route": "models",
        }
    ]
