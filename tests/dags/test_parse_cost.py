"""What a model costs each parse beyond Airflow's own floor: no extra work per task or per DAG."""

from __future__ import annotations

import datetime as dt
from collections import Counter

import pytest

from tests.helpers import REPO

pytestmark = pytest.mark.dags


@pytest.fixture
def params_copies(monkeypatch: pytest.MonkeyPatch) -> Counter:
    """Counts Airflow's deep copies of a DAG's params (one per ``__init__`` in an operator's class chain)."""
    from airflow.sdk.definitions.param import ParamsDict

    copies: Counter = Counter()
    original = ParamsDict.__deepcopy__

    def counted(self: ParamsDict, memo: dict) -> ParamsDict:
        copies["params"] += 1
        return original(self, memo)

    monkeypatch.setattr(ParamsDict, "__deepcopy__", counted)
    return copies


def _operators() -> list[tuple[type, dict]]:
    from mloops import operators

    extra = {"MLflowRegistryActionOperator": {"action": "promote"}}
    return [(getattr(operators, name), extra.get(name, {})) for name in operators.__all__]


@pytest.mark.parametrize(("operator", "kwargs"), _operators(), ids=lambda v: getattr(v, "__name__", ""))
def test_a_stage_operator_copies_the_dag_params_twice(
    operator: type, kwargs: dict, params_copies: Counter
) -> None:
    """Its own ``__init__`` and ``BaseOperator``'s, never a third in between (see ``_init_stage``)."""
    from airflow.sdk import DAG, Param

    with DAG("d", schedule=None, start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC), params={"p": Param(1)}):
        params_copies.clear()
        task = operator(task_id="t", model="churn", partition_date="2026-01-02", **kwargs)
    assert params_copies["params"] <= 2
    assert (task.model, task.partition_date) == ("churn", "2026-01-02")
    assert task.params["p"] == 1


def test_one_approval_class_for_every_dag() -> None:
    from mloops.config_files import find_model_config
    from mloops.dag_factory import build_training_dag
    from mloops.operators.approval import approval_operator_class

    config = find_model_config("churn", REPO / "include" / "models")
    first, second = build_training_dag(config), build_training_dag(config)
    assert type(first.task_dict["approve_promotion"]) is type(second.task_dict["approve_promotion"])
    assert approval_operator_class() is approval_operator_class()
