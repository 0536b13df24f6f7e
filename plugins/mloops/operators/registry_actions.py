"""The manual, audited registry actions of the operations DAG: promote, roll back, archive."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.sdk.exceptions import AirflowFailException

from mloops.contracts import EVENT_OF_ACTION, RegistryAction
from mloops.operators.base import MloopsStageOperator


def actor(context: Any) -> str:
    """Who started the run (the UI/API user), for audit tags."""
    dag_run = context.get("dag_run")
    return str(getattr(dag_run, "triggering_user_name", None) or "unknown")


class MLflowRegistryActionOperator(MloopsStageOperator):
    """Apply one audited registry action to a model (templated parameters come from the trigger form).

    :param model: model config name (templated).
    :param action: ``promote`` (a given version to champion), ``rollback`` (champion to previous) or
        ``archive`` (a version; never the champion) (templated).
    :param version: the version to promote or archive (templated).
    :param reason: why; recorded on every version touched (templated).
    :param allow_failed_tests: allow a version whose tests failed; the override is audited (templated).
    """

    template_fields: Sequence[str] = ("model", "action", "version", "reason", "allow_failed_tests")

    def __init__(
        self,
        *,
        model: str,
        partition_date: str | None = None,
        action: str,
        version: Any = None,
        reason: str = "",
        allow_failed_tests: Any = False,
        **kwargs: Any,
    ) -> None:
        self._init_stage(model, partition_date, **kwargs)
        self.action = action
        self.version = version
        self.reason = reason
        self.allow_failed_tests = allow_failed_tests

    def execute(self, context: Any) -> dict[str, Any]:
        from mloops.errors import RegistryError
        from mloops.stages import registry

        ctx = self.load(context)
        dag_run = context["dag_run"]
        try:
            result = registry.registry_action(
                ctx,
                action=str(self.action),
                version=None if self.version in (None, "") else str(self.version),
                reason=str(self.reason or ""),
                actor=actor(context),
                dag_run=f"{dag_run.dag_id}/{dag_run.run_id}",
                allow_failed_tests=bool(self.allow_failed_tests),
            ).to_xcom()
        except RegistryError as exc:
            raise AirflowFailException(str(exc)) from exc
        self.emit(
            context,
            EVENT_OF_ACTION[RegistryAction(result["action"])],
            f"{result['action']} {ctx.config.registered_model_name} v{result['version']} by "
            f"{result['audit']['by']}: {result['audit']['why']}",
            result,
        )
        self.log.info("%s", result)
        return result
