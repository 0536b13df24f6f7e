"""Stage ``validate_batch``: the data-quality gate (Great Expectations) in front of everything.

Reads the interval's partition from its source, validates it against the model's data contract plus
its optional suite, and records a verdict. A passing batch is snapshotted to ``staged/`` (the only
place training and scoring read); a failing one is copied with its validation result to
``quarantine/`` and never trained on. The source data is never modified.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mloops import partitions, quality
from mloops.contracts import Status, ValidationResult
from mloops.data.sources import Extracted, SqlReader, extract_partition
from mloops.errors import PartitionMissingError, ValidationFailedError
from mloops.stages.layout import (
    STAGED_FILE,
    RunContext,
    frame_fingerprint,
    quarantine_dir,
    read_verdict,
    staged_dir,
    window,
    write_verdict,
)

if TYPE_CHECKING:
    from mloops.quality import ValidationOutcome


def validate_batch(ctx: RunContext, *, sql_reader: SqlReader | None = None) -> ValidationResult:
    """Validate the interval's partition, plus any partition of the training window never validated.

    A failing batch is copied (with its validation result) to the quarantine area and its staged
    snapshot removed, so training can never read it; the source data is left untouched.
    """
    expectations = quality.model_expectations(ctx.config, ctx.settings.expectations_dir)
    checked: dict[str, dict[str, Any]] = {}
    for day in window(ctx, ctx.config.training.window_days):
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
    frame = extracted.frame
    outcome = gx_adapter.validate_dataframe(
        frame, model=ctx.model, partition=ctx.partition, expectations=expectations,
        project_dir=ctx.settings.docs_root / ctx.model,
    )
    verdict: dict[str, Any] = {
        "partition": ctx.ds,
        "rows": int(len(frame)),
        "fingerprint": frame_fingerprint(frame),
        "source_uri": extracted.source_uri,
        **outcome.to_dict(),
    }
    if outcome.success:
        verdict.update(_stage(ctx, extracted))
    else:
        verdict.update(_quarantine(ctx, extracted, outcome))
    write_verdict(ctx, verdict)
    return verdict


def _record_missing(ctx: RunContext, message: str) -> dict[str, Any]:
    verdict = {"partition": ctx.ds, "status": Status.MISSING, "message": message}
    write_verdict(ctx, verdict)
    (staged_dir(ctx) / STAGED_FILE).unlink(missing_ok=True)
    return verdict


def _stage(ctx: RunContext, extracted: Extracted) -> dict[str, Any]:
    """Snapshot a passing batch; a quarantine left by an earlier delivery of the date is marked resolved."""
    target = staged_dir(ctx) / STAGED_FILE
    partitions.write_parquet(extracted.frame, target)
    quarantine = quarantine_dir(ctx)
    if quarantine.exists():
        partitions.write_json(quarantine / "resolved.json", {"resolved_by": "a later validation that passed"})
    return {"status": Status.PASSED, "uri": partitions.to_uri(target)}


def _quarantine(ctx: RunContext, extracted: Extracted, outcome: ValidationOutcome) -> dict[str, Any]:
    """Copy the failing batch (its source files, byte for byte) and its validation result to quarantine."""
    quarantine = quarantine_dir(ctx)
    message = quality.failure_message(ctx.model, ctx.ds, outcome, str(quarantine))
    (staged_dir(ctx) / STAGED_FILE).unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(prefix=f"mloops-quarantine-{ctx.model}-") as folder:
        incoming = Path(folder)
        if extracted.source_files:
            for path in extracted.source_files:
                partitions.download(path, incoming / path.name)
        else:
            extracted.frame.to_parquet(incoming / "data.parquet", index=False)
        partitions.write_json(incoming / "validation_result.json", outcome.result)
        partitions.write_text(
            incoming / "failures.txt",
            quality.failure_message(ctx.model, ctx.ds, outcome, None) + f"\nSource: {extracted.source_uri}\n",
        )
        partitions.replace_dir(incoming, quarantine)
    return {"status": Status.QUARANTINED, "quarantine": str(quarantine), "message": message}
