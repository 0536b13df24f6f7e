"""Registry operators: register a tested version, then apply the promotion policy."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.sdk.exceptions import AirflowSkipException

from mloops.contracts import EventKind, PromotionPolicy
from mloops.operators.base import MloopsStageOperator


class MLflowRegisterModelOperator(MloopsStageOperator):
    """Register the tested model version (once per run) with its test results as tags; set ``challenger``.

    :param model: model config name (templated).
    :param train_task_id: task whose XCom holds the training result.
    :param test_task_id: task whose XCom holds the model-test result.
    """

    def __init__(
        self,
        *,
        model: str,
        partition_date: str | None = None,
        train_task_id: str = "train_model",
        test_task_id: str = "test_model",
        **kwargs: Any,
    ) -> None:
        self._init_stage(model, partition_date, **kwargs)
        self.train_task_id = train_task_id
        self.test_task_id = test_task_id

    def execute(self, context: Any) -> dict[str, Any]:
        from mloops.contracts import TestResult, TrainingResult
        from mloops.stages import registry

        ctx = self.load(context)
        ti = context["ti"]
        trained = TrainingResult.from_xcom(ti.xcom_pull(task_ids=self.train_task_id))
        tested = TestResult.from_xcom(ti.xcom_pull(task_ids=self.test_task_id))
        result = self.run_stage(context, lambda: registry.register_model(ctx, trained, tested))
        self.log.info(
            "%s %s v%s as challenger",
            "Kept" if result["reused"] else "Registered",
            result["registered_model"],
            result["version"],
        )
        return result


class MLflowPromoteModelOperator(MloopsStageOperator):
    """Apply the promotion policy: ``auto`` moves ``champion`` to the new version and keeps the old
    champion as ``previous``; a first version bootstraps; ``shadow``/``shadow_then_approval`` put the
    version in shadow beside the champion (event ``shadow_started``). Skips (with the reason) when
    nothing moves. When the champion changed since ``test_model`` compared the challenger with it (an
    approval wait), the challenger is re-compared with the new champion first; a refusal is recorded
    on the version and as a ``promotion_refused`` event, and the task skips with the reason.

    :param model: model config name (templated).
    :param register_task_id: task whose XCom holds the registration result.
    :param policy: promotion policy override, ``auto``/``approval``/``none`` (templated); default: config.
    """

    template_fields: Sequence[str] = (*MloopsStageOperator.template_fields, "policy")

    def __init__(
        self,
        *,
        model: str,
        partition_date: str | None = None,
        register_task_id: str = "register_model",
        policy: str | None = None,
        **kwargs: Any,
    ) -> None:
        self._init_stage(model, partition_date, **kwargs)
        self.register_task_id = register_task_id
        self.policy = policy

    def execute(self, context: Any) -> dict[str, Any]:
        from mloops.contracts import RegistrationResult
        from mloops.stages import registry

        ctx = self.load(context)
        registered = RegistrationResult.from_xcom(context["ti"].xcom_pull(task_ids=self.register_task_id))
        mode = self.policy or None
        if mode == PromotionPolicy.APPROVAL:
            mode = PromotionPolicy.AUTO  # reaching this task means a person approved (see approve_promotion)
        result = self.run_stage(context, lambda: registry.promote_model(ctx, registered, mode=mode))
        self.log.info("%s", result["reason"])
        if result["action"] == "promote":
            self.emit(
                context,
                EventKind.MODEL_PROMOTED,
                f"{result['reason']} ({ctx.config.registered_model_name})",
                result,
            )
            registry.promotion_recorded(ctx, result["version"])
        if result["action"] == "shadow":
            self.emit(
                context,
                EventKind.SHADOW_STARTED,
                f"{result['reason']} ({ctx.config.registered_model_name})",
                result,
            )
        if result["action"] == registry.REFUSE:
            self.emit(
                context,
                EventKind.PROMOTION_REFUSED,
                f"{ctx.config.registered_model_name} v{result['version']} not promoted: {result['reason']}",
                result,
            )
        if result["action"] in ("keep", "shadow", registry.REFUSE):
            context["ti"].xcom_push(key="decision", value=result)
            raise AirflowSkipException(result["reason"])
        return result
