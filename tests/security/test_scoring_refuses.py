"""``score_batch`` refuses a champion mloops did not log: no payload runs, nothing is scored, an event
is stored.

On main a pickle "model" registered and moved to ``@champion`` ran its payload in the next
``score_batch`` (MLflow took the flavor from the artifact's own MLmodel file).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from airflow.sdk.exceptions import AirflowFailException

from mloops.operators import GXValidateBatchOperator, MLflowScoreBatchOperator
from tests.helpers import small_churn, write_models
from tests.operators.test_operators import _execute
from tests.security.test_model_integrity import Payload

pytestmark = pytest.mark.security


def test_pickle_champion_is_refused_by_score_batch(
    tmp_path: Path, mloops_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mlflow

    from mloops import store
    from mloops.adapters import mlflow_adapter
    from mloops.settings import get_settings

    monkeypatch.setenv("MLOOPS_MODELS_DIR", str(write_models(tmp_path / "models", churn=small_churn())))
    monkeypatch.setenv("MARKER", str(tmp_path / "marker"))
    _execute(GXValidateBatchOperator(task_id="validate_batch", model="churn", use="scoring"), {})

    settings = get_settings()
    client = mlflow_adapter.client(settings)
    experiment_id = mlflow_adapter.ensure_experiment(client, settings, "mloops/churn")
    with mlflow.start_run(experiment_id=experiment_id) as run:
        info = mlflow.sklearn.log_model(Payload(), name="model", serialization_format="cloudpickle")
    version = mlflow_adapter.register_version(
        client, "mloops.churn", info.model_uri, run.info.run_id, {}, info.model_id
    )
    mlflow_adapter.set_alias(client, "mloops.churn", "champion", version.version)

    with pytest.raises(AirflowFailException, match=rf"mloops.churn version {version.version} .*is refused"):
        _execute(MLflowScoreBatchOperator(task_id="score_batch", model="churn"), {})
    assert not (tmp_path / "marker").exists(), "the pickle payload ran"
    assert not list((mloops_home / "data").glob("predictions/churn/**/*.parquet")), (
        "the refused champion scored"
    )
    events = store.read_events(settings.metrics_db_uri, "churn", "model_refused")
    assert len(events) == 1 and f"version {version.version}" in events[0]["message"]
