"""Write the bytecode of what the local stack imports, once, at install time (``make venv``).

A process that imports a module with no cached bytecode compiles it from source, and with
``PYTHONDONTWRITEBYTECODE`` set (common in containers and CI) it does so at every start. Compiling
the whole virtualenv (``compileall``) is the other way, but most of its 35,000 files are never
imported: plotly alone ships 15,000 and the stack imports 161 of them. This script imports what the
Airflow components and the tasks' warm parent import, with bytecode writing on, in two processes
(the libraries the tasks use, and Airflow's own components), so the cache holds exactly that set.

    python scripts/precompile.py          # both groups, side by side
    python scripts/precompile.py tasks    # one group, in this process
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

#: Airflow's side: the CLI every ``airflow`` command parses, and each component the local stack runs.
AIRFLOW_MODULES = (
    "airflow.cli.cli_parser",
    "airflow.cli.commands.db_command",
    "airflow.cli.commands.pool_command",
    "airflow.cli.commands.dag_command",
    "airflow.cli.commands.backfill_command",
    "airflow.cli.commands.scheduler_command",
    "airflow.cli.commands.dag_processor_command",
    "airflow.cli.commands.triggerer_command",
    "airflow.cli.commands.api_server_command",
    "airflow.api_fastapi.main",
    "airflow.jobs.scheduler_job_runner",
    "airflow.jobs.triggerer_job_runner",
    "airflow.dag_processing.manager",
    "airflow.executors.local_executor",
    "airflow.sdk.execution_time.task_runner",
    "airflow.providers.standard.operators.hitl",
    "mloops.dag_factory",
    "mloops.fleet.plugin",
)


def group_modules(group: str) -> tuple[str, ...]:
    if group == "airflow":
        return AIRFLOW_MODULES
    from mloops.warm import WARM_MODULES  # the tasks' libraries: what the warm parent imports

    return WARM_MODULES


def compile_modules(modules: tuple[str, ...]) -> list[str]:
    """Import ``modules`` writing their bytecode (and that of everything they import), as the warm parent
    imports them (``mloops.warm.warm``, which reports a module that fails on stderr: the stack shows the
    real error); the ones that failed."""
    from mloops.warm import warm

    sys.dont_write_bytecode = False  # whatever PYTHONDONTWRITEBYTECODE says: this process is for writing
    imported = warm(modules)
    return [name for name in modules if name not in imported]


def compile_group(group: str) -> int:
    compile_modules(group_modules(group))
    return 0


def main(argv: list[str]) -> int:
    if argv:
        return compile_group(argv[0])
    started = time.perf_counter()
    groups = ("tasks", "airflow")
    procs = [
        subprocess.Popen(
            [sys.executable, __file__, group], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )
        for group in groups
    ]
    for group, proc in zip(groups, procs, strict=True):
        _, err = proc.communicate()
        for line in err.splitlines():
            if "could not import" in line:
                print(f"precompile: {line}", file=sys.stderr)
        if proc.returncode:
            print(f"precompile: the {group} group exited with {proc.returncode}", file=sys.stderr)
    print(f"precompile: bytecode of the stack's imports written in {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.path[:0] = [str(REPO / "plugins"), str(REPO)]
    raise SystemExit(main(sys.argv[1:]))
