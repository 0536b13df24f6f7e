"""Stage ``validate_batch``: the data-quality gate (Great Expectations) in front of everything.

Reads the interval's partition from its source, validates it against the model's data contract plus
its optional suite, and records a verdict. A passing batch is snapshotted to ``staged/`` (the only
place training and scoring read); a failing one is copied with its validation result to
``quarantine/`` and never trained on. In row mode (``quality.on_failure: quarantine_rows``) the rows
failing row-level expectations go to ``quarantine/.../rows.parquet`` with their reasons and the others
are staged, while their share and the table-level expectations allow it. The source data is never
modified.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mloops import locks, partitions, quality
from mloops.contracts import OnFailure, Status, Use, ValidationResult
from mloops.data.hashing import row_hashes
from mloops.data.sources import Extracted, SqlReader, extract_partition
from mloops.errors import PartitionMissingError, UnreadablePartitionError, ValidationFailedError
from mloops.stages.layout import (
    QUARANTINED_ROWS_FILE,
    STAGED_FILE,
    VERDICT_FILE,
    RunContext,
    frame_fingerprint,
    quarantine_dir,
    read_verdict,
    staged_dir,
    window,
    write_verdict,
)

if TYPE_CHECKING:
    import pandas as pd

    from mloops.quality import ValidationOutcome


def validate_batch(ctx: RunContext, *, sql_reader: SqlReader | None = None) -> ValidationResult:
    """Validate the interval's partition, plus any partition of the training window never validated.

    A failing batch is copied (with its validation result) to the quarantine area and its staged
    snapshot removed, so training can never read it; the source data is left untouched. With
    ``quality.on_failure: quarantine_rows`` a batch whose only failures are a small share of bad rows
    is staged without them (status ``passed_with_quarantined_rows``) and the bad rows are quarantined.
    """
    expectations = quality.model_expectations(ctx.config, ctx.settings.expectations_dir, ctx.use)
    checked: dict[str, dict[str, Any]] = {}
    days = window(ctx, ctx.config.training_window) if ctx.use == Use.TRAINING else [ctx]
    for day in days:
        if day.partition != ctx.partition and read_verdict(day) is not None:
            continue
        checked[day.ds] = validate_partition(day, expectations, sql_reader)
    current = checked[ctx.ds]
    result = ValidationResult(
        model=ctx.model,
        partition=ctx.ds,
        status=current["status"],
        rows=current.get("rows", 0),
        fingerprint=current.get("fingerprint"),
        uri=current.get("uri"),
        docs_url=current.get("docs_url"),
        failures=current.get("failures", []),
        quarantine=current.get("quarantine"),
        also_validated={d: v["status"] for d, v in checked.items() if d != ctx.ds},
        rows_kept=current.get("rows_kept"),
        rows_quarantined=current.get("rows_quarantined", 0),
        message=current.get("message"),
    )
    if current["status"] == Status.MISSING:
        raise PartitionMissingError(current["message"], result=result.to_xcom())
    if current["status"] == Status.QUARANTINED:
        raise ValidationFailedError(current["message"], result=result.to_xcom())
    return result


def validate_partition(
    ctx: RunContext, expectations: list[dict[str, Any]], sql_reader: SqlReader | None
) -> dict[str, Any]:
    """Extract, validate and file one partition; return (and write) its verdict."""
    from mloops.adapters import gx_adapter

    try:
        extracted = extract_partition(ctx.config, ctx.partition, ctx.settings.data_root, sql_reader)
    except PartitionMissingError as exc:
        return _record_missing(ctx, str(exc))
    except UnreadablePartitionError as exc:
        return _quarantine_unreadable(ctx, exc)
    # Declared types first, then the schema: a missing column is one failure (with what appeared
    # instead), and the expectations reading it are left out so GX never errors on it.
    frame, type_failures = quality.conform(extracted.frame, ctx.config)
    frame = frame.reset_index(drop=True)  # GX reports failing rows by index: make it their position
    schema_failures = quality.schema_failures(frame, ctx.config, ctx.use)
    checked = quality.without_columns(expectations, [f.column for f in schema_failures if f.column])
    hashes = row_hashes(frame)  # once: the verdict's fingerprint and GX's batch fingerprint
    with locks.project_lock(ctx.settings, ctx.model):  # one writer of the model's GX project at a time
        outcome = gx_adapter.validate_dataframe(
            frame,
            model=ctx.model if ctx.use == Use.TRAINING else f"{ctx.model}_{ctx.use}",
            partition=ctx.partition,
            expectations=checked,
            project_dir=ctx.settings.docs_root / ctx.model,
            hashes=hashes,
        )
    outcome = quality.with_failures(outcome, [*schema_failures, *type_failures])
    verdict: dict[str, Any] = {
        "partition": ctx.ds,
        "rows": int(len(frame)),
        "fingerprint": frame_fingerprint(frame, hashes),
        "source_uri": extracted.source_uri,
        **outcome.to_dict(),
    }
    if outcome.success:
        verdict.update(_stage(ctx, frame))
    elif ctx.config.quality.on_failure == OnFailure.QUARANTINE_ROWS and not schema_failures:
        # Text in a numeric column is a row-level failure too: its rows are located in the delivery.
        typed = quality.text_in_numeric_rows(extracted.frame, ctx.config) if type_failures else []
        return _split_or_quarantine(ctx, extracted, frame, checked, outcome, verdict, typed)
    else:
        verdict.update(_quarantine(ctx, extracted, outcome))
    write_verdict(ctx, verdict)
    return verdict


def _split_or_quarantine(
    ctx: RunContext,
    extracted: Extracted,
    frame: pd.DataFrame,
    expectations: list[dict[str, Any]],
    outcome: ValidationOutcome,
    verdict: dict[str, Any],
    typed: list[quality.RowViolation] | None = None,
) -> dict[str, Any]:
    """Row mode: use the batch without the rows failing row-level expectations, or quarantine it whole.

    The split needs every failing row located (by GX, or ``typed``: the rows of text in numeric
    columns), their share within ``quality.max_bad_row_share`` and every table-level expectation
    holding on the kept rows (the rows that will be used).
    """
    from mloops.adapters import gx_adapter

    row_level, table_level = quality.split_expectations(expectations)
    violations = [*gx_adapter.failing_rows(frame, row_level), *(typed or [])]
    decision = quality.decide_rows(len(frame), violations, ctx.config.quality.max_bad_row_share)
    why = None if decision.within else decision.why_whole()
    if why is None:
        kept, bad = quality.split_rows(frame, violations)
        on_kept = gx_adapter.check_in_memory(kept, table_level)
        if on_kept.success:
            verdict.update(_quarantine_rows(ctx, extracted, outcome, decision, violations, kept, bad))
            write_verdict(ctx, verdict)
            return verdict
        why = f"table-level expectations fail on the {len(kept)} rows left without the bad ones: " + (
            "; ".join(f.describe() for f in on_kept.failures)
        )
    verdict.update(_quarantine(ctx, extracted, outcome, why))
    write_verdict(ctx, verdict)
    return verdict


def _quarantine_rows(
    ctx: RunContext,
    extracted: Extracted,
    outcome: ValidationOutcome,
    decision: quality.RowDecision,
    violations: list[quality.RowViolation],
    kept: pd.DataFrame,
    bad: pd.DataFrame,
) -> dict[str, Any]:
    """Quarantine the bad rows (with the source files and the result), then stage the kept rows.

    Order: copy to quarantine, remove the staged snapshot and the old verdict, write the kept
    snapshot, write the verdict last. A crash at any step leaves the date unusable (no verdict,
    ``not validated``) or as it was, never an old verdict over new rows; a retry redoes every step.
    """
    summary = quality.reasons_summary(violations)
    message = quality.rows_quarantined_message(ctx.model, ctx.ds, decision, summary, str(quarantine_dir(ctx)))
    report = (
        f"{message}\n\n{quality.failure_message(ctx.model, ctx.ds, outcome, None)}\n"
        f"Source: {extracted.source_uri}\n"
    )
    moved = _to_quarantine(
        ctx, extracted.source_files, extracted.frame, dict(outcome.result), report, message, rows=bad
    )
    (staged_dir(ctx) / VERDICT_FILE).unlink(missing_ok=True)
    target = partitions.write_parquet(kept, staged_dir(ctx) / STAGED_FILE)
    return {
        "status": Status.PASSED_WITH_QUARANTINED_ROWS,
        "uri": partitions.to_uri(target),
        "fingerprint": frame_fingerprint(kept),
        "rows_kept": int(len(kept)),
        "rows_quarantined": int(len(bad)),
        "bad_row_share": round(decision.share, 6),
        "max_bad_row_share": decision.max_share,
        "row_reasons": summary,
        "quarantine": moved["quarantine"],
        "quarantined_rows_uri": partitions.to_uri(quarantine_dir(ctx) / QUARANTINED_ROWS_FILE),
        "message": message,
    }


def _record_missing(ctx: RunContext, message: str) -> dict[str, Any]:
    verdict = {"partition": ctx.ds, "status": Status.MISSING, "message": message}
    (staged_dir(ctx) / STAGED_FILE).unlink(missing_ok=True)
    write_verdict(ctx, verdict)
    return verdict


def _stage(ctx: RunContext, frame: pd.DataFrame) -> dict[str, Any]:
    """Snapshot a passing batch (as validated: declared types applied); an earlier quarantine of the
    date is marked resolved."""
    target = staged_dir(ctx) / STAGED_FILE
    partitions.write_parquet(frame, target)
    quarantine = quarantine_dir(ctx)
    if quarantine.exists():
        partitions.write_json(quarantine / "resolved.json", {"resolved_by": "a later validation that passed"})
    return {"status": Status.PASSED, "uri": partitions.to_uri(target)}


def _quarantine(
    ctx: RunContext, extracted: Extracted, outcome: ValidationOutcome, why: str | None = None
) -> dict[str, Any]:
    """Copy the failing batch (its source files, byte for byte) and its validation result to quarantine."""
    report = (
        quality.failure_message(ctx.model, ctx.ds, outcome, None, why) + f"\nSource: {extracted.source_uri}\n"
    )
    message = quality.failure_message(ctx.model, ctx.ds, outcome, str(quarantine_dir(ctx)), why)
    return _to_quarantine(ctx, extracted.source_files, extracted.frame, dict(outcome.result), report, message)


def _quarantine_unreadable(ctx: RunContext, exc: UnreadablePartitionError) -> dict[str, Any]:
    """A file that cannot be parsed is quarantined like an invalid batch: its bytes, the error, a verdict."""
    quarantine = quarantine_dir(ctx)
    message = (
        f"{exc}; the file was quarantined at {quarantine} and the partition is excluded from training and "
        f"scoring (re-deliver it, then re-validate {ctx.ds})"
    )
    verdict: dict[str, Any] = {
        "partition": ctx.ds,
        "rows": 0,
        "source_uri": partitions.to_uri(exc.path),
        "success": False,
    }
    verdict.update(
        _to_quarantine(
            ctx, (exc.path,), None, {"success": False, "read_error": str(exc)}, f"{exc}\n", message
        )
    )
    write_verdict(ctx, verdict)
    return verdict


def _to_quarantine(
    ctx: RunContext,
    files: tuple[Any, ...],
    frame: Any,
    result: dict[str, Any],
    report: str,
    message: str,
    rows: pd.DataFrame | None = None,
) -> dict[str, Any]:
    """Copy first, then remove the staged snapshot; the caller writes the verdict last. ``rows`` (a
    row-level quarantine) go to ``rows.parquet`` beside the source files.

    A fault at any step (a full disk) leaves a consistent state: before the copy completes nothing
    changed (the old verdict still matches its snapshot); a retry redoes every step.
    """
    quarantine = quarantine_dir(ctx)
    with tempfile.TemporaryDirectory(prefix=f"mloops-quarantine-{ctx.model}-") as folder:
        incoming = Path(folder)
        if files:
            for path in files:
                partitions.download(path, incoming / path.name)
        else:
            frame.to_parquet(incoming / "data.parquet", index=False)
        partitions.write_json(incoming / "validation_result.json", result)
        partitions.write_text(incoming / "failures.txt", report)
        if rows is not None:
            rows.to_parquet(incoming / QUARANTINED_ROWS_FILE, index=False)
        partitions.replace_dir(incoming, quarantine)
    (staged_dir(ctx) / STAGED_FILE).unlink(missing_ok=True)
    return {"status": Status.QUARANTINED, "quarantine": str(quarantine), "message": message}
