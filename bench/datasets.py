"""Synthetic inputs of the benchmarks: the 50+ expectation suite and the wide (30+ feature) model.

Everything derives from the bundled churn example so the benchmarks follow its config as it evolves:
the suite is churn's data contract plus its suite file plus mean/stdev bounds, and the wide model is
churn with 22 derived numeric features, read from a files-source Parquet partition.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from bench.harness import REPO, examples

CHURN_CONFIG = REPO / "include" / "models" / "churn.yaml"
EXPECTATIONS_DIR = REPO / "include" / "expectations"
BASE_NUMERIC = ("tenure_months", "monthly_charges", "total_charges", "support_calls", "age", "num_products")
WIDE_MODEL = "wide"
#: The benchmark estimator: churn's, trimmed so a million rows fit the time budget on two cores.
WIDE_ESTIMATOR = {"max_iter": 50, "learning_rate": 0.1, "max_leaf_nodes": 15}


def spec_key(expectation_type: str, kwargs: dict[str, Any]) -> str:
    return f"{expectation_type}({kwargs.get('column') or ''})"


def distribution_expectations(config: Any) -> list[dict[str, Any]]:
    """Mean and standard-deviation bounds for each numeric feature, from its declared range."""
    specs = []
    for feature in config.features:
        if feature.type != "numeric":
            continue
        low, high = feature.min, feature.max
        specs.append(
            {
                "type": "expect_column_mean_to_be_between",
                "kwargs": {"column": feature.name, "min_value": low, "max_value": high},
            }
        )
        spread = (high - low) if low is not None and high is not None else None
        specs.append(
            {
                "type": "expect_column_stdev_to_be_between",
                "kwargs": {"column": feature.name, "min_value": 0, "max_value": spread},
            }
        )
    return specs


def validation_suite(config: Any) -> list[dict[str, Any]]:
    """Churn's contract and suite file, plus distribution bounds, one expectation per (type, column)."""
    from mloops import quality

    specs = quality.contract_expectations(config) + quality.suite_file_expectations(config, EXPECTATIONS_DIR)
    seen = {spec_key(s["type"], s["kwargs"]) for s in specs}
    if len(seen) != len(specs):
        raise ValueError(
            "the model's own expectations repeat a (type, column) pair; the verdict cross-check needs "
            "unique keys"
        )
    for spec in distribution_expectations(config):
        key = spec_key(spec["type"], spec["kwargs"])
        if key not in seen:
            seen.add(key)
            specs.append(spec)
    return specs


def wide_frame(
    rows: int, day: dt.date, seed: int = 7, scenarios: Sequence[Any] = ()
) -> tuple[Any, list[str]]:
    """The churn partition of ``day`` plus 22 numeric features derived from it, and their names.

    ``scenarios`` (the generator's ``Scenario``) act while the churn columns are drawn, so the
    derived columns follow a covariate drift of the columns they come from.
    """
    frame = examples().generate_partition("churn", day, rows=rows, seed=seed, scenarios=scenarios)
    base = {name: frame[name].astype("float64").to_numpy() for name in BASE_NUMERIC}
    rng = np.random.default_rng([seed, day.toordinal()])
    derived: dict[str, np.ndarray] = {}
    for name in BASE_NUMERIC:
        derived[f"log_{name}"] = np.log1p(np.abs(base[name]))
    pairs = [
        ("tenure_months", "monthly_charges"),
        ("monthly_charges", "num_products"),
        ("support_calls", "tenure_months"),
        ("age", "monthly_charges"),
        ("support_calls", "num_products"),
        ("age", "tenure_months"),
    ]
    for a, b in pairs:
        derived[f"{a}_x_{b}"] = base[a] * base[b]
    derived["charges_per_tenure"] = base["total_charges"] / (base["tenure_months"] + 1)
    derived["monthly_per_product"] = base["monthly_charges"] / base["num_products"]
    derived["calls_per_tenure"] = base["support_calls"] / (base["tenure_months"] + 1)
    derived["age_per_tenure"] = base["age"] / (base["tenure_months"] + 1)
    for name in ("tenure_months", "monthly_charges", "support_calls"):
        derived[f"{name}_sq"] = base[name] ** 2
    for index in range(3):
        derived[f"noise_{index}"] = rng.normal(0.0, 1.0, rows)
    assert len(derived) == 22, len(derived)
    for name, values in derived.items():
        frame[name] = np.round(values, 4)
    return frame, list(derived)


def wide_config(source_template: str, extra_features: list[str]) -> dict[str, Any]:
    """Churn's config with the derived features, a files source, a 1-day window and the bench estimator."""
    data = yaml.safe_load(CHURN_CONFIG.read_text())
    data["description"] = "Benchmark model: churn plus 22 derived numeric features (bench/datasets.py)."
    data["features"] = list(data["features"]) + [{"name": name, "type": "numeric"} for name in extra_features]
    data["source"] = {"kind": "files", "path": source_template, "format": "parquet"}
    data.pop("labels", None)  # the generator's label feed needs the generator source
    data["training"]["window_days"] = 1
    data["training"]["min_partitions"] = 1
    data["training"]["estimator"]["params"] = dict(WIDE_ESTIMATOR)
    return data


def write_yaml(path: Path, data: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path
