"""Fixtures of the browser tests: real stage runs, a real ``airflow api-server`` with the plugin, Chromium.

The stores are filled by running the generated DAGs with ``dag.test()`` (a small churn model with one
broken batch, a second model that never trains), the API server runs on a free loopback port over the
same Airflow database, and the user logs in through the Simple auth manager's own login page with a
password this fixture writes to the manager's passwords file.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from scripts.browser import CHROMIUM, launch
from tests.conftest import free_port
from tests.helpers import dag_test, small_churn, write_models

USER, PASSWORD = "ops", "fleet-ui-test-password"
ENV_KEYS = ("MLOOPS_HOME", "MLOOPS_MODELS_DIR", "MLFLOW_TRACKING_URI")


def require_chromium() -> None:
    """No browser is a failure (CI installs it: ``make test-deps``), never a quiet skip."""
    if not Path(CHROMIUM).exists():
        pytest.fail(
            f"Chromium not found at {CHROMIUM}: apt-get install -y chromium chromium-driver (make test-deps)"
        )
    try:
        import playwright  # noqa: F401
    except ImportError:
        pytest.fail(
            "the playwright package is missing: pip install -r requirements-dev.txt -c constraints.txt"
        )


@dataclass(frozen=True)
class Fleet:
    home: Path
    models: Path


@pytest.fixture(scope="package")
def fleet_stores(tmp_path_factory: pytest.TempPathFactory, airflow_db: Path) -> Iterator[Fleet]:
    """Real runs: churn trains on 01-01 and 01-02, its 01-03 batch is quarantined, 01-04 trains again
    (policy ``shadow``: the newest tested version waits in shadow beside v1); scoring (with the shadow)
    and monitoring (label join, shadow decision, drift check) follow. ``house_prices`` is configured and
    never ran (no champion)."""
    root = tmp_path_factory.mktemp("fleet")
    home = root / "mloops"
    churn = small_churn(
        scenarios=[
            {
                "kind": "null_burst",
                "start": "2026-01-03",
                "end": "2026-01-03",
                "params": {"column": "monthly_charges", "fraction": 0.6},
            }
        ]
    )
    churn["monitoring"].update({"window_days": 2, "min_rows": 50, "label_delay_days": 0})
    from tests.helpers import example_config

    # Staged rollout: versions after the first wait in shadow, judged on the example's label feed.
    churn["labels"] = example_config("churn")["labels"]
    churn["promotion"] = {"policy": "shadow", "shadow_intervals": 3}

    houses = example_config("house_prices")
    houses["owner"] = "pricing"
    models = write_models(root / "models", churn=churn, house_prices=houses)
    saved = {k: os.environ.get(k) for k in ENV_KEYS}
    os.environ.update(
        {
            "MLOOPS_HOME": str(home),
            "MLOOPS_MODELS_DIR": str(models),
            "MLFLOW_TRACKING_URI": f"sqlite:///{home / 'mlflow' / 'mlflow.db'}",
        }
    )
    try:
        states = {
            day: dag_test("mloops_train_churn", day)[1]
            for day in ("2026-01-01", "2026-01-02", "2026-01-03", "2026-01-04")
        }
        assert states["2026-01-01"]["promote_model"] == "success", states
        assert states["2026-01-03"]["validate_batch"] == "failed", states
        for day in ("2026-01-02", "2026-01-04"):
            assert dag_test("mloops_score_churn", day, hour=4)[1]["score_batch"] == "success"
        assert dag_test("mloops_monitor_churn", "2026-01-04", hour=6)[1]["check_drift"] == "success"
        from mloops.fleet import collect
        from mloops.settings import get_settings

        collect.refresh(get_settings())
        yield Fleet(home, models)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@dataclass(frozen=True)
class ApiServer:
    url: str
    log: Path


@pytest.fixture(scope="package")
def api_server(fleet_stores: Fleet, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    """``airflow api-server`` on a free loopback port with the plugin, over the test Airflow DB and stores."""
    folder = tmp_path_factory.mktemp("api")
    passwords = folder / "passwords.json"
    passwords.write_text(json.dumps({USER: PASSWORD}))
    port = free_port()
    env = {
        **os.environ,
        "MLOOPS_HOME": str(fleet_stores.home),
        "MLOOPS_MODELS_DIR": str(fleet_stores.models),
        "MLFLOW_TRACKING_URI": f"sqlite:///{fleet_stores.home / 'mlflow' / 'mlflow.db'}",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{USER}:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False",
        "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}",
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__WORKERS": "1",
        "AIRFLOW__API_AUTH__JWT_SECRET": "fleet-ui-tests-secret",
        "PYTHONPATH": (
            f"{Path(__file__).resolve().parents[2] / 'plugins'}{os.pathsep}"
            f"{Path(__file__).resolve().parents[2]}"
        ),
    }
    log = folder / "api-server.log"
    airflow = str(Path(sys.executable).parent / "airflow")
    # every generated DAG in the database, as the DAG processor would leave them (the trigger-form tests)
    subprocess.run([airflow, "dags", "reserialize"], env=env, check=True, capture_output=True)
    with log.open("w") as out:
        process = subprocess.Popen(
            [airflow, "api-server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                with urllib.request.urlopen(f"{url}/api/v2/monitor/health", timeout=5):
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"api-server did not start:\n{log.read_text()[-4000:]}")
                time.sleep(1)
        yield ApiServer(url, log)
    finally:
        os.killpg(process.pid, signal.SIGTERM)  # the server and any worker it forked
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


@pytest.fixture(scope="package")
def browser() -> Iterator[object]:
    require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = launch(pw)
        try:
            yield chromium
        finally:
            chromium.close()


def login(page: object, url: str) -> None:
    """Log in through the Simple auth manager's login form, as a person would."""
    page.goto(f"{url}/auth/login/?next={url}/")
    page.fill("input[name='username']", USER)
    page.fill("input[name='password']", PASSWORD)
    page.click("button[type='submit']")
    page.wait_for_url(lambda u: "/auth/login" not in u, timeout=60_000)


@pytest.fixture
def page(browser: object, api_server: ApiServer) -> Iterator[object]:
    context = browser.new_context(viewport={"width": 1500, "height": 1000})
    page = context.new_page()
    login(page, api_server.url)
    try:
        yield page
    finally:
        context.close()
