"""Trigger-form checks that need more than the Param JSON schema, run before any work."""

from __future__ import annotations

from typing import Any

from airflow.sdk.exceptions import AirflowFailException

from mloops.contracts import PromotionPolicy
from mloops.operators.base import MloopsStageOperator
from mloops.partitions import in_schedule


class CheckRunParamsOperator(MloopsStageOperator):
    """Refuse invalid run parameters before any work, naming the parameter.

    The trigger form already enforces types and enums (Airflow validates ``Param`` schemas); this
    checks what a schema cannot: the partition is a real partition of the model's interval (a date, or
    a datetime on an interval boundary) inside the model's schedule, and
    estimator overrides are parameters the configured estimator accepts, with values it accepts. The
    extra of a drift event that started the run passes the same partition check, and the others of
    :func:`mloops.drift_event.parse`, when the task loads its run context.

    :param model: model config name (templated).
    """

    changes_fleet_row = False  # it only reads

    def execute(self, context: Any) -> dict[str, Any]:
        from mloops.errors import TrainingError
        from mloops.training import build_pipeline

        config = self.load(context).config
        params = context.get("params") or {}
        problems = []
        raw_date = params.get("partition_date")
        if raw_date:
            try:
                in_schedule(raw_date, config.interval, config.schedule.start_date)
            except ValueError as exc:
                problems.append(f"partition_date: {exc}")
        overrides = params.get("estimator_overrides") or {}
        if not isinstance(overrides, dict):
            problems.append(
                f"estimator_overrides: expected an object of parameter: value, got {type(overrides).__name__}"
            )
        elif overrides:
            try:
                build_pipeline(config, overrides)
            except TrainingError as exc:
                problems.append(f"estimator_overrides: {exc}")
        mode = params.get("promotion_mode")
        if mode not in (None, "", *PromotionPolicy):
            problems.append(f"promotion_mode: {mode!r} is not one of {', '.join(PromotionPolicy)}")
        if problems:
            raise AirflowFailException("Invalid run parameters:\n  - " + "\n  - ".join(problems))
        return {"partition_date": raw_date, "estimator_overrides": overrides, "promotion_mode": mode}
