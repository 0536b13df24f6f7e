"""Shared test helpers: small model configs written to a temporary models folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]


def example_config(name: str) -> dict[str, Any]:
    return yaml.safe_load((REPO / "include" / "models" / f"{name}.yaml").read_text())


def small_churn(**source: Any) -> dict[str, Any]:
    """The churn example, shrunk so a whole DAG run takes seconds; without its label feed (a test of
    the feed declares its own, see tests/integration/test_label_feed.py)."""
    data = example_config("churn")
    data.pop("labels", None)
    data["source"].update({"rows_per_day": 600, "scenarios": [], **source})
    data["training"].update({"window_days": 2, "min_rows": 200})
    # A few hundred holdout rows make slice and champion metrics noisy: loosen the gates accordingly.
    data["evaluation"]["slices"] = [{**data["evaluation"]["slices"][0], "min_rows": 20, "min": 0.5}]
    data["evaluation"]["champion_tolerance"] = 0.1
    data["training"]["estimator"]["params"] = {"max_iter": 40, "learning_rate": 0.1}
    return data


def dag_test(
    dag_id: str, day: str, *, hour: int = 2, conf: dict[str, Any] | None = None
) -> tuple[Any, dict[str, str]]:
    """Run ``dag_id`` with ``dag.test()`` for the data interval that starts on ``day``; return the run
    and its task states.

    ``dag.test`` treats the date it is given as the run's ``run_after`` and infers the last complete
    data interval before it, exactly as the scheduler does: the night after ``day`` at ``hour`` (UTC),
    the DAG's cron hour or later.
    """
    import datetime as dt

    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(REPO / "dags"))
    assert bag.import_errors == {}
    run_after = dt.datetime.fromisoformat(day).replace(hour=hour, tzinfo=dt.UTC) + dt.timedelta(days=1)
    dr = bag.dags[dag_id].test(logical_date=run_after, run_conf=conf)
    return dr, {ti.task_id: ti.state for ti in dr.get_task_instances()}


def write_models(directory: Path, **configs: dict[str, Any]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, data in configs.items():
        (directory / f"{name}.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    return directory
