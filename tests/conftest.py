"""Test isolation: a throw-away Airflow home and mloops home, set before Airflow is imported."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.s3_server import S3Server, connection_env

REPO = Path(__file__).resolve().parents[1]
_SESSION_DIR = Path(tempfile.mkdtemp(prefix="mloops-tests-"))

os.environ.update(
    {
        "AIRFLOW_HOME": str(_SESSION_DIR / "airflow"),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{_SESSION_DIR / 'airflow' / 'airflow.db'}",
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
        "MLOOPS_HOME": str(_SESSION_DIR / "mloops"),
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "DO_NOT_TRACK": "1",
        "GIT_PYTHON_REFRESH": "quiet",
    }
)
for _var in (
    "MLFLOW_TRACKING_URI",
    "MLOOPS_DATA_ROOT",
    "MLOOPS_DATA_CONN_ID",
    "MLOOPS_MODELS_DIR",
    "MLOOPS_DOCS_ROOT",
    "MLOOPS_METRICS_DB_URI",
    "MLOOPS_SOURCE_ROOTS",
):
    os.environ.pop(_var, None)
(_SESSION_DIR / "airflow").mkdir(parents=True, exist_ok=True)
sys.path.insert(0, str(REPO / "plugins"))


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("filterwarnings", "error::airflow.exceptions.RemovedInAirflow4Warning")
    config.addinivalue_line("filterwarnings", "error::airflow.sdk.exceptions.RemovedInAirflow4Warning")


#: Markers that say what a test needs rather than which layer it tests: never enough on their own.
_NOT_LAYERS = {"services"}


def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    """Fail collection for a test that carries none of the layer markers declared in pyproject.toml."""
    import tomllib

    declared = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"][
        "markers"
    ]
    layers = {line.split(":", 1)[0].strip() for line in declared} - _NOT_LAYERS
    unmarked = [item.nodeid for item in items if not layers & {m.name for m in item.iter_markers()}]
    if unmarked:
        raise pytest.UsageError(
            f"{len(unmarked)} test(s) carry none of the layer markers {sorted(layers)}: "
            + ", ".join(unmarked[:10])
        )


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    shutil.rmtree(_SESSION_DIR, ignore_errors=True)


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """A migrated Airflow metadata DB (SQLite) for the session."""
    subprocess.run(
        [str(Path(sys.executable).parent / "airflow"), "db", "migrate"],
        check=True,
        capture_output=True,
        env=os.environ.copy(),
    )
    return _SESSION_DIR / "airflow" / "airflow.db"


@pytest.fixture
def mloops_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point every mloops location (data, MLflow store, docs, metrics) at a fresh folder."""
    home = tmp_path / "mloops"
    monkeypatch.setenv("MLOOPS_HOME", str(home))
    for var in ("MLOOPS_DATA_ROOT", "MLOOPS_DATA_CONN_ID", "MLOOPS_DOCS_ROOT", "MLOOPS_METRICS_DB_URI"):
        monkeypatch.delenv(var, raising=False)
    # Landing folders of files sources in tests live under tmp_path, outside the data root: declare it.
    monkeypatch.setenv("MLOOPS_SOURCE_ROOTS", str(tmp_path))
    # mlflow.set_tracking_uri() also exports MLFLOW_TRACKING_URI; pin it here so it is undone after the test.
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{home / 'mlflow' / 'mlflow.db'}")
    return home


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """One S3-compatible server process on loopback for the session; each test makes its own bucket."""
    server = S3Server(log_path=_SESSION_DIR / "s3-server.log").start()
    try:
        yield server
    finally:
        server.stop()


@dataclass(frozen=True)
class S3DataRoot:
    server: S3Server
    bucket: str
    prefix: str
    conn_id: str

    @property
    def uri(self) -> str:
        return f"s3://{self.conn_id}@{self.bucket}/{self.prefix}"

    def keys(self, under: str = "") -> list[str]:
        """Object keys below the data root, relative to it."""
        start = f"{self.prefix}/{under}".rstrip("/")
        return [k.removeprefix(f"{self.prefix}/") for k in self.server.keys(self.bucket, start)]

    def read(self, key: str) -> bytes:
        return self.server.read(self.bucket, f"{self.prefix}/{key}")


@pytest.fixture
def s3_data_root(s3_server: S3Server, mloops_home: Path, monkeypatch: pytest.MonkeyPatch) -> S3DataRoot:
    """MLOOPS_DATA_ROOT on a fresh bucket of the loopback S3 server, through the Airflow connection
    ``mloops_s3``."""
    root = S3DataRoot(s3_server, s3_server.create_bucket(), "data", "mloops_s3")
    for key, value in connection_env(root.conn_id, s3_server).items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("MLOOPS_DATA_ROOT", root.uri)
    return root


def service_available(host: str, port: int) -> bool:
    """True if a TCP service answers; in CI a missing service is a failure, not a skip."""
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


def require_service(name: str, host: str, port: int) -> None:
    if service_available(host, port):
        return
    message = f"{name} is not reachable on {host}:{port}"
    if os.environ.get("CI"):
        pytest.fail(f"{message}; CI must provide it (see .ci/run)")
    pytest.skip(message)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def local_airflow_env(root: Path, models_dir: Path, mloops_home: Path) -> dict[str, str]:
    """Environment of a private ``airflow standalone`` (own DB, own ports) over the repo's DAGs."""
    api_port = free_port()
    airflow_home = root / "airflow"
    airflow_home.mkdir(parents=True, exist_ok=True)
    return {
        "AIRFLOW_HOME": str(airflow_home),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{airflow_home / 'airflow.db'}",
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__PARALLELISM": "4",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
        "AIRFLOW__API__PORT": str(api_port),
        "AIRFLOW__API__BASE_URL": f"http://localhost:{api_port}",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://localhost:{api_port}/execution/",
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
        "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_PORT": str(free_port()),
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
        "MLOOPS_HOME": str(mloops_home),
        "MLOOPS_MODELS_DIR": str(models_dir),
        "MLFLOW_TRACKING_URI": f"sqlite:///{mloops_home / 'mlflow' / 'mlflow.db'}",
        "PYTHONPATH": f"{REPO / 'plugins'}{os.pathsep}{REPO}",
    }
