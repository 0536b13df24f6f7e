"""The shadow stage's registry state under re-runs and overlapping challengers (real MLflow store)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from tests.helpers import example_config, write_models

pytestmark = pytest.mark.faults


def test_a_newer_challenger_supersedes_the_one_in_shadow_and_reruns_keep_what_was_decided(
    tmp_path: Path, mloops_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mloops.adapters import mlflow_adapter
    from mloops.config_files import find_model_config
    from mloops.contracts import RegistrationResult
    from mloops.settings import get_settings
    from mloops.stages import registry
    from mloops.stages.layout import RunContext

    config = example_config("churn")
    config["promotion"] = {"policy": "shadow", "shadow_intervals": 2}
    models = write_models(tmp_path / "models", churn=config)
    monkeypatch.setenv("MLOOPS_MODELS_DIR", str(models))
    settings = get_settings()
    client = mlflow_adapter.client(settings)
    name = "mloops.churn"
    client.create_registered_model(name)
    for number, interval in ((1, "2026-01-02"), (2, "2026-01-04"), (3, "2026-01-06")):
        tags = {"mloops.data_interval_start": interval}
        if number == 2:
            tags["mloops.shadow.status"] = "shadowing"
        client.create_model_version(name, f"{tmp_path}/model-{number}", tags=tags)
    client.set_registered_model_alias(name, "champion", "1")
    client.set_registered_model_alias(name, "challenger", "3")
    ctx = RunContext(find_model_config("churn", models), dt.date(2026, 1, 6), settings)
    v3 = RegistrationResult(model="churn", registered_model=name, version="3", reused=False)

    entered = registry.promote_model(ctx, v3)
    assert (entered.action, entered.champion) == ("shadow", "1")
    tags = {v.version: v.tags for v in mlflow_adapter.versions(client, name)}
    assert tags["3"]["mloops.shadow.status"] == "shadowing"
    assert json.loads(tags["3"]["mloops.shadow"])["since"] == "2026-01-06"
    assert tags["2"]["mloops.shadow.status"] == "superseded"
    assert "superseded by v3" in json.loads(tags["2"]["mloops.shadow"])["reason"]

    again = registry.promote_model(ctx, v3)  # a re-run of the training interval
    assert again.action == "keep" and "already shadowing" in again.reason
    client.set_model_version_tag(name, "3", "mloops.shadow.status", "retired")
    retired = registry.promote_model(ctx, v3)
    assert retired.action == "keep" and "already retired" in retired.reason
    assert mlflow_adapter.version_by_alias(client, name, "champion").version == "1"
