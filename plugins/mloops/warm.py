"""Run an Airflow component from a warm parent: ``python -m mloops.warm scheduler`` (or ``celery worker``).

Every mloops task process is a fork: the LocalExecutor forks its workers from the scheduler and each
worker's supervisor forks the task; a Celery worker forks its pool from the main process in the same
way. A task therefore starts with whatever its forking parent had imported. Cold, every task imports
pandas, scikit-learn, MLflow, Great Expectations and Evidently on its own (seconds each on a small
machine, for ~11 tasks per model a night). Imported once here, before the component starts, they are
shared copy-on-write by every task it runs.

Only modules are imported, and one cache of what is installed is filled (MLflow's map of the
installed distributions, :func:`installed_distributions`): no settings are read, no client or
connection is built, so a forked task sees the environment and files as they are when it runs. The parse-time
rule is untouched: DAG files and the DAG processor never import this module.
"""

from __future__ import annotations

import importlib
import sys
import time

#: What each stage's code imports while it runs (the stage modules import their libraries lazily,
#: inside the functions that use them): a validation task needs GX, never Evidently or skops.
STAGE_IMPORTS: dict[str, tuple[str, ...]] = {
    "validate": ("pandas", "pyarrow.parquet", "great_expectations", "mloops.stages.validate"),
    "train": (
        "pandas",
        "pyarrow.parquet",
        "sklearn.ensemble",
        "sklearn.linear_model",
        "mlflow",
        "mlflow.sklearn",
        "skops.io",  # the model is saved with skops
        "mloops.stages.train",
    ),
    "test": (  # loads the challenger and the champion (skops, through MLflow) and reads the holdout
        "pandas",
        "pyarrow.parquet",
        "sklearn.ensemble",
        "sklearn.linear_model",
        "sklearn.metrics",
        "sklearn.inspection",
        "mlflow",
        "mlflow.sklearn",
        "skops.io",
        "mloops.stages.test",
    ),
    "registry": ("mlflow", "mloops.stages.registry"),
    "score": ("pandas", "pyarrow.parquet", "mlflow", "skops.io", "mloops.stages.score"),
    "labels": ("pandas", "pyarrow.parquet", "sklearn.metrics", "mloops.stages.labels"),
    "drift": ("pandas", "pyarrow.parquet", "evidently", "mlflow", "mloops.stages.drift"),
    "shadow": ("pandas", "pyarrow.parquet", "sklearn.metrics", "mlflow", "skops.io", "mloops.stages.shadow"),
    "rollback": ("mlflow", "mloops.stages.rollback"),
}
#: MLflow's SQLAlchemy stores (the embedded SQLite store, a PostgreSQL one): ``import mlflow`` leaves them
#: out, and the first client call of every task (each task refreshes its fleet row, at least) imported them,
#: with alembic, SQLAlchemy's dialects and MLflow's tracing models: 1.5 s quiet, 4.5 s at load 7, per task.
STORE_IMPORTS = (
    "mlflow.store.tracking.sqlalchemy_workspace_store",
    "mlflow.store.model_registry.sqlalchemy_workspace_store",
    "alembic.command",  # the stores check the schema revision with alembic on creation
    "alembic.config",
)


def stage_modules(stage: str) -> tuple[str, ...]:
    """What a task of ``stage`` (a key of :data:`STAGE_IMPORTS`) finds imported in a warm parent that
    holds only its own stage's libraries: those, and MLflow's stores if the stage calls MLflow."""
    modules = STAGE_IMPORTS[stage]
    return (*modules, *STORE_IMPORTS) if "mlflow" in modules else modules


#: The libraries of every stage, then mloops' own modules behind them.
WARM_MODULES = (
    *dict.fromkeys(m for mods in STAGE_IMPORTS.values() for m in mods if not m.startswith("mloops.")),
    *STORE_IMPORTS,
    "mloops.adapters.gx_adapter",
    "mloops.adapters.mlflow_adapter",
    "mloops.adapters.evidently_adapter",
    "mloops.adapters.evidently_drift",
    "mloops.adapters.model_integrity",
    *(f"mloops.stages.{stage}" for stage in STAGE_IMPORTS),
)


def installed_distributions() -> None:
    """Fill MLflow's map of the installed distributions' modules, if MLflow is imported.

    Logging a model checks its pinned requirements against what is installed; the first check of a
    process builds that map by reading every installed distribution's metadata (0.5 s here, in each
    training task). What is installed cannot change under a running component without a restart, so
    the warm parent builds it once. The map is MLflow's internal cache: if a release renames it, this
    does nothing and each task builds its own as before.
    """
    requirements = sys.modules.get("mlflow.utils.requirements_utils")
    fill = getattr(requirements, "_init_modules_to_packages_map", None)
    if callable(fill):
        try:
            fill()
        except Exception as exc:  # noqa: BLE001 - a cache, never a reason for the component not to start
            print(f"mloops.warm: could not read the installed distributions: {exc!r}", file=sys.stderr)


def warm(modules: tuple[str, ...] = WARM_MODULES) -> dict[str, float]:
    """Import ``modules``, then fill the caches of what they hold that every task would fill the same
    way (:func:`installed_distributions`); the seconds each module took (a module that fails to import
    is reported, not fatal: the task that needs it will fail with the real error, in its own log)."""
    took: dict[str, float] = {}
    for name in modules:
        started = time.perf_counter()
        try:
            importlib.import_module(name)
        except Exception as exc:  # noqa: BLE001 - the component must start even if one library is broken
            print(f"mloops.warm: could not import {name}: {exc!r}", file=sys.stderr, flush=True)
            continue
        took[name] = time.perf_counter() - started
    installed_distributions()
    return took


def start_report() -> str:
    """How warm this task process started: which of the warmed libraries it found already imported."""
    libraries = [m for m in WARM_MODULES if not m.startswith("mloops.")]
    present = [m for m in libraries if m in sys.modules]
    how = "warm" if len(present) == len(libraries) else "cold" if not present else "partly warm"
    return f"task process started {how}: {len(present)} of {len(libraries)} stage libraries already imported"


def main(argv: list[str]) -> int:
    if not argv:
        print("usage: python -m mloops.warm <airflow command> [args...]", file=sys.stderr)
        return 2
    started = time.perf_counter()
    took = warm()
    print(
        f"mloops.warm: {len(took)} modules imported in {time.perf_counter() - started:.1f} s before "
        f"'airflow {' '.join(argv)}' starts",
        file=sys.stderr,
        flush=True,
    )
    from airflow.__main__ import main as airflow_main

    sys.argv = ["airflow", *argv]
    airflow_main()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
