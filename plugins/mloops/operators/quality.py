"""Data-quality gate operator."""

from __future__ import annotations

from typing import Any

from mloops.operators.base import MloopsStageOperator


class GXValidateBatchOperator(MloopsStageOperator):
    """Validate the interval's partition with the model's Great Expectations suite.

    A failing batch is quarantined (copied with its validation result, never trained on) and the
    task fails with every failed expectation, observed vs expected, and the Data Docs location.
    With ``quality.on_failure: quarantine_rows`` a batch used without its bad rows succeeds and
    records a ``rows_quarantined`` event (a warning) naming how many rows went where and why.
    A missing partition fails the task with the path it looked for. Returns the verdict dict.

    :param model: model config name (templated).
    :param partition_date: ISO date of the partition (templated); default: data interval start.
    :param use: ``training`` (the labeled contract; also validates the window's unvalidated
        partitions) or ``scoring`` (no target required; this partition only).
    """

    def __init__(
        self, *, model: str, partition_date: str | None = None, use: str = "training", **kwargs: Any
    ) -> None:
        from mloops.contracts import Use

        self._init_stage(model, partition_date, **kwargs)
        self.use = Use(use)

    def execute(self, context: Any) -> dict[str, Any]:
        from mloops.contracts import EventKind, Status
        from mloops.hooks import read_sql
        from mloops.stages import validate

        ctx = self.load(context)
        result = self.run_stage(context, lambda: validate.validate_batch(ctx, sql_reader=read_sql))
        if result["status"] == Status.PASSED_WITH_QUARANTINED_ROWS:
            self.log.warning("%s", result["message"])
            self.emit(context, EventKind.ROWS_QUARANTINED, result["message"], result)
        self.log.info(
            "Partition %s of %s passed (%s rows); Data Docs: %s",
            ctx.ds,
            ctx.model,
            result["rows"],
            result["docs_url"],
        )
        return result
