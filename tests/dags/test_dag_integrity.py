"""DAG integrity and policy: the bundle imports cleanly, cheaply, and every DAG follows the rules."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import REPO, example_config, write_models

pytestmark = pytest.mark.dags

HEAVY = ("pandas", "sklearn", "mlflow", "great_expectations", "evidently", "scipy")


def _bag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(REPO / "dags"))


@pytest.fixture(scope="module")
def bag():
    return _bag()


def test_no_import_errors(bag) -> None:
    assert bag.import_errors == {}
    for model in ("churn", "house_prices"):
        assert {f"mloops_train_{model}", f"mloops_score_{model}", f"mloops_monitor_{model}"} <= set(
            bag.dag_ids
        )


def test_every_mloops_dag_follows_policy(bag) -> None:
    for dag in bag.dags.values():
        assert "mloops" in dag.tags and any(t.startswith("model:") for t in dag.tags), dag.dag_id
        assert all(t.retries is not None for t in dag.tasks)
        assert dag.doc_md and dag.dagrun_timeout and not dag.catchup
        assert dag.max_active_runs == 1 or dag.dag_id == "mloops_registry_ops"  # ops runs queue on the pool
        assert "partition_date" in dag.params
        for task in dag.tasks:
            if dag.dag_id != "mloops_registry_ops" and task.task_id != "approve_promotion":
                assert task.owner == "data-science" and task.execution_timeout is not None, task.task_id


def test_scoring_and_monitoring_structure(bag) -> None:
    from airflow.sdk import CronDataIntervalTimetable

    score = bag.dags["mloops_score_churn"]
    assert [t.task_id for t in score.topological_sort()] == ["validate_batch", "score_batch"]
    assert [a.uri for a in score.task_dict["score_batch"].outlets] == ["x-mloops://predictions/churn"]
    monitor = bag.dags["mloops_monitor_churn"]  # churn has a label feed, house_prices none
    assert [t.task_id for t in monitor.topological_sort()] == [
        "join_labels",
        "check_drift",
        "trigger_retraining",
    ]
    assert monitor.task_dict["check_drift"].trigger_rule == "all_done"  # a broken feed never blinds drift
    plain = bag.dags["mloops_monitor_house_prices"]
    assert [t.task_id for t in plain.topological_sort()] == ["check_drift", "trigger_retraining"]
    assert [a.uri for a in monitor.task_dict["trigger_retraining"].outlets] == ["x-mloops://drift/churn"]
    assert monitor.task_dict["trigger_retraining"].retries == 0
    assert isinstance(score.timetable, CronDataIntervalTimetable) and isinstance(
        monitor.timetable, CronDataIntervalTimetable
    )


def test_training_dag_structure_and_policy(bag) -> None:
    from airflow.sdk import AssetOrTimeSchedule, CronDataIntervalTimetable

    for dag_id in ("mloops_train_churn", "mloops_train_house_prices"):
        dag = bag.dags[dag_id]
        assert [t.task_id for t in dag.topological_sort()] == [
            "check_params",
            "validate_batch",
            "train_model",
            "test_model",
            "register_model",
            "approve_promotion",
            "promote_model",
        ]
        for upstream, downstream in zip(dag.topological_sort(), dag.topological_sort()[1:], strict=False):
            assert upstream.downstream_task_ids == {downstream.task_id}
        assert isinstance(dag.timetable, AssetOrTimeSchedule)  # nightly, or when drift is found
        assert isinstance(dag.timetable.timetable, CronDataIntervalTimetable)
        model = dag_id.removeprefix("mloops_train_")
        assert [a.uri for a in dag.timetable.asset_condition.objects] == [f"x-mloops://drift/{model}"]
        assert dag.max_active_runs == 1 and not dag.catchup
        assert "mloops" in dag.tags and "training" in dag.tags
        assert dag.doc_md and dag.dagrun_timeout
        for task in dag.tasks:
            assert task.owner == "data-science"
            assert task.execution_timeout is not None or task.task_id == "approve_promotion"
        approval = dag.task_dict["approve_promotion"]
        assert approval.response_timeout.total_seconds() == 24 * 3600 and approval.defaults == ["Reject"]
        assert dag.task_dict["promote_model"].trigger_rule == "none_failed"
        assert dag.task_dict["train_model"].retries == 1
        assert dag.task_dict["validate_batch"].retries == 0  # a failed gate is not retried
        assert dag.task_dict["register_model"].pool == "mloops_registry"
        assert dag.task_dict["promote_model"].pool == "mloops_registry"
        assert set(dag.params) == {"partition_date", "promotion_mode", "estimator_overrides", "reason"}


def test_registry_ops_dag_form(bag) -> None:
    dag = bag.dags["mloops_registry_ops"]
    assert type(dag.timetable).__name__ == "NullTimetable"  # manual only
    assert dag.params.get_param("model").schema["enum"] == ["churn", "house_prices"]
    assert dag.params.get_param("action").schema["enum"] == ["promote", "rollback", "archive"]
    assert dag.params.get_param("reason").schema["minLength"] == 5
    (task,) = dag.tasks
    assert task.task_id == "apply_registry_action" and task.pool == "mloops_registry"


def test_parse_imports_nothing_heavy() -> None:
    code = (
        "import sys, json\n"
        "from airflow.dag_processing.dagbag import DagBag\n"
        f"bag = DagBag(dag_folder={str(REPO / 'dags')!r})\n"
        "print(json.dumps({'dags': sorted(bag.dag_ids), "
        f"'heavy': sorted({{m.split('.')[0] for m in sys.modules}} & set({list(HEAVY)!r}))}}))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=os.environ.copy()
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert "mloops_train_churn" in result["dags"]
    assert result["heavy"] == []


def test_broken_config_is_an_import_error_and_others_still_load(tmp_path: Path, monkeypatch) -> None:
    broken = example_config("churn")
    broken["evaluation"]["primary_metric"] = "auc"
    models = write_models(tmp_path / "models", churn=broken, house_prices=example_config("house_prices"))
    monkeypatch.setenv("MLOOPS_MODELS_DIR", str(models))
    bag = _bag()
    assert "mloops_train_house_prices" in bag.dag_ids
    assert "mloops_train_churn" not in bag.dag_ids
    assert "mloops_config_errors" not in bag.dag_ids
    (error,) = bag.import_errors.values()
    assert str(models / "churn.yaml") in error
    assert "field 'evaluation.primary_metric'" in error and "unknown classification metric 'auc'" in error


def test_new_model_is_only_a_yaml_file(tmp_path: Path, monkeypatch) -> None:
    extra = example_config("churn")
    extra["schedule"]["cron"] = "30 1 * * *"
    models = write_models(tmp_path / "models", churn=example_config("churn"), churn_eu=extra)
    monkeypatch.setenv("MLOOPS_MODELS_DIR", str(models))
    bag = _bag()
    assert bag.import_errors == {}
    assert {"mloops_train_churn", "mloops_train_churn_eu"} <= set(bag.dag_ids)
    assert "30 1 * * *" in repr(bag.dags["mloops_train_churn_eu"].timetable)
    assert {"mloops_score_churn_eu", "mloops_monitor_churn_eu"} <= set(bag.dag_ids)


def test_shadow_and_rollback_tasks_are_wired_only_where_configured(tmp_path: Path) -> None:
    from mloops.config_files import load_model_config
    from mloops.dag_factory import build_monitoring_dag, build_scoring_dag, build_training_dag

    data = example_config("churn")
    data["promotion"] = {"policy": "shadow_then_approval", "auto_rollback": {"within_intervals": 3}}
    config = load_model_config(write_models(tmp_path, churn=data) / "churn.yaml")
    score = build_scoring_dag(config)
    assert score.task_dict["validate_batch"].downstream_task_ids == {"score_batch", "score_shadow"}
    assert score.task_dict["score_shadow"].outlets == []  # shadow predictions are never served
    monitor = build_monitoring_dag(config)
    assert monitor.task_dict["join_labels"].downstream_task_ids == {
        "check_drift",
        "decide_shadow",
        "check_rollback",
    }
    assert monitor.task_dict["decide_shadow"].downstream_task_ids == {"approve_promotion"}
    assert monitor.task_dict["approve_promotion"].downstream_task_ids == {"promote_shadow"}
    for task_id in ("decide_shadow", "promote_shadow", "check_rollback"):
        assert monitor.task_dict[task_id].pool == "mloops_registry", task_id
    assert monitor.task_dict["approve_promotion"].register_task_id == "decide_shadow"
    assert monitor.task_dict["check_rollback"].retries == 0  # a second rollback would undo the first
    modes = build_training_dag(config).params.get_param("promotion_mode").schema["enum"]
    assert modes == [None, "auto", "approval", "none", "shadow", "shadow_then_approval"]

    data["promotion"] = {"policy": "shadow"}
    config = load_model_config(write_models(tmp_path, churn=data) / "churn.yaml")
    assert "approve_promotion" not in build_monitoring_dag(config).task_dict
    assert "check_rollback" not in build_monitoring_dag(config).task_dict
    data["promotion"] = {"policy": "auto"}
    config = load_model_config(write_models(tmp_path, churn=data) / "churn.yaml")
    assert set(build_scoring_dag(config).task_dict) == {"validate_batch", "score_batch"}
    assert set(build_monitoring_dag(config).task_dict) == {"join_labels", "check_drift", "trigger_retraining"}
    assert "shadow" not in build_training_dag(config).params.get_param("promotion_mode").schema["enum"]


def test_a_models_approvers_reach_its_approval_task(tmp_path: Path) -> None:
    """``promotion.approvers`` become the HITL step's assigned users: only they may answer it."""
    from mloops.config_files import find_model_config
    from mloops.dag_factory import build_training_dag
    from mloops.errors import ModelConfigError

    config = example_config("churn")
    config["promotion"] = {"policy": "approval", "approvers": ["alice", "bob.smith"]}
    models = write_models(tmp_path / "models", churn=config)
    dag = build_training_dag(find_model_config("churn", models))
    assert dag.task_dict["approve_promotion"].assigned_users == [
        {"id": "alice", "name": "alice"},
        {"id": "bob.smith", "name": "bob.smith"},
    ]
    config["promotion"]["approvers"] = []
    unassigned = build_training_dag(find_model_config("churn", write_models(tmp_path / "open", churn=config)))
    assert unassigned.task_dict["approve_promotion"].assigned_users is None

    config["promotion"]["approvers"] = ["alice", "alice", "eve; drop"]
    bad = write_models(tmp_path / "bad", churn=config)
    with pytest.raises(ModelConfigError) as caught:
        find_model_config("churn", bad)
    assert str(bad / "churn.yaml") in str(caught.value) and "promotion.approvers" in str(caught.value)
    assert "'eve; drop'" in str(caught.value)
