"""Label feed operator."""

from __future__ import annotations

from typing import Any

from mloops.contracts import Use
from mloops.operators.base import MloopsStageOperator


class LabelFeedJoinOperator(MloopsStageOperator):
    """Join the ground truth that arrived on the run's date to the predictions that were served.

    Reads the delivery of the model's ``labels.source``, writes the join under each prediction's
    interval and serving version, keeps labels that join nothing in the unmatched area, and records
    coverage, lateness, unmatched counts and live quality per version in the metrics store, then
    rewrites those versions' model cards. A day without a delivery joins nothing and still refreshes
    coverage and quality. A delivery without its id or label column fails the task naming the columns
    it has.

    :param model: model config name (templated).
    :param partition_date: the arrival date (templated); default: the data interval start.
    """

    use = Use.SCORING

    def execute(self, context: Any) -> dict[str, Any]:
        from mloops.hooks import read_sql
        from mloops.stages import labels

        ctx = self.load(context)
        run_id = getattr(context.get("dag_run"), "run_id", None)
        result = self.run_stage(context, lambda: labels.join_labels(ctx, sql_reader=read_sql, run_id=run_id))
        self.log.info(
            "Labels arrived %s: %s rows, %s joined, %s unmatched (kept in %s), %s rejected, %s duplicates",
            result["arrival"],
            result["arrived"],
            result["matched"],
            result["unmatched"],
            result["unmatched_uri"],
            result["rejected"],
            result["duplicates"],
        )
        for entry in result["coverage"]:
            self.log.info(
                "  predictions of %s (v%s): %d/%d labeled (%.0f%%), lateness median %s max %s days",
                entry["partition"],
                entry["model_version"],
                entry["labeled"],
                entry["predictions"],
                100 * (entry["coverage"] or 0.0),
                entry["lateness_median_days"],
                entry["lateness_max_days"],
            )
        if result.get("shadow_labeled_uris"):
            self.log.info("  joined to shadow predictions too: %s", result["shadow_labeled_uris"])
        for version, metrics in result["quality"].items():
            self.log.info(
                "  live quality of v%s on %s..%s: %s",
                version,
                result["quality_window_start"],
                ctx.ds,
                metrics,
            )
        for version, uri in result["model_cards"].items():
            self.log.info("  model card of v%s rewritten with its live quality: %s", version, uri)
        return result
