"""Faults during promotion leave a consistent, retryable state (real MLflow store, real metrics store).

On main: with the metrics DB down during promotion the champion moved, the task failed, the retry
said "already champion" and no promotion event was ever recorded.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from airflow.sdk.exceptions import AirflowSkipException

from mloops.operators import (
    GXValidateBatchOperator,
    MLflowPromoteModelOperator,
    MLflowRegisterModelOperator,
    MLflowTestModelOperator,
    MLflowTrainModelOperator,
)
from tests.operators.test_operators import _execute, churn_models  # noqa: F401 - fixture

pytestmark = pytest.mark.faults


def _registered(store: dict) -> None:
    _execute(GXValidateBatchOperator(task_id="validate_batch", model="churn"), store)
    _execute(MLflowTrainModelOperator(task_id="train_model", model="churn"), store)
    _execute(MLflowTestModelOperator(task_id="test_model", model="churn"), store)
    _execute(MLflowRegisterModelOperator(task_id="register_model", model="churn"), store)


def test_metrics_store_down_during_promotion_then_retry_records_the_event(
    churn_models: Path,  # noqa: F811 - the imported fixture
    mloops_home: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from mloops import store as metrics
    from mloops.adapters import mlflow_adapter
    from mloops.settings import get_settings

    runs: dict = {}
    _registered(runs)
    good_uri = get_settings().metrics_db_uri
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the metrics DB folder should be")
    monkeypatch.setenv("MLOOPS_METRICS_DB_URI", f"sqlite:///{blocker / 'metrics.db'}")
    from mloops.errors import ServiceUnavailableError

    with pytest.raises(
        ServiceUnavailableError,
        match=r"metrics DB at sqlite:///\S+ cannot be reached while recording an event",
    ):
        _execute(MLflowPromoteModelOperator(task_id="promote_model", model="churn"), runs)
    client = mlflow_adapter.client(get_settings())
    assert (
        mlflow_adapter.version_by_alias(client, "mloops.churn", "champion").version == "1"
    )  # the move happened

    monkeypatch.setenv("MLOOPS_METRICS_DB_URI", good_uri)
    retried = _execute(MLflowPromoteModelOperator(task_id="promote_model", model="churn"), runs)
    assert (
        retried["action"] == "promote"
        and retried["champion"] == "1"
        and "recorded on retry" in retried["reason"]
    )
    assert len(metrics.read_events(good_uri, "churn", "model_promoted")) == 1
    with pytest.raises(AirflowSkipException, match="v1 is already champion"):
        _execute(MLflowPromoteModelOperator(task_id="promote_model", model="churn"), runs)
    assert len(metrics.read_events(good_uri, "churn", "model_promoted")) == 1, "recorded exactly once"


def test_alias_move_is_a_compare_and_set(churn_models: Path, mloops_home: Path) -> None:  # noqa: F811
    """A promotion that decided on a champion another writer has since moved changes nothing."""
    from mloops.adapters import mlflow_adapter
    from mloops.errors import RegistryError
    from mloops.settings import get_settings
    from mloops.stages.registry import move_champion

    runs: dict = {}
    _registered(runs)
    _execute(MLflowPromoteModelOperator(task_id="promote_model", model="churn"), runs)
    client = mlflow_adapter.client(get_settings())
    with pytest.raises(RegistryError, match=r"champion moved from vNone to v1 while this promotion of v1"):
        move_champion(client, "mloops.churn", expected=None, new="1")
    assert mlflow_adapter.version_by_alias(client, "mloops.churn", "previous") is None, "nothing was changed"
    assert mlflow_adapter.version_by_alias(client, "mloops.churn", "champion").version == "1"
