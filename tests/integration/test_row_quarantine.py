"""Row-level quarantine end to end (issue 13): a night with 3 % bad rows is trained on its 97 % while
the 3 % are quarantined row by row with their reasons; 10 % bad rows (over the allowed share)
quarantine the batch whole. Real GX, the real training DAG (``dag.test()``) and a real MLflow store."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path

import pandas as pd
import pytest

from tests.helpers import dag_test, small_churn, write_models

pytestmark = pytest.mark.integration

ROWS = 600
GOOD_DAY, BAD_DAY, WORSE_DAY = "2026-01-02", "2026-01-03", "2026-01-04"


def _config(**quality: object) -> dict:
    # monthly_charges (0..500): half the picked values go negative, half 100x (>500 for any charge >5).
    data = small_churn(
        rows_per_day=ROWS,
        scenarios=[
            {
                "kind": "out_of_range",
                "start": BAD_DAY,
                "end": BAD_DAY,
                "params": {"column": "monthly_charges", "fraction": 0.03},
            },
            {
                "kind": "out_of_range",
                "start": WORSE_DAY,
                "end": WORSE_DAY,
                "params": {"column": "monthly_charges", "fraction": 0.10},
            },
        ],
    )
    data["quality"].update(quality)
    return data


@pytest.fixture
def models(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mloops_home: Path, airflow_db: Path) -> Path:
    config = _config(on_failure="quarantine_rows", max_bad_row_share=0.05)
    directory = write_models(tmp_path / "models", churn=config)
    monkeypatch.setenv("MLOOPS_MODELS_DIR", str(directory))
    return directory


def _context(models: Path, day: str):
    from mloops.config_files import load_model_config
    from mloops.settings import get_settings
    from mloops.stages.layout import RunContext

    return RunContext(load_model_config(models / "churn.yaml"), dt.date.fromisoformat(day), get_settings())


def test_three_percent_bad_rows_are_quarantined_and_the_rest_trained_on(
    models: Path, mloops_home: Path
) -> None:
    from mloops import quality, store
    from mloops.adapters.mlflow_adapter import client
    from mloops.contracts import Use
    from mloops.settings import get_settings
    from mloops.stages import score, validate

    dr, states = dag_test("mloops_train_churn", BAD_DAY)
    states.pop("approve_promotion")
    assert set(states.values()) == {"success"}, states

    raw = pd.read_parquet(mloops_home / f"data/raw/churn/dt={BAD_DAY}/part.parquet")
    expected_bad = sorted(
        int(i) for i in raw.index[(raw["monthly_charges"] < 0) | (raw["monthly_charges"] > 500)]
    )
    assert len(expected_bad) == 18, "3 % of 600 rows out of range"

    verdict = json.loads((mloops_home / f"data/staged/churn/dt={BAD_DAY}/verdict.json").read_text())
    assert verdict["status"] == "passed_with_quarantined_rows"
    assert (verdict["rows"], verdict["rows_kept"], verdict["rows_quarantined"]) == (ROWS, ROWS - 18, 18)
    assert verdict["row_reasons"] == {"expect_column_values_to_be_between(monthly_charges)": 18}
    assert verdict["bad_row_share"] == 0.03 and verdict["max_bad_row_share"] == 0.05

    quarantine = mloops_home / f"data/quarantine/churn/dt={BAD_DAY}"
    assert sorted(p.name for p in quarantine.iterdir()) == [
        "failures.txt",
        "part.parquet",
        "rows.parquet",
        "validation_result.json",
    ]
    original = mloops_home / f"data/raw/churn/dt={BAD_DAY}/part.parquet"
    assert (
        hashlib.sha256(original.read_bytes()).digest()
        == hashlib.sha256((quarantine / "part.parquet").read_bytes()).digest()
    ), "the original file is kept byte for byte"
    bad = pd.read_parquet(quarantine / "rows.parquet")
    kept = pd.read_parquet(mloops_home / f"data/staged/churn/dt={BAD_DAY}/data.parquet")
    assert len(kept) + len(bad) == len(raw)
    assert bad[quality.ROW_COLUMN].tolist() == expected_bad
    assert set(bad["customer_id"]) == set(raw["customer_id"].iloc[expected_bad])
    assert not set(bad["customer_id"]) & set(kept["customer_id"])
    for value, reason in zip(bad["monthly_charges"], bad[quality.REASON_COLUMN], strict=True):
        assert reason == f"expect_column_values_to_be_between(monthly_charges): monthly_charges={value!r}"
    assert kept["monthly_charges"].between(0, 500).all()
    report = (quarantine / "failures.txt").read_text()
    assert "expect_column_values_to_be_between(monthly_charges): observed 18 of 600 rows" in report

    # Trained on the window's two partitions: 600 clean rows plus the 582 kept ones.
    mlflow = client(get_settings())
    champion = mlflow.get_model_version_by_alias("mloops.churn", "champion")
    run = mlflow.get_run(champion.run_id)
    assert run.data.metrics["rows_train"] + run.data.metrics["rows_holdout"] == ROWS + ROWS - 18
    assert json.loads(run.data.tags["mloops.validation"]) == {
        GOOD_DAY: "passed",
        BAD_DAY: "passed_with_quarantined_rows",
    }
    assert json.loads(run.data.tags["mloops.quarantined_rows"]) == {BAD_DAY: 18}

    (event,) = store.read_events(get_settings().metrics_db_uri, model="churn", kind="rows_quarantined")
    assert "18 of 600 rows (3.00%, at most 5.00% allowed)" in event["message"]
    assert event["partition"] is not None and str(event["partition"])[:10] == BAD_DAY

    # Re-validating the date overwrites, never duplicates.
    ctx = _context(models, BAD_DAY)
    again = validate.validate_batch(ctx)
    assert (again.status, again.rows_kept, again.rows_quarantined) == (
        "passed_with_quarantined_rows",
        582,
        18,
    )
    assert pd.read_parquet(quarantine / "rows.parquet").equals(bad)
    assert pd.read_parquet(mloops_home / f"data/staged/churn/dt={BAD_DAY}/data.parquet").equals(kept)

    # Scoring: the same split on the scoring contract, and the champion scores the kept rows only.
    scoring = ctx.for_use(Use.SCORING)
    scored_batch = validate.validate_batch(scoring)
    assert (scored_batch.status, scored_batch.rows_quarantined) == ("passed_with_quarantined_rows", 18)
    assert (mloops_home / f"data/quarantine-scoring/churn/dt={BAD_DAY}/rows.parquet").exists()
    assert score.score_batch(scoring).rows == ROWS - 18


def test_ten_percent_bad_rows_quarantine_the_batch_whole(models: Path, mloops_home: Path) -> None:
    from mloops.errors import ValidationFailedError
    from mloops.stages import validate

    ctx = _context(models, WORSE_DAY)
    with pytest.raises(ValidationFailedError) as caught:
        validate.validate_batch(ctx)
    message = str(caught.value)
    assert "The batch was quarantined whole: 60 of 600 rows (10.00%) failed row-level expectations" in message
    assert "more than quality.max_bad_row_share 5.00%" in message
    quarantine = mloops_home / f"data/quarantine/churn/dt={WORSE_DAY}"
    assert sorted(p.name for p in quarantine.iterdir()) == [
        "failures.txt",
        "part.parquet",
        "validation_result.json",
    ]
    assert not (mloops_home / f"data/staged/churn/dt={WORSE_DAY}/data.parquet").exists()
    verdict = json.loads((mloops_home / f"data/staged/churn/dt={WORSE_DAY}/verdict.json").read_text())
    assert verdict["status"] == "quarantined"
    assert caught.value.result["status"] == "quarantined"


def test_table_level_failure_on_the_kept_rows_quarantines_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mloops_home: Path
) -> None:
    """Within the share, but too few rows remain for ``quality.min_rows``: the batch is not used."""
    from mloops.errors import ValidationFailedError
    from mloops.stages import validate

    directory = write_models(
        tmp_path / "models", churn=_config(on_failure="quarantine_rows", max_bad_row_share=0.05, min_rows=590)
    )
    monkeypatch.setenv("MLOOPS_MODELS_DIR", str(directory))
    with pytest.raises(
        ValidationFailedError, match=r"table-level expectations fail on the 582 rows"
    ) as caught:
        validate.validate_batch(_context(directory, BAD_DAY))
    assert "expect_table_row_count_to_be_between" in str(caught.value)
    assert not (mloops_home / f"data/quarantine/churn/dt={BAD_DAY}/rows.parquet").exists()


def test_default_mode_still_quarantines_the_batch_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mloops_home: Path
) -> None:
    from mloops.errors import ValidationFailedError
    from mloops.stages import validate

    directory = write_models(tmp_path / "models", churn=_config())
    monkeypatch.setenv("MLOOPS_MODELS_DIR", str(directory))
    with pytest.raises(ValidationFailedError) as caught:
        validate.validate_batch(_context(directory, BAD_DAY))
    assert "quarantined whole" not in str(caught.value)
    assert "expect_column_values_to_be_between(monthly_charges): observed 18 of 600" in str(caught.value)
