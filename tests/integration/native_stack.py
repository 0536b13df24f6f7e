"""The docker-compose topology run as native processes, for machines without a Docker engine.

Every command and environment variable comes from ``docker-compose.yml`` through
``tests/deploy/compose_contract.py``, so this stack cannot drift from the deployment. What a container gets
for free but native processes sharing one host do not is supplied here, and nothing else:

* hostnames: compose service names become ``127.0.0.1`` (and the api-server/MLflow get free ports);
* paths: container paths become the checkout (code) or a temporary state folder (volumes);
* databases: fresh, uniquely named PostgreSQL databases, so concurrent runs and other users of the
  same server never see each other's data; Redis is this stack's own ``redis`` service (compose's
  command, with its password) on a free port;
* working directories: a service's ``working_dir`` is mapped like its volumes (MLflow's basic-auth
  app keeps its user DB relative to it, as ``deploy/mlflow/basic_auth.ini`` says);
* ports each container owns privately (worker/triggerer log servers, scheduler health check);
* :meth:`NativeStack.native_settings`: ``AIRFLOW_HOME`` (set by the image) and switching the time-based
  schedule off so the only run is the one a test triggers.

Each process is started in its own session (process group) and carries a marker variable, so
:meth:`NativeStack.close` can stop exactly the processes it started, including task subprocesses.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, TypeVar

import httpx

from tests.deploy.compose_contract import native_paths, service, service_command, service_environment

if TYPE_CHECKING:
    import psycopg2.extensions
    import redis

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "docker-compose.yml"
#: ``airflow``, ``mlflow``, ``celery`` and ``python`` of this virtualenv, as the image has them on PATH.
VENV_BIN = Path(sys.executable).parent

#: Long-running services, in start order. airflow-init runs once before them.
SERVICES = (
    "redis",
    "mlflow",
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
    "airflow-worker",
)
AIRFLOW_SERVICES = tuple(name for name in SERVICES if name.startswith("airflow-"))

#: Environment variable carried by every process of one stack; lets close() find stragglers.
MARKER = "MLOOPS_NATIVE_STACK_ID"


#: Inherited variables that would change what a process does, compared with its container.
_DROPPED_PREFIXES = ("AIRFLOW", "_AIRFLOW", "MLOOPS_", "MLFLOW_", "PYTEST_", "CELERY_", "PYTHONPATH")

T = TypeVar("T")


class StackError(RuntimeError):
    """A process of the stack died or did not become ready; the message carries the log tails."""


def free_port() -> int:
    """A TCP port nobody listens on right now (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def generate_secrets() -> dict[str, str]:
    """Fresh values for the secrets ``.env`` must provide, in the shape ``airflow-init`` validates."""
    from cryptography.fernet import Fernet

    return {
        "POSTGRES_PASSWORD": secrets.token_urlsafe(24),
        "AIRFLOW_FERNET_KEY": Fernet.generate_key().decode(),
        "AIRFLOW_JWT_SECRET": secrets.token_urlsafe(48),
        "AIRFLOW_API_SECRET_KEY": secrets.token_urlsafe(48),
        "AIRFLOW_ADMIN_PASSWORD": secrets.token_urlsafe(18),
        "REDIS_PASSWORD": secrets.token_urlsafe(24),
        "MLFLOW_ADMIN_PASSWORD": secrets.token_urlsafe(18),
        "MLFLOW_FLASK_SECRET_KEY": secrets.token_urlsafe(48),
    }


@dataclass(frozen=True)
class Postgres:
    """The PostgreSQL server the stack creates its databases on (trust auth: the password is ignored)."""

    host: str = "127.0.0.1"
    port: int = 5432
    user: str = "postgres"

    def connect(self, dbname: str = "postgres") -> psycopg2.extensions.connection:
        """An autocommit connection: CREATE/DROP DATABASE cannot run inside a transaction."""
        import psycopg2

        conn = psycopg2.connect(
            host=self.host, port=self.port, user=self.user, dbname=dbname, connect_timeout=5
        )
        conn.autocommit = True
        return conn

    @classmethod
    def discover(cls, host: str = "127.0.0.1", port: int = 5432) -> Postgres:
        """The first role that can create databases: CI and laptops differ (``postgres`` or ``root``)."""
        errors = []
        for user in dict.fromkeys(("postgres", "root", getpass.getuser())):
            candidate = cls(host, port, user)
            try:
                with contextlib.closing(candidate.connect()) as conn, conn.cursor() as cur:
                    cur.execute("SELECT rolcreatedb OR rolsuper FROM pg_roles WHERE rolname = current_user")
                    row = cur.fetchone()
                if row and row[0]:
                    return candidate
                errors.append(f"{user}: cannot create databases")
            except Exception as exc:  # noqa: BLE001 - try the next role, report all at the end
                errors.append(f"{user}: {exc}".strip())
        raise StackError(f"no PostgreSQL role on {host}:{port} can create databases: {errors}")


@dataclass
class ManagedProcess:
    """One started service: its argv, its log file and its process group."""

    name: str
    argv: list[str]
    log_path: Path
    popen: subprocess.Popen[bytes]

    def alive(self) -> bool:
        return self.popen.poll() is None

    def signal_group(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, signum)


def tail(path: Path, lines: int = 40) -> str:
    """The last ``lines`` lines of a log file (or a note that it is missing)."""
    if not path.exists():
        return f"<{path} does not exist>"
    text = path.read_text(errors="replace").splitlines()
    return "\n".join(text[-lines:])


@dataclass
class NativeStack:
    """Postgres databases, a Redis database, airflow-init, MLflow and the five Airflow services.

    Construction touches nothing; :meth:`up` creates and starts, :meth:`close` stops and drops
    everything it created, whatever state :meth:`up` reached.
    """

    state_dir: Path
    models_dir: Path
    postgres: Postgres = field(default_factory=Postgres)
    redis_host: str = "127.0.0.1"
    worker_concurrency: int = 2
    stack_id: str = field(default_factory=lambda: f"mlit_{uuid.uuid4().hex[:10]}")
    secrets: dict[str, str] = field(default_factory=generate_secrets)
    ports: dict[str, int] = field(
        default_factory=lambda: {
            name: free_port()
            for name in (
                "airflow-apiserver",
                "mlflow",
                "redis",
                "worker-logs",
                "triggerer-logs",
                "scheduler-health",
            )
        }
    )
    #: MLOOPS_DATA_ROOT as .env would set it (e.g. ``s3://conn@bucket/prefix``); None keeps the compose
    #: default.
    data_root: str | None = None
    processes: dict[str, ManagedProcess] = field(default_factory=dict)
    _created_databases: list[str] = field(default_factory=list)

    # ----------------------------------------------------------------------------------------------
    # The swaps handed to compose_contract
    # ----------------------------------------------------------------------------------------------

    @property
    def database_names(self) -> dict[str, str]:
        """Compose database name -> this stack's database name."""
        return {name: f"{self.stack_id}_{name}" for name in ("airflow", "mlflow", "mloops")}

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['airflow-apiserver']}"

    @property
    def mlflow_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['mlflow']}"

    @property
    def redis_port(self) -> int:
        return self.ports["redis"]

    @property
    def logs_dir(self) -> Path:
        return self.state_dir / "process-logs"

    @property
    def airflow_home(self) -> Path:
        return self.state_dir / "airflow"

    def variables(self) -> dict[str, str]:
        """What ``.env`` would hold: the secrets plus the database role of this machine."""
        extra = {"MLOOPS_DATA_ROOT": self.data_root} if self.data_root else {}
        people = {"AIRFLOW_USERS": "admin:admin"}
        return {**self.secrets, **people, "POSTGRES_USER": self.postgres.user, **extra}

    def hosts(self) -> dict[str, str]:
        return {
            "postgres": f"{self.postgres.host}:{self.postgres.port}",
            "redis": f"{self.redis_host}:{self.redis_port}",
            "airflow-apiserver": f"127.0.0.1:{self.ports['airflow-apiserver']}",
            "mlflow": f"127.0.0.1:{self.ports['mlflow']}",
        }

    def paths(self) -> dict[str, str]:
        """Code from the checkout, volumes under the state folder, the model configs from ``models_dir``."""
        return {**native_paths(REPO, self.state_dir), "/opt/airflow/include/models": str(self.models_dir)}

    def databases(self) -> dict[str, str]:
        return {f"postgres/{name}": unique for name, unique in self.database_names.items()}

    def swaps(self) -> dict[str, dict[str, str]]:
        """Hosts, paths and databases: what the native processes change in a service's commands and
        environment."""
        return {"hosts": self.hosts(), "paths": self.paths(), "databases": self.databases()}

    def options(self, name: str) -> dict[str, str]:
        """Listening addresses (and the worker's process count on a small CI machine) per service."""
        if name == "mlflow":
            return {"--host": "127.0.0.1", "--port": str(self.ports["mlflow"])}
        if name == "airflow-apiserver":
            return {"--host": "127.0.0.1", "--port": str(self.ports["airflow-apiserver"])}
        if name == "airflow-worker":
            return {"--concurrency": str(self.worker_concurrency)}
        if name == "redis":
            return {
                "--port": str(self.redis_port),
                "--bind": "127.0.0.1",
                "--save": "",
                "--dir": str(self.state_dir / "redis"),
            }
        return {}

    def native_settings(self) -> dict[str, str]:
        """Settings a container gets from its image or its own network namespace; see the module doc."""
        return {
            "AIRFLOW_HOME": str(self.airflow_home),
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(self.ports["worker-logs"]),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(self.ports["triggerer-logs"]),
            "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_HOST": "127.0.0.1",
            "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_PORT": str(self.ports["scheduler-health"]),
            # Unpausing must not add a scheduled run for "yesterday": only the triggered run may exist.
            "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
            MARKER: self.stack_id,
        }

    def service_settings(self, name: str) -> dict[str, str]:
        """The compose environment of ``name`` with the swaps applied, plus :meth:`native_settings`."""
        env = service_environment(COMPOSE, name, self.variables(), **self.swaps())
        if name.startswith("airflow-"):
            env.update(self.native_settings())
        else:
            env[MARKER] = self.stack_id
        return env

    def environment(self, name: str) -> dict[str, str]:
        """The full process environment: a cleaned copy of ours, then :meth:`service_settings`."""
        base = {k: v for k, v in os.environ.items() if not k.startswith(_DROPPED_PREFIXES)}
        base["PATH"] = f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}"
        no_proxy = ",".join(filter(None, [os.environ.get("NO_PROXY", ""), "127.0.0.1,localhost"]))
        base["NO_PROXY"] = base["no_proxy"] = no_proxy
        return {**base, **self.service_settings(name)}

    def command(self, name: str) -> list[str]:
        return service_command(COMPOSE, name, self.variables(), **self.swaps(), options=self.options(name))

    def working_dir(self, name: str) -> Path:
        """The service's compose ``working_dir`` under the path swaps; the state folder without one."""
        declared = service(COMPOSE, name).get("working_dir")
        return Path(self.paths()[declared]) if declared else self.state_dir

    # ----------------------------------------------------------------------------------------------
    # Lifecycle
    # ----------------------------------------------------------------------------------------------

    def up(self, timeout: float = 240) -> None:
        """Create the databases, run airflow-init, start every service and wait until all are healthy.

        MLflow starts before airflow-init so its schema migration overlaps with Airflow's.
        """
        deadline = time.monotonic() + timeout
        for folder in (
            self.logs_dir,
            self.airflow_home,
            self.state_dir / "mlflow-artifacts",
            self.state_dir / "mloops",
            self.state_dir / "redis",
            *(self.working_dir(name) for name in SERVICES),
        ):
            folder.mkdir(parents=True, exist_ok=True)
        self.create_databases()
        self.start("redis")
        self.start("mlflow")
        self.run_init(timeout=max(deadline - time.monotonic(), 30))
        for name in AIRFLOW_SERVICES:
            self.start(name)
        self.wait_healthy(deadline)

    def create_databases(self) -> None:
        with contextlib.closing(self.postgres.connect()) as conn, conn.cursor() as cur:
            for name in self.database_names.values():
                cur.execute(f'CREATE DATABASE "{name}"')
                self._created_databases.append(name)

    def drop_databases(self) -> None:
        with contextlib.closing(self.postgres.connect()) as conn, conn.cursor() as cur:
            while self._created_databases:
                cur.execute(f'DROP DATABASE IF EXISTS "{self._created_databases.pop()}" WITH (FORCE)')

    def run_init(self, timeout: float) -> None:
        """The compose ``airflow-init`` one-shot: secret checks, ``db migrate``, admin password, pool."""
        log_path = self.logs_dir / "airflow-init.log"
        with log_path.open("wb") as log:
            done = subprocess.run(
                self.command("airflow-init"),
                env=self.environment("airflow-init"),
                cwd=self.state_dir,
                stdout=log,
                stderr=subprocess.STDOUT,
                timeout=timeout,
                check=False,
            )
        if done.returncode != 0:
            raise StackError(f"airflow-init exited with {done.returncode}:\n{tail(log_path)}")

    def start(self, name: str) -> ManagedProcess:
        log_path = self.logs_dir / f"{name}.log"
        argv = self.command(name)
        with log_path.open("wb") as log:
            popen = subprocess.Popen(
                argv,
                env=self.environment(name),
                cwd=self.working_dir(name),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        process = ManagedProcess(name, argv, log_path, popen)
        self.processes[name] = process
        return process

    def close(self, timeout: float = 20) -> list[str]:
        """Stop every process (Redis included), then drop the databases; see :meth:`stop`."""
        try:
            return self.stop(timeout)
        finally:
            self.drop_databases()

    def stop(self, timeout: float = 20) -> list[str]:
        """SIGTERM every process group, SIGKILL what is left after ``timeout``; return the services killed."""
        for process in reversed(list(self.processes.values())):
            process.signal_group(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        killed = []
        for process in self.processes.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.popen.wait(timeout=max(deadline - time.monotonic(), 0.1))
            if process.alive():
                killed.append(process.name)
            process.signal_group(signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.popen.wait(timeout=10)
        self._kill_stragglers()
        return killed

    def _kill_stragglers(self) -> None:
        """SIGKILL processes that left our process groups (e.g. task runners) but carry our marker."""
        needle = f"{MARKER}={self.stack_id}".encode()
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) == os.getpid():
                continue
            try:
                if needle in (entry / "environ").read_bytes().split(b"\0"):
                    os.kill(int(entry.name), signal.SIGKILL)
            except (OSError, ValueError):
                continue

    # ----------------------------------------------------------------------------------------------
    # Health and diagnostics
    # ----------------------------------------------------------------------------------------------

    def assert_running(self) -> None:
        for process in self.processes.values():
            if not process.alive():
                raise StackError(
                    f"{process.name} exited with {process.popen.returncode}:\n{tail(process.log_path, 60)}"
                )

    def wait_for(self, what: str, check: Callable[[], T | None], deadline: float, interval: float = 2) -> T:
        """Poll ``check`` until it returns a truthy value; fail early if a process of the stack died."""
        last_error: Exception | None = None
        while True:
            self.assert_running()
            try:
                result = check()
                if result:
                    return result
            except (httpx.HTTPError, ValueError, KeyError) as exc:
                last_error = exc
            if time.monotonic() > deadline:
                raise StackError(f"{what}: not ready in time (last error: {last_error!r})")
            time.sleep(interval)

    def wait_healthy(self, deadline: float) -> None:
        """The compose health checks, over HTTP: MLflow, api-server, scheduler; then the job heartbeats."""

        def ok(url: str) -> bool:
            return httpx.get(url, timeout=5).status_code == 200

        def monitor_healthy() -> bool:
            health = httpx.get(f"{self.api_url}/api/v2/monitor/health", timeout=5).json()
            parts = ("metadatabase", "scheduler", "triggerer", "dag_processor")
            return all((health.get(part) or {}).get("status") == "healthy" for part in parts)

        self.wait_for("redis PING", self.redis_ping, deadline, interval=0.5)
        self.wait_for("mlflow /health", lambda: ok(f"{self.mlflow_url}/health"), deadline)
        self.wait_for("api-server /api/v2/version", lambda: ok(f"{self.api_url}/api/v2/version"), deadline)
        scheduler = f"http://127.0.0.1:{self.ports['scheduler-health']}/health"
        self.wait_for("scheduler /health", lambda: ok(scheduler), deadline)
        self.wait_for("scheduler, triggerer and dag-processor heartbeats", monitor_healthy, deadline)

    def redis(self) -> redis.Redis:
        """A client of this stack's Redis, signed in with its password."""
        import redis

        return redis.Redis(
            host=self.redis_host,
            port=self.redis_port,
            password=self.secrets["REDIS_PASSWORD"],
            socket_timeout=5,
        )

    def redis_ping(self) -> bool:
        import redis

        client = self.redis()
        try:
            return bool(client.ping())
        except redis.ConnectionError:
            return False
        finally:
            client.close()

    def log_tails(self, lines: int = 40) -> str:
        """The end of every process log and of every task log, for a failure report."""
        out = []
        for path in sorted(self.logs_dir.glob("*.log")):
            out.append(f"===== {path.name} (last {lines} lines) =====\n{tail(path, lines)}")
        for path in sorted((self.airflow_home / "logs").glob("dag_id=*/**/*.log")):
            relative = path.relative_to(self.airflow_home / "logs")
            out.append(f"===== task log {relative} (last {lines} lines) =====\n{tail(path, lines)}")
        return "\n".join(out)

    @contextlib.contextmanager
    def logs_on_failure(self, stream: IO[str] | None = None) -> Iterator[None]:
        """Print the log tails when the body raises (pytest shows captured output of failed tests)."""
        try:
            yield
        except BaseException:
            print(self.log_tails(), file=stream or sys.stdout, flush=True)
            raise


class AirflowApi:
    """A tiny REST client for the api-server: JWT login with the Simple auth manager, then ``/api/v2``."""

    def __init__(self, base_url: str, username: str, password: str) -> None:
        self.base_url = base_url
        response = httpx.post(
            f"{base_url}/auth/token", json={"username": username, "password": password}, timeout=30
        )
        response.raise_for_status()
        self.client = httpx.Client(
            base_url=f"{base_url}/api/v2",
            headers={"Authorization": f"Bearer {response.json()['access_token']}"},
            timeout=30,
        )

    def get(self, path: str, **params: str | int) -> dict:
        response = self.client.get(path, params=params)
        response.raise_for_status()
        return response.json()

    def send(self, method: str, path: str, body: Mapping[str, object]) -> dict:
        response = self.client.request(method, path, json=dict(body))
        if response.is_error:
            raise httpx.HTTPStatusError(
                f"{method} {path} -> {response.status_code}: {response.text}",
                request=response.request,
                response=response,
            )
        return response.json()

    def text(self, path: str) -> str:
        response = self.client.get(path, headers={"Accept": "text/plain"})
        response.raise_for_status()
        return response.text

    def close(self) -> None:
        self.client.close()
