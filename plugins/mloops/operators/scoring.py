"""Batch scoring operator."""

from __future__ import annotations

from typing import Any

from mloops.contracts import Use
from mloops.operators.base import MloopsStageOperator


class MLflowScoreBatchOperator(MloopsStageOperator):
    """Score the interval's validated partition with the model loaded by its ``champion`` alias.

    Writes the predictions partition (each row carries the registered model and version) and, as
    the task's outlet, marks the predictions Asset. Skips with the reason when no champion exists.

    :param model: model config name (templated).
    :param partition_date: ISO date of the partition (templated); default: data interval start.
    """

    use = Use.SCORING

    def execute(self, context: Any) -> dict[str, Any]:
        from mloops.stages import score

        ctx = self.load(context)
        result = self.run_stage(context, lambda: score.score_batch(ctx))
        for asset in self.outlets:
            context["outlet_events"][asset].extra = {
                k: result[k] for k in ("model", "partition", "uri", "rows", "model_version")
            }
        self.log.info(
            "Scored %s rows of %s with v%s -> %s",
            result["rows"],
            ctx.ds,
            result["model_version"],
            result["uri"],
        )
        return result
