"""Scoring data arrives unlabeled: the scoring contract does not require the target (issue 13).

Training runs on labeled deliveries; the night's scoring batch has no ``churned`` column at all. The
scoring DAG validates it with the scoring contract, the champion scores it, and the training
contract still refuses the same batch for training (it cannot learn from unlabeled rows).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest

from tests.helpers import dag_test, small_churn, write_models

pytestmark = pytest.mark.integration


@pytest.fixture
def models(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mloops_home: Path, airflow_db: Path) -> Path:
    from mloops_examples.generator import generate_partition

    config = small_churn()
    config["source"] = {"kind": "files", "path": "{data_root}/landing/churn/dt={ds}/part.parquet"}
    for offset in (2, 3, 4):
        day = dt.date(2026, 1, offset)
        frame = generate_partition("churn", day, rows=600, seed=7)
        if offset == 4:
            frame = frame.drop(columns=["churned"])
        path = mloops_home / "data" / "landing" / "churn" / f"dt={day}" / "part.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        frame.to_parquet(path, index=False)
    directory = write_models(tmp_path / "models", churn=config)
    monkeypatch.setenv("MLOOPS_MODELS_DIR", str(directory))
    return directory


def test_an_unlabeled_batch_is_scored_and_never_trained_on(models: Path, mloops_home: Path) -> None:
    _, states = dag_test("mloops_train_churn", "2026-01-03")
    assert states["promote_model"] == "success", states

    _, states = dag_test("mloops_score_churn", "2026-01-04", hour=6)
    assert states == {"validate_batch": "success", "score_batch": "success"}, states
    predictions = pd.read_parquet(mloops_home / "data/predictions/churn/dt=2026-01-04/predictions.parquet")
    assert len(predictions) == 600 and set(predictions["model_version"]) == {"1"}
    assert "churned" not in predictions.columns

    _, states = dag_test("mloops_train_churn", "2026-01-04")
    assert states["validate_batch"] == "failed" and states["train_model"] == "upstream_failed", states
    failures = (mloops_home / "data/quarantine/churn/dt=2026-01-04/failures.txt").read_text()
    assert "expect_column_to_exist(churned): observed column absent" in failures
