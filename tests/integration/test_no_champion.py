"""Before any champion exists, scoring and monitoring have nothing to do: their runs end ``skipped``
with the reason in the task log, never ``failed``."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import dag_test, small_churn, write_models

pytestmark = pytest.mark.integration

REASON = "has no champion yet (mloops.churn@champion is not set)"


@pytest.fixture
def models(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mloops_home: Path, airflow_db: Path) -> Path:
    directory = write_models(tmp_path / "models", churn=small_churn())
    monkeypatch.setenv("MLOOPS_MODELS_DIR", str(directory))
    return directory


def test_scoring_before_any_champion_skips_with_the_reason(
    models: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    dr, states = dag_test("mloops_score_churn", "2026-01-02", hour=6)
    assert states == {"validate_batch": "success", "score_batch": "skipped"}, states
    assert dr.state == "success"
    out, err = capfd.readouterr()
    assert REASON in out + err


def test_monitoring_before_any_champion_skips_with_the_reason(
    models: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    dr, states = dag_test("mloops_monitor_churn", "2026-01-02", hour=6)
    assert states == {"check_drift": "skipped", "trigger_retraining": "skipped"}, states
    out, err = capfd.readouterr()
    assert REASON in out + err
