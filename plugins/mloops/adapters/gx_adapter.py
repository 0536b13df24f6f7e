"""The one place mloops calls Great Expectations (GX Core 1.x).

A file-backed context per model keeps every validation result, so the model's Data Docs site lists
the whole history. Runs of one model are serialized by the training DAG (``max_active_runs=1``);
different models use different folders, so nothing here needs locking.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mloops.partitions import Partition
from mloops.quality import RowViolation, ValidationOutcome, spec_columns, summarize_failures

if TYPE_CHECKING:
    import pandas as pd

_RESULT_FORMAT = {
    "result_format": "SUMMARY",
    "partial_unexpected_count": 10,
    "return_unexpected_index_query": False,
}


def _exception_message(exception_info: Any) -> str | None:
    """GX nests exception info per metric; return the first message raised, if any."""
    if not isinstance(exception_info, dict):
        return None
    if exception_info.get("raised_exception"):
        return exception_info.get("exception_message")
    for value in exception_info.values():
        if isinstance(value, dict) and value.get("raised_exception"):
            return value.get("exception_message")
    return None


def _items(results: Any) -> list[dict[str, Any]]:
    """GX per-expectation results as the plain dicts :func:`summarize_failures` reads."""
    return [
        {
            "type": r.expectation_config.type,
            "kwargs": {k: v for k, v in r.expectation_config.kwargs.items() if k != "batch_id"},
            "success": bool(r.success),
            "result": dict(r.result or {}),
            "exception": _exception_message(r.exception_info),
        }
        for r in results
        if r.expectation_config is not None  # always set for results of a suite run
    ]


#: Suite ``meta`` key holding the fingerprint of the expectations (and of how we run them).
FINGERPRINT_KEY = "mloops_fingerprint"


def _fingerprint(expectations: Sequence[dict[str, Any]]) -> str:
    payload = {
        "expectations": list(expectations),
        "result_format": _RESULT_FORMAT,
        "actions": ["update_data_docs"],
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _stored_checkpoint(context: Any, model: str, fingerprint: str) -> Any | None:
    """The model's stored checkpoint if its suite holds exactly these expectations, else ``None``.

    GX's ``add_or_update`` compares every expectation with every stored one through pydantic (about
    10 s for 100 expectations, more than validating 1M rows), so an unchanged suite is reused as is
    and a changed one is replaced whole.
    """
    from great_expectations.exceptions import DataContextError

    try:
        suite = context.suites.get(model)
        checkpoint = context.checkpoints.get(model)
    except DataContextError:
        return None
    return checkpoint if (suite.meta or {}).get(FINGERPRINT_KEY) == fingerprint else None


def _delete_definitions(context: Any, model: str) -> None:
    """Remove the checkpoint, validation definition and suite of ``model`` (in dependency order);
    validation results, and so the Data Docs history, are kept."""
    from great_expectations.exceptions import DataContextError

    for factory in (context.checkpoints, context.validation_definitions, context.suites):
        try:
            factory.delete(model)
        except DataContextError:
            pass


def validate_dataframe(
    frame: pd.DataFrame,
    *,
    model: str,
    partition: Partition | dt.date,
    expectations: Sequence[dict[str, Any]],
    project_dir: Path,
) -> ValidationOutcome:
    """Validate ``frame`` against ``expectations`` and rebuild the model's Data Docs site."""
    import great_expectations as gx
    from great_expectations.checkpoint import UpdateDataDocsAction
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.data_context.types.base import ProgressBarsConfig
    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

    project_dir.mkdir(parents=True, exist_ok=True)
    context = gx.get_context(mode="file", project_root_dir=str(project_dir))
    context.variables.progress_bars = ProgressBarsConfig(globally=False)

    source = context.data_sources.add_or_update_pandas(name="mloops")
    try:
        asset = source.get_asset(model)
    except LookupError:
        asset = source.add_dataframe_asset(name=model)
    try:
        batch_definition = asset.get_batch_definition("partition")
    except KeyError:
        batch_definition = asset.add_batch_definition_whole_dataframe("partition")

    fingerprint = _fingerprint(expectations)
    checkpoint = _stored_checkpoint(context, model, fingerprint)
    if checkpoint is None:
        _delete_definitions(context, model)
        suite = context.suites.add(
            gx.ExpectationSuite(
                name=model,
                expectations=[
                    ExpectationConfiguration(type=e["type"], kwargs=e["kwargs"]).to_domain_obj()
                    for e in expectations
                ],
                meta={FINGERPRINT_KEY: fingerprint},
            )
        )
        definition = context.validation_definitions.add(
            gx.ValidationDefinition(name=model, data=batch_definition, suite=suite)
        )
        checkpoint = context.checkpoints.add(
            gx.Checkpoint(
                name=model,
                validation_definitions=[definition],
                actions=[UpdateDataDocsAction(name="update_data_docs")],
                result_format=_RESULT_FORMAT,
            )
        )
    partition = Partition.of(partition)
    result = checkpoint.run(
        batch_parameters={"dataframe": frame},
        run_id=RunIdentifier(run_name=f"{model}-{partition.key}", run_time=partition.start),
    )
    validation = next(iter(result.run_results.values()))
    items = _items(validation.results)
    stats = validation.statistics
    docs = context.get_docs_sites_urls()
    return ValidationOutcome(
        success=bool(validation.success),
        evaluated=int(stats["evaluated_expectations"]),
        failed=int(stats["unsuccessful_expectations"]),
        failures=tuple(summarize_failures(items)),
        docs_url=docs[0]["site_url"] if docs else None,
        result=validation.describe_dict(),
    )


# ----------------------------------------------------------------------- row-level quarantine, in memory

#: ``COMPLETE`` is the one result format whose ``unexpected_index_list`` is not capped (SUMMARY keeps
#: 20). The frame's RangeIndex is the row key, so no id column is needed.
_ROWS_RESULT_FORMAT = {
    "result_format": "COMPLETE",
    "partial_unexpected_count": 0,
    "return_unexpected_index_query": False,
}


def _in_memory(
    frame: pd.DataFrame, expectations: Sequence[dict[str, Any]], result_format: dict[str, Any]
) -> Any:
    """Validate in an ephemeral context: nothing is stored, the model's Data Docs keep only its
    checkpoint runs (with SUMMARY results), so a batch with many bad rows does not write every row
    index into the validation history."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig
    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    batch = (
        context.data_sources.add_pandas(name="mloops")
        .add_dataframe_asset(name="batch")
        .add_batch_definition_whole_dataframe("whole")
        .get_batch(batch_parameters={"dataframe": frame})
    )
    suite = gx.ExpectationSuite(
        name="mloops_rows",
        expectations=[
            ExpectationConfiguration(type=e["type"], kwargs=e["kwargs"]).to_domain_obj() for e in expectations
        ],
    )
    return batch.validate(suite, result_format=result_format)


def failing_rows(frame: pd.DataFrame, expectations: Sequence[dict[str, Any]]) -> list[RowViolation]:
    """The rows each of the (row-level) ``expectations`` finds unexpected, for every one that fails.

    ``frame`` must have a 0-based RangeIndex: GX reports index labels, which are then row positions.
    A failure GX reports without an index list (an exception, a type check on a typed column) comes
    back with ``rows=None``: it cannot be split by row.
    """
    if not expectations:
        return []
    import pandas as pd

    if not frame.index.equals(pd.RangeIndex(len(frame))):
        raise ValueError("failing_rows needs a frame with a 0-based RangeIndex (reset_index(drop=True))")
    result = _in_memory(frame, expectations, _ROWS_RESULT_FORMAT)
    violations = []
    for r in result.results:
        if r.success or r.expectation_config is None:
            continue
        kwargs = r.expectation_config.kwargs
        index = (r.result or {}).get("unexpected_index_list")
        located = _exception_message(r.exception_info) is None and isinstance(index, list)
        rows = tuple(sorted({int(i) for i in index})) if located and index is not None else None
        violations.append(RowViolation(r.expectation_config.type, spec_columns(kwargs), rows))
    return violations


def check_in_memory(frame: pd.DataFrame, expectations: Sequence[dict[str, Any]]) -> ValidationOutcome:
    """Validate ``frame`` (the kept rows of a split batch) without touching the Data Docs history."""
    result = _in_memory(frame, expectations, _RESULT_FORMAT)
    items = _items(result.results)
    return ValidationOutcome(
        success=bool(result.success),
        evaluated=int(result.statistics["evaluated_expectations"]),
        failed=int(result.statistics["unsuccessful_expectations"]),
        failures=tuple(summarize_failures(items)),
        result=result.describe_dict(),
    )
