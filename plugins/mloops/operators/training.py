"""Training and model-test operators."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mloops.operators.base import MloopsStageOperator


class MLflowTrainModelOperator(MloopsStageOperator):
    """Train the model on the validated partitions of its window and log the run to MLflow.

    Logs params, holdout metrics, the input datasets (``mlflow.data``), signature, input example
    and tags linking the run to its data window, data fingerprint, validation verdicts and this
    Airflow run. A re-run with the same data and config reuses the existing run.

    :param model: model config name (templated).
    :param partition_date: ISO date of the partition (templated); default: data interval start.
    :param estimator_overrides: estimator parameters replacing the config's (templated); validated
        against the estimator before training.
    """

    template_fields: Sequence[str] = (*MloopsStageOperator.template_fields, "estimator_overrides")
    changes_fleet_row = False  # an MLflow run, not yet a version: the row shows versions

    def __init__(
        self,
        *,
        model: str,
        partition_date: str | None = None,
        estimator_overrides: dict[str, Any] | str | None = None,
        **kwargs: Any,
    ) -> None:
        self._init_stage(model, partition_date, **kwargs)
        self.estimator_overrides = estimator_overrides

    def execute(self, context: Any) -> dict[str, Any]:
        from mloops.stages import train

        ctx = self.load(context)
        # Rendered by then: ``render_template_as_native_obj`` turns the template into the param's dict.
        overrides = self.estimator_overrides if isinstance(self.estimator_overrides, dict) else None
        overrides = overrides or None
        result = self.run_stage(
            context,
            lambda: train.train_model(ctx, overrides=overrides, stale_after=self.execution_timeout),
        )
        self.log.info(
            "%s run %s (%s): %s",
            "Reused" if result["reused"] else "Logged",
            result["run_id"],
            result["model_uri"],
            result["metrics"],
        )
        return result


class MLflowTestModelOperator(MloopsStageOperator):
    """Run the model gates on the interval's holdout: thresholds, champion comparison, slices, smoke test.

    Writes a JSON and Markdown report (also logged to the MLflow run) that states each check as
    value vs threshold and pass/fail; fails the task with that explanation when a gate fails.

    :param model: model config name (templated).
    :param train_task_id: task whose XCom holds the training result.
    """

    def __init__(
        self,
        *,
        model: str,
        partition_date: str | None = None,
        train_task_id: str = "train_model",
        **kwargs: Any,
    ) -> None:
        self._init_stage(model, partition_date, **kwargs)
        self.train_task_id = train_task_id

    def execute(self, context: Any) -> dict[str, Any]:
        from mloops.contracts import TrainingResult
        from mloops.stages import test

        ctx = self.load(context)
        trained = TrainingResult.from_xcom(context["ti"].xcom_pull(task_ids=self.train_task_id))
        result = self.run_stage(context, lambda: test.test_model(ctx, trained))
        self.log.info("All model gates passed: %s (report %s)", result["checks"], result["report_uri"])
        return result
