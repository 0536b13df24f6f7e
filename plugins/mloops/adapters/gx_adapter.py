"""The one place mloops calls Great Expectations (GX Core 1.x).

A file-backed context per model keeps every validation result, and the model's Data Docs site a page
for each; its index lists the newest :func:`docs_index_runs` of them (GX's index builder reads every
result it lists at each rebuild, so an unbounded index made each night's validation cost more than the
last). Runs of one model are serialized by the training DAG (``max_active_runs=1``); different models
use different folders, so nothing here needs locking.

GX judges each expectation on a batch of only the columns it reads (:func:`validate_by_columns`), not
on the whole frame: a column-map metric filters the nulls of its column by indexing its batch, and
GX hashes every batch it loads; on the whole frame both touch every column for every expectation.
The parts' results are merged into the one suite result GX would have produced, stored and rendered
into Data Docs by the model's checkpoint as before. GX does not fingerprint the parts it loads for
mloops' data source (:func:`_pandas_datasource`): the result carries the whole frame's fingerprint,
computed once by mloops.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mloops.data.hashing import RowHashes, row_hashes
from mloops.errors import MloopsError
from mloops.partitions import Partition
from mloops.quality import RowViolation, ValidationOutcome, spec_columns, summarize_failures

if TYPE_CHECKING:
    import pandas as pd
    from great_expectations.core import ExpectationSuite, ExpectationSuiteValidationResult

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


#: How many validation runs a model's Data Docs index lists, newest first.
DOCS_INDEX_RUNS_ENV = "MLOOPS_DOCS_INDEX_RUNS"
DEFAULT_DOCS_INDEX_RUNS = 100


def docs_index_runs() -> int:
    """The validation runs a Data Docs index lists (``MLOOPS_DOCS_INDEX_RUNS``, default 100).

    Each validation rebuilds the model's index, and GX's index builder loads every validation result
    the index lists from the store to read its outcome: without a limit a model validated nightly for a
    year loaded 365 results (two per night with scoring) to add one. The older results stay in the
    store and their pages in the site; only the index stops linking them.
    """
    value = os.environ.get(DOCS_INDEX_RUNS_ENV, "").strip()
    try:
        runs = int(value) if value else DEFAULT_DOCS_INDEX_RUNS
    except ValueError:
        runs = 0
    if runs < 1:
        raise MloopsError(
            f"{DOCS_INDEX_RUNS_ENV}={value!r} is not a whole number of validation runs (1 or more)"
        )
    return runs


def _bound_docs_index(context: Any, runs: int | None) -> None:
    """Make every Data Docs site of ``context`` list the newest ``runs`` validation results (GX's own
    ``validation_results_limit`` of its index builder; ``None``, GX's default, lists every result); the
    project file is written only on a change."""
    for name, site in context.list_data_docs_sites().items():
        index = dict(site.get("site_index_builder") or {"class_name": "DefaultSiteIndexBuilder"})
        if index.get("validation_results_limit") == runs:
            continue
        index["validation_results_limit"] = runs
        context.update_data_docs_site(name, {**site, "site_index_builder": index})


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


# ------------------------------------------------------------------------- batches of the columns read

#: Expectations that read the row count only: any part's batch has the frame's rows.
_ROW_COUNT_TYPES = frozenset({"expect_table_row_count_to_be_between", "expect_table_row_count_to_equal"})
#: Where an expectation's kwargs name the columns it reads.
_COLUMN_KEYS = ("column", "column_A", "column_B")
#: The batch of a part that needs the whole frame.
WHOLE = None


def columns_read(
    expectation_type: str, kwargs: dict[str, Any], available: Sequence[str]
) -> tuple[str, ...] | None:
    """The columns a batch must hold for GX to judge the expectation exactly as on the whole frame,
    or ``None`` (:data:`WHOLE`) when it needs the whole frame: it reads the table (its columns, a
    column's position, another table), a row condition, or a column the frame does not have (so GX
    reports that as it would)."""
    if kwargs.get("row_condition"):
        return WHOLE
    if expectation_type in _ROW_COUNT_TYPES:
        return ()
    if expectation_type == "expect_column_to_exist" and kwargs.get("column_index") is not None:
        return WHOLE
    if expectation_type.startswith("expect_table_"):
        return WHOLE
    names = [kwargs[k] for k in _COLUMN_KEYS if kwargs.get(k) is not None]
    names += list(kwargs.get("column_list") or [])
    if not names or not all(isinstance(n, str) and n in available for n in names):
        return WHOLE
    return tuple(dict.fromkeys(names))


def _parts(
    configs: Sequence[Any], columns: Sequence[str], result_format: Any
) -> dict[tuple[str, ...] | None, list[int]]:
    """Positions of ``configs`` by the batch (columns) they are judged on."""
    listed = result_format.get("unexpected_index_column_names") if isinstance(result_format, dict) else None
    keys = list(listed or [])  # a result naming rows by id columns needs them in every batch
    parts: dict[tuple[str, ...] | None, list[int]] = {}
    row_count: list[int] = []
    for position, config in enumerate(configs):
        read = columns_read(config.type, config.kwargs, columns)
        if read == ():
            row_count.append(position)
            continue
        if read is not WHOLE and keys:
            read = WHOLE if any(k not in columns for k in keys) else tuple(dict.fromkeys([*read, *keys]))
        parts.setdefault(read, []).append(position)
    if row_count:
        home = WHOLE if WHOLE in parts or not parts else next(iter(parts))
        parts.setdefault(home, []).extend(row_count)
    return parts


def _gx_order(configs: Sequence[Any]) -> list[int]:
    """The order GX lists results in: grouped by ``column``, groups in order of first appearance
    (``Validator.process_expectations_for_validation``)."""
    groups: dict[str | None, list[int]] = {}
    for position, config in enumerate(configs):
        column = config.kwargs.get("column")
        groups.setdefault(column if isinstance(column, str) else None, []).append(position)
    return [position for group in groups.values() for position in group]


def _raised(result: Any) -> bool:
    return (
        bool((result.exception_info or {}).get("raised_exception"))
        or _exception_message(result.exception_info) is not None
    )


def _same_config(result: Any, config: Any) -> bool:
    got = result.expectation_config
    if got is None:
        return False
    if config.id is not None or got.id is not None:
        return bool(got.id == config.id)

    def plain(kwargs: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in kwargs.items() if k != "batch_id"}

    return bool(got.type == config.type and plain(got.kwargs) == plain(config.kwargs))


#: The frames mloops is handing to GX right now (:func:`_handed_in`): the ones the engine of
#: :func:`_pandas_datasource` loads without GX's fingerprint. A context variable, so a thread or task
#: validating something else in the same process is not affected.
_HANDED_IN: ContextVar[tuple[pd.DataFrame, ...]] = ContextVar("mloops_gx_handed_in", default=())


@contextmanager
def _handed_in(frame: pd.DataFrame) -> Iterator[None]:
    """While inside, GX loads ``frame`` (this very object) for mloops' data source unfingerprinted."""
    token = _HANDED_IN.set((*_HANDED_IN.get(), frame))
    try:
        yield
    finally:
        _HANDED_IN.reset(token)


@functools.cache
def _pandas_datasource() -> type:
    """GX's pandas data source, whose engine loads the frames mloops hands in without hashing them.

    GX's ``PandasExecutionEngine.get_batch_data_and_markers`` fingerprints every batch it loads (md5
    of its row hashes); for a frame judged in parts that is one hash per part, most of the time and
    memory of a validation, and mloops replaces them all by the whole frame's (:func:`_whole_frame_markers`).

    The engine is set through the data source's ``execution_engine_override`` hook and the data source
    is handed to ``context.data_sources.add_or_update_pandas``, so only mloops' data source in that
    context uses it: GX itself is not patched. The class is not registered with GX (its name starts with
    ``_``, which GX's ``MetaDatasource`` skips) and keeps ``type: pandas``, so the project's
    ``great_expectations.yml`` is unchanged and opens without mloops. Any other batch spec or frame,
    or one with partitioning or sampling, is GX's own code path.
    """
    import pandas as pd
    from great_expectations.core.batch import BatchMarkers
    from great_expectations.core.batch_spec import RuntimeDataBatchSpec
    from great_expectations.datasource.fluent import PandasDatasource
    from great_expectations.execution_engine.pandas_batch_data import PandasBatchData
    from great_expectations.execution_engine.pandas_execution_engine import PandasExecutionEngine

    class _UnfingerprintedEngine(PandasExecutionEngine):
        def get_batch_data_and_markers(self, batch_spec: Any) -> tuple[PandasBatchData, BatchMarkers]:
            frame = batch_spec.get("batch_data") if isinstance(batch_spec, RuntimeDataBatchSpec) else None
            if (
                not isinstance(frame, pd.DataFrame)
                or not any(frame is handed for handed in _HANDED_IN.get())
                or batch_spec.get("partitioner_method")
                or batch_spec.get("sampling_method")
            ):
                return super().get_batch_data_and_markers(batch_spec)
            # GX's steps for a RuntimeDataBatchSpec holding a DataFrame, minus the fingerprint.
            markers = BatchMarkers({"ge_load_time": dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S.%fZ")})
            batch_spec.batch_data = "PandasDataFrame"
            return PandasBatchData(execution_engine=self, dataframe=frame), markers

    class _MloopsPandasDatasource(PandasDatasource):
        execution_engine_override = _UnfingerprintedEngine

    return _MloopsPandasDatasource


def _whole_frame_markers(
    markers: dict[str, Any], frame: pd.DataFrame, hashes: RowHashes | None
) -> dict[str, Any]:
    """``markers`` of a part's batch with the whole frame's ``pandas_data_fingerprint``: what GX's
    ``get_batch_data_and_markers`` computes (md5 of the row hashes with the index, for frames under
    its size threshold), from hashes computed once. GX adds the key after ``ge_load_time``; so does this."""
    import hashlib

    from great_expectations.execution_engine.pandas_execution_engine import (
        HASH_THRESHOLD,
        hash_pandas_dataframe,
    )

    out = {k: v for k, v in markers.items() if k != "pandas_data_fingerprint"}
    if frame.memory_usage().sum() < HASH_THRESHOLD:
        try:
            indexed = (hashes or row_hashes(frame)).with_index
            digest = hashlib.md5(indexed.tobytes(), usedforsecurity=False)
            out["pandas_data_fingerprint"] = digest.hexdigest()
        except TypeError:  # unhashable cells: GX pickles the frame instead
            out["pandas_data_fingerprint"] = hash_pandas_dataframe(frame)
    return type(markers)(out)


def validate_by_columns(
    batch_definition: Any,
    frame: pd.DataFrame,
    suite: ExpectationSuite,
    result_format: Any,
    hashes: RowHashes | None = None,
) -> ExpectationSuiteValidationResult:
    """GX's result of ``suite`` on ``frame`` (``batch_definition`` a whole-dataframe one), computed
    part by part on batches of the columns each expectation reads (:func:`columns_read`).

    Each expectation sees the same rows, index and column values as on the whole frame, so its
    result is the same; the merged result lists them in GX's order, with GX's statistics, and the
    meta of a whole-frame batch (its fingerprint from ``hashes``, computed if not given). What is
    judged, and how, is all GX's: only the batches handed to it are narrower, and, for a
    ``batch_definition`` of :func:`_pandas_datasource`, not fingerprinted by GX.
    """
    import great_expectations as gx
    from great_expectations.core import ExpectationSuiteValidationResult
    from great_expectations.validator.v1_validator import Validator
    from great_expectations.validator.validator import calc_validation_statistics

    configs = suite.expectation_configurations
    found: dict[int, Any] = {}
    meta: dict[str, Any] | None = None
    batch_id = None
    for columns, positions in _parts(configs, list(frame.columns), result_format).items():
        batch = frame if columns is WHOLE else frame[list(columns)]
        with _handed_in(batch):
            part = Validator(
                batch_definition=batch_definition,
                result_format=result_format,
                batch_parameters={"dataframe": batch},
            ).validate_expectation_suite(
                gx.ExpectationSuite(name=suite.name, expectations=[configs[p] for p in positions])
            )
        if meta is None or columns is WHOLE:
            meta, batch_id = dict(part.meta), part.batch_id
        unmatched = list(positions)
        for result in part.results:
            position = next(p for p in unmatched if _same_config(result, configs[p]))
            unmatched.remove(position)
            found[position] = result
    order = _gx_order(configs)
    # GX lists the expectations that raised (a missing column, say) before the others.
    results = sorted((found[p] for p in order), key=lambda r: not _raised(r))
    meta = meta or {}
    if "batch_markers" in meta:
        meta["batch_markers"] = _whole_frame_markers(meta["batch_markers"], frame, hashes)
    statistics = calc_validation_statistics(results)
    return ExpectationSuiteValidationResult(
        results=results,
        success=statistics.success,
        suite_name=suite.name,
        statistics={
            "evaluated_expectations": statistics.evaluated_expectations,
            "successful_expectations": statistics.successful_expectations,
            "unsuccessful_expectations": statistics.unsuccessful_expectations,
            "success_percent": statistics.success_percent,
        },
        meta=meta,
        batch_id=batch_id,
    )


def _run_checkpoint(
    context: Any, checkpoint: Any, frame: pd.DataFrame, run_id: Any, hashes: RowHashes | None
) -> Any:
    """What ``checkpoint.run(batch_parameters={"dataframe": frame}, run_id=run_id)`` does, with the
    validation computed by :func:`validate_by_columns`: the same result stored under the same key,
    then the checkpoint's own actions (Data Docs) run on it."""
    from great_expectations.constants import DATAFRAME_REPLACEMENT_STR
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
        ValidationResultIdentifier,
    )

    (definition,) = checkpoint.validation_definitions
    result = validate_by_columns(definition.data, frame, definition.suite, checkpoint.result_format, hashes)
    # ValidationDefinition.run's additions, in its order.
    result.meta["validation_id"] = definition.id
    result.meta["checkpoint_id"] = checkpoint.id
    result.meta["run_id"] = run_id
    result.meta["validation_time"] = run_id.run_time
    result.meta["batch_parameters"] = {"dataframe": DATAFRAME_REPLACEMENT_STR}
    suite_key = ExpectationSuiteIdentifier(name=definition.suite.name)
    key = ValidationResultIdentifier(
        expectation_suite_identifier=suite_key, run_id=run_id, batch_identifier=result.batch_id
    )
    context.validation_results_store.store_validation_results(
        suite_validation_result=result,
        suite_validation_result_identifier=key,
        expectation_suite_identifier=suite_key,
    )
    # Checkpoint.run's own steps after validating (private in GX 1.24; tests compare with run()).
    checkpoint_result = checkpoint._construct_result(run_id=run_id, run_results={key: result})
    checkpoint._run_actions(checkpoint_result=checkpoint_result)
    return checkpoint_result


def validate_dataframe(
    frame: pd.DataFrame,
    *,
    model: str,
    partition: Partition | dt.date,
    expectations: Sequence[dict[str, Any]],
    project_dir: Path,
    hashes: RowHashes | None = None,
) -> ValidationOutcome:
    """Validate ``frame`` against ``expectations`` and rebuild the model's Data Docs site.

    ``hashes`` are the frame's row hashes if the caller has them (for its own fingerprint): GX's
    batch fingerprint is made from them instead of hashing the frame again.
    """
    import great_expectations as gx
    from great_expectations.checkpoint import UpdateDataDocsAction
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.data_context.types.base import ProgressBarsConfig
    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

    runs = docs_index_runs()
    project_dir.mkdir(parents=True, exist_ok=True)
    context = gx.get_context(mode="file", project_root_dir=str(project_dir))
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    _bound_docs_index(context, runs)

    source = context.data_sources.add_or_update_pandas(datasource=_pandas_datasource()(name="mloops"))
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
    run_id = RunIdentifier(run_name=f"{model}-{partition.key}", run_time=partition.start)
    result = _run_checkpoint(context, checkpoint, frame, run_id, hashes)
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
    batch_definition = (
        context.data_sources.add_pandas(datasource=_pandas_datasource()(name="mloops"))
        .add_dataframe_asset(name="batch")
        .add_batch_definition_whole_dataframe("whole")
    )
    suite = gx.ExpectationSuite(
        name="mloops_rows",
        expectations=[
            ExpectationConfiguration(type=e["type"], kwargs=e["kwargs"]).to_domain_obj() for e in expectations
        ],
    )
    return validate_by_columns(batch_definition, frame, suite, result_format)


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
