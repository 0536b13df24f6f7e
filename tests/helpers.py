"""Shared test helpers: small model configs written to a temporary models folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]


def example_config(name: str) -> dict[str, Any]:
    return yaml.safe_load((REPO / "include" / "models" / f"{name}.yaml").read_text())


def small_churn(**source: Any) -> dict[str, Any]:
    """The churn example, shrunk so a whole DAG run takes seconds."""
    data = example_config("churn")
    data["source"].update({"rows_per_day": 600, "scenarios": [], **source})
    data["training"].update({"window_days": 2, "min_rows": 200})
    # A few hundred holdout rows make slice and champion metrics noisy: loosen the gates accordingly.
    data["evaluation"]["slices"] = [{**data["evaluation"]["slices"][0], "min_rows": 20, "min": 0.5}]
    data["evaluation"]["champion_tolerance"] = 0.1
    data["training"]["estimator"]["params"] = {"max_iter": 40, "learning_rate": 0.1}
    return data


def write_models(directory: Path, **configs: dict[str, Any]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, data in configs.items():
        (directory / f"{name}.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    return directory
