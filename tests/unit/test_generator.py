"""Unit tests of the example data generator and its CLI (package ``mloops_examples``; no Airflow)."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mloops.config import GeneratorSource
from mloops.contracts import ScenarioKind
from mloops.data.sources import to_generator_scenarios
from mloops_examples import cli
from mloops_examples import generator as g
from mloops_examples.generator import Scenario

DAY = dt.date(2026, 1, 15)
PLUGINS = Path(__file__).resolve().parents[2] / "plugins"


# The columns the example configs in include/models/ are written against.
SCHEMAS = {
    "churn": {
        "id_column": "customer_id",
        "target": "churned",
        "numeric": [
            "tenure_months",
            "monthly_charges",
            "total_charges",
            "support_calls",
            "age",
            "num_products",
        ],
        "categorical": ["contract_type", "payment_method", "region", "has_partner"],
    },
    "house_prices": {
        "id_column": "house_id",
        "target": "price",
        "numeric": [
            "sqft",
            "bedrooms",
            "bathrooms",
            "year_built",
            "lot_size",
            "distance_to_center_km",
            "garage_spaces",
        ],
        "categorical": ["neighborhood", "condition", "heating"],
    },
}


def columns_of(dataset: str) -> list[str]:
    s = SCHEMAS[dataset]
    return [s["id_column"], "event_date", *s["numeric"], *s["categorical"], s["target"]]


def on(kind: str, **params: object) -> Scenario:
    return Scenario(kind, DAY, DAY, params)


@pytest.mark.unit
@pytest.mark.parametrize("dataset", g.DATASETS)
def test_schema_and_dtypes(dataset: str) -> None:
    schema = SCHEMAS[dataset]
    df = g.generate_partition(dataset, DAY, rows=500, seed=3)
    assert list(df.columns) == columns_of(dataset)
    assert df[schema["id_column"]].dtype == "str"
    assert df[schema["id_column"]].is_unique
    assert df["event_date"].dtype == "datetime64[ns]"
    assert (df["event_date"] == pd.Timestamp(DAY)).all()
    for name in schema["numeric"]:
        assert pd.api.types.is_numeric_dtype(df[name]), name
    for name in schema["categorical"]:
        assert df[name].dtype == "str", name
        assert not isinstance(df[name].dtype, pd.CategoricalDtype)
    assert df[schema["target"]].notna().all()


@pytest.mark.unit
def test_dataset_specific_columns() -> None:
    churn = g.generate_partition("churn", DAY, rows=2000)
    assert churn["customer_id"].iloc[12] == "C20260115-0000012"
    assert churn["churned"].dtype == "int64" and set(churn["churned"].unique()) == {0, 1}
    assert 0.2 <= churn["churned"].mean() <= 0.35
    assert churn["tenure_months"].between(0, 72).all() and (churn["tenure_months"] % 1 == 0).all()
    assert churn["monthly_charges"].between(18, 120).all()
    assert churn["support_calls"].between(0, 10).all() and churn["support_calls"].dtype == "int64"
    assert churn["num_products"].between(1, 5).all()
    assert churn["age"].dropna().between(18, 90).all()
    assert set(churn["contract_type"]) == {"month-to-month", "one-year", "two-year"}
    assert set(churn["payment_method"].dropna()) == {
        "card",
        "bank_transfer",
        "electronic_check",
        "mailed_check",
    }
    assert set(churn["region"]) == {"north", "south", "east", "west"}
    assert set(churn["has_partner"]) == {"yes", "no"}

    house = g.generate_partition("house_prices", DAY, rows=2000)
    assert house["house_id"].iloc[0] == "H20260115-0000000"
    assert house["price"].dtype == "float64" and house["price"].between(50_000, 2_000_000).all()
    assert house["sqft"].between(400, 6000).all()
    assert house["bedrooms"].between(1, 6).all() and house["bedrooms"].dtype == "int64"
    assert house["bathrooms"].between(1, 4).all() and (house["bathrooms"] * 2 % 1 == 0).all()
    assert house["year_built"].between(1900, 2025).all()
    assert house["distance_to_center_km"].between(0, 50).all()
    assert house["garage_spaces"].between(0, 3).all()
    assert house["neighborhood"].nunique() == 6
    assert set(house["condition"]) == {"poor", "fair", "good", "excellent"}
    assert set(house["heating"].dropna()) == {"gas", "electric", "heat_pump"}


@pytest.mark.unit
@pytest.mark.parametrize("dataset", g.DATASETS)
def test_deterministic_per_seed_and_day(dataset: str) -> None:
    scenarios = [on("covariate_drift"), on("null_burst"), on("duplicate_rows")]
    first = g.generate_partition(dataset, DAY, rows=800, seed=7, scenarios=scenarios)
    again = g.generate_partition(dataset, DAY, rows=800, seed=7, scenarios=scenarios)
    pd.testing.assert_frame_equal(first, again)
    base = g.generate_partition(dataset, DAY, rows=800, seed=7)
    next_day = g.generate_partition(dataset, DAY + dt.timedelta(days=1), rows=800, seed=7)
    other_seed = g.generate_partition(dataset, DAY, rows=800, seed=8)
    numeric = SCHEMAS[dataset]["numeric"][0]
    assert not np.array_equal(base[numeric].to_numpy(), next_day[numeric].to_numpy())
    assert not np.array_equal(base[numeric].to_numpy(), other_seed[numeric].to_numpy())


@pytest.mark.unit
@pytest.mark.parametrize("rows", [0, 1, 357])
def test_row_counts(rows: int) -> None:
    for dataset in g.DATASETS:
        df = g.generate_partition(dataset, DAY, rows=rows)
        assert len(df) == rows
        assert list(df.columns) == columns_of(dataset)


@pytest.mark.unit
def test_baseline_has_a_few_nulls() -> None:
    churn = g.generate_partition("churn", DAY, rows=5000)
    for column in ("total_charges", "age", "payment_method"):
        assert 0.005 <= churn[column].isna().mean() <= 0.04, column
    house = g.generate_partition("house_prices", DAY, rows=5000)
    for column in ("lot_size", "heating"):
        assert 0.005 <= house[column].isna().mean() <= 0.04, column
    assert churn["churned"].notna().all() and house["price"].notna().all()


@pytest.mark.unit
def test_scenarios_apply_only_on_their_days() -> None:
    later = Scenario("null_burst", DAY + dt.timedelta(days=1), DAY + dt.timedelta(days=3))
    assert not later.active_on(DAY) and later.active_on(DAY + dt.timedelta(days=3))
    pd.testing.assert_frame_equal(
        g.generate_partition("churn", DAY, rows=300, scenarios=[later]),
        g.generate_partition("churn", DAY, rows=300),
    )


@pytest.mark.unit
def test_covariate_drift_shifts_features_and_keeps_the_concept() -> None:
    base = g.generate_partition("churn", DAY, rows=4000)
    drifted = g.generate_partition("churn", DAY, rows=4000, scenarios=[on("covariate_drift")])
    assert drifted["monthly_charges"].mean() - base["monthly_charges"].mean() > 15
    assert drifted["support_calls"].mean() - base["support_calls"].mean() > 0.8
    share = (drifted["contract_type"] == "month-to-month").mean()
    assert share - (base["contract_type"] == "month-to-month").mean() > 0.15
    # same concept on drifted inputs: more churn overall, still driven by the contract type
    assert drifted["churned"].mean() > base["churned"].mean() + 0.1
    by_contract = drifted.groupby("contract_type")["churned"].mean()
    assert by_contract["month-to-month"] - by_contract["two-year"] > 0.3

    house = g.generate_partition("house_prices", DAY, rows=4000)
    smaller = on("covariate_drift", columns=["sqft"], shift=-0.5, categorical_column=None)
    moved = g.generate_partition("house_prices", DAY, rows=4000, scenarios=[smaller])
    assert house["sqft"].mean() - moved["sqft"].mean() > 250
    assert moved["neighborhood"].value_counts().equals(house["neighborhood"].value_counts())
    suburbs = g.generate_partition(
        "house_prices", DAY, rows=4000, scenarios=[on("covariate_drift", columns=[])]
    )
    assert (suburbs["neighborhood"] == "suburbs").mean() > (house["neighborhood"] == "suburbs").mean() + 0.15


@pytest.mark.unit
def test_concept_drift_keeps_features_and_changes_the_target() -> None:
    base = g.generate_partition("churn", DAY, rows=5000)
    drifted = g.generate_partition("churn", DAY, rows=5000, scenarios=[on("concept_drift")])
    features = [c for c in base.columns if c != "churned"]
    pd.testing.assert_frame_equal(base[features], drifted[features])
    gap = base.groupby("contract_type")["churned"].mean()
    new_gap = drifted.groupby("contract_type")["churned"].mean()
    assert gap["month-to-month"] - gap["two-year"] > 0.2
    assert abs(new_gap["month-to-month"] - new_gap["two-year"]) < 0.1

    house = g.generate_partition("house_prices", DAY, rows=3000)
    repriced = g.generate_partition(
        "house_prices", DAY, rows=3000, scenarios=[on("concept_drift", strength=0.5)]
    )
    pd.testing.assert_frame_equal(house.drop(columns="price"), repriced.drop(columns="price"))
    ratio = (repriced["price"] / house["price"]).groupby(house["neighborhood"]).median()
    assert ratio["suburbs"] > 1.2 and ratio["downtown"] < 0.85


@pytest.mark.unit
def test_null_burst() -> None:
    df = g.generate_partition("churn", DAY, rows=1000, scenarios=[on("null_burst")])
    assert df["tenure_months"].isna().sum() == 500
    text = g.generate_partition(
        "churn", DAY, rows=1000, scenarios=[on("null_burst", column="region", fraction=0.1)]
    )
    assert text["region"].isna().sum() == 100 and text["region"].dtype == "str"


@pytest.mark.unit
def test_out_of_range() -> None:
    df = g.generate_partition("churn", DAY, rows=1000, scenarios=[on("out_of_range")])
    bad = ~df["monthly_charges"].between(18, 120)
    assert bad.sum() == 200
    assert (df["monthly_charges"] < 0).sum() == 100 and (df["monthly_charges"] > 1000).sum() == 100
    house = g.generate_partition(
        "house_prices", DAY, rows=1000, scenarios=[on("out_of_range", column="condition", fraction=0.05)]
    )
    assert (house["condition"] == g.OUT_OF_RANGE_CATEGORY).sum() == 50
    years = g.generate_partition(
        "house_prices", DAY, rows=1000, scenarios=[on("out_of_range", column="year_built")]
    )
    assert years["year_built"].dtype == "int64" and (~years["year_built"].between(1900, 2025)).sum() == 200


@pytest.mark.unit
def test_renamed_and_missing_columns() -> None:
    renamed = g.generate_partition("churn", DAY, rows=100, scenarios=[on("renamed_column")])
    assert "monthly_charges" not in renamed and "monthly_charges_v2" in renamed and "churned" in renamed
    custom = g.generate_partition(
        "house_prices", DAY, rows=100, scenarios=[on("renamed_column", column="sqft", new_name="area")]
    )
    assert "area" in custom and "sqft" not in custom and "price" in custom
    dropped = g.generate_partition("churn", DAY, rows=100, scenarios=[on("missing_column", column="region")])
    assert list(dropped.columns) == [c for c in columns_of("churn") if c != "region"]
    no_target = g.generate_partition(
        "churn", DAY, rows=100, scenarios=[on("missing_column", column="churned")]
    )
    assert "churned" not in no_target


@pytest.mark.unit
def test_duplicate_rows() -> None:
    df = g.generate_partition("churn", DAY, rows=1000, scenarios=[on("duplicate_rows")])
    assert len(df) == 1300
    assert df["customer_id"].duplicated().sum() == 300
    assert df.duplicated().sum() == 300


@pytest.mark.unit
@pytest.mark.parametrize("dataset", g.DATASETS)
def test_empty_and_missing_partitions(dataset: str) -> None:
    base = g.generate_partition(dataset, DAY, rows=50)
    empty = g.generate_partition(dataset, DAY, rows=50, scenarios=[on("empty_partition")])
    assert len(empty) == 0
    pd.testing.assert_series_equal(empty.dtypes, base.dtypes)
    assert g.generate_partition(dataset, DAY, rows=50, scenarios=[on("missing_partition")]) is None


@pytest.mark.unit
@pytest.mark.parametrize(
    ("dataset", "scenario", "message"),
    [
        ("churn", on("null_burst", column="nope"), "'column'"),
        ("churn", on("covariate_drift", columns=["contract_type"]), "'columns'"),
        ("churn", on("covariate_drift", towards="gold"), "'towards'"),
        ("house_prices", on("covariate_drift", categorical_column="contract_type"), "'categorical_column'"),
        ("house_prices", on("renamed_column", column="sqft", new_name="price"), "'new_name'"),
        ("house_prices", on("out_of_range", column="house_id"), "'column'"),
    ],
)
def test_bad_scenario_params_for_the_dataset(dataset: str, scenario: Scenario, message: str) -> None:
    with pytest.raises(ValueError, match=scenario.kind) as info:
        g.generate_partition(dataset, DAY, rows=10, scenarios=[scenario])
    assert message in str(info.value)


@pytest.mark.unit
def test_bad_scenarios_and_calls() -> None:
    with pytest.raises(ValueError, match="unknown scenario kind 'drift'"):
        Scenario("drift", DAY, DAY)
    with pytest.raises(ValueError, match="duplicate_rows.*'fraktion'"):
        Scenario("duplicate_rows", DAY, DAY, {"fraktion": 0.1})
    with pytest.raises(ValueError, match="null_burst.*'fraction'"):
        Scenario("null_burst", DAY, DAY, {"fraction": 1.5})
    with pytest.raises(ValueError, match="concept_drift.*'strength'"):
        Scenario("concept_drift", DAY, DAY, {"strength": -1})
    with pytest.raises(ValueError, match="covariate_drift.*'shift'"):
        Scenario("covariate_drift", DAY, DAY, {"shift": "big"})
    with pytest.raises(ValueError, match="before start"):
        Scenario("null_burst", DAY, DAY - dt.timedelta(days=1))
    with pytest.raises(ValueError, match="unknown dataset 'iris'.*churn, house_prices"):
        g.generate_partition("iris", DAY, rows=10)
    with pytest.raises(ValueError, match="rows"):
        g.generate_partition("churn", DAY, rows=-1)
    # an inactive but invalid scenario still fails, so a bad config surfaces on any day
    inactive = Scenario(
        "null_burst", DAY + dt.timedelta(days=9), DAY + dt.timedelta(days=9), {"column": "nope"}
    )
    with pytest.raises(ValueError, match="null_burst"):
        g.generate_partition("churn", DAY, rows=10, scenarios=[inactive])


@pytest.mark.unit
def test_a_config_scenario_reaches_the_generator_as_its_kind() -> None:
    assert set(g.PARAM_KINDS) == set(ScenarioKind)
    source = GeneratorSource.model_validate(
        {
            "kind": "generator",
            "dataset": "churn",
            "scenarios": [
                {"kind": "null_burst", "start": DAY, "end": DAY, "params": {"column": "age", "fraction": 0.5}}
            ],
        }
    )
    [scenario] = to_generator_scenarios(source.scenarios)
    assert scenario.kind is ScenarioKind.NULL_BURST
    frame = g.generate_partition("churn", DAY, rows=400, scenarios=[scenario])
    assert frame["age"].isna().mean() >= 0.5
    with pytest.raises(ValueError, match="Input should be 'covariate_drift'"):
        GeneratorSource.model_validate(
            {
                "kind": "generator",
                "dataset": "churn",
                "scenarios": [{"kind": "drift", "start": DAY, "end": DAY}],
            }
        )


@pytest.mark.unit
def test_partition_path() -> None:
    template = "{root}/raw/{dataset}/dt={ds}/part-{ds_nodash}.parquet"
    assert (
        cli.partition_path(template, DAY, root="/data", dataset="churn")
        == "/data/raw/churn/dt=2026-01-15/part-20260115.parquet"
    )
    with pytest.raises(ValueError, match="unknown field 'root'"):
        cli.partition_path(template, DAY, dataset="churn")


@pytest.mark.unit
@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_write_partition_round_trip(tmp_path: Path, suffix: str) -> None:
    df = g.generate_partition("churn", DAY, rows=300)
    path = tmp_path / "raw" / "churn" / "dt=2026-01-15" / f"part{suffix}"
    assert g.write_partition(df, path) == str(path)
    if suffix == ".parquet":
        back = pd.read_parquet(path)
    else:
        back = pd.read_csv(path, parse_dates=["event_date"])
        back["event_date"] = back["event_date"].astype("datetime64[ns]")
    pd.testing.assert_frame_equal(back, df)
    assert [p.name for p in path.parent.iterdir()] == [path.name]


@pytest.mark.unit
def test_write_partition_is_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "part.parquet"
    old = g.generate_partition("house_prices", DAY, rows=20)
    g.write_partition(old, path)

    def boom(self: pd.DataFrame, target: Path, **kwargs: object) -> None:
        Path(target).write_bytes(b"half a file")
        raise OSError("disk full")

    monkeypatch.setattr(pd.DataFrame, "to_parquet", boom)
    with pytest.raises(OSError, match="disk full"):
        g.write_partition(g.generate_partition("house_prices", DAY, rows=40), path)
    monkeypatch.undo()
    assert [p.name for p in tmp_path.iterdir()] == ["part.parquet"]
    pd.testing.assert_frame_equal(pd.read_parquet(path), old)
    with pytest.raises(ValueError, match="suffix"):
        g.write_partition(old, tmp_path / "part.json")


@pytest.mark.unit
def test_cli_writes_partitions(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = str(tmp_path / "raw" / "{dataset}" / "dt={ds}" / "part.parquet")
    code = cli.main(
        [
            "--dataset", "churn", "--start", "2026-01-01", "--end", "2026-01-04",
            "--rows", "120", "--seed", "7", "--out", out,
            "--scenario", "missing_partition:2026-01-02:2026-01-02",
            "--scenario", "duplicate_rows:2026-01-03:2026-01-03:fraction=0.5",
            "--scenario",
            "covariate_drift:2026-01-04:2026-01-04:columns=age+tenure_months,shift=2,categorical_column=none",
        ]
    )  # fmt: skip
    assert code == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[:2] for line in lines] == [
        ["2026-01-01", "120"], ["2026-01-02", "0"], ["2026-01-03", "180"], ["2026-01-04", "120"]
    ]  # fmt: skip
    assert lines[1].endswith("missing")
    written = sorted(p.parent.name for p in (tmp_path / "raw" / "churn").glob("*/part.parquet"))
    assert written == ["dt=2026-01-01", "dt=2026-01-03", "dt=2026-01-04"]
    first = pd.read_parquet(tmp_path / "raw" / "churn" / "dt=2026-01-01" / "part.parquet")
    pd.testing.assert_frame_equal(first, g.generate_partition("churn", dt.date(2026, 1, 1), rows=120, seed=7))


@pytest.mark.unit
@pytest.mark.parametrize(
    "extra",
    [
        ["--scenario", "null_burst:2026-01-01"],
        ["--scenario", "explode:2026-01-01:2026-01-02"],
        ["--scenario", "null_burst:2026-01-01:2026-01-02:fraction=lots"],
        ["--scenario", "null_burst:2026-01-01:2026-01-02:column=nope"],
        ["--end", "2025-12-01"],
        ["--dataset", "iris"],
        ["--rows", "many"],
    ],
)
def test_cli_rejects_bad_arguments(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str]
) -> None:
    argv = ["--dataset", "churn", "--start", "2026-01-01", "--out", str(tmp_path / "{ds}.csv"), *extra]
    assert cli.main(argv) == 2
    assert "error" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.unit
def test_cli_runs_as_a_module(tmp_path: Path) -> None:
    out = str(tmp_path / "{dataset}-{ds_nodash}.csv")
    args = ["--dataset", "house_prices", "--start", "2026-02-01", "--rows", "10", "--out", out]
    result = subprocess.run(
        [sys.executable, "-m", "mloops_examples", *args],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(PLUGINS), "PATH": ""},
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "house_prices-20260201.csv").exists()


@pytest.mark.unit
def test_churn_is_learnable() -> None:
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import roc_auc_score

    schema = SCHEMAS["churn"]
    features = schema["numeric"] + schema["categorical"]
    df = g.generate_partition("churn", DAY, rows=3000, seed=11)
    x = df[features].astype({c: "category" for c in schema["categorical"]})
    train, test = x.iloc[:2000], x.iloc[2000:]
    model = HistGradientBoostingClassifier(categorical_features="from_dtype", random_state=0)
    model.fit(train, df["churned"].iloc[:2000])
    assert roc_auc_score(df["churned"].iloc[2000:], model.predict_proba(test)[:, 1]) > 0.7


@pytest.mark.unit
def test_house_prices_are_learnable() -> None:
    from sklearn.ensemble import RandomForestRegressor
    from sklearn.metrics import r2_score

    schema = SCHEMAS["house_prices"]
    df = g.generate_partition("house_prices", DAY, rows=2000, seed=11)
    x = pd.get_dummies(df[schema["numeric"] + schema["categorical"]], columns=schema["categorical"]).fillna(
        -1
    )
    model = RandomForestRegressor(n_estimators=40, min_samples_leaf=3, random_state=0, n_jobs=2)
    model.fit(x.iloc[:1500], df["price"].iloc[:1500])
    assert r2_score(df["price"].iloc[1500:], model.predict(x.iloc[1500:])) > 0.65


@pytest.mark.unit
def test_large_partition() -> None:
    df = g.generate_partition("churn", DAY, rows=200_000)
    assert len(df) == 200_000
    assert df["customer_id"].is_unique
    assert df["customer_id"].iloc[-1] == "C20260115-0199999"
