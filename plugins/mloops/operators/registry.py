"""Registry operators: register a tested version, then apply the promotion policy."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.sdk.exceptions import AirflowSkipException

from mloops.operators.base import MloopsStageOperator, lineage


class MLflowRegisterModelOperator(MloopsStageOperator):
    """Register the tested model version (once per run) with its test results as tags; set ``challenger``.

    :param model: model config name (templated).
    :param train_task_id: task whose XCom holds the training result.
    :param test_task_id: task whose XCom holds the model-test result.
    """

    def __init__(self, *, train_task_id: str = "train_model", test_task_id: str = "test_model", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.train_task_id = train_task_id
        self.test_task_id = test_task_id

    def execute(self, context: Any) -> dict[str, Any]:
        from mloops import stages

        config, day, settings = self.load(context)
        ti = context["ti"]
        trained = ti.xcom_pull(task_ids=self.train_task_id)
        tested = ti.xcom_pull(task_ids=self.test_task_id)
        result = self.run_stage(
            context, lambda: stages.register_model(config, day, settings, trained, tested, lineage=lineage(context))
        )
        self.log.info("%s %s v%s as challenger", "Kept" if result["reused"] else "Registered",
                      result["registered_model"], result["version"])
        return result


class MLflowPromoteModelOperator(MloopsStageOperator):
    """Apply the promotion policy: ``auto`` moves ``champion`` to the new version and keeps the old
    champion as ``previous``; a first version bootstraps. Skips (with the reason) when nothing moves.

    :param model: model config name (templated).
    :param register_task_id: task whose XCom holds the registration result.
    :param policy: promotion policy override, ``auto``/``approval``/``none`` (templated); default: config.
    """

    template_fields: Sequence[str] = (*MloopsStageOperator.template_fields, "policy")

    def __init__(self, *, register_task_id: str = "register_model", policy: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.register_task_id = register_task_id
        self.policy = policy

    def execute(self, context: Any) -> dict[str, Any]:
        from mloops import stages

        config, day, settings = self.load(context)
        registered = context["ti"].xcom_pull(task_ids=self.register_task_id)
        policy = self.policy or None
        if policy == "approval":
            policy = "auto"  # reaching this task means a person approved (see approve_promotion)
        result = self.run_stage(
            context, lambda: stages.promote_model(config, day, settings, registered, policy=policy, lineage=lineage(context))
        )
        self.log.info("%s", result["reason"])
        if result["action"] == "promote":
            self.emit(context, "model_promoted", f"{result['reason']} ({config.registered_model_name})", result)
        if result["action"] == "keep":
            context["ti"].xcom_push(key="decision", value=result)
            raise AirflowSkipException(result["reason"])
        return result
