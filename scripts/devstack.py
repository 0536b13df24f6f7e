"""A local Airflow for the demo and the scheduler tests: ``airflow standalone`` plus CLI helpers.

``standalone`` runs the scheduler, dag-processor, api-server and triggerer with the LocalExecutor on
the configured metadata DB. Everything here drives Airflow through its CLI, as a data engineer would.
Lives beside its users (scripts/demo.py, the scheduler tests); DAG files and tasks never import it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

FINISHED = ("success", "failed")


class LocalAirflow:
    """Start/stop ``airflow standalone`` and run CLI commands against the same environment."""

    def __init__(self, env: Mapping[str, str], log_path: Path) -> None:
        bin_dir = str(Path(sys.executable).parent)
        self.env = {**os.environ, **env, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
        self.airflow = str(Path(bin_dir) / "airflow")
        self.log_path = log_path
        self.process: subprocess.Popen | None = None

    def cli(self, *args: str, check: bool = True, attempts: int = 6) -> str:
        """Run an ``airflow`` CLI command; retried while SQLite reports ``database is locked`` (the
        scheduler and the CLI share one SQLite file in the embedded setup)."""
        for attempt in range(attempts):
            done = subprocess.run([self.airflow, *args], capture_output=True, text=True, env=self.env)
            if done.returncode == 0 or "database is locked" not in done.stderr + done.stdout:
                break
            time.sleep(2 + 2 * attempt)
        if check and done.returncode != 0:
            raise RuntimeError(f"airflow {' '.join(args)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
        return done.stdout

    def json(self, *args: str) -> list[dict[str, Any]]:
        text = self.cli(*args, "--output", "json")
        for line in text.splitlines():  # the CLI may print log lines before the JSON document
            if line.startswith("[{") or line.strip() == "[]":
                return json.loads(line)
        return []

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("w") as log:
            self.process = subprocess.Popen(
                [self.airflow, "standalone"], stdout=log, stderr=subprocess.STDOUT, env=self.env, start_new_session=True
            )

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)

    def __enter__(self) -> LocalAirflow:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def log_tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return ""

    def wait_for_dags(self, dag_ids: Iterable[str], timeout: float) -> None:
        wanted, deadline = set(dag_ids), time.time() + timeout
        while time.time() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"airflow standalone exited ({self.process.returncode}):\n{self.log_tail()}")
            if wanted <= {d["dag_id"] for d in self.json("dags", "list")}:
                return
            time.sleep(3)
        errors = self.cli("dags", "list-import-errors", check=False)
        raise TimeoutError(f"DAGs {sorted(wanted)} not parsed within {timeout:.0f}s. Import errors:\n{errors}")

    def runs(self, dag_id: str) -> list[dict[str, Any]]:
        return sorted(self.json("dags", "list-runs", dag_id), key=lambda r: r.get("logical_date") or r["run_after"])

    def wait_for_runs(self, dag_id: str, *, count: int, timeout: float, poll: float = 5.0) -> list[dict[str, Any]]:
        """Wait until ``dag_id`` has at least ``count`` runs and none is queued or running."""
        deadline = time.time() + timeout
        while True:
            runs = self.runs(dag_id)
            if len(runs) >= count and all(r["state"] in FINISHED for r in runs):
                return runs
            if time.time() > deadline:
                states = [(r["run_id"], r["state"]) for r in runs]
                raise TimeoutError(f"{dag_id}: runs not finished after {timeout:.0f}s: {states}\n{self.log_tail()}")
            time.sleep(poll)

    def backfill(self, dag_id: str, from_date: str, to_date: str, reprocess: str = "completed") -> int:
        """Unpause, create a one-at-a-time backfill; return how many runs the DAG then has (all are
        created up front, queued)."""
        self.cli("dags", "unpause", dag_id)
        args = ("backfill", "create", "--dag-id", dag_id, "--from-date", from_date, "--to-date", to_date,
                "--max-active-runs", "1", "--reprocess-behavior", reprocess)
        deadline = time.time() + 120
        while True:  # the scheduler marks the previous backfill of this DAG complete a little after its runs
            try:
                self.cli(*args)
                break
            except RuntimeError as exc:
                if "AlreadyRunningBackfill" not in str(exc) or time.time() > deadline:
                    raise
                time.sleep(5)
        return len(self.runs(dag_id))

    def trigger(self, dag_id: str, logical_date: str, conf: Mapping[str, Any] | None = None) -> str:
        """A manual run with a logical date (so it has a data interval); returns the run id."""
        self.cli("dags", "unpause", dag_id)
        run_id = f"manual__{logical_date}"
        args = ["dags", "trigger", dag_id, "--logical-date", logical_date, "--run-id", run_id]
        if conf:
            args += ["--conf", json.dumps(dict(conf))]
        self.cli(*args)
        return run_id

    def task_states(self, dag_id: str, run_id: str) -> dict[str, str]:
        return {t["task_id"]: t["state"] for t in self.json("tasks", "states-for-dag-run", dag_id, run_id)}
