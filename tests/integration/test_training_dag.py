"""End-to-end runs of the generated training DAG with ``dag.test()`` against a real MLflow store.

Each test gets its own mloops home (data, SQLite MLflow store, Data Docs) and its own models folder.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path

import pytest

from tests.helpers import dag_test, small_churn, write_models

pytestmark = pytest.mark.integration


def _run(dag_id: str, day: str, conf: dict | None = None):
    """Run the DAG; the approval step is skipped under the default ``auto`` policy and left out of the
    states."""
    dr, states = dag_test(dag_id, day, conf=conf)
    assert states.pop("approve_promotion") in ("skipped", "upstream_failed")
    return dr, states


def _client():
    from mloops.adapters.mlflow_adapter import client
    from mloops.settings import get_settings

    return client(get_settings())


@pytest.fixture
def models(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mloops_home: Path, airflow_db: Path) -> Path:
    bad = small_churn(
        scenarios=[
            {
                "kind": "null_burst",
                "start": "2026-01-04",
                "end": "2026-01-04",
                "params": {"column": "monthly_charges", "fraction": 0.6},
            }
        ]
    )
    directory = write_models(tmp_path / "models", churn=bad)
    monkeypatch.setenv("MLOOPS_MODELS_DIR", str(directory))
    return directory


def test_nightly_runs_promote_and_rerun_is_idempotent(models: Path, mloops_home: Path) -> None:
    for day in ("2026-01-02", "2026-01-03"):
        dr, states = _run("mloops_train_churn", day)
        assert set(states.values()) == {"success"}, states

    client = _client()
    name = "mloops.churn"
    versions = {str(mv.version): mv for mv in client.search_model_versions(f"name='{name}'")}
    assert sorted(versions, key=int) == ["1", "2"]
    assert str(client.get_model_version_by_alias(name, "champion").version) == "2"
    assert str(client.get_model_version_by_alias(name, "previous").version) == "1"
    assert str(client.get_model_version_by_alias(name, "challenger").version) == "2"

    v2 = client.get_model_version(name, "2")
    assert v2.tags["mloops.test_status"] == "passed"
    assert v2.tags["mloops.data_interval_start"] == "2026-01-03"
    assert v2.tags["airflow.dag_id"] == "mloops_train_churn"
    assert v2.tags["mloops.promoted_from"] == "1"
    assert json.loads(v2.tags["mloops.tests"])["champion:roc_auc"] is True
    assert float(v2.tags["metric.roc_auc"]) >= 0.7

    run = client.get_run(v2.run_id)
    assert run.data.tags["mloops.window"] == "2026-01-02..2026-01-03"
    assert run.data.tags["mloops.partitions"] == "2026-01-02,2026-01-03"
    assert json.loads(run.data.tags["mloops.validation"]) == {"2026-01-02": "passed", "2026-01-03": "passed"}
    assert run.data.tags["airflow.run_id"] == dr.run_id
    assert len(run.data.tags["mloops.data_fingerprint"]) == 16
    assert {"roc_auc", "f1", "rows_train"} <= set(run.data.metrics)
    assert run.data.params["estimator"] == "sklearn.ensemble.HistGradientBoostingClassifier"
    inputs = {i.tags[0].value: i.dataset for i in run.inputs.dataset_inputs}
    assert sorted(inputs) == ["evaluation", "training"]
    from mloops.config_files import load_model_config
    from mloops.stages.train import split_digest

    config = load_model_config(models / "churn.yaml")
    fingerprint = run.data.tags["mloops.data_fingerprint"]
    for context, side, rows in (
        ("training", "train", "rows_train"),
        ("evaluation", "holdout", "rows_holdout"),
    ):
        logged = inputs[context]
        assert logged.digest == split_digest(config, fingerprint, side)
        assert json.loads(logged.profile)["num_rows"] == int(
            run.data.metrics[rows]
        )  # the whole frame, not the sample
        schema = [c["name"] for c in json.loads(logged.schema)["mlflow_colspec"]]
        assert schema == [*config.feature_names, config.target]
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "model_tests")}
    assert artifacts == {"model_tests/model_tests.json", "model_tests/model_tests.md"}

    report = json.loads((mloops_home / "data/reports/churn/dt=2026-01-03/model_tests.json").read_text())
    assert report["passed"] and report["champion_version"] == "1"
    kinds = {"threshold", "champion", "slice", "smoke"}
    assert {c["kind"] for c in report["checks"]} == kinds | {"reproduce"}
    assert (mloops_home / "data_docs/churn/gx/uncommitted/data_docs/local_site/index.html").exists()

    # Re-running the same interval overwrites outputs and registers nothing new.
    holdout = mloops_home / "data/runs/churn/dt=2026-01-03/holdout.parquet"
    before = hashlib.sha256(holdout.read_bytes()).hexdigest()
    _, states = _run("mloops_train_churn", "2026-01-03")
    assert states["register_model"] == "success" and states["promote_model"] == "skipped"
    assert sorted(str(mv.version) for mv in client.search_model_versions(f"name='{name}'")) == ["1", "2"]
    assert str(client.get_model_version_by_alias(name, "champion").version) == "2"
    assert hashlib.sha256(holdout.read_bytes()).hexdigest() == before
    # The reused run's model tests predict the holdout with the logged model: nothing to reproduce.
    again = json.loads((mloops_home / "data/reports/churn/dt=2026-01-03/model_tests.json").read_text())
    assert {c["kind"] for c in again["checks"]} == kinds
    assert again["metrics"] == pytest.approx(report["metrics"])
    runs = client.search_runs([run.info.experiment_id], "tags.`mloops.run_key` = 'churn/2026-01-03'")
    assert len(runs) == 1


def test_bad_partition_is_quarantined_and_champion_untouched(models: Path, mloops_home: Path) -> None:
    dr, states = _run("mloops_train_churn", "2026-01-03")
    assert set(states.values()) == {"success"}
    raw = mloops_home / "data/raw/churn/dt=2026-01-04/part.parquet"

    dr, states = _run("mloops_train_churn", "2026-01-04")
    assert states["validate_batch"] == "failed"
    assert {states[t] for t in ("train_model", "test_model", "register_model")} == {"upstream_failed"}
    assert states["promote_model"] in ("upstream_failed", "skipped")

    quarantine = mloops_home / "data/quarantine/churn/dt=2026-01-04"
    assert sorted(p.name for p in quarantine.iterdir()) == [
        "failures.txt",
        "part.parquet",
        "validation_result.json",
    ]
    assert raw.exists(), "the original partition must be kept"
    assert (
        hashlib.sha256(raw.read_bytes()).digest()
        == hashlib.sha256((quarantine / "part.parquet").read_bytes()).digest()
    )
    assert not (mloops_home / "data/staged/churn/dt=2026-01-04/data.parquet").exists()
    failures = (quarantine / "failures.txt").read_text()
    assert "expect_column_values_to_not_be_null(monthly_charges)" in failures
    assert "(60.00%)" in failures and "mostly=95.00% of rows" in failures

    ti = next(t for t in dr.get_task_instances() if t.task_id == "validate_batch")
    pushed = ti.xcom_pull(task_ids="validate_batch", key="failure")
    assert pushed["status"] == "quarantined" and pushed["quarantine"] == str(quarantine)

    client = _client()
    assert str(client.get_model_version_by_alias("mloops.churn", "champion").version) == "1"
    assert [str(mv.version) for mv in client.search_model_versions("name='mloops.churn'")] == ["1"]

    # The next night trains on its window without the quarantined batch.
    _, states = _run("mloops_train_churn", "2026-01-05")
    assert set(states.values()) == {"success"}
    champion = client.get_model_version_by_alias("mloops.churn", "champion")
    run = client.get_run(champion.run_id)
    assert run.data.tags["mloops.partitions"] == "2026-01-05"
    assert json.loads(run.data.tags["mloops.excluded_partitions"]) == {"2026-01-04": "quarantined"}


def test_config_only_model_on_csv_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mloops_home: Path, airflow_db: Path
) -> None:
    """A second model added as YAML only: CSV partitions, a linear model, a different metric set."""
    from mloops_examples import generator

    landing = tmp_path / "landing"
    for day in (dt.date(2026, 2, 1), dt.date(2026, 2, 2)):
        frame = generator.generate_partition("churn", day, rows=500, seed=3)
        generator.write_partition(frame, landing / f"{day:%Y%m%d}" / "customers.csv")
    config = small_churn()
    config.update(
        source={"kind": "files", "path": str(landing / "{ds_nodash}" / "customers.csv"), "format": "csv"},
        training={
            **config["training"],
            "estimator": {
                "class": "sklearn.linear_model.LogisticRegression",
                "params": {"C": 0.5, "max_iter": 500},
            },
        },
        evaluation={"primary_metric": "accuracy", "thresholds": {"accuracy": 0.6}},
        quality={"min_rows": 50},
        schedule={"cron": "0 2 * * *", "start_date": "2026-02-01"},
    )
    directory = write_models(tmp_path / "models", churn_csv=config)
    monkeypatch.setenv("MLOOPS_MODELS_DIR", str(directory))

    _, states = _run("mloops_train_churn_csv", "2026-02-02")
    assert set(states.values()) == {"success"}, states
    client = _client()
    champion = client.get_model_version_by_alias("mloops.churn_csv", "champion")
    assert str(champion.version) == "1" and champion.tags["mloops.promoted_from"] == "none"
    assert (
        client.get_run(champion.run_id).data.params["estimator"] == "sklearn.linear_model.LogisticRegression"
    )


def test_every_version_carries_its_importances_and_model_card(
    models: Path, mloops_home: Path, tmp_path: Path
) -> None:
    """Permutation importance on the holdout, logged on the run (full table, compared with the
    champion's) and on the registered version (top features); and the version's model card, whose
    facts are asserted against the MLflow run it describes."""
    for day in ("2026-01-02", "2026-01-03"):
        _, states = _run("mloops_train_churn", day)
        assert set(states.values()) == {"success"}, states
    client = _client()
    v2 = client.get_model_version("mloops.churn", "2")
    importances = json.loads(v2.tags["mloops.importances"])
    assert importances and all(isinstance(v, float) for v in importances.values())
    assert list(importances.values()) == sorted(importances.values(), reverse=True)
    table = json.loads(
        client.download_artifacts(v2.run_id, "explanation/importances.json", str(mloops_home))
        and Path(mloops_home, "importances.json").read_text()
    )
    assert table["metric"] == "roc_auc" and table["champion_version"] == "1"
    from mloops.config_files import find_model_config

    names = set(find_model_config("churn", models).feature_names)
    assert {row["feature"] for row in table["features"]} == names
    assert all(row["champion_rank"] is not None for row in table["features"]), "compared with v1's ranking"
    assert len(table["shifts"]) == 3 and table["rows"] <= 2000
    _assert_cards_state_their_runs(client, tmp_path)


def _card(client, run_id: str, name: str, folder: Path) -> str:
    return Path(client.download_artifacts(run_id, f"model_card/{name}", str(folder))).read_text()


def _assert_cards_state_their_runs(client, tmp_path: Path) -> None:
    """The card of each registered version, read back from MLflow, states its run's facts."""
    import re

    from mloops import partitions

    for version in ("1", "2"):
        mv = client.get_model_version("mloops.churn", version)
        assert mv.tags["mloops.model_card"].endswith(f"model_card_v{version}.html")
        assert partitions.from_uri(mv.tags["mloops.model_card"]).is_file()
        artifacts = {a.path for a in client.list_artifacts(mv.run_id, "model_card")}
        assert artifacts == {"model_card/model_card.md", "model_card/model_card.html"}

    v2 = client.get_model_version("mloops.churn", "2")
    run = client.get_run(v2.run_id)
    tags, params, metrics = run.data.tags, run.data.params, run.data.metrics
    md = _card(client, v2.run_id, "model_card.md", tmp_path / "md")
    page = _card(client, v2.run_id, "model_card.html", tmp_path / "html")
    assert page.startswith("<!DOCTYPE html>") and "<h2>Trained on</h2>" in page

    def fact(label: str) -> str:
        found = re.search(rf"^- \*\*{re.escape(label)}:\*\* (.*)$", md, re.M)
        assert found, f"no {label!r} in the card:\n{md}"
        return found.group(1)

    assert md.startswith("# Model card: mloops.churn v2\n")
    assert "(champion; aliases: challenger, champion)" in md and v2.run_id in md
    # trained on
    assert fact("Data interval") == tags["mloops.data_interval_start"] == "2026-01-03"
    assert fact("Window") == tags["mloops.window"]
    assert fact("Partitions") == tags["mloops.partitions"]
    assert fact("Data fingerprint") == tags["mloops.data_fingerprint"]
    for logged in run.inputs.dataset_inputs:
        rows = json.loads(logged.dataset.profile)["num_rows"]
        assert f"| {logged.dataset.name} | {rows} | {logged.dataset.digest} |" in md
    # validated by
    for day, status in json.loads(tags["mloops.validation"]).items():
        assert f"| {day} | {status} |" in md
    docs = tags["mloops.validation_docs"]
    assert docs.startswith("file://") and fact("Great Expectations Data Docs") == f"[{docs}](<{docs}>)"
    # built by
    assert fact("Code (git commit of the bundle)") == tags["mloops.code_version"]
    assert re.fullmatch(r"[0-9a-f]{40}(\+dirty)?", tags["mloops.code_version"])  # this checkout's commit
    assert fact("DAG run") == f"{tags['airflow.dag_id']}/{tags['airflow.run_id']}"
    assert fact("Estimator") == params["estimator"]
    for key in ("estimator.max_iter", "window_days", "holdout_fraction"):
        assert f"| {key} | {params[key]} |" in md
    # tested: every gate, value vs threshold, as in the logged report
    report = json.loads(
        Path(client.download_artifacts(v2.run_id, "model_tests/model_tests.json", str(tmp_path))).read_text()
    )
    for check in report["checks"]:
        value = f"{check['value']:.4f}" if check["value"] is not None else "n/a"
        threshold = "" if check["threshold"] is None else f"{check['threshold']:.4f}"
        assert f"| {check['name']} | {value} | {check['comparator']} | {threshold} |" in md, check["name"]
    assert f"| roc_auc (primary) | {metrics['roc_auc']:.4f} |" in md
    assert fact("Compared with") == "champion v1"
    # explained: importances and the change against the champion it replaced
    importances = json.loads(v2.tags["mloops.importances"])
    top_feature, top_value = next(iter(importances.items()))
    assert f"| 1 | {top_feature} | {top_value:.4f} |" in md
    assert "What changed in what the model relies on, against champion v1:" in md
    # promoted: by which run, when, why, under which policy
    assert fact("Status") == "champion" and fact("Promotion policy") == "auto"
    assert fact("Replaced") == "v1" and fact("Why") == v2.tags["mloops.promotion_reason"]
    assert fact("Promoted at") == v2.tags["mloops.promoted_at"]
    assert fact("Promoted by").startswith(f"mloops_train_churn/{v2.tags['mloops.promoted_by.run_id']}")
    assert "No labeled predictions of this version yet." in md  # no label feed in this config
    # v1's card was rewritten when v2 replaced it
    assert "(previous champion (the rollback target); aliases: previous)" in _card(
        client, client.get_model_version("mloops.churn", "1").run_id, "model_card.md", tmp_path / "v1"
    )


def _answer_approval(dag_id: str, choice: str, comment: str, meanwhile, timeout: float = 600) -> dict:
    """From a thread while ``dag.test()`` waits: once ``approve_promotion`` awaits input, run
    ``meanwhile()`` (what another writer does during the wait), then answer as the HITL REST API does.

    Always answers (Reject when ``meanwhile`` raised) so the waiting run ends; returns what happened.
    """
    import time

    from airflow.models.hitl import HITLDetail
    from airflow.models.taskinstance import TaskInstance
    from airflow.models.trigger import handle_event_submit
    from airflow.triggers.base import TriggerEvent
    from airflow.utils.session import create_session
    from airflow.utils.state import TaskInstanceState
    from sqlalchemy import select

    outcome: dict = {}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with create_session() as session:
            ti = session.scalar(
                select(TaskInstance).where(
                    TaskInstance.dag_id == dag_id,
                    TaskInstance.task_id == "approve_promotion",
                    TaskInstance.state == TaskInstanceState.AWAITING_INPUT,
                )
            )
            if ti is None:
                time.sleep(1)
                continue
            try:
                outcome["meanwhile"] = meanwhile()
            except Exception as exc:  # noqa: BLE001 - reported by the test, after the run is unblocked
                outcome["error"], choice = exc, "Reject"
            detail = session.scalar(select(HITLDetail).where(HITLDetail.ti_id == ti.id))
            detail.responded_by = {"id": "carol", "name": "carol"}
            detail.responded_at = dt.datetime.now(dt.UTC)
            detail.chosen_options = [choice]
            detail.params_input = {"comment": comment}
            session.add(detail)
            handle_event_submit(
                TriggerEvent(detail.as_resume_event_payload()), task_instance=ti, session=session
            )
            outcome["answered"] = choice
            return outcome
    outcome["error"] = TimeoutError(f"approve_promotion of {dag_id} never awaited input")
    return outcome


def test_champion_changed_during_the_approval_wait_is_recompared_and_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mloops_home: Path, airflow_db: Path
) -> None:
    """Compare-and-set promotion. v3 (a weak model) was tested against the weak champion v1 and passed;
    while it waits for approval, a person promotes the strong v2. The approved promotion re-compares v3
    with v2 on v3's holdout, refuses (v3 loses), tags v3 with why and records the event; v2 stays."""
    import threading

    from mloops import store
    from mloops.adapters import mlflow_adapter
    from mloops.config_files import find_model_config
    from mloops.settings import get_settings
    from mloops.stages import registry, test, train, validate
    from mloops.stages.layout import RunContext

    config = small_churn()
    config["evaluation"].update(thresholds={"roc_auc": 0.55}, slices=[], champion_tolerance=0.05)
    directory = write_models(tmp_path / "models", churn=config)
    monkeypatch.setenv("MLOOPS_MODELS_DIR", str(directory))
    weak = {"max_iter": 1, "max_leaf_nodes": 2}  # one stump: ranks by a single split
    settings, churn = get_settings(), find_model_config("churn", directory)
    ctx = RunContext(churn, dt.date(2026, 1, 2), settings)
    validate.validate_batch(ctx)
    for overrides, promote in ((weak, True), (None, False)):  # v1 weak champion, v2 strong challenger
        trained = train.train_model(ctx, overrides=overrides)
        registered = registry.register_model(ctx, trained, test.test_model(ctx, trained))
        if promote:
            registry.promote_model(ctx, registered)
    client = _client()

    def promote_v2() -> str:
        registry.registry_action(
            ctx, action="promote", version="2", reason="v2 is better", actor="dave", dag_run="ops/manual"
        )
        return mlflow_adapter.version_by_alias(client, "mloops.churn", "champion").version

    answers: dict = {}
    answering = threading.Thread(
        target=lambda: answers.update(
            _answer_approval("mloops_train_churn", "Approve", "ship it", promote_v2)
        ),
        daemon=True,
    )
    answering.start()
    _, states = dag_test(
        "mloops_train_churn", "2026-01-03", conf={"promotion_mode": "approval", "estimator_overrides": weak}
    )
    answering.join(timeout=60)
    assert "error" not in answers, answers
    assert answers == {"meanwhile": "2", "answered": "Approve"}
    assert states["approve_promotion"] == "success" and states["promote_model"] == "skipped", states

    v3 = client.get_model_version("mloops.churn", "3")
    assert v3.tags["mloops.compared_with"] == "1"  # what test_model compared it with
    assert json.loads(v3.tags["mloops.approval"])["decision"] == "approved"
    recomparison = json.loads(v3.tags["mloops.recomparison"])
    assert recomparison["champion"] == "2" and recomparison["passed"] is False
    assert recomparison["value"] < recomparison["threshold"], recomparison
    refused = json.loads(v3.tags["mloops.promotion_refused"])
    assert refused["champion"] == "2" and refused["compared_with"] == "1"
    assert "the champion changed since v3 was tested (against v1; now v2)" in refused["reason"]
    assert "v3 does not beat v2" in refused["reason"] and "champion v2 scores" in refused["reason"]
    assert mlflow_adapter.version_by_alias(client, "mloops.churn", "champion").version == "2"
    assert "mloops.promoted_from" not in v3.tags
    (event,) = store.read_events(settings.metrics_db_uri, model="churn", kind="promotion_refused")
    assert "v3 not promoted" in event["message"] and event["payload"]["champion"] == "2"


def test_the_logged_model_has_a_signature_and_no_input_example_to_fail_on(
    models: Path, mloops_home: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """MLflow validates an input example by loading the model through pyfunc, which refuses a skops file
    unless pickle-style deserialization is allowed (mloops never allows it): the example is not logged,
    so no training logs that failure, and the signature still records the model's inputs."""
    import logging

    import mlflow

    from mloops.config_files import find_model_config

    mlflow_logger = logging.getLogger("mlflow")  # MLflow's loggers do not propagate to pytest's handler
    mlflow_logger.addHandler(caplog.handler)
    try:
        _, states = _run("mloops_train_churn", "2026-01-02")
    finally:
        mlflow_logger.removeHandler(caplog.handler)
    assert set(states.values()) == {"success"}, states
    assert [r for r in caplog.records if r.name.startswith("mlflow")], "MLflow's log was captured"
    assert not [r for r in caplog.records if "Failed to validate serving input" in r.getMessage()]
    version = _client().get_model_version("mloops.churn", "1")
    info = mlflow.models.get_model_info(f"models:/mloops.churn/{version.version}")
    assert info.saved_input_example_info is None
    inputs = {spec.name for spec in info.signature.inputs.inputs}
    assert inputs == set(find_model_config("churn", models).feature_names)
    assert info.signature.outputs is not None


def test_recorded_holdout_predictions_must_be_the_logged_models(
    models: Path, mloops_home: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The model tests take the challenger's holdout predictions from its training. If the logged model
    does not reproduce them, the gate fails naming the row, and the champion is untouched; if they
    cannot be read, the logged model predicts the holdout again and the gates judge that."""
    import dataclasses

    import pandas as pd

    from mloops import training
    from mloops.config_files import find_model_config
    from mloops.contracts import Alias
    from mloops.errors import ModelGateFailedError
    from mloops.settings import get_settings
    from mloops.stages import test, train, validate
    from mloops.stages.layout import RunContext, holdout_predictions_path

    _, states = _run("mloops_train_churn", "2026-01-02")
    assert set(states.values()) == {"success"}, states
    client = _client()
    champion = client.get_model_version_by_alias("mloops.churn", Alias.CHAMPION)

    ctx = RunContext(find_model_config("churn", models), dt.date(2026, 1, 3), get_settings())
    validate.validate_batch(ctx)
    trained = train.train_model(ctx)
    path = holdout_predictions_path(ctx)
    assert trained.holdout_predictions_uri is not None and path.exists()
    recorded = pd.read_parquet(path)
    assert len(recorded) == trained.rows_holdout

    tampered = recorded.copy()
    tampered.loc[3, training.PROBABILITY_COLUMN] = 1.0 - tampered.loc[3, training.PROBABILITY_COLUMN]
    tampered.to_parquet(path, index=False)
    with pytest.raises(ModelGateFailedError) as failed:
        test.test_model(ctx, trained)
    message = str(failed.value)
    assert "reproduce:holdout_predictions" in message and "row 3 of the holdout" in message
    assert trained.model_uri in message and "The champion is unchanged" in message
    assert client.get_model_version_by_alias("mloops.churn", Alias.CHAMPION).version == champion.version

    path.write_bytes(b"not parquet")
    with caplog.at_level("WARNING", logger="mloops.stages.test"):
        result = test.test_model(ctx, trained)
    assert result.passed and "reproduce:holdout_predictions" not in result.checks
    assert result.metrics == pytest.approx(trained.metrics)
    assert any("predicting the holdout again" in r.getMessage() for r in caplog.records)

    recorded.to_parquet(path, index=False)
    result = test.test_model(ctx, trained)
    assert result.passed and result.checks["reproduce:holdout_predictions"] is True
    assert result.metrics == pytest.approx(trained.metrics)

    # A result naming some other file (XCom is input too) is not followed: the holdout is predicted.
    elsewhere = tmp_path / "elsewhere.parquet"
    tampered.to_parquet(elsewhere, index=False)
    foreign = dataclasses.replace(trained, holdout_predictions_uri=str(elsewhere))
    result = test.test_model(ctx, foreign)
    assert result.passed and "reproduce:holdout_predictions" not in result.checks
