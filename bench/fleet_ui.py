"""Fleet dashboard at scale: the snapshot endpoint and the page over N models x D days, against the API
server's own ``/api/v2/dags`` listing of the same 3N DAGs, measured in the same run.

``measure()`` builds a throw-away workspace: N copies of churn's config (so the DAG processor's
``reserialize`` stores 3N DAGs), a fleet snapshot of N models with D days of verdicts, drift windows,
events and versions written by :func:`mloops.fleet.snapshot.build_row` (what the stages keep current),
then starts ``airflow api-server`` on a free loopback port (all-admins auth, a token from
``/auth/token``) and times, per request, ``GET /mloops/fleet/api/fleet`` and
``GET /api/v2/dags?limit=<3N>``; then the page in headless Chromium (``load`` event) against the
same listing. Both endpoints are asked with ``Accept-Encoding: gzip``, as a browser or Grafana asks.
A third figure is the snapshot endpoint right after a stage rewrote one model's row (the app's cache
is then rebuilt: the cold path). ``python -m bench --only fleet_ui`` runs it as a section with its
budgets; ``python -m bench.fleet_ui [models] [days]`` prints the raw numbers as JSON.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _synthetic_inputs(model: str, days: int, start: dt.date) -> dict[str, Any]:
    dates = [start + dt.timedelta(days=i) for i in range(days)]
    verdicts = [
        {
            "partition": d.isoformat(),
            "status": "quarantined" if i % 29 == 7 else "passed",
            "rows": 1500,
            "docs_url": f"file:///docs/{model}/validations/{d}.html",
            "failures": [
                {
                    "column": "monthly_charges",
                    "expectation": "expect_column_values_to_not_be_null",
                    "observed": "60% null",
                    "expected": "<= 5%",
                }
            ]
            if i % 29 == 7
            else [],
        }
        for i, d in enumerate(dates)
    ]
    metrics = []
    for i, d in enumerate(dates):
        for name, value in (
            ("drift.share", (i % 10) / 10),
            ("drift.prediction", (i % 7) / 20),
            ("policy.breached", float(i % 10 >= 3)),
            ("quality.roc_auc", 0.8 - (i % 5) / 100),
        ):
            metrics.append(
                {
                    "model_version": str(1 + i // 15),
                    "window_start": d - dt.timedelta(days=2),
                    "window_end": d,
                    "metric": name,
                    "value": value,
                }
            )
    versions = [
        {
            "version": str(v),
            "run_id": f"run{v}",
            "aliases": ["champion"] if v == days // 15 else [],
            "interval": dates[min(v * 15, days - 1)].isoformat(),
            "test_status": "passed",
            "tests": {"threshold:roc_auc": True},
            "test_report": None,
            "metrics": {"roc_auc": 0.8},
            "promoted_by": {"run_type": "scheduled"},
        }
        for v in range(1, days // 15 + 1)
    ]
    events = [
        {
            "kind": "model_promoted",
            "created_at": f"{dates[min(v * 15, days - 1)]} 02:30:00",
            "payload": {"champion": str(v), "reason": "better"},
            "message": "promoted",
            "dag_id": f"mloops_train_{model}",
            "run_id": f"scheduled__{v}",
            "partition": dates[min(v * 15, days - 1)],
        }
        for v in range(1, days // 15 + 1)
    ]
    return {
        "versions": versions,
        "verdicts": verdicts,
        "metrics": metrics,
        "events": events,
        "scored": [d.isoformat() for d in dates],
    }


def _workspace(root: Path, models: int, days: int) -> dict[str, str]:
    if str(REPO / "plugins") not in sys.path:
        sys.path.insert(0, str(REPO / "plugins"))
    from mloops.config_files import load_model_config

    base = yaml.safe_load((REPO / "include" / "models" / "churn.yaml").read_text())
    base["schedule"]["end_date"] = "2026-01-31"
    folder = root / "models"
    folder.mkdir(parents=True)
    env = {
        "MLOOPS_HOME": str(root / "mloops"),
        "MLOOPS_MODELS_DIR": str(folder),
        "AIRFLOW_HOME": str(root / "airflow"),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{root / 'airflow' / 'airflow.db'}",
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
        "AIRFLOW__API__MAXIMUM_PAGE_LIMIT": str(max(1000, models * 3 + 10)),
        "AIRFLOW__API_AUTH__JWT_SECRET": "bench-fleet-ui",
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "PYTHONPATH": f"{REPO / 'plugins'}{os.pathsep}{REPO}",
    }
    os.environ.update(env)
    from mloops import store
    from mloops.fleet import snapshot
    from mloops.settings import get_settings

    uri = get_settings().metrics_db_uri
    for index in range(models):
        name = f"model_{index:03d}"
        data = {**base, "owner": f"team-{index % 7}", "tags": ["bench", f"group-{index % 5}"]}
        path = folder / f"{name}.yaml"
        path.write_text(yaml.safe_dump(data, sort_keys=False))
        config = load_model_config(path)
        row = snapshot.build_row(config, **_synthetic_inputs(name, days, dt.date(2026, 1, 1)))
        store.write_fleet_row(uri, model=name, owner=config.owner, tags=list(config.tags), **row)
    return env


def _get(url: str, token: str) -> tuple[float, int, int]:
    """Seconds to the decoded body, bytes on the wire, bytes decoded."""
    request = urllib.request.Request(
        url, headers={"Authorization": f"Bearer {token}", "Accept-Encoding": "gzip"}
    )
    start = time.perf_counter()
    with urllib.request.urlopen(request, timeout=120) as response:
        wire = response.read()
        body = gzip.decompress(wire) if response.headers.get("Content-Encoding") == "gzip" else wire
        json.loads(body)  # a client decodes what it asked for
    return time.perf_counter() - start, len(wire), len(body)


def _timed_get(url: str, token: str, repeats: int, before: Any = None) -> tuple[float, int, int]:
    times, wire, size = [], 0, 0
    for _ in range(repeats):
        if before is not None:
            before()
        took, wire, size = _get(url, token)
        times.append(took)
    return statistics.median(times), wire, size


def _rewrite_one_row(models: int, days: int) -> Any:
    """A stage's write: one model's snapshot row rebuilt (a new version of the snapshot)."""
    from mloops import store
    from mloops.config_files import load_model_config
    from mloops.fleet import snapshot
    from mloops.settings import get_settings

    folder = Path(os.environ["MLOOPS_MODELS_DIR"])
    counter = iter(range(10**6))

    def write() -> None:
        name = f"model_{next(counter) % models:03d}"
        config = load_model_config(folder / f"{name}.yaml")
        row = snapshot.build_row(config, **_synthetic_inputs(name, days, dt.date(2026, 1, 1)))
        store.write_fleet_row(
            get_settings().metrics_db_uri, model=name, owner=config.owner, tags=list(config.tags), **row
        )

    return write


def _browser_times(url: str, token: str, repeats: int) -> dict[str, float]:
    from playwright.sync_api import sync_playwright

    out: dict[str, list[float]] = {"fleet_page_s": [], "dags_listing_s": []}
    from scripts.browser import launch

    with sync_playwright() as pw:
        browser = launch(pw)
        context = browser.new_context()
        context.add_cookies([{"name": "_token", "value": token, "url": url}])
        page = context.new_page()
        for _ in range(repeats):
            for key, path in (
                ("fleet_page_s", "/mloops/fleet/"),
                ("dags_listing_s", "/api/v2/dags?limit=1000"),  # Chromium's JSON viewer
            ):
                start = time.perf_counter()
                page.goto(f"{url}{path}", wait_until="load")
                out[key].append(time.perf_counter() - start)
        rows = page.goto(f"{url}/mloops/fleet/") and page.locator("tr.model-row").count()
        browser.close()
    return {**{k: statistics.median(v) for k, v in out.items()}, "rows_rendered": rows}


def measure(models: int = 300, days: int = 90, repeats: int = 15) -> dict[str, Any]:
    """Medians (seconds) of the snapshot endpoint, the page, and /api/v2/dags; ratios against the listing."""
    with tempfile.TemporaryDirectory(prefix="bench-fleet-") as folder:
        root = Path(folder)
        started = time.perf_counter()
        env = {**os.environ, **_workspace(root, models, days)}
        airflow = str(Path(sys.executable).parent / "airflow")
        subprocess.run([airflow, "db", "migrate"], env=env, check=True, capture_output=True)
        subprocess.run([airflow, "dags", "reserialize"], env=env, check=True, capture_output=True)
        setup_s = time.perf_counter() - started
        port = _free_port()
        url = f"http://127.0.0.1:{port}"
        log = (root / "api.log").open("w")
        server = subprocess.Popen(
            [airflow, "api-server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
            env={**env, "AIRFLOW__API__BASE_URL": url},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            token = _token(url, server)
            dags_n = json.loads(
                urllib.request.urlopen(
                    urllib.request.Request(
                        f"{url}/api/v2/dags?limit=1", headers={"Authorization": f"Bearer {token}"}
                    ),
                    timeout=60,
                ).read()
            )["total_entries"]
            fleet_url, dags_url = f"{url}/mloops/fleet/api/fleet", f"{url}/api/v2/dags?limit={dags_n}"
            first_s = _get(fleet_url, token)[0]  # builds the lazy app: the first request after a start
            _timed_get(fleet_url, token, 2)
            _timed_get(dags_url, token, 2)
            fleet_s, fleet_wire, fleet_bytes = _timed_get(fleet_url, token, repeats)
            dags_s, dags_wire, dags_bytes = _timed_get(dags_url, token, repeats)
            cold_s = _timed_get(fleet_url, token, max(3, repeats // 3), _rewrite_one_row(models, days))[0]
            browser = _browser_times(url, token, max(3, repeats // 3))
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)
            log.close()
    return {
        "models": models,
        "days": days,
        "dags": dags_n,
        "setup_s": round(setup_s, 1),
        "snapshot_endpoint_median_s": round(fleet_s, 4),
        "snapshot_endpoint_bytes": fleet_bytes,
        "snapshot_endpoint_wire_bytes": fleet_wire,
        "snapshot_endpoint_after_write_median_s": round(cold_s, 4),
        "snapshot_endpoint_first_request_s": round(first_s, 3),
        "dags_listing_median_s": round(dags_s, 4),
        "dags_listing_bytes": dags_bytes,
        "dags_listing_wire_bytes": dags_wire,
        "snapshot_vs_dags_ratio": round(fleet_s / dags_s, 2),
        "snapshot_after_write_vs_dags_ratio": round(cold_s / dags_s, 2),
        "page_in_chromium_median_s": round(browser["fleet_page_s"], 3),
        "dags_listing_in_chromium_median_s": round(browser["dags_listing_s"], 3),
        "page_vs_dags_ratio": round(browser["fleet_page_s"] / browser["dags_listing_s"], 2),
        "rows_rendered": browser["rows_rendered"],
    }


def _token(url: str, server: subprocess.Popen) -> str:
    deadline = time.monotonic() + 240
    while True:
        try:
            with urllib.request.urlopen(f"{url}/auth/token", timeout=10) as response:
                return json.loads(response.read())["access_token"]
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("api-server did not start") from None
            time.sleep(1)


def run(ws: Any, models: int, days: int, repeats: int) -> dict[str, Any]:
    """The ``fleet_ui`` section of ``python -m bench``: three cases against the /api/v2/dags listing."""
    ws.log(f"fleet_ui: {models} models x {days} days, {repeats} requests per figure")
    m = measure(models, days, repeats)
    listing = f"GET /api/v2/dags?limit={m['dags']} (the API server's own listing of the same DAGs)"

    def case(
        kind: str, name: str, subject_s: float, baseline_s: float, extra: dict[str, Any]
    ) -> dict[str, Any]:
        return {
            "kind": kind,
            "name": name,
            "models": models,
            "seconds": subject_s,
            "metric": "wall seconds, median over requests (one API server, same run)",
            "subject": {"time_s": subject_s},
            "baseline": {"time_s": baseline_s},
            "ratio": round(subject_s / baseline_s, 2),
            "extra": extra,
        }

    return {
        "title": f"Fleet dashboard, {models} models x {days} days of history",
        "subject": "the fleet snapshot endpoint /mloops/fleet/api/fleet and the fleet page in Chromium",
        "baseline": listing,
        "cases": [
            case(
                "snapshot",
                "snapshot endpoint",
                m["snapshot_endpoint_median_s"],
                m["dags_listing_median_s"],
                {k: m[k] for k in ("snapshot_endpoint_bytes", "snapshot_endpoint_wire_bytes", "dags")},
            ),
            case(
                "after_write",
                "snapshot endpoint after a stage wrote a row",
                m["snapshot_endpoint_after_write_median_s"],
                m["dags_listing_median_s"],
                {"first_request_s": m["snapshot_endpoint_first_request_s"]},
            ),
            case(
                "page",
                "fleet page in Chromium (load event)",
                m["page_in_chromium_median_s"],
                m["dags_listing_in_chromium_median_s"],
                {"rows_rendered": m["rows_rendered"]},
            ),
        ],
        "raw": m,
    }


if __name__ == "__main__":
    arguments = [int(a) for a in sys.argv[1:3]]
    print(json.dumps(measure(*arguments), indent=2))
