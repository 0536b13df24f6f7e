"""The shadow stage's registry state under re-runs and overlapping challengers (real MLflow store)."""

from __future__ import annotations

import datetime as dt
import http.server
import json
import threading
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


class _Hook(http.server.BaseHTTPRequestHandler):
    """A webhook notifier: keeps what it is sent."""

    received: list = []

    def do_POST(self) -> None:  # noqa: N802 - http.server API
        self.received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args) -> None:
        return


class _TI:
    try_number = 1

    def xcom_push(self, key: str, value) -> None:
        return


class _Run:
    dag_id, run_id, run_type = "mloops_monitor_churn", "scheduled__2026-01-09T06:00:00+00:00", "scheduled"


def test_a_shadow_that_never_gets_labels_is_retired_at_its_limit_with_an_event_and_an_alert(
    tmp_path: Path, mloops_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The label feed delivers nothing for the challenger's shadow: decide_shadow waits (a skip) while it
    has been scored on fewer than shadow_max_intervals intervals, then retires it with the reason; the
    shadow_retired event is stored and sent to the notifier; the champion is untouched."""
    import pandas as pd
    from airflow.sdk.exceptions import AirflowSkipException

    from mloops import partitions, store
    from mloops.adapters import mlflow_adapter
    from mloops.config_files import find_model_config
    from mloops.operators.shadow import ShadowDecisionOperator
    from mloops.settings import get_settings
    from mloops.stages.layout import RunContext, shadow_predictions_path

    config = example_config("churn")
    config["promotion"] = {"policy": "shadow", "shadow_intervals": 2, "shadow_max_intervals": 3}
    models = write_models(tmp_path / "models", churn=config)
    monkeypatch.setenv("MLOOPS_MODELS_DIR", str(models))
    server = http.server.HTTPServer(("127.0.0.1", 0), _Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    hook = {"conn_type": "http", "host": "127.0.0.1", "port": server.server_port, "extra": {"endpoint": "/a"}}
    monkeypatch.setenv("AIRFLOW_CONN_MLOOPS_WEBHOOK", json.dumps(hook))
    monkeypatch.setenv("MLOOPS_ALERT_CONN_IDS", "mloops_webhook")
    settings = get_settings()
    client = mlflow_adapter.client(settings)
    name = "mloops.churn"
    client.create_registered_model(name)
    for number in (1, 2):
        client.create_model_version(name, f"{tmp_path}/model-{number}", tags={"mloops.test_status": "passed"})
    client.set_registered_model_alias(name, "champion", "1")
    client.set_registered_model_alias(name, "challenger", "2")
    state = {"since": "2026-01-05", "champion": "1", "intervals": 2}
    client.set_model_version_tag(name, "2", "mloops.shadow.status", "shadowing")
    client.set_model_version_tag(name, "2", "mloops.shadow", json.dumps(state))
    ctx = RunContext(find_model_config("churn", models), dt.date(2026, 1, 5), settings)
    shadowed = pd.DataFrame({"customer_id": ["a", "b"], "prediction": [0.2, 0.7], "model_version": "2"})

    def decide(day: str) -> dict:
        task = ShadowDecisionOperator(task_id="decide_shadow", model="churn", partition_date=day)
        return task.execute({"ti": _TI(), "dag_run": _Run(), "params": {}})

    try:
        for day in ("2026-01-05", "2026-01-06", "2026-01-07"):  # scored in shadow; no label ever comes
            partitions.write_parquet(
                shadowed, shadow_predictions_path(ctx.at(dt.date.fromisoformat(day)), "2")
            )
            if day != "2026-01-07":
                with pytest.raises(AirflowSkipException, match=r"labels cover 0 of the 2 intervals needed"):
                    decide(day)
        result = decide("2026-01-07")
    finally:
        server.shutdown()
    assert result["action"] == "retire"
    reason = (
        "v2 retired without a decision: labels cover 0 of the 2 intervals needed (none yet) after 3 "
        "intervals scored in shadow (promotion.shadow_max_intervals: 3); champion v1 stays"
    )
    assert result["reason"] == reason
    tags = mlflow_adapter.get_version(client, name, "2").tags
    assert tags["mloops.shadow.status"] == "retired" and json.loads(tags["mloops.shadow"])["reason"] == reason
    assert json.loads(tags["mloops.shadow"])["intervals_scored"] == 3
    assert mlflow_adapter.version_by_alias(client, name, "champion").version == "1"
    (event,) = store.read_events(settings.metrics_db_uri, "churn", "shadow_retired")
    assert event["message"] == f"{reason} ({name})" and str(event["partition"]).startswith("2026-01-07")
    (alert,) = [a for a in _Hook.received if a["kind"] == "shadow_retired"]
    assert alert["message"] == event["message"] and alert["model"] == "churn"
    card = partitions.from_uri(tags["mloops.model_card"]).read_text()
    assert "retired after its shadow" in card and "retired without a decision" in card
