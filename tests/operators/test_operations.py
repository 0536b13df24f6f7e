"""Operations operators: parameter checks, audited registry actions, the approval step, alerts."""

from __future__ import annotations

import datetime as dt
import http.server
import json
import threading
from pathlib import Path

import pytest
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from mloops import store
from mloops.contracts import TestResult
from mloops.operators import CheckRunParamsOperator, MLflowRegistryActionOperator
from mloops.operators.approval import approval_operator_class
from mloops.settings import get_settings
from mloops.stages import registry, test, train, validate
from mloops.stages.layout import RunContext
from tests.helpers import small_churn, write_models
from tests.operators.test_operators import FakeRun, FakeTI

pytestmark = pytest.mark.operators


class UserRun(FakeRun):
    dag_id, run_id, triggering_user_name = "mloops_registry_ops", "manual__ops", "alice"


def _context(params: dict | None = None, task_id: str = "t", store_: dict | None = None) -> dict:
    return {
        "ti": FakeTI({} if store_ is None else store_, task_id),
        "dag_run": UserRun(),
        "params": params or {},
        "data_interval_start": None,
        "logical_date": None,
    }


@pytest.fixture
def models(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mloops_home: Path) -> Path:
    directory = write_models(tmp_path / "models", churn=small_churn())
    monkeypatch.setenv("MLOOPS_MODELS_DIR", str(directory))
    return directory


@pytest.fixture
def three_versions(models: Path) -> None:
    """Versions 1-3 of mloops.churn: 1 and 2 promoted in turn, 3 registered but failed its tests."""
    from mloops.config_files import find_model_config

    settings, config = get_settings(), find_model_config("churn", models)
    for day in (dt.date(2026, 1, 2), dt.date(2026, 1, 3)):
        ctx = RunContext(config, day, settings)
        validate.validate_batch(ctx)
        trained = train.train_model(ctx)
        tested = test.test_model(ctx, trained)
        registry.promote_model(ctx, registry.register_model(ctx, trained, tested))
    ctx = RunContext(config, dt.date(2026, 1, 4), settings)
    validate.validate_batch(ctx)
    trained = train.train_model(ctx, overrides={"max_iter": 2})
    failed = TestResult(
        model="churn",
        partition=ctx.ds,
        passed=False,
        report_uri="file:///r.json",
        checks={"threshold:roc_auc": False},
        metrics={},
    )
    registry.register_model(ctx, trained, failed)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (
            {"partition_date": "2025-06-01"},
            "partition_date: 2025-06-01 is before the model's schedule.start_date 2026-01-01",
        ),
        (
            {"estimator_overrides": {"max_depht": 3}},
            r"estimator_overrides: estimator sklearn.ensemble.HistGradientBoostingClassifier "
            r"does not accept parameter\(s\) \['max_depht'\]",
        ),
        ({"estimator_overrides": {"learning_rate": "fast"}}, "estimator_overrides: "),
        ({"promotion_mode": "yolo"}, "promotion_mode: 'yolo' is not one of auto, approval, none"),
    ],
)
def test_check_params_refuses_naming_the_parameter(models: Path, params: dict, message: str) -> None:
    with pytest.raises(AirflowFailException, match=message):
        CheckRunParamsOperator(task_id="check_params", model="churn").execute(_context(params))


def test_check_params_accepts_valid_params(models: Path) -> None:
    result = CheckRunParamsOperator(task_id="check_params", model="churn").execute(
        _context(
            {
                "partition_date": "2026-01-05",
                "estimator_overrides": {"max_iter": 10},
                "promotion_mode": "none",
            }
        )
    )
    assert result["estimator_overrides"] == {"max_iter": 10}


def _action(**kwargs) -> dict:
    return MLflowRegistryActionOperator(task_id="apply_registry_action", model="churn", **kwargs).execute(
        _context()
    )


def test_promote_rollback_archive_are_audited(three_versions: None) -> None:
    from mlflow import MlflowClient

    settings = get_settings()
    client = MlflowClient(settings.mlflow_tracking_uri)
    assert str(client.get_model_version_by_alias("mloops.churn", "champion").version) == "2"

    rolled = _action(action="rollback", reason="v2 misbehaves in production")
    assert rolled["aliases"] == {"champion": "1", "previous": "2", "challenger": "3"}
    audit = json.loads(client.get_model_version("mloops.churn", "1").tags["mloops.last_action"])
    assert (
        audit["by"] == "alice"
        and audit["why"] == "v2 misbehaves in production"
        and audit["action"] == "rollback"
    )
    assert audit["dag_run"] == "mloops_registry_ops/manual__ops" and audit["target"] == "1"

    promoted = _action(action="promote", version=2, reason="fixed upstream, back to v2")
    assert promoted["aliases"]["champion"] == "2" and promoted["aliases"]["previous"] == "1"

    with pytest.raises(
        AirflowFailException, match=r"v3 did not pass its tests \(mloops.test_status='failed'\)"
    ):
        _action(action="promote", version=3, reason="I know better")
    forced = _action(action="promote", version=3, reason="emergency, tests flaky", allow_failed_tests=True)
    assert forced["audit"]["override_failed_tests"] is True
    v3_tags = client.get_model_version("mloops.churn", "3").tags
    assert any(k.startswith("mloops.audit.") and k.endswith(".promote") for k in v3_tags)

    with pytest.raises(AirflowFailException, match="is the champion; promote or roll back before archiving"):
        _action(action="archive", version=3, reason="cleanup")
    archived = _action(action="archive", version=1, reason="superseded")
    assert archived["version"] == "1"
    assert client.get_model_version("mloops.churn", "1").tags["mloops.archived"] == "true"
    assert client.get_model_version("mloops.churn", "1").aliases == []

    kinds = [e["kind"] for e in store.read_events(settings.metrics_db_uri, model="churn")]
    assert kinds == ["model_rolled_back", "model_promoted", "model_promoted", "model_archived"]
    card = (settings.data_root / "reports/churn/dt=2026-01-02/model_card_v1.md").read_text()
    assert "- **Status:** archived" in card and "| archive | alice |" in card and "| superseded |" in card


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"action": "promote", "version": 99, "reason": "wrong number"}, r"has no version '99'"),
        ({"action": "promote", "version": 1, "reason": ""}, "reason: say why"),
        ({"action": "delete", "version": 1, "reason": "nope nope"}, "action 'delete' is not one of"),
    ],
)
def test_registry_action_refusals(three_versions: None, kwargs: dict, message: str) -> None:
    with pytest.raises(AirflowFailException, match=message):
        _action(**kwargs)


def test_rollback_without_previous_is_refused(models: Path) -> None:
    with pytest.raises(AirflowFailException, match="has no 'previous' alias"):
        _action(action="rollback", reason="nothing to go back to")


def test_approval_skips_unless_policy_is_approval(three_versions: None) -> None:
    operator = approval_operator_class()(
        task_id="approve_promotion", model="churn", response_timeout=dt.timedelta(hours=1)
    )
    with pytest.raises(AirflowSkipException, match="promotion policy is 'auto': no approval needed"):
        operator.execute(_context())


@pytest.mark.parametrize(("choice", "decision"), [("Approve", "approved"), ("Reject", "rejected")])
def test_approval_decision_is_recorded(three_versions: None, choice: str, decision: str) -> None:
    from mlflow import MlflowClient

    xcom = {("register_model", "return_value"): {"version": "3"}}
    operator = approval_operator_class()(
        task_id="approve_promotion", model="churn", policy="approval", response_timeout=dt.timedelta(hours=1)
    )
    context = _context(task_id="approve_promotion", store_=xcom)
    context["task"] = operator
    operator.skip = lambda ti, tasks: None  # no downstream tasks here: nothing to skip
    event = {
        "chosen_options": [choice],
        "params_input": {"comment": "looks right"},
        "responded_at": dt.datetime.now(dt.UTC),
        "responded_by_user": {"id": "bob", "name": "bob"},
    }
    operator.execute_complete(context, event)
    settings = get_settings()
    record = json.loads(
        MlflowClient(settings.mlflow_tracking_uri)
        .get_model_version("mloops.churn", "3")
        .tags["mloops.approval"]
    )
    assert record["decision"] == decision and record["by"] == "bob" and record["comment"] == "looks right"
    (event_row,) = store.read_events(settings.metrics_db_uri, model="churn", kind=f"promotion_{decision}")
    assert "bob" in event_row["message"]
    card = (settings.data_root / "reports/churn/dt=2026-01-04/model_card_v3.md").read_text()
    assert f"- **Approval:** {decision} by bob at {record['at']}: looks right" in card
    assert ("- **Status:** promotion rejected" in card) is (decision == "rejected")


class _Hook(http.server.BaseHTTPRequestHandler):
    received: list = []

    def do_POST(self) -> None:  # noqa: N802 - http.server API
        self.received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args) -> None:
        return


def test_alerts_go_to_store_webhook_and_smtp(monkeypatch: pytest.MonkeyPatch, mloops_home: Path) -> None:
    import smtplib

    from mloops import alerts

    server = http.server.HTTPServer(("127.0.0.1", 0), _Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    sent_mail: list = []

    class FakeSMTP:
        def __init__(self, host, port, timeout):
            self.host, self.port = host, port

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def send_message(self, message):
            sent_mail.append((self.host, self.port, message["To"], message["Subject"]))

    monkeypatch.setattr(smtplib, "SMTP", FakeSMTP)
    monkeypatch.setenv(
        "AIRFLOW_CONN_MLOOPS_WEBHOOK",
        json.dumps(
            {
                "conn_type": "http",
                "host": "127.0.0.1",
                "port": server.server_port,
                "extra": {"endpoint": "/hooks/mloops"},
            }
        ),
    )
    monkeypatch.setenv(
        "AIRFLOW_CONN_MLOOPS_MAIL",
        json.dumps(
            {"conn_type": "smtp", "host": "mail.local", "port": 2525, "extra": {"to": "ml@x.org, de@x.org"}}
        ),
    )
    monkeypatch.setenv(
        "AIRFLOW_CONN_BROKEN", json.dumps({"conn_type": "http", "host": "127.0.0.1", "port": 1})
    )
    monkeypatch.setenv("MLOOPS_ALERT_CONN_IDS", "mloops_webhook,mloops_mail,broken")
    try:
        for kind in alerts.KINDS:
            alerts.emit(kind, "churn", f"{kind} happened", payload={"k": kind}, partition=dt.date(2026, 1, 5))
    finally:
        server.shutdown()
    assert [e["kind"] for e in _Hook.received] == list(alerts.KINDS)
    assert (
        _Hook.received[0]["message"] == "batch_quarantined happened"
        and _Hook.received[0]["partition"] == "2026-01-05"
    )
    assert len(sent_mail) == len(alerts.KINDS) and sent_mail[0][:3] == (
        "mail.local",
        2525,
        "ml@x.org, de@x.org",
    )
    stored = store.read_events(get_settings().metrics_db_uri, model="churn")
    assert [e["kind"] for e in stored] == list(alerts.KINDS)
    with pytest.raises(ValueError, match="unknown event kind"):
        alerts.emit("party", "churn", "no")
