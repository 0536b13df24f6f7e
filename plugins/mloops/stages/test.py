"""Stage ``test_model``: every model gate on the interval's holdout, and the report that explains it.

Thresholds on the challenger's metrics, the challenger against the current champion on the same
holdout, per-slice minimums, the logged model reproducing the holdout predictions its training
recorded (the challenger's metrics come from those, so the holdout is not predicted again) and a
smoke test of the logged model as MLflow serves it. The report
(JSON + Markdown) is written under ``reports/`` and logged to the MLflow run.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from mloops import evaluation, explain, partitions, training
from mloops.contracts import Alias, Tag, TestResult, TrainingResult
from mloops.errors import ModelGateFailedError
from mloops.stages.layout import RunContext, holdout_predictions_path, reports_dir

if TYPE_CHECKING:
    import pandas as pd

    from mloops.adapters.mlflow_adapter import VersionInfo
    from mloops.evaluation import Check

log = logging.getLogger(__name__)


def test_model(ctx: RunContext, trained: TrainingResult) -> TestResult:
    """Run every model gate on the interval's holdout and write the report (JSON + Markdown)."""
    from mloops.adapters import mlflow_adapter

    client = mlflow_adapter.client(ctx.settings)
    holdout = partitions.read_parquet(partitions.from_uri(trained.holdout_uri))
    challenger = mlflow_adapter.load_sklearn_model(trained.model_uri)
    scored, reproduced = challenger_predictions(ctx, trained, challenger, holdout)
    metrics = scored.metrics()
    champion = mlflow_adapter.version_by_alias(client, ctx.config.registered_model_name, Alias.CHAMPION)
    champion_metrics, champion_check = compare_with_champion(ctx, trained, holdout, metrics, champion)
    checks = [
        *evaluation.threshold_checks(ctx.config, metrics),
        champion_check,
        *evaluation.slice_checks(ctx.config, holdout, scored.metrics),
        *reproduced,
        smoke_test(ctx, trained, holdout),
    ]
    payload = evaluation.report(
        ctx.config,
        ctx.ds,
        checks,
        metrics,
        {
            "run_id": trained.run_id,
            "model_uri": trained.model_uri,
            "champion_version": champion.version if champion else None,
            "champion_metrics": champion_metrics,
            "holdout_rows": int(len(holdout)),
        },
    )
    importances = explain_model(ctx, trained, challenger, holdout, champion)
    json_uri, md_uri = write_reports(ctx, trained, payload)
    result = TestResult(
        model=ctx.model,
        partition=ctx.ds,
        passed=payload["passed"],
        report_uri=json_uri,
        checks={c.name: c.passed for c in checks},
        metrics=metrics,
        champion_version=payload["champion_version"],
        importances=explain.top(importances),
    )
    if not result.passed:
        raise ModelGateFailedError(evaluation.gate_message(payload, md_uri), result=result.to_xcom())
    return result


test_model.__test__ = False  # type: ignore[attr-defined]  # a stage, not a pytest test


def challenger_predictions(
    ctx: RunContext, trained: TrainingResult, challenger: Any, holdout: pd.DataFrame
) -> tuple[training.Predictions, list[Check]]:
    """The challenger's predictions of the holdout, and the check that they are the logged model's.

    The training that fitted the model recorded them at the interval's place in the layout (the
    result only says it did: a path handed in through XCom is not followed); the logged model must
    reproduce them on the first smoke rows. With none recorded (a reused run) or none readable, the
    logged model predicts the holdout here, and there is nothing to reproduce.
    """
    path = holdout_predictions_path(ctx)
    uri = partitions.to_uri(path)
    if trained.holdout_predictions_uri is not None and trained.holdout_predictions_uri != uri:
        log.warning(
            "%s is not this interval's %s: predicting the holdout again", trained.holdout_predictions_uri, uri
        )
    elif trained.holdout_predictions_uri is not None:
        try:
            scored = training.Predictions.recorded(partitions.read_parquet(path), holdout, ctx.config)
        except (OSError, ValueError) as exc:
            log.warning("%s: predicting the holdout again: %s: %s", uri, type(exc).__name__, exc)
        else:
            rows = min(ctx.config.evaluation.smoke_rows, len(holdout))
            mismatch = scored.reproduced_by(challenger, holdout, ctx.config, rows)
            if mismatch is not None:
                mismatch = f"{trained.model_uri} does not reproduce {uri}: {mismatch}"
            return scored, [evaluation.reproduce_check(rows, mismatch)]
    return training.predictions(challenger, holdout, ctx.config), []


def compare_with_champion(
    ctx: RunContext,
    trained: TrainingResult,
    holdout: pd.DataFrame,
    metrics: dict[str, float | None],
    champion: VersionInfo | None,
) -> tuple[dict[str, float | None] | None, Check]:
    """The champion's metrics on the same holdout, and the check of the challenger against them."""
    from mloops.adapters import mlflow_adapter

    if champion is None:
        return None, evaluation.champion_check(ctx.config, metrics, None, None, None)
    label = f"champion v{champion.version}"
    if champion.run_id == trained.run_id:
        return metrics, evaluation.champion_check(ctx.config, metrics, metrics, f"{label} (this run)", None)
    try:
        champion_metrics = training.evaluate(
            mlflow_adapter.load_sklearn_model(champion.uri), holdout, ctx.config
        )
    except Exception as exc:  # noqa: BLE001 - an unscorable champion is a reported failure, not a crash
        error = f"{label} cannot score this holdout: {type(exc).__name__}: {exc}"
        return None, evaluation.champion_check(ctx.config, metrics, None, label, error)
    return champion_metrics, evaluation.champion_check(ctx.config, metrics, champion_metrics, label, None)


def smoke_test(ctx: RunContext, trained: TrainingResult, holdout: pd.DataFrame) -> Check:
    """Load the logged model as MLflow serves it (pyfunc) and predict a few holdout rows."""
    from mloops.adapters import mlflow_adapter

    sample = training.feature_frame(holdout.head(ctx.config.evaluation.smoke_rows), ctx.config)
    try:
        predictions = mlflow_adapter.load_pyfunc_model(trained.model_uri).predict(sample)
    except Exception as exc:  # noqa: BLE001 - the smoke test reports any load or predict failure
        return evaluation.smoke_check(None, len(sample), f"{type(exc).__name__}: {exc}")
    return evaluation.smoke_check([float(v) for v in predictions], len(sample), None)


def explain_model(
    ctx: RunContext, trained: TrainingResult, model: Any, holdout: pd.DataFrame, champion: VersionInfo | None
) -> dict[str, float]:
    """Permutation importance of every feature on the holdout, logged with the run next to the
    champion's (what changed in what the model relies on)."""
    import json

    from mloops.adapters import mlflow_adapter

    importances = explain.permutation_importances(model, holdout, ctx.config)
    client = mlflow_adapter.client(ctx.settings)
    previous = None
    if champion is not None and champion.run_id and champion.run_id != trained.run_id:
        recorded = mlflow_adapter.get_run(client, champion.run_id).tags.get(Tag.IMPORTANCES)
        previous = json.loads(recorded) if recorded else None
    changes = explain.ranking_changes(importances, previous)
    table = {
        "metric": ctx.config.evaluation.primary_metric,
        "rows": min(len(holdout), ctx.config.evaluation.explain_rows),
        "repeats": ctx.config.evaluation.explain_repeats,
        "champion_version": champion.version if champion else None,
        "features": changes,
        "shifts": explain.biggest_shifts(changes),
    }
    mlflow_adapter.log_texts(
        client, trained.run_id, {"importances.json": partitions.json_text(table)}, "explanation"
    )
    mlflow_adapter.set_run_tags(
        client, trained.run_id, {Tag.IMPORTANCES: json.dumps(explain.top(importances))}
    )
    return importances


def write_reports(ctx: RunContext, trained: TrainingResult, payload: dict[str, Any]) -> tuple[str, str]:
    """Write the JSON and Markdown reports, log them to the run, tag the run's test status."""
    from mloops.adapters import mlflow_adapter

    texts = {
        "model_tests.json": partitions.json_text(payload),
        "model_tests.md": evaluation.report_markdown(payload),
    }
    json_path, md_path = (
        partitions.write_text(reports_dir(ctx) / name, text) for name, text in texts.items()
    )
    client = mlflow_adapter.client(ctx.settings)
    mlflow_adapter.log_texts(client, trained.run_id, texts, artifact_path="model_tests")
    mlflow_adapter.set_run_tags(
        client, trained.run_id, {Tag.TEST_STATUS: "passed" if payload["passed"] else "failed"}
    )
    return partitions.to_uri(json_path), partitions.to_uri(md_path)
