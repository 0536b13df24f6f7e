"""The bundled example data generator: realistic daily partitions for the example models.

Two datasets ship with mloops so every gate of the pipeline can be exercised without an upstream
system: ``churn`` (binary classification) and ``house_prices`` (regression). A partition is a pure
function of ``(dataset, seed, day, rows, scenarios)``: every random stream is seeded from those
values only, so a rerun of a DAG run lands byte-identical data.

Scenarios inject the failures and changes the pipeline must catch (drift, null bursts, schema
breaks, duplicates, empty or missing partitions) on a date range. Distribution scenarios
(``covariate_drift``, ``concept_drift``) act while the data is drawn, so the target stays consistent
with the features; the others corrupt the finished frame, in the order given, after the target is
drawn, the way a broken upstream job would.

Everything is vectorised numpy plus Arrow-backed string columns, so a million rows take about a
second and memory stays proportional to the frame. Nothing here imports Airflow.
"""

from __future__ import annotations

import datetime as dt
import math
import numbers
import operator
import os
import uuid
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from mloops.contracts import ScenarioKind

DATASETS: tuple[str, ...] = ("churn", "house_prices")
TIMESTAMP_COLUMN = "event_date"
OUT_OF_RANGE_CATEGORY = "__unexpected__"

# Parameter name -> value kind, per scenario kind. Drives validation and the CLI's value parsing.
PARAM_KINDS: dict[ScenarioKind, dict[str, str]] = {
    ScenarioKind.COVARIATE_DRIFT: {
        "columns": "columns",
        "shift": "number",
        "categorical_column": "optional_name",
        "towards": "name",
        "mix": "fraction",
    },
    ScenarioKind.CONCEPT_DRIFT: {"strength": "non_negative"},
    ScenarioKind.NULL_BURST: {"column": "name", "fraction": "fraction"},
    ScenarioKind.OUT_OF_RANGE: {"column": "name", "fraction": "fraction"},
    ScenarioKind.RENAMED_COLUMN: {"column": "name", "new_name": "name"},
    ScenarioKind.MISSING_COLUMN: {"column": "name"},
    ScenarioKind.DUPLICATE_ROWS: {"fraction": "fraction"},
    ScenarioKind.EMPTY_PARTITION: {},
    ScenarioKind.MISSING_PARTITION: {},
}


def scenario_kind(value: Any) -> ScenarioKind:
    """``value`` as a :class:`ScenarioKind`, or a ValueError listing the valid kinds."""
    try:
        return ScenarioKind(value)
    except ValueError:
        valid = ", ".join(ScenarioKind)
        raise ValueError(f"unknown scenario kind {value!r}; valid kinds: {valid}") from None


def _to_date(value: Any, what: str) -> dt.date:
    """Accept dates, datetimes (their date) and ISO strings, so YAML and CLI values work alike."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            raise ValueError(f"{what} {value!r} is not an ISO date (YYYY-MM-DD)") from None
    raise TypeError(f"{what} must be a datetime.date, got {type(value).__name__}")


def _check_param(kind: ScenarioKind, name: str, value: Any) -> Any:
    """Validate one parameter's type and range (dataset-independent); return its normalised value."""
    expected = PARAM_KINDS[kind][name]
    bad = f"scenario '{kind}': param {name!r}"
    if expected in ("number", "non_negative", "fraction"):
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
            raise ValueError(f"{bad} must be a finite number, got {value!r}")
        value = float(value)
        if expected == "non_negative" and value < 0:
            raise ValueError(f"{bad} must be >= 0, got {value!r}")
        if expected == "fraction" and not 0.0 <= value <= 1.0:
            raise ValueError(f"{bad} must be a fraction in [0, 1], got {value!r}")
        return value
    if expected == "optional_name" and value is None:
        return None
    if expected in ("name", "optional_name"):
        if not isinstance(value, str) or not value:
            raise ValueError(f"{bad} must be a non-empty string, got {value!r}")
        return value
    if isinstance(value, str):
        value = (value,)
    if not isinstance(value, Sequence) or not all(isinstance(v, str) and v for v in value):
        raise ValueError(f"{bad} must be a list of column names, got {value!r}")
    return tuple(value)


@dataclass(frozen=True)
class Scenario:
    """A data scenario active from ``start`` to ``end`` (both inclusive); ``kind`` is a ``ScenarioKind``.

    Parameters are checked here for type and range; column names are checked against the dataset
    when a partition is generated, because a scenario does not know its dataset.
    """

    kind: ScenarioKind
    start: dt.date
    end: dt.date
    params: Mapping[str, Any] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", scenario_kind(self.kind))
        start = _to_date(self.start, f"scenario '{self.kind}': start")
        end = _to_date(self.end, f"scenario '{self.kind}': end")
        if end < start:
            raise ValueError(f"scenario '{self.kind}': end {end} is before start {start}")
        if not isinstance(self.params, Mapping):
            raise ValueError(
                f"scenario '{self.kind}': params must be a mapping, got {type(self.params).__name__}"
            )
        allowed = PARAM_KINDS[self.kind]
        unknown = sorted(set(self.params) - set(allowed))
        if unknown:
            valid = ", ".join(allowed) or "none"
            raise ValueError(f"scenario '{self.kind}': unknown param {unknown[0]!r}; valid params: {valid}")
        params = {name: _check_param(self.kind, name, value) for name, value in self.params.items()}
        object.__setattr__(self, "start", start)
        object.__setattr__(self, "end", end)
        object.__setattr__(self, "params", params)

    def active_on(self, day: dt.date) -> bool:
        """Whether the scenario applies to the partition of ``day``."""
        return self.start <= _to_date(day, "day") <= self.end


@dataclass(frozen=True)
class _Spec:
    """Everything the generator needs to know about one dataset."""

    name: str
    id_column: str
    id_prefix: str
    target: str
    task: str
    numeric: tuple[str, ...]
    categories: Mapping[str, tuple[str, ...]]
    probabilities: Mapping[str, tuple[float, ...]]
    bounds: Mapping[str, tuple[float, float]]
    steps: Mapping[str, float]
    integer: frozenset[str]
    scale: Mapping[str, float]
    baseline_nulls: Mapping[str, float]
    drift_columns: tuple[str, ...]
    drift_categorical: str
    drift_towards: str
    null_column: str
    main_column: str
    features: Callable[[np.random.Generator, int, _Drift], dict[str, np.ndarray]]
    target_fn: Callable[[Mapping[str, np.ndarray], np.random.Generator, float], np.ndarray]

    @property
    def categorical(self) -> tuple[str, ...]:
        return tuple(self.categories)

    @property
    def columns(self) -> tuple[str, ...]:
        return (self.id_column, TIMESTAMP_COLUMN, *self.numeric, *self.categorical, self.target)


class _Drift:
    """Applies the active covariate drift while features are drawn, so derived columns follow it."""

    def __init__(self, spec: _Spec) -> None:
        self.spec = spec
        self.shifts: dict[str, float] = {}
        self.mixes: list[tuple[str, int, float, np.random.Generator]] = []

    def num(self, name: str, values: np.ndarray) -> np.ndarray:
        """Shift, clip to the column's valid range, round to its step and cast integer columns."""
        spec = self.spec
        values = np.asarray(values, dtype=np.float64) + self.shifts.get(name, 0.0)
        low, high = spec.bounds[name]
        values = np.clip(values, low, high)
        step = spec.steps.get(name)
        if step is not None:
            values = np.round(values / step) * step
        return values.astype(np.int64) if name in spec.integer else values

    def cat(self, name: str, rng: np.random.Generator, n: int) -> np.ndarray:
        """Draw category codes by inverse CDF (a fixed number of draws whatever the mix), then drift them."""
        cumulative = np.cumsum(self.spec.probabilities[name])
        codes = np.searchsorted(cumulative / cumulative[-1], rng.random(n), side="right")
        return self.mix(name, codes.astype(np.int8))

    def mix(self, name: str, codes: np.ndarray) -> np.ndarray:
        for column, code, weight, rng in self.mixes:
            if column == name:
                codes = np.where(rng.random(codes.shape[0]) < weight, np.int8(code), codes)
        return codes


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


CHURN_CONTRACTS = ("month-to-month", "one-year", "two-year")
CHURN_PAYMENTS = ("card", "bank_transfer", "electronic_check", "mailed_check")
CHURN_REGIONS = ("north", "south", "east", "west")


def _churn_features(rng: np.random.Generator, n: int, d: _Drift) -> dict[str, np.ndarray]:
    """Month-to-month customers are newer and pay a little more; charges grow with products."""
    contract = d.cat("contract_type", rng, n)
    tenure = d.num(
        "tenure_months",
        rng.gamma(np.array([1.3, 2.4, 3.4])[contract], np.array([9.0, 12.0, 13.0])[contract]),
    )
    products = d.num("num_products", 1 + rng.binomial(4, 0.3, n))
    monthly = d.num(
        "monthly_charges", 22.0 + 11.0 * products + 6.0 * (contract == 0) + rng.normal(0.0, 14.0, n)
    )
    total = d.num("total_charges", tenure * monthly * rng.lognormal(0.0, 0.06, n))
    lam = np.clip(0.4 + 0.018 * (monthly - 18.0) + 0.3 * (contract == 0), 0.05, None)
    support = d.num("support_calls", rng.poisson(lam))
    age = d.num("age", rng.normal(46.0, 15.0, n))
    return {
        "tenure_months": tenure,
        "monthly_charges": monthly,
        "total_charges": total,
        "support_calls": support,
        "age": age,
        "num_products": products,
        "contract_type": contract,
        "payment_method": d.cat("payment_method", rng, n),
        "region": d.cat("region", rng, n),
        "has_partner": d.cat("has_partner", rng, n),
    }


def _churn_target(x: Mapping[str, np.ndarray], rng: np.random.Generator, strength: float) -> np.ndarray:
    """Churn is a Bernoulli draw of a logistic score; concept drift moves towards another driver set."""
    contract, pay, region, partner = x["contract_type"], x["payment_method"], x["region"], x["has_partner"]
    base = (
        -1.65
        + 1.6 * (contract == 0)
        + 0.35 * (contract == 1)
        - 0.045 * x["tenure_months"]
        + 0.03 * (x["monthly_charges"] - 55.0)
        + 0.5 * (x["support_calls"] - 1.2)
        + 0.5 * (pay == 2)
        - 0.3 * (partner == 0)
    )
    z = base
    if strength:
        alternative = (
            -2.3
            - 0.05 * (x["age"] - 46.0)
            - 0.8 * (x["num_products"] - 2.2)
            + 1.0 * (region == 1)
            + 0.4 * (region == 2)
            + 0.8 * (partner == 1)
            + 0.7 * (pay == 3)
            + 0.01 * x["tenure_months"]
        )
        z = base + strength * (alternative - base)
    return (rng.random(z.shape[0]) < _sigmoid(z)).astype(np.int64)


HOUSE_NEIGHBORHOODS = ("downtown", "riverside", "old_town", "suburbs", "hillside", "industrial")
HOUSE_CONDITIONS = ("poor", "fair", "good", "excellent")
HOUSE_HEATING = ("gas", "electric", "heat_pump")


def _house_features(rng: np.random.Generator, n: int, d: _Drift) -> dict[str, np.ndarray]:
    """Neighbourhood drives distance, size, age and lot; size drives rooms; age drives condition, heating."""
    hood = d.cat("neighborhood", rng, n)
    distance = d.num(
        "distance_to_center_km",
        np.abs(
            rng.normal(
                np.array([2.0, 6.0, 4.0, 18.0, 12.0, 9.0])[hood],
                np.array([1.5, 3.0, 2.0, 8.0, 5.0, 4.0])[hood],
            )
        ),
    )
    sqft = d.num(
        "sqft", rng.lognormal(np.log(np.array([1100.0, 1600.0, 1400.0, 2200.0, 2600.0, 1300.0])[hood]), 0.35)
    )
    bedrooms = d.num("bedrooms", sqft / 650.0 + rng.normal(0.5, 0.6, n))
    bathrooms = d.num("bathrooms", 0.5 + 0.45 * bedrooms + rng.normal(0.0, 0.4, n))
    year = d.num(
        "year_built",
        rng.normal(
            np.array([1985.0, 1995.0, 1930.0, 1998.0, 1990.0, 1960.0])[hood],
            np.array([25.0, 20.0, 20.0, 15.0, 20.0, 25.0])[hood],
        ),
    )
    lot = d.num("lot_size", sqft * rng.lognormal(np.log(np.array([1.0, 2.5, 1.6, 4.0, 5.0, 2.2])[hood]), 0.4))
    garage = d.num("garage_spaces", rng.binomial(3, np.array([0.15, 0.4, 0.25, 0.6, 0.55, 0.35])[hood]))
    latent = rng.normal(0.0, 1.0, n) + 0.012 * (year - 1975)
    condition = d.mix("condition", np.searchsorted(np.array([-1.3, -0.3, 1.0]), latent).astype(np.int8))
    heat_pump = np.clip(0.05 + 0.01 * (year - 1990), 0.05, 0.6)
    u = rng.random(n)
    heating = d.mix(
        "heating", np.where(u < heat_pump, 2, np.where(u < heat_pump + 0.3, 1, 0)).astype(np.int8)
    )
    return {
        "sqft": sqft,
        "bedrooms": bedrooms,
        "bathrooms": bathrooms,
        "year_built": year,
        "lot_size": lot,
        "distance_to_center_km": distance,
        "garage_spaces": garage,
        "neighborhood": hood,
        "condition": condition,
        "heating": heating,
    }


def _house_log_price(x: Mapping[str, np.ndarray], coef: Mapping[str, Any]) -> np.ndarray:
    hood, cond = x["neighborhood"], x["condition"]
    year = x["year_built"].astype(np.float64)
    return (
        np.log(np.asarray(coef["price_per_sqft"])[hood] * 1500.0)
        + coef["elasticity"] * np.log(x["sqft"] / 1500.0)
        + 0.04 * (x["bathrooms"] - 2.0)
        + 0.02 * (x["bedrooms"] - 3.0)
        + np.asarray(coef["condition"])[cond]
        + coef["distance"] * x["distance_to_center_km"]
        + coef["garage"] * x["garage_spaces"]
        + 0.003 * (year - 1975.0)
        + 0.12 * (year < 1930)
        + 0.08 * np.log(x["lot_size"] / (2.0 * x["sqft"]))
    )


_HOUSE_BASE = {
    "price_per_sqft": (420.0, 300.0, 340.0, 210.0, 260.0, 150.0),
    "elasticity": 0.85,
    "condition": (-0.25, -0.1, 0.0, 0.15),
    "distance": -0.012,
    "garage": 0.04,
}
_HOUSE_ALTERNATIVE = {
    "price_per_sqft": (240.0, 270.0, 240.0, 270.0, 290.0, 140.0),
    "elasticity": 1.05,
    "condition": (-0.05, -0.02, 0.0, 0.05),
    "distance": 0.002,
    "garage": 0.09,
}


def _house_target(x: Mapping[str, np.ndarray], rng: np.random.Generator, strength: float) -> np.ndarray:
    """Log-linear price with a lognormal error; concept drift re-prices neighbourhoods and distance."""
    log_price = _house_log_price(x, _HOUSE_BASE)
    if strength:
        log_price = log_price + strength * (_house_log_price(x, _HOUSE_ALTERNATIVE) - log_price)
    price = np.exp(log_price + rng.normal(0.0, 0.15, log_price.shape[0]))
    return np.round(np.clip(price, 50_000.0, 2_000_000.0), -2)


_SPECS: dict[str, _Spec] = {
    "churn": _Spec(
        name="churn",
        id_column="customer_id",
        id_prefix="C",
        target="churned",
        task="classification",
        numeric=("tenure_months", "monthly_charges", "total_charges", "support_calls", "age", "num_products"),
        categories={
            "contract_type": CHURN_CONTRACTS,
            "payment_method": CHURN_PAYMENTS,
            "region": CHURN_REGIONS,
            "has_partner": ("yes", "no"),
        },
        probabilities={
            "contract_type": (0.55, 0.24, 0.21),
            "payment_method": (0.3, 0.25, 0.3, 0.15),
            "region": (0.3, 0.25, 0.25, 0.2),
            "has_partner": (0.48, 0.52),
        },
        bounds={
            "tenure_months": (0.0, 72.0),
            "monthly_charges": (18.0, 120.0),
            "total_charges": (0.0, 12_000.0),
            "support_calls": (0.0, 10.0),
            "age": (18.0, 90.0),
            "num_products": (1.0, 5.0),
        },
        steps={
            "tenure_months": 1.0,
            "monthly_charges": 0.01,
            "total_charges": 0.01,
            "support_calls": 1.0,
            "age": 1.0,
            "num_products": 1.0,
        },
        integer=frozenset({"support_calls", "num_products"}),
        scale={
            "tenure_months": 20.0,
            "monthly_charges": 25.0,
            "total_charges": 2000.0,
            "support_calls": 1.2,
            "age": 15.0,
            "num_products": 1.0,
        },
        baseline_nulls={"total_charges": 0.02, "age": 0.015, "payment_method": 0.01},
        drift_columns=("monthly_charges", "support_calls", "age"),
        drift_categorical="contract_type",
        drift_towards="month-to-month",
        null_column="tenure_months",
        main_column="monthly_charges",
        features=_churn_features,
        target_fn=_churn_target,
    ),
    "house_prices": _Spec(
        name="house_prices",
        id_column="house_id",
        id_prefix="H",
        target="price",
        task="regression",
        numeric=(
            "sqft",
            "bedrooms",
            "bathrooms",
            "year_built",
            "lot_size",
            "distance_to_center_km",
            "garage_spaces",
        ),
        categories={
            "neighborhood": HOUSE_NEIGHBORHOODS,
            "condition": HOUSE_CONDITIONS,
            "heating": HOUSE_HEATING,
        },
        probabilities={"neighborhood": (0.15, 0.15, 0.15, 0.3, 0.12, 0.13)},
        bounds={
            "sqft": (400.0, 6000.0),
            "bedrooms": (1.0, 6.0),
            "bathrooms": (1.0, 4.0),
            "year_built": (1900.0, 2025.0),
            "lot_size": (200.0, 500_000.0),
            "distance_to_center_km": (0.0, 50.0),
            "garage_spaces": (0.0, 3.0),
        },
        steps={
            "sqft": 10.0,
            "bedrooms": 1.0,
            "bathrooms": 0.5,
            "year_built": 1.0,
            "lot_size": 10.0,
            "distance_to_center_km": 0.1,
            "garage_spaces": 1.0,
        },
        integer=frozenset({"bedrooms", "year_built", "garage_spaces"}),
        scale={
            "sqft": 800.0,
            "bedrooms": 1.0,
            "bathrooms": 0.75,
            "year_built": 25.0,
            "lot_size": 5000.0,
            "distance_to_center_km": 8.0,
            "garage_spaces": 1.0,
        },
        baseline_nulls={"lot_size": 0.03, "heating": 0.01},
        drift_columns=("sqft", "distance_to_center_km"),
        drift_categorical="neighborhood",
        drift_towards="suburbs",
        null_column="sqft",
        main_column="sqft",
        features=_house_features,
        target_fn=_house_target,
    ),
}


def _spec(dataset: str) -> _Spec:
    try:
        return _SPECS[dataset]
    except (KeyError, TypeError):
        raise ValueError(f"unknown dataset {dataset!r}; valid datasets: {', '.join(DATASETS)}") from None


def _resolve(spec: _Spec, scenario: Scenario) -> dict[str, Any]:
    """Fill a scenario's defaults for ``spec`` and check every column it names exists there."""
    kind, params = scenario.kind, dict(scenario.params)

    def column(name: str, default: str, allowed: Sequence[str], what: str) -> str:
        value = params.get(name, default)
        if value not in allowed:
            raise ValueError(
                f"scenario '{kind}': param {name!r} = {value!r} is not {what} of dataset {spec.name!r}; "
                f"valid: {', '.join(allowed)}"
            )
        return value

    if kind == ScenarioKind.COVARIATE_DRIFT:
        columns = params.get("columns", spec.drift_columns)
        for name in columns:
            if name not in spec.numeric:
                raise ValueError(
                    f"scenario '{kind}': param 'columns' names {name!r}, which is not a numeric feature of "
                    f"dataset {spec.name!r}; valid: {', '.join(spec.numeric)}"
                )
        categorical = params.get("categorical_column", spec.drift_categorical)
        towards = None
        if categorical is not None:
            categorical = column(
                "categorical_column", spec.drift_categorical, spec.categorical, "a categorical feature"
            )
            default = (
                spec.drift_towards
                if categorical == spec.drift_categorical
                else spec.categories[categorical][0]
            )
            towards = column(
                "towards", default, spec.categories[categorical], f"a category of {categorical!r}"
            )
        elif "towards" in params:
            raise ValueError(f"scenario '{kind}': param 'towards' needs a 'categorical_column'")
        return {
            "columns": tuple(columns),
            "shift": params.get("shift", 1.0),
            "categorical_column": categorical,
            "towards": towards,
            "mix": params.get("mix", 0.5),
        }
    if kind == ScenarioKind.CONCEPT_DRIFT:
        return {"strength": params.get("strength", 1.0)}
    if kind == ScenarioKind.NULL_BURST:
        return {
            "column": column("column", spec.null_column, spec.columns, "a column"),
            "fraction": params.get("fraction", 0.5),
        }
    if kind == ScenarioKind.OUT_OF_RANGE:
        valued = (*spec.numeric, *spec.categorical, spec.target)
        return {
            "column": column("column", spec.main_column, valued, "a feature or the target"),
            "fraction": params.get("fraction", 0.2),
        }
    if kind == ScenarioKind.RENAMED_COLUMN:
        name = column("column", spec.main_column, spec.columns, "a column")
        new_name = params.get("new_name", f"{name}_v2")
        if new_name in spec.columns:
            raise ValueError(
                f"scenario '{kind}': param 'new_name' = {new_name!r} clashes with an existing column of "
                f"dataset {spec.name!r}"
            )
        return {"column": name, "new_name": new_name}
    if kind == ScenarioKind.MISSING_COLUMN:
        return {"column": column("column", spec.main_column, spec.columns, "a column")}
    if kind == ScenarioKind.DUPLICATE_ROWS:
        return {"fraction": params.get("fraction", 0.3)}
    return {}


def _rng(seed: int, spec: _Spec, day: dt.date, stream: str) -> np.random.Generator:
    """An independent generator per (seed, dataset, day or hour, purpose); crc32 keeps it stable across
    processes. An hour's partition (``day`` a datetime) has a stream of its own; a day's is unchanged."""
    entropy = [seed % 2**64, zlib.crc32(spec.name.encode()), day.toordinal(), zlib.crc32(stream.encode())]
    if isinstance(day, dt.datetime):
        entropy.append(day.hour + 1)
    return np.random.default_rng(np.random.SeedSequence(entropy))


def _ids(prefix: str, n: int) -> pa.Array:
    digits = pc.utf8_lpad(pa.array(np.arange(n, dtype=np.int64)).cast(pa.string()), 7, "0")
    return pc.binary_join_element_wise(prefix, digits, "")


def _strings(categories: Sequence[str], codes: np.ndarray, nulls: np.ndarray | None) -> pd.Series:
    """Codes to an Arrow-backed ``str`` column without materialising Python strings."""
    indices = pa.array(codes.astype(np.int32), mask=nulls)
    return pd.Series(pc.take(pa.array(list(categories), type=pa.string()), indices), dtype="str")


@dataclass(frozen=True)
class _Plan:
    """The validated scenarios active on one day, each with its own random stream key."""

    active: tuple[tuple[Scenario, dict[str, Any], str], ...]

    def of(self, kind: ScenarioKind) -> list[tuple[Scenario, dict[str, Any], str]]:
        return [item for item in self.active if item[0].kind == kind]


def _plan(spec: _Spec, day: dt.date, scenarios: Sequence[Scenario]) -> _Plan:
    """Validate every scenario (active or not, so a bad config fails on any day) and keep today's."""
    active = []
    seen: dict[str, int] = {}
    for scenario in scenarios:
        if not isinstance(scenario, Scenario):
            raise TypeError(f"scenarios must be Scenario instances, got {type(scenario).__name__}")
        params = _resolve(spec, scenario)
        occurrence = seen.get(scenario.kind, 0)
        seen[scenario.kind] = occurrence + 1
        if scenario.active_on(day):
            active.append((scenario, params, f"scenario:{scenario.kind}#{occurrence}"))
    return _Plan(tuple(active))


def _check_call(dataset: str, day: dt.date, rows: int, seed: int) -> tuple[_Spec, dt.date, int, int]:
    spec = _spec(dataset)
    day = _to_date(day, "day")
    if isinstance(rows, bool):
        raise TypeError("rows must be an int")
    rows = operator.index(rows)
    if rows < 0:
        raise ValueError(f"rows must be >= 0, got {rows}")
    return spec, day, rows, operator.index(seed)


def _clean_frame(spec: _Spec, day: dt.date, rows: int, seed: int, plan: _Plan) -> pd.DataFrame:
    """The partition as the source system holds it: drifted features, their target, baseline nulls."""
    drift = _Drift(spec)
    for _, params, stream in plan.of(ScenarioKind.COVARIATE_DRIFT):
        for name in params["columns"]:
            drift.shifts[name] = drift.shifts.get(name, 0.0) + params["shift"] * spec.scale[name]
        if params["categorical_column"] is not None:
            column = params["categorical_column"]
            code = spec.categories[column].index(params["towards"])
            drift.mixes.append((column, code, params["mix"], _rng(seed, spec, day, stream)))
    strength = sum(params["strength"] for _, params, _ in plan.of(ScenarioKind.CONCEPT_DRIFT))

    values = spec.features(_rng(seed, spec, day, "features"), rows, drift)
    target = spec.target_fn(values, _rng(seed, spec, day, "target"), strength)

    null_rng = _rng(seed, spec, day, "nulls")
    nulls = {name: null_rng.random(rows) < fraction for name, fraction in spec.baseline_nulls.items()}
    columns: dict[str, Any] = {
        spec.id_column: pd.Series(_ids(f"{spec.id_prefix}{_stamp(day)}-", rows), dtype="str"),
        TIMESTAMP_COLUMN: np.full(rows, np.datetime64(day.isoformat(), "ns")),
    }
    for name in spec.numeric:
        column = values[name]
        if name in nulls:
            column = np.where(nulls[name], np.nan, column)
        columns[name] = column
    for name, categories in spec.categories.items():
        columns[name] = _strings(categories, values[name], nulls.get(name))
    columns[spec.target] = target
    return pd.DataFrame(columns)


def _require(frame: pd.DataFrame, kind: str, column: str) -> None:
    if column not in frame.columns:
        raise ValueError(
            f"scenario '{kind}': column {column!r} is no longer in the partition (renamed or dropped by an "
            "earlier scenario)"
        )


def _pick(rng: np.random.Generator, candidates: np.ndarray, fraction: float, total: int) -> np.ndarray:
    count = min(round(fraction * total), candidates.shape[0])
    return np.sort(rng.choice(candidates, size=count, replace=False))


def _out_of_range(frame: pd.DataFrame, column: str, fraction: float, rng: np.random.Generator) -> pd.Series:
    """Half the picked values go negative, half 100x (or an unknown category for text columns)."""
    series = frame[column]
    rows = len(frame)
    picked = _pick(rng, np.flatnonzero(series.notna().to_numpy()), fraction, rows)
    if pd.api.types.is_numeric_dtype(series.dtype):
        values = series.to_numpy(copy=True)
        negative, large = picked[: picked.shape[0] // 2], picked[picked.shape[0] // 2 :]
        values[negative] = -(np.abs(values[negative]) + 1)
        values[large] = np.maximum(np.abs(values[large]), 1) * 100
        return pd.Series(values, index=series.index, name=column)
    mask = np.zeros(rows, dtype=bool)
    mask[picked] = True
    return series.where(~mask, OUT_OF_RANGE_CATEGORY)


def _corrupt(frame: pd.DataFrame, spec: _Spec, plan: _Plan, seed: int, day: dt.date) -> pd.DataFrame:
    """Apply the non-distribution scenarios in the order they were given, like a broken upstream job."""
    for scenario, params, stream in plan.active:
        kind = scenario.kind
        rng = _rng(seed, spec, day, stream)
        rows = len(frame)
        if kind == ScenarioKind.NULL_BURST:
            _require(frame, kind, params["column"])
            mask = np.zeros(rows, dtype=bool)
            mask[_pick(rng, np.arange(rows), params["fraction"], rows)] = True
            frame[params["column"]] = frame[params["column"]].mask(mask)
        elif kind == ScenarioKind.OUT_OF_RANGE:
            _require(frame, kind, params["column"])
            frame[params["column"]] = _out_of_range(frame, params["column"], params["fraction"], rng)
        elif kind == ScenarioKind.RENAMED_COLUMN:
            _require(frame, kind, params["column"])
            if params["new_name"] in frame.columns:
                raise ValueError(f"scenario '{kind}': new_name {params['new_name']!r} is already a column")
            frame = frame.rename(columns={params["column"]: params["new_name"]})
        elif kind == ScenarioKind.MISSING_COLUMN:
            _require(frame, kind, params["column"])
            frame = frame.drop(columns=params["column"])
        elif kind == ScenarioKind.DUPLICATE_ROWS:
            copies = frame.iloc[_pick(rng, np.arange(rows), params["fraction"], rows)]
            frame = pd.concat([frame, copies], ignore_index=True)
        elif kind == ScenarioKind.EMPTY_PARTITION:
            frame = frame.iloc[:0].reset_index(drop=True)
    return frame


def _stamp(day: dt.date) -> str:
    """The date (or date and hour) in generated ids, so the ids of two partitions never collide."""
    return f"{day:%Y%m%d%H}" if isinstance(day, dt.datetime) else f"{day:%Y%m%d}"


def _at_hour(day: dt.date, hour: int | None) -> dt.date:
    """The day, or the start of its ``hour`` (0-23) for an hourly partition."""
    if hour is None:
        return day
    if isinstance(hour, bool) or not isinstance(hour, int) or not 0 <= hour <= 23:
        raise ValueError(f"hour must be an int from 0 to 23, got {hour!r}")
    return dt.datetime.combine(day, dt.time(hour))


def generate_partition(
    dataset: str,
    day: dt.date,
    *,
    rows: int,
    seed: int = 0,
    scenarios: Sequence[Scenario] = (),
    hour: int | None = None,
) -> pd.DataFrame | None:
    """One day's partition of ``dataset`` (with ``hour``: that hour's), or ``None`` when a
    ``missing_partition`` scenario is active. Scenarios apply by date, to every hour of their days.

    ``rows`` is the size before scenarios: ``duplicate_rows`` adds rows, ``empty_partition`` removes all.
    """
    spec, day, rows, seed = _check_call(dataset, day, rows, seed)
    day = _at_hour(day, hour)
    plan = _plan(spec, day, scenarios)
    if plan.of(ScenarioKind.MISSING_PARTITION):
        return None
    return _corrupt(_clean_frame(spec, day, rows, seed, plan), spec, plan, seed, day)


def generate_labels(
    dataset: str,
    arrival: dt.date,
    *,
    rows: int,
    seed: int = 0,
    scenarios: Sequence[Scenario] = (),
    delay_days: int = 2,
    coverage: float = 1.0,
    unmatched_rows: int = 0,
    hour: int | None = None,
) -> pd.DataFrame:
    """The ground truth that arrives on ``arrival``: the labels of the events of ``arrival - delay_days``.

    Columns: the dataset's id column, ``event_date`` and its target. The labels come from the source
    system's clean records (a broken feature delivery does not break the label feed), so events whose
    batch was quarantined or never scored arrive too and find no prediction. ``coverage`` keeps that
    share of the events (a fixed-seed draw); ``unmatched_rows`` adds labels of ids that were never
    scored. Deterministic in all its arguments.
    """
    spec, arrival, rows, seed = _check_call(dataset, arrival, rows, seed)
    arrival = _at_hour(arrival, hour)
    if delay_days < 0 or not 0.0 <= coverage <= 1.0 or unmatched_rows < 0:
        raise ValueError(
            f"labels: delay_days {delay_days} must be >= 0, coverage {coverage} in [0, 1], "
            f"unmatched_rows {unmatched_rows} >= 0"
        )
    day = arrival - dt.timedelta(days=delay_days)
    plan = _plan(spec, day, [s for s in scenarios if s.kind in _DISTRIBUTION_KINDS])
    events = _clean_frame(spec, day, rows, seed, plan)[[spec.id_column, TIMESTAMP_COLUMN, spec.target]]
    keep = _rng(seed, spec, day, "labels:coverage").random(len(events)) < coverage
    events = events[keep]
    if unmatched_rows:
        stray = _rng(seed, spec, day, "labels:unmatched")
        extra = pd.DataFrame(
            {
                spec.id_column: pd.Series(_ids(f"X{_stamp(day)}-", unmatched_rows), dtype="str"),
                TIMESTAMP_COLUMN: np.full(unmatched_rows, np.datetime64(day.isoformat(), "ns")),
                spec.target: events[spec.target]
                .sample(n=unmatched_rows, replace=True, random_state=int(stray.integers(2**31)))
                .to_numpy()
                if len(events)
                else np.zeros(unmatched_rows, dtype=events[spec.target].dtype),
            }
        )
        events = pd.concat([events, extra], ignore_index=True)
    return events.reset_index(drop=True)


#: Scenarios that change what the source system holds (and so the labels); the others only corrupt
#: the feature delivery.
_DISTRIBUTION_KINDS = frozenset({ScenarioKind.COVARIATE_DRIFT, ScenarioKind.CONCEPT_DRIFT})


FORMATS = (".parquet", ".csv")


def _format(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise ValueError(f"cannot tell the file format of {str(path)!r}: use a {' or '.join(FORMATS)} suffix")
    return suffix


def write_partition(df: pd.DataFrame, path: str | os.PathLike) -> str:
    """Write ``df`` so readers never see a half-written file: temp file beside it, then ``os.replace``."""
    target = Path(path)
    suffix = _format(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
    try:
        if suffix == ".parquet":
            df.to_parquet(temporary, index=False)
        else:
            df.to_csv(temporary, index=False)
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)
    return str(target)
