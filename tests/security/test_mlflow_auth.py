"""mloops against a real MLflow server with basic auth, configured as compose runs it.

The server is ``mlflow server --app-name basic-auth`` with ``deploy/mlflow/basic_auth.ini`` itself
(its auth DB is relative to the working directory, a temporary folder here as the ``mlflow-auth``
volume is in compose), a SQLite store and proxied artifacts, on a free loopback port.

On main the workers' credentials were never checked by a running test (the venv lacked Flask-WTF),
and a refused login surfaced as a raw ``MlflowException`` that the task retried like an outage.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from airflow.sdk.exceptions import AirflowFailException

from mloops.operators import (
    GXValidateBatchOperator,
    MLflowPromoteModelOperator,
    MLflowRegisterModelOperator,
    MLflowTestModelOperator,
    MLflowTrainModelOperator,
)
from tests.helpers import REPO
from tests.integration.native_stack import free_port
from tests.operators.test_operators import _execute, churn_models, refused_promotion  # noqa: F401 - fixture

pytestmark = pytest.mark.security

MLFLOW = Path(sys.executable).parent / "mlflow"
CREDENTIALS = ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN")


@dataclass(frozen=True)
class AuthServer:
    url: str
    admin: tuple[str, str]
    viewer: tuple[str, str]  # a signed-in user with the ini's default permission (READ) only
    log: Path

    def uri_with(self, user: str, password: str) -> str:
        return self.url.replace("http://", f"http://{user}:{password}@")


@pytest.fixture(scope="module")
def auth_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuthServer]:
    root = tmp_path_factory.mktemp("mlflow-auth")
    (root / "auth").mkdir()
    ini = shutil.copy(REPO / "deploy" / "mlflow" / "basic_auth.ini", root / "basic_auth.ini")
    port = free_port()
    admin = ("admin", secrets.token_urlsafe(18))
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env.update(
        {
            "MLFLOW_AUTH_CONFIG_PATH": str(ini),
            "MLFLOW_AUTH_ADMIN_USERNAME": admin[0],
            "MLFLOW_AUTH_ADMIN_PASSWORD": admin[1],
            "MLFLOW_FLASK_SERVER_SECRET_KEY": secrets.token_urlsafe(32),
            "MLFLOW_DISABLE_TELEMETRY": "true",
        }
    )
    log = root / "mlflow-server.log"
    argv = [
        str(MLFLOW),
        "server",
        "--app-name",
        "basic-auth",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
        "--backend-store-uri",
        f"sqlite:///{root / 'mlflow.db'}",
        "--artifacts-destination",
        str(root / "artifacts"),
        "--serve-artifacts",
    ]
    with log.open("wb") as out:
        server = subprocess.Popen(
            argv, cwd=root / "auth", env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            assert server.poll() is None, f"mlflow server exited: {log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, f"mlflow server not healthy: {log.read_text()[-3000:]}"
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(1)
        viewer = ("viewer", secrets.token_urlsafe(18))
        created = httpx.post(
            f"{url}/api/2.0/mlflow/users/create",
            json={"username": viewer[0], "password": viewer[1]},
            auth=admin,
            timeout=30,
        )
        assert created.status_code == 200, created.text
        assert (root / "auth" / "basic_auth.db").exists(), "the ini's relative auth DB is under the workdir"
        yield AuthServer(url, admin, viewer, log)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(5)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(10)


def _use(monkeypatch: pytest.MonkeyPatch, uri: str, user: str | None = None, password: str | None = None):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    for name in CREDENTIALS:
        monkeypatch.delenv(name, raising=False)
    if user is not None:
        monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", user)
    if password is not None:
        monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", password)


def test_the_server_demands_credentials(auth_server: AuthServer) -> None:
    """The basic-auth app is really on: the same read is refused without a login and served with one."""
    path = "/api/2.0/mlflow/experiments/search?max_results=1"
    assert httpx.get(auth_server.url + path, timeout=10).status_code == 401
    assert httpx.get(auth_server.url + path, auth=("admin", "wrong"), timeout=10).status_code == 401
    assert httpx.get(auth_server.url + path, auth=auth_server.admin, timeout=10).status_code == 200


def test_the_workers_credentials_register_promote_and_read(
    auth_server: AuthServer,
    churn_models: Path,  # noqa: F811 - the imported fixture
    mloops_home: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With MLFLOW_TRACKING_USERNAME/PASSWORD (as compose gives the workers) the whole training chain
    writes through the server, and a fresh client with the same login reads the champion back."""
    from mlflow import MlflowClient

    _use(monkeypatch, auth_server.url, *auth_server.admin)
    store: dict = {}
    _execute(GXValidateBatchOperator(task_id="validate_batch", model="churn"), store)
    _execute(MLflowTrainModelOperator(task_id="train_model", model="churn"), store)
    _execute(MLflowTestModelOperator(task_id="test_model", model="churn"), store)
    registered = _execute(MLflowRegisterModelOperator(task_id="register_model", model="churn"), store)
    promoted = _execute(MLflowPromoteModelOperator(task_id="promote_model", model="churn"), store)
    assert promoted["action"] == "promote" and promoted["champion"] == registered["version"], promoted

    champion = MlflowClient(auth_server.url).get_model_version_by_alias("mloops.churn", "champion")
    assert champion.version == registered["version"]
    assert champion.tags["mloops.test_status"] == "passed"
    assert champion.run_id and str(champion.source).startswith("models:/")


@pytest.mark.parametrize(
    ("case", "sent"),
    [
        ("wrong password", "user 'admin' (MLFLOW_TRACKING_USERNAME/MLFLOW_TRACKING_PASSWORD)"),
        ("no credentials", "none (MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD are not set)"),
        ("wrong password in the URI", "user 'admin' (in the tracking URI)"),
    ],
)
def test_wrong_or_missing_credentials_fail_at_once_as_refused_not_unreachable(
    case: str,
    sent: str,
    auth_server: AuthServer,
    churn_models: Path,  # noqa: F811 - the imported fixture
    mloops_home: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    secret = "not-the-password-" + secrets.token_hex(4)
    uri = auth_server.url
    if case == "wrong password":
        _use(monkeypatch, uri, "admin", secret)
    elif case == "no credentials":
        _use(monkeypatch, uri)
    else:
        uri = auth_server.uri_with("admin", secret)
        _use(monkeypatch, uri)
    message = refused_promotion()
    shown = uri.replace(secret, "***")
    assert message.startswith(
        f"promote_model of model 'churn': MLflow tracking server at {shown} refused mloops while "
        "opening the tracking and model registry: authentication failed (HTTP 401"
    ), message
    assert f"credentials sent: {sent}" in message
    assert secret not in message
    assert "cannot be reached" not in message


def test_a_user_without_write_permission_is_refused_naming_the_permission(
    auth_server: AuthServer,
    churn_models: Path,  # noqa: F811 - the imported fixture
    mloops_home: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A valid login with READ only (the ini's default) passes the probe; the first write (the training
    run in the admin's experiment) gets 403, which fails the task at once as a refused permission."""
    from mlflow import MlflowClient

    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", auth_server.admin[0])
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", auth_server.admin[1])
    admin = MlflowClient(auth_server.url)
    if admin.get_experiment_by_name("mloops/churn") is None:
        admin.create_experiment("mloops/churn")

    _use(monkeypatch, auth_server.url, *auth_server.viewer)
    store: dict = {}
    _execute(GXValidateBatchOperator(task_id="validate_batch", model="churn"), store)
    started = time.monotonic()
    # Other overrides than the admin's run (if it ran first), so no finished run is reused: a new run.
    overrides = {"max_iter": 7}
    train = MLflowTrainModelOperator(task_id="train_model", model="churn", estimator_overrides=overrides)
    with pytest.raises(AirflowFailException) as caught:
        _execute(train, store)
    message = str(caught.value)
    assert time.monotonic() - started < 60
    assert message.startswith(
        f"train_model of model 'churn': MLflow tracking server at {auth_server.url} refused mloops while "
        "running train_model: permission denied (HTTP 403"
    ), message
    assert "credentials sent: user 'viewer'" in message and auth_server.viewer[1] not in message
