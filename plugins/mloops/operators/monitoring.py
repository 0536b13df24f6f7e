"""Drift check and the retrain trigger that closes the loop through an Airflow Asset."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.sdk.exceptions import AirflowSkipException

from mloops.contracts import EventKind, Use
from mloops.operators.base import MloopsStageOperator, run_type
from mloops.partitions import Partition, start_of


class EvidentlyDriftCheckOperator(MloopsStageOperator):
    """Compare the current window with the champion's training reference using Evidently.

    Data drift per feature (test pinned per column type in the config), prediction drift and
    quality on delayed labels; saves the reports (HTML, JSON) and appends the numbers to the metrics
    store. Returns the findings and the policy verdict; never fails because drift was found.

    :param model: model config name (templated).
    :param partition_date: last partition of the current window (templated); default: the partition
        holding the data interval start.
    """

    use = Use.SCORING

    def execute(self, context: Any) -> dict[str, Any]:
        from mloops.stages import drift

        ctx = self.load(context)
        run_id = getattr(context.get("dag_run"), "run_id", None)
        result = self.run_stage(context, lambda: drift.check_drift(ctx, run_id=run_id))
        self.log.info(
            "Window %s..%s vs champion v%s: %.0f%% of features drifted %s; policy %s. Report: %s",
            result["window_start"],
            result["window_end"],
            result["champion_version"],
            100 * result["share"],
            result["drifted_columns"],
            "BREACHED: " + "; ".join(result["reasons"]) if result["breached"] else "ok",
            result["report_uri"],
        )
        if result["breached"]:
            payload = {
                k: result[k] for k in ("window_start", "window_end", "drifted_columns", "share", "report_uri")
            }
            self.emit(context, EventKind.DRIFT_DETECTED, "; ".join(result["reasons"]), payload)
        return result


class DriftRetrainTriggerOperator(MloopsStageOperator):
    """Emit the model's drift Asset event (which schedules its training DAG) when the policy is breached.

    The event's extra carries the model, window, drifted columns with scores, reasons and report
    location. Guards, each an explained skip: no breach; ``monitoring.retrain_on_drift`` off; a
    backfill run (history is re-checked, never acted on); a retrain already triggered for a window
    ending within ``monitoring.cooldown_hours`` (data time).

    :param model: model config name (templated).
    :param check_task_id: task whose XCom holds the drift check result.
    """

    template_fields: Sequence[str] = MloopsStageOperator.template_fields

    def __init__(
        self,
        *,
        model: str,
        partition_date: str | None = None,
        check_task_id: str = "check_drift",
        **kwargs: Any,
    ) -> None:
        self._init_stage(model, partition_date, **kwargs)
        self.check_task_id = check_task_id

    def execute(self, context: Any) -> dict[str, Any]:
        from mloops import drift_event, monitoring, store

        ctx = self.load(context)
        config, settings = ctx.config, ctx.settings
        finding = context["ti"].xcom_pull(task_ids=self.check_task_id)
        if not finding or not finding["breached"]:
            raise AirflowSkipException("drift policy not breached: no retraining")
        window_end = Partition.parse(finding["window_end"], config.interval).start
        if not config.monitoring.retrain_on_drift:
            raise AirflowSkipException("drift found but monitoring.retrain_on_drift is false")
        if run_type(context) == "backfill":
            raise AirflowSkipException("drift found in a backfill run: backfills never trigger retraining")
        previous = store.read_events(
            settings.metrics_db_uri, model=config.name, kind=EventKind.RETRAIN_TRIGGERED
        )
        last = max((start_of(e["partition"]) for e in previous if e["partition"]), default=None)
        if last is not None and monitoring.cooldown_blocks(
            last, window_end, config.monitoring.cooldown_hours
        ):
            raise AirflowSkipException(
                f"drift found but a retrain was triggered for the window ending "
                f"{Partition.containing(last, config.interval).key}; "
                f"cooldown is {config.monitoring.cooldown_hours} h of data time"
            )
        extra = drift_event.build(finding, config).extra()
        for asset in self.outlets:
            context["outlet_events"][asset].extra = extra
        self.emit(context, EventKind.RETRAIN_TRIGGERED, "; ".join(finding["reasons"]), extra)
        self.log.info("Retraining of %s requested: %s", config.name, "; ".join(finding["reasons"]))
        return extra
