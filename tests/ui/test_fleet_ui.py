"""The fleet dashboard in a real browser: login through Airflow, the fleet page, a model page, refusals."""

from __future__ import annotations

import os
import re
import urllib.error
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from tests.ui.conftest import ApiServer

pytestmark = pytest.mark.ui

FLEET = "/mloops/fleet"


def _status(url: str, headers: dict[str, str] | None = None) -> int:
    try:
        with urllib.request.urlopen(
            urllib.request.Request(url, headers=headers or {}), timeout=30
        ) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def _screenshot(page, name: str) -> None:
    """``MLOOPS_SCREENSHOTS=docs/img`` refreshes the README's pictures."""
    folder = os.environ.get("MLOOPS_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / name), full_page=True)


def test_requests_without_an_airflow_token_are_refused(api_server: ApiServer) -> None:
    for path in ("/", "/api/fleet", "/models/churn", "/api/models/churn"):
        assert _status(f"{api_server.url}{FLEET}{path}") in (401, 403), path
        assert _status(f"{api_server.url}{FLEET}{path}", {"Authorization": "Bearer not-a-token"}) in (
            401,
            403,
        ), path


def test_models_menu_entry_and_fleet_page(page, api_server: ApiServer) -> None:
    page.goto(f"{api_server.url}/")
    models_link = page.get_by_role("link", name="Models")
    models_link.first.wait_for(timeout=60_000)
    page.goto(f"{api_server.url}{FLEET}/")
    rows = page.locator("tr.model-row")
    assert rows.count() == 2
    # needs attention first: churn had its 2026-01-03 batch quarantined
    assert rows.nth(0).get_attribute("data-model") == "churn"
    churn = page.locator("tr[data-model='churn']")
    assert churn.get_attribute("data-status") == "attention"
    assert "2026-01-03 quarantined" in churn.locator("td.batches").inner_text()
    assert churn.locator("td.champion").inner_text().startswith("v")
    assert churn.locator("td.champion a.model-card").count() == 1
    assert "passed" in churn.locator("td.training").inner_text()
    assert int(churn.locator("td.drift-share svg.spark").get_attribute("data-points")) >= 1
    assert churn.locator("td.prediction-drift svg.spark polyline").count() == 1
    assert "2026-01-04" in churn.locator("td.scoring").inner_text()
    # The newest version waits in shadow beside the champion: which one, labelled intervals so far of 3.
    shadow = churn.locator("td.shadow")
    assert shadow.get_attribute("data-shadow") == "shadowing"
    assert re.fullmatch(
        r"v\d+ in shadow since 2026-01-0\d: [0-3]/3 intervals labeled, scored \d+ of at most 10",
        shadow.inner_text().strip(),
    ), shadow.inner_text()
    houses = page.locator("tr[data-model='house_prices']")
    assert houses.get_attribute("data-status") == "no champion"
    assert "none" in houses.locator("td.champion").inner_text()
    assert houses.locator("td.shadow").inner_text().strip() == "none"
    _screenshot(page, "fleet.png")

    page.select_option("select[name='owner']", "pricing")
    page.wait_for_url("**owner=pricing**")
    assert [r.get_attribute("data-model") for r in page.locator("tr.model-row").all()] == ["house_prices"]
    page.goto(f"{api_server.url}{FLEET}/?status=attention")
    assert [r.get_attribute("data-model") for r in page.locator("tr.model-row").all()] == ["churn"]

    data = page.request.get(f"{api_server.url}{FLEET}/api/fleet").json()
    assert data["counts"] == {"attention": 1, "no champion": 1, "ok": 0}
    assert (
        data["models"][0]["model"] == "churn" and data["models"][0]["recent_bad"][0]["date"] == "2026-01-03"
    )
    assert data["models"][0]["runs"]["train"]["state"] == "success"
    assert (
        data["models"][0]["shadow"]["status"] == "shadowing" and data["models"][0]["shadow"]["required"] == 3
    )


def test_model_page_timeline_versions_batches_and_links(page, api_server: ApiServer) -> None:
    page.goto(f"{api_server.url}{FLEET}/")
    page.click("tr[data-model='churn'] a.model-link")
    page.wait_for_url("**/models/churn")
    assert page.locator("#model-name").inner_text().startswith("churn")
    timeline = page.locator("tr.timeline-row")
    assert timeline.count() >= 1
    assert "now" in timeline.last.inner_text()
    assert page.locator("tr.version-row").count() >= 2
    quarantined = page.locator("tr.batch-row[data-status='quarantined']")
    assert quarantined.get_attribute("data-date") == "2026-01-03"
    assert "monthly_charges" in quarantined.inner_text()
    assert page.locator("#charts svg.spark").count() == 3
    assert page.locator("tr.drift-row").count() >= 1
    _screenshot(page, "model.png")

    for selector in ("a.data-docs", "a.test-report", "a.evidently-report", "a.model-card"):
        link = page.locator(selector).first
        href = link.get_attribute("href")
        assert href, selector
        response = page.request.get(f"{api_server.url}{href}")
        assert response.status == 200, (selector, href)
    assert page.locator("tr.version-row a.model-card").count() == page.locator("tr.version-row").count()
    newest = page.locator("tr.version-row").first
    card = page.request.get(f"{api_server.url}{newest.locator('a.model-card').get_attribute('href')}")
    assert card.headers["content-type"].startswith("text/html")
    assert f"Model card: mloops.churn v{newest.get_attribute('data-version')}" in card.text()
    docs = page.locator("a.data-docs").first.get_attribute("href")
    assert "/validations/" in docs  # the run's own validation page, not the site index
    mlflow_run = page.locator("a.mlflow-run").first.get_attribute("href")
    assert "/#/runs/" in mlflow_run
    airflow_run = page.locator("#runs a.airflow-run").first.get_attribute("href")
    assert (
        page.request.get(
            f"{api_server.url}/api/v2/dags/{airflow_run.split('/')[2]}/dagRuns/"
            f"{airflow_run.split('/runs/')[1]}"
        ).status
        == 200
    )
    detail = page.request.get(f"{api_server.url}{FLEET}/api/models/churn").json()
    assert detail["timeline"][-1]["until"] is None
    assert any(p["status"] == "quarantined" for p in detail["partitions"])


def test_plugin_manager_loads_only_the_plugin_and_nothing_heavy() -> None:
    """Every Airflow component loads plugins: ours adds the app and the menu entry and imports no FastAPI
    app, no stage module, and none of the package's files as stray top-level modules."""
    import json
    import subprocess
    import sys

    code = (
        "import json, sys\n"
        "from airflow import plugins_manager as pm\n"
        "apps, _ = pm.get_fastapi_plugins()\n"
        "views, _ = pm._get_ui_plugins()\n"
        "print(json.dumps({'apps': [a['url_prefix'] for a in apps], 'views': [v['name'] for v in views],\n"
        "  'loaded': [m for m in ('mloops.fleet.app', 'fastapi', 'mlflow', 'pandas', 'store', 'snapshot',\n"
        "                         'train')\n"
        "             if m in sys.modules]}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    found = json.loads(out.stdout.strip().splitlines()[-1])
    assert found["apps"] == [FLEET] and found["views"] == ["Models"]
    assert found["loaded"] == []
