"""Local stacks listen on 127.0.0.1 only: the demo's Airflow API has no login (all admins), so it must
not be reachable from the network (on main's predecessor it served 0.0.0.0:8080)."""

from __future__ import annotations

import re

import pytest

from scripts.devstack import LocalAirflow, local_api_env
from tests.helpers import REPO

pytestmark = pytest.mark.security


def test_the_local_api_server_binds_loopback_unless_told_otherwise(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("AIRFLOW__API__HOST", raising=False)
    env = local_api_env({})
    assert env["AIRFLOW__API__HOST"] == "127.0.0.1"
    assert env["AIRFLOW__API__BASE_URL"].startswith("http://127.0.0.1:")
    # The api-server is started with --host from this environment (LocalAirflow._spawn).
    assert LocalAirflow({}, tmp_path / "airflow.log").env["AIRFLOW__API__HOST"] == "127.0.0.1"


def test_make_targets_bind_loopback() -> None:
    makefile = (REPO / "Makefile").read_text()
    assert re.search(r"^export AIRFLOW__API__HOST \?= 127\.0\.0\.1$", makefile, re.M)
    assert re.search(r"mlflow ui .*--host 127\.0\.0\.1", makefile)
    compose = (REPO / "docker-compose.yml").read_text()
    published = re.findall(r'- "\$\{(\w+)_HOST_BIND:-([^}]+)\}:', compose)
    assert sorted(published) == [("AIRFLOW", "127.0.0.1"), ("MLFLOW", "127.0.0.1")]
