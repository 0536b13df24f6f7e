"""Staged rollout and automatic rollback operators: shadow scoring, shadow decision, rollback watch."""

from __future__ import annotations

from typing import Any

from mloops.contracts import EVENT_OF_ACTION, EventKind, RegistryAction, Use
from mloops.operators.base import MloopsStageOperator


class MLflowShadowScoreOperator(MloopsStageOperator):
    """Score the interval's validated batch with the challenger in shadow, beside the champion.

    Writes ``shadow/<model>/dt=<ds>/version=<v>/predictions.parquet``; never served, no Asset event.
    Skips with the reason when no challenger is in shadow.

    :param model: model config name (templated).
    :param partition_date: ISO date of the partition (templated); default: data interval start.
    """

    use = Use.SCORING

    def execute(self, context: Any) -> dict[str, Any]:
        from mloops.stages import shadow

        ctx = self.load(context)
        result = self.run_stage(context, lambda: shadow.score_shadow(ctx))
        self.log.info(
            "Shadow-scored %s rows of %s with challenger v%s (champion v%s) -> %s",
            result["rows"],
            ctx.ds,
            result["model_version"],
            result["champion_version"],
            result["uri"],
        )
        return result


class _RegistryStageOperator(MloopsStageOperator):
    def record(self, context: Any, ctx: Any, result: dict[str, Any]) -> None:
        """The event of a shadow decision; a promotion is recorded like ``promote_model``'s."""
        from mloops.stages import registry

        name = ctx.config.registered_model_name
        if result["action"] == "promote":
            payload = {**(result.get("promotion") or {}), "shadow": result}
            self.emit(context, EventKind.MODEL_PROMOTED, f"{result['reason']} ({name})", payload)
            registry.promotion_recorded(ctx, result["version"])
        elif result["action"] == "retire":
            self.emit(context, EventKind.SHADOW_RETIRED, f"{result['reason']} ({name})", result)
        elif result["action"] == "approve":
            self.emit(context, EventKind.SHADOW_PASSED, f"{result['reason']} ({name})", result)
        self.log.info("%s", result["reason"])


class ShadowDecisionOperator(_RegistryStageOperator):
    """Judge the challenger in shadow on the live labels joined so far (policies ``shadow`` and
    ``shadow_then_approval``; run in the registry pool).

    Once labels cover ``promotion.shadow_intervals`` intervals of its shadow predictions, it is
    promoted (event ``model_promoted``), offered for approval (``shadow_passed``; the approval and
    promotion tasks downstream read this task's XCom as the registration) or retired with the reason
    (``shadow_retired``; champion untouched). Before that it skips with the coverage so far.

    :param model: model config name (templated).
    :param partition_date: the run's date (templated); default: the data interval start.
    """

    def execute(self, context: Any) -> dict[str, Any]:
        from mloops.stages import shadow

        ctx = self.load(context)
        run_id = getattr(context.get("dag_run"), "run_id", None)
        result = self.run_stage(context, lambda: shadow.decide_shadow(ctx, run_id=run_id))
        self.record(context, ctx, result)
        return result


class ShadowPromoteOperator(_RegistryStageOperator):
    """Promote the challenger that passed its shadow, once a person approved it (``shadow_then_approval``).

    :param model: model config name (templated).
    :param decision_task_id: task whose XCom holds the shadow decision.
    """

    def __init__(
        self,
        *,
        model: str,
        partition_date: str | None = None,
        decision_task_id: str = "decide_shadow",
        **kwargs: Any,
    ) -> None:
        self._init_stage(model, partition_date, **kwargs)
        self.decision_task_id = decision_task_id

    def execute(self, context: Any) -> dict[str, Any]:
        from mloops.contracts import RegistrationResult
        from mloops.stages import shadow

        ctx = self.load(context)
        decided = RegistrationResult.from_xcom(context["ti"].xcom_pull(task_ids=self.decision_task_id))
        result = self.run_stage(context, lambda: shadow.promote_passed(ctx, decided))
        self.record(context, ctx, result)
        return result


class AutoRollbackOperator(MloopsStageOperator):
    """Roll ``champion`` back to ``previous`` when its live quality degraded after its promotion
    (``promotion.auto_rollback``; run in the registry pool). Audited like a manual rollback; records a
    ``model_rolled_back`` event, sent to the notifiers. Skips with the reason otherwise.

    :param model: model config name (templated).
    :param partition_date: the run's date (templated); default: the data interval start.
    """

    def execute(self, context: Any) -> dict[str, Any]:
        from mloops.stages import rollback

        ctx = self.load(context)
        dag_run = context["dag_run"]
        result = self.run_stage(
            context, lambda: rollback.check_rollback(ctx, dag_run=f"{dag_run.dag_id}/{dag_run.run_id}")
        )
        done = result["rollback"]
        self.emit(
            context,
            EVENT_OF_ACTION[RegistryAction.ROLLBACK],
            f"automatic rollback of {ctx.config.registered_model_name} from v{done['from_champion']} to "
            f"v{done['version']}: {result['reason']}",
            {**done, "check": {k: v for k, v in result.items() if k != "rollback"}},
        )
        self.log.info("%s", result["reason"])
        return result
