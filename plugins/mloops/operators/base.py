"""What every mloops stage operator shares: the model, the partition it works on, and failure policy."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, NoReturn

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from mloops import warm
from mloops.config_files import find_model_config
from mloops.contracts import BUNDLE_VERSION, EventKind, StageResult, Tag, Use
from mloops.errors import (
    InvalidParamsError,
    MloopsError,
    ModelGateFailedError,
    ModelIntegrityError,
    PartitionMissingError,
    ServiceAuthError,
    SkipStage,
    TransientError,
    ValidationFailedError,
    bounded,
    bounded_payload,
)
from mloops.partitions import DAY, Partition
from mloops.settings import get_settings

if TYPE_CHECKING:
    from mloops.config import ModelConfig
    from mloops.drift_event import DriftEvent
    from mloops.settings import Settings
    from mloops.stages.layout import RunContext

#: Data problems a retry cannot fix: fail at once instead of retrying.
NOT_RETRYABLE = (MloopsError,)

#: Failures that are also events (stored, and sent to the configured notifiers).
FAILURE_EVENTS: dict[type[MloopsError], EventKind] = {
    ValidationFailedError: EventKind.BATCH_QUARANTINED,
    PartitionMissingError: EventKind.BATCH_MISSING,
    ModelGateFailedError: EventKind.GATE_FAILED,
    ModelIntegrityError: EventKind.MODEL_REFUSED,
}


def run_partition(context: Any, length: dt.timedelta = DAY, override: str | None = None) -> Partition:
    """The partition (of interval ``length``) a run works on: an explicit one, else the partition
    holding the data interval's start.

    An explicit partition (the task's ``partition_date``, ``params.partition_date``, a drift Asset
    event's ``partition_date``) goes through :meth:`Partition.parse`: a date for a daily model, a
    datetime on an interval boundary for a sub-daily one; anything else is refused naming the value.
    Manual runs in Airflow 3 may have no logical date and so no data interval; they then fall back
    to the run's ``run_after``.
    """
    params = context.get("params") or {}
    explicit = override or params.get("partition_date") or drift_context(context).get("partition_date")
    if explicit:
        try:
            return Partition.parse(explicit, length)
        except ValueError as exc:
            raise InvalidParamsError(f"partition_date: {exc}") from None
    for key in ("data_interval_start", "logical_date"):
        value = context.get(key)
        if value is not None:
            return Partition.containing(value, length)
    return Partition.containing(context["dag_run"].run_after, length)


def drift_context(context: Any) -> dict[str, Any]:
    """The extra of the drift event that started this run, if an Asset event did (latest window
    wins), unchecked: :func:`drift_trigger` checks it."""
    from mloops import drift_event

    events = context.get("triggering_asset_events") or {}
    extras = (getattr(event, "extra", None) for asset_events in events.values() for event in asset_events)
    return dict(drift_event.latest(extras) or {})


def drift_trigger(context: Any, config: ModelConfig, settings: Settings) -> DriftEvent | None:
    """The checked drift event that started this run, or ``None``; a bad one raises
    :class:`~mloops.errors.InvalidParamsError` naming the field, the model and the value."""
    from mloops import drift_event, partitions
    from mloops.stages.layout import monitoring_root

    extra = drift_context(context)
    if not extra:
        return None
    root = partitions.to_uri(monitoring_root(settings.data_root, config.name))
    return drift_event.parse(extra, config, report_root=root)


def run_type(context: Any) -> str:
    """``scheduled``, ``manual``, ``backfill``, ``asset_triggered``, ... of the current DAG run."""
    value = getattr(context.get("dag_run"), "run_type", "") or ""
    return str(getattr(value, "value", value))


def lineage(context: Any, drift: DriftEvent | None = None) -> dict[str, str]:
    """Tags that tie MLflow objects to the Airflow run that produced them (and to the checked drift
    event that started it)."""
    dag_run = context.get("dag_run")
    ti = context.get("ti")
    out = {
        "airflow.dag_id": getattr(dag_run, "dag_id", "") or "",
        "airflow.run_id": getattr(dag_run, "run_id", "") or "",
        "airflow.run_type": run_type(context),
    }
    if ti is not None:
        out["airflow.try_number"] = str(getattr(ti, "try_number", ""))
    bundle_version = getattr(dag_run, "bundle_version", None)
    if bundle_version:  # a versioned DAG bundle (git): the commit the run's code came from
        out[BUNDLE_VERSION] = str(bundle_version)
    reason = (context.get("params") or {}).get("reason")
    if reason:
        out[Tag.REASON] = str(reason)
    if drift is not None:
        out.update(drift.tags())
    return out


def emit_event(
    context: Any,
    model: str,
    kind: str,
    message: str,
    payload: dict[str, Any] | None = None,
    partition_override: str | None = None,
    length: dt.timedelta = DAY,
) -> None:
    """Record an event of ``model`` for the run's partition (interval ``length``): log, events table,
    notifiers."""
    from mloops import alerts

    dag_run = context.get("dag_run")
    try:
        day: Partition | None = run_partition(context, length, partition_override)
    except MloopsError:
        day = None
    alerts.emit(
        kind,
        model,
        message,
        payload=payload,
        partition=day,
        dag_id=getattr(dag_run, "dag_id", None),
        run_id=getattr(dag_run, "run_id", None),
    )


class MloopsStageOperator(BaseOperator):
    """Base of the stage operators.

    :param model: name of the model config in ``include/models`` (``MLOOPS_MODELS_DIR``).
    :param partition_date: the partition to process (templated): a date for a daily model, a
        datetime on an interval boundary for a sub-daily one; by default the partition holding the
        run's data interval start.
    """

    template_fields: Sequence[str] = ("model", "partition_date")
    ui_color = "#e8f0fe"
    #: Whose batches the stage works on (verdicts and snapshots are kept per use).
    use: Use = Use.TRAINING
    #: The model's partition interval, known once :meth:`load` read its config (events use it).
    interval: dt.timedelta = DAY
    #: Whether the stage's success changes what the model's fleet row shows (its verdicts, registry
    #: versions, metrics, events, scored dates or reports). A refresh costs an MLflow client and four
    #: registry queries; a stage that changes none of them skips it (failures always refresh).
    changes_fleet_row: bool = True

    def __init__(self, *, model: str, partition_date: str | None = None, **kwargs: Any) -> None:
        self._init_stage(model, partition_date, **kwargs)

    def _init_stage(self, model: str, partition_date: str | None, **kwargs: Any) -> None:
        """What every stage operator's ``__init__`` does with the parameters all of them share.

        A subclass with parameters of its own calls this instead of ``super().__init__``: Airflow
        wraps each ``__init__`` of the class chain (``apply_defaults``), and each wrapper deep-copies
        the DAG's params, so one ``__init__`` between the operator's and ``BaseOperator``'s would
        cost every task one more copy at each parse (a third of a training DAG's tasks' setup).
        """
        super().__init__(**kwargs)
        self.model = model
        self.partition_date = partition_date

    def load(self, context: Any) -> RunContext:
        """The run context of this task: its model's config, its partition, the settings, its lineage."""
        from mloops.stages.layout import RunContext

        settings = get_settings()
        try:
            config = find_model_config(self.model, settings.models_dir)
            self.interval = config.interval
            drift = drift_trigger(context, config, settings)
            day = run_partition(context, config.interval, self.partition_date)
        except MloopsError as exc:
            raise AirflowFailException(bounded(str(exc))) from exc
        return RunContext(config, day, settings, lineage(context, drift), self.use)

    def emit(self, context: Any, kind: str, message: str, payload: dict[str, Any] | None = None) -> None:
        """Record an event for this task's model and partition (see :mod:`mloops.alerts`)."""
        emit_event(context, self.model, kind, message, payload, self.partition_date, self.interval)

    def refresh_fleet_row(self) -> None:
        """Bring the model's row of the fleet dashboard's snapshot up to date (never fails the task)."""
        from mloops.fleet import collect

        collect.record_quietly(str(self.model))

    def post_execute(self, context: Any, result: Any = None) -> None:
        super().post_execute(context, result)
        if self.changes_fleet_row:
            self.refresh_fleet_row()

    def run_stage(self, context: Any, stage: Callable[[], StageResult]) -> dict[str, Any]:
        """Run a stage and return its result as the XCom dict.

        An intended skip (:class:`~mloops.errors.SkipStage`) ends the task ``skipped`` with its
        reason. On a data or gate failure the stage's result and the event are published, then the
        task fails without retrying; a :class:`~mloops.errors.TransientError` (a store unreachable, a
        lock held) fails it with its message and leaves the retry to Airflow. A service that refuses
        the credentials (:class:`~mloops.errors.ServiceAuthError`, or MLflow's HTTP 401/403 on a later
        call) fails it at once, naming the service, its masked URI and what was being done.
        """
        self.log.info("mloops: %s", warm.start_report())
        try:
            return stage().to_xcom()
        except SkipStage as exc:
            self.log.info("Skipped: %s", exc)
            raise AirflowSkipException(str(exc)) from exc
        except TransientError as exc:
            retryable = type(exc)(f"{self.task_id} of model {self.model!r}: {exc}")
            self.log.error("%s (the task is retried if it has retries left)", retryable)
            raise retryable from exc
        except ServiceAuthError as exc:
            self._refused(exc)
        except NOT_RETRYABLE as exc:
            message = bounded(str(exc))
            if exc.result is not None:
                context["ti"].xcom_push(key="failure", value=bounded_payload(exc.result))
            kind = next((k for t, k in FAILURE_EVENTS.items() if isinstance(exc, t)), None)
            if kind:
                self.emit(context, kind, message, exc.result)
            self.log.error("%s", message)
            self.refresh_fleet_row()
            raise AirflowFailException(message) from exc
        except Exception as exc:
            from mloops.adapters import mlflow_adapter

            uri = get_settings().mlflow_tracking_uri
            refused = mlflow_adapter.refusal(exc, uri, f"running {self.task_id}")
            if refused is None:
                raise
            self._refused(refused, cause=exc)

    def _refused(self, exc: ServiceAuthError, cause: BaseException | None = None) -> NoReturn:
        """A service refused mloops' credentials: fail at once (a retry would be refused the same way)."""
        message = bounded(f"{self.task_id} of model {self.model!r}: {exc}")
        self.log.error("%s (not retried: fix the credentials or the permission, then clear it)", message)
        raise AirflowFailException(message) from (cause or exc)
