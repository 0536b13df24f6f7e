"""A local Airflow for ``make ui``, the demo and the scheduler tests: supervised components plus CLI helpers.

The scheduler, dag-processor, triggerer and api-server run as separate processes (what ``airflow
standalone`` starts) with the LocalExecutor on the configured metadata DB, each with its own log
beside ``log_path``. A supervisor thread watches them: a component that exits is reported loudly (on
stderr and in ``log_path``) and restarted, up to ``max_restarts`` times, after which every wait of this
class fails naming it, instead of a UI running on top of a dead scheduler. The api-server listens on
127.0.0.1 only (``AIRFLOW__API__HOST``), on ``AIRFLOW__API__PORT`` or a free port. The scheduler starts
from a warm parent (``python -m mloops.warm scheduler``: the libraries tasks use are imported once and
every task process forks with them; ``MLOOPS_WARM_PARENT=0`` starts it cold). Everything else
drives Airflow through its CLI, as a data engineer would. DAG files and tasks never import this.

    python -m scripts.devstack ui     # make ui: run until Ctrl-C
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

FINISHED = ("success", "failed")
#: SQLite metadata DBs: wait up to 60 s for the write lock (Python's default is 5 s, and the scheduler, the
#: CLI and the task processes all write). Airflow reads it through ``[database] sql_alchemy_connect_args``.
SQLITE_CONNECT_ARGS = {"timeout": 60}
COMPONENTS = ("scheduler", "dag-processor", "triggerer", "api-server")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def local_api_env(env: Mapping[str, str]) -> dict[str, str]:
    """Host, port and the URLs that follow from them (task processes reach the execution API there)."""
    port = env.get("AIRFLOW__API__PORT") or str(free_port())
    host = env.get("AIRFLOW__API__HOST") or "127.0.0.1"
    return {
        "AIRFLOW__API__HOST": host,
        "AIRFLOW__API__PORT": port,
        "AIRFLOW__API__BASE_URL": env.get("AIRFLOW__API__BASE_URL") or f"http://{host}:{port}",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": env.get("AIRFLOW__CORE__EXECUTION_API_SERVER_URL")
        or f"http://{host}:{port}/execution/",
    }


class ComponentFailed(RuntimeError):
    """A supervised component kept dying and was given up."""


class RestApi:
    """Airflow's REST API (v2) with a token from the local simple auth manager (everyone is admin).

    The demo and the scheduler tests poll run states every few seconds: over HTTP a poll costs
    milliseconds, where an ``airflow`` CLI call costs a process that imports Airflow (2-4 CPU seconds,
    taken from the tasks on a 2-core machine)."""

    def __init__(self, base: str) -> None:
        self.base = base
        self._token: str | None = None

    def _request(self, method: str, path: str, body: Mapping[str, Any] | None, token: str | None) -> Any:
        import urllib.request

        # the URL is our own http://127.0.0.1:<port>, never a user-given scheme
        request = urllib.request.Request(  # noqa: S310
            self.base + path,
            method=method,
            data=json.dumps(dict(body)).encode() if body is not None else None,
            headers={
                "Content-Type": "application/json",
                **({"Authorization": f"Bearer {token}"} if token else {}),
            },
        )
        with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310
            return json.loads(response.read() or b"{}")

    def call(self, method: str, path: str, body: Mapping[str, Any] | None = None) -> Any:
        """``path`` below ``/api/v2``; the token is fetched once and again when it is refused. Any other
        refusal is raised as :class:`urllib.error.HTTPError` (its body, Airflow's reason, unread)."""
        import urllib.error

        for attempt in (1, 2):
            if self._token is None:
                self._token = self._request("GET", "/auth/token", None, None)["access_token"]
            try:
                return self._request(method, "/api/v2" + path, body, self._token)
            except urllib.error.HTTPError as exc:
                if exc.code != 401 or attempt == 2:
                    exc.add_note(f"{method} {self.base}/api/v2{path}")
                    raise
                self._token = None
        raise AssertionError("unreachable")

    def get(self, path: str) -> Any:
        return self.call("GET", path)

    def post(self, path: str, body: Mapping[str, Any]) -> Any:
        return self.call("POST", path, body)

    def patch(self, path: str, body: Mapping[str, Any]) -> Any:
        return self.call("PATCH", path, body)


class LocalAirflow:
    """Start/stop the supervised Airflow components and run CLI commands against the same environment."""

    def __init__(self, env: Mapping[str, str], log_path: Path, *, max_restarts: int = 5) -> None:
        bin_dir = str(Path(sys.executable).parent)
        merged = {**os.environ, **env}
        self.env = {
            **merged,
            **local_api_env(merged),
            "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        }
        # Every component imports from the repository: the scheduler's warm parent `mloops.warm` from
        # plugins/, the SQLite connect args `scripts.devstack.SQLITE_CONNECT_ARGS` from the root.
        repo = Path(__file__).resolve().parents[1]
        search_path = (str(repo / "plugins"), str(repo), self.env.get("PYTHONPATH"))
        self.env["PYTHONPATH"] = os.pathsep.join(p for p in search_path if p)
        # Tasks run side by side (parallelism 4 on a laptop's cores): scikit-learn's OpenMP threads in each
        # oversubscribe the cores and spin. At the example models' size one thread per task was 5-8x
        # faster (HistGradientBoosting fit and the permutation importance's predictions, load 6).
        self.env.setdefault("OMP_NUM_THREADS", "1")
        # A run's tasks follow one another: after each, the idle scheduler slept up to its default 1 s
        # before queuing the next (0.85 s per gap measured, a third of a quiet training night of 7 tasks).
        # An idle loop is a few queries: 5 a second is cheap on a laptop (production keeps Airflow's 1 s).
        self.env.setdefault("AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME", "0.2")
        # A task's supervisor waits for its process in `select` with a timeout of the heartbeat interval
        # (default 5 s); when the process's sockets close just before it exits, nothing wakes that `select`
        # and the finished task holds its worker, and its run's next task, for the rest of it: 5 s after
        # about one task in eight of `make run` (scheduler log "Workload finished" vs the task's end).
        # A 1 s interval bounds that wait at 1 s; the price is a heartbeat a second per running task.
        self.env.setdefault("AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL", "1")
        if merged.get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "sqlite").startswith("sqlite"):
            self.env.setdefault(
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS", "scripts.devstack.SQLITE_CONNECT_ARGS"
            )
        self.airflow = str(Path(bin_dir) / "airflow")
        self.log_path = log_path
        self.max_restarts = max_restarts
        self.processes: dict[str, subprocess.Popen] = {}
        self.restarts: dict[str, int] = dict.fromkeys(COMPONENTS, 0)
        self.given_up: dict[str, str] = {}
        self._stopping = threading.Event()
        self._watcher: threading.Thread | None = None
        self.api = RestApi(self.url)

    @property
    def url(self) -> str:
        return self.env["AIRFLOW__API__BASE_URL"]

    def cli(self, *args: str, check: bool = True, attempts: int = 10) -> str:
        """Run an ``airflow`` CLI command; retried while SQLite reports ``database is locked`` (the
        scheduler and the CLI share one SQLite file in the embedded setup)."""
        for attempt in range(attempts):
            done = subprocess.run([self.airflow, *args], capture_output=True, text=True, env=self.env)
            if done.returncode == 0 or "database is locked" not in done.stderr + done.stdout:
                break
            time.sleep(2 + 2 * attempt)
        if check and done.returncode != 0:
            raise RuntimeError(
                f"airflow {' '.join(args)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
            )
        return done.stdout

    def json(self, *args: str) -> list[dict[str, Any]]:
        text = self.cli(*args, "--output", "json")
        for line in text.splitlines():  # the CLI may print log lines before the JSON document
            if line.startswith("[{") or line.strip() == "[]":
                return json.loads(line)
        return []

    def component_log(self, name: str) -> Path:
        return self.log_path.with_name(f"{self.log_path.stem}.{name}.log")

    def report(self, message: str) -> None:
        """Loud: on stderr and in the supervisor log."""
        line = f"[mloops devstack {time.strftime('%H:%M:%S')}] {message}"
        print(line, file=sys.stderr, flush=True)
        with self.log_path.open("a") as log:
            log.write(line + "\n")

    def _spawn(self, name: str) -> None:
        args = [self.airflow, name]
        if name == "scheduler" and self.env.get("MLOOPS_WARM_PARENT", "1") != "0":
            args = [sys.executable, "-m", "mloops.warm", name]
        if name == "api-server":
            args += ["--host", self.env["AIRFLOW__API__HOST"], "--port", self.env["AIRFLOW__API__PORT"]]
        with self.component_log(name).open("a") as log:
            self.processes[name] = subprocess.Popen(
                args, stdout=log, stderr=subprocess.STDOUT, env=self.env, start_new_session=True
            )

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.log_path.write_text("")
        self._stopping.clear()
        for name in COMPONENTS:
            self._spawn(name)
        self._watcher = threading.Thread(target=self._supervise, name="devstack-supervisor", daemon=True)
        self._watcher.start()

    def _supervise(self) -> None:
        while not self._stopping.wait(1.0):
            for name, process in list(self.processes.items()):
                code = process.poll()
                if code is None or self._stopping.is_set() or name in self.given_up:
                    continue
                try:  # what the dead component left running (e.g. the LocalExecutor's workers)
                    os.killpg(process.pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
                tail = self.component_tail(name, 15)
                if self.restarts[name] >= self.max_restarts:
                    self.given_up[name] = f"exited with code {code} after {self.restarts[name]} restarts"
                    self.report(
                        f"{name.upper()} DIED (exit code {code}) and is not restarted again "
                        f"({self.restarts[name]} restarts); log: {self.component_log(name)}\n{tail}"
                    )
                    continue
                self.restarts[name] += 1
                self.report(
                    f"{name.upper()} DIED (exit code {code}); restarting it "
                    f"({self.restarts[name]} of {self.max_restarts}); log: {self.component_log(name)}\n{tail}"
                )
                self._spawn(name)

    def check(self) -> None:
        """Raise :class:`ComponentFailed` when a component was given up."""
        if self.given_up:
            details = "; ".join(f"{n} {why}" for n, why in self.given_up.items())
            raise ComponentFailed(f"local Airflow is broken: {details}\n{self.log_tail()}")

    def stop(self) -> None:
        self._stopping.set()
        if self._watcher is not None:
            self._watcher.join(timeout=5)
        for process in self.processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=30)

    def __enter__(self) -> LocalAirflow:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def component_tail(self, name: str, lines: int) -> str:
        try:
            return "\n".join(self.component_log(name).read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return ""

    def log_tail(self, lines: int = 60) -> str:
        per = max(lines // len(COMPONENTS), 5)
        parts = [
            f"--- {name} ({self.component_log(name)})\n{self.component_tail(name, per)}"
            for name in COMPONENTS
        ]
        try:
            supervisor = self.log_path.read_text(errors="replace").strip()
        except FileNotFoundError:
            supervisor = ""
        return "\n".join(([f"--- supervisor\n{supervisor[-4000:]}"] if supervisor else []) + parts)

    def wait_for_api(self, timeout: float) -> None:
        """Wait until the api-server answers, the execution API included (task processes report to it;
        its first request builds it, which took 35 s under load when the first task paid for it)."""
        import urllib.error
        import urllib.request

        deadline = time.time() + timeout
        while True:
            self.check()
            try:
                # the URL is our own http://127.0.0.1:<port>, never a user-given scheme
                with urllib.request.urlopen(f"{self.url}/api/v2/monitor/health", timeout=5):  # noqa: S310
                    pass
                with urllib.request.urlopen(f"{self.url}/execution/health", timeout=120):  # noqa: S310
                    return
            except (urllib.error.URLError, OSError) as exc:
                if time.time() > deadline:
                    raise TimeoutError(
                        f"api-server not answering on {self.url} after {timeout:.0f}s\n{self.log_tail()}"
                    ) from exc
                time.sleep(2)

    def wait_for_dags(self, dag_ids: Iterable[str], timeout: float) -> None:
        wanted, deadline = set(dag_ids), time.time() + timeout
        self.wait_for_api(timeout)
        while time.time() < deadline:
            self.check()
            if all(self._dag_known(dag_id) for dag_id in wanted):
                return
            time.sleep(1)
        errors = self.cli("dags", "list-import-errors", check=False)
        raise TimeoutError(
            f"DAGs {sorted(wanted)} not parsed within {timeout:.0f}s. Import errors:\n{errors}"
        )

    def _dag_known(self, dag_id: str) -> bool:
        import urllib.error

        try:
            self.api.get(f"/dags/{dag_id}")
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return False
            raise
        return True

    def unpause(self, dag_id: str) -> None:
        self.api.patch(f"/dags/{dag_id}", {"is_paused": False})

    def runs(self, dag_id: str) -> list[dict[str, Any]]:
        """Every run of ``dag_id`` (``run_id``, ``state``, ``logical_date``, ``run_after``, ...), oldest
        first."""
        runs, offset = [], 0
        while True:
            page = self.api.get(f"/dags/{dag_id}/dagRuns?limit=100&offset={offset}")
            runs += [{**r, "run_id": r["dag_run_id"]} for r in page["dag_runs"]]
            offset += len(page["dag_runs"])
            if not page["dag_runs"] or offset >= page["total_entries"]:
                break
        return sorted(runs, key=lambda r: r.get("logical_date") or r["run_after"])

    def wait_for_runs(
        self, dag_id: str, *, count: int, timeout: float, poll: float = 1.0
    ) -> list[dict[str, Any]]:
        """Wait until ``dag_id`` has at least ``count`` runs and none is queued or running."""
        deadline = time.time() + timeout
        while True:
            self.check()
            runs = self.runs(dag_id)
            if len(runs) >= count and all(r["state"] in FINISHED for r in runs):
                return runs
            if time.time() > deadline:
                states = [(r["run_id"], r["state"]) for r in runs]
                raise TimeoutError(
                    f"{dag_id}: runs not finished after {timeout:.0f}s: {states}\n{self.log_tail()}"
                )
            time.sleep(poll)

    def backfill(
        self,
        dag_id: str,
        from_date: str,
        to_date: str,
        reprocess: str = "completed",
        *,
        max_active_runs: int = 1,
    ) -> int:
        """Unpause and create a backfill through ``make backfill``'s script (created whole or not at all;
        ``max_active_runs`` at a time); return how many runs the DAG then has (all are created up front,
        queued)."""
        self.unpause(dag_id)
        script = Path(__file__).resolve().with_name("backfill.py")
        args = [sys.executable, str(script), "--dag-id", dag_id, "--from-date", from_date]
        args += ["--to-date", to_date, "--max-active-runs", str(max_active_runs), "--reprocess", reprocess]
        deadline = time.time() + 300  # on a loaded machine the scheduler gets to it late
        while True:  # the scheduler marks the previous backfill of this DAG complete a little after its runs
            done = subprocess.run(args, capture_output=True, text=True, env=self.env)
            if done.returncode == 0:
                break
            if "is still running" not in done.stderr or time.time() > deadline:
                raise RuntimeError(f"backfill of {dag_id} failed ({done.returncode}):\n{done.stderr}")
            time.sleep(2)
        return len(self.runs(dag_id))

    def trigger(self, dag_id: str, logical_date: str, conf: Mapping[str, Any] | None = None) -> str:
        """A manual run with a logical date (so it has a data interval); returns the run id."""
        self.unpause(dag_id)
        run_id = f"manual__{logical_date}"
        body = {"dag_run_id": run_id, "logical_date": logical_date, "conf": dict(conf or {})}
        self.api.post(f"/dags/{dag_id}/dagRuns", body)
        return run_id

    def task_states(self, dag_id: str, run_id: str) -> dict[str, str | None]:
        """``task_id`` → state (``None`` for a task not yet scheduled)."""
        page = self.api.get(f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances?limit=1000")
        return {t["task_id"]: t["state"] for t in page["task_instances"]}


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str]) -> int:
    """``ui``: run the supervised components over the environment (``make ui``) until Ctrl-C."""
    if argv != ["ui"]:
        print("usage: python -m scripts.devstack ui", file=sys.stderr)
        return 2
    home = Path(os.environ.get("MLOOPS_HOME", ".mloops"))
    signal.signal(signal.SIGTERM, _interrupt)  # `kill` stops the components too, like Ctrl-C
    signal.signal(signal.SIGINT, _interrupt)  # also when started in the background (SIGINT ignored)
    stack = LocalAirflow({}, home / "logs" / "airflow-ui.log")
    stack.start()
    print(
        f"Airflow UI: {stack.url}  (local: no login, everyone is admin)\n"
        f"Component logs: {stack.log_path.parent}/{stack.log_path.stem}.<component>.log; Ctrl-C stops.",
        flush=True,
    )
    try:
        while True:
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        print("stopping Airflow ...", flush=True)
        stack.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
