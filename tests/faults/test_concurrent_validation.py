"""Validations of one model running side by side (a scoring backfill with several nights at a time).

GX's file-backed project is not safe for concurrent writers: both processes found no suite, both added
it, and the second failed with ``Store already has the following key`` (seen in ``make run`` when it
scored three nights at a time). ``locks.project_lock`` serializes them per model.
"""

from __future__ import annotations

import datetime as dt
import multiprocessing
from pathlib import Path

import pytest

from tests.helpers import small_churn, write_models

pytestmark = pytest.mark.faults

#: Six nights at once: with four, the race showed in some runs only; with six, in two runs of three.
NIGHTS = [dt.date(2026, 1, d) for d in range(3, 9)]


def _validate(models_dir: str, day: dt.date, barrier, results) -> None:  # noqa: ANN001 - mp objects
    from mloops.config_files import find_model_config
    from mloops.contracts import Use
    from mloops.settings import get_settings
    from mloops.stages import validate
    from mloops.stages.layout import RunContext

    ctx = RunContext(find_model_config("churn", Path(models_dir)), day, get_settings()).for_use(Use.SCORING)
    barrier.wait()  # every process reaches GX's empty project at the same moment
    try:
        results[str(day)] = validate.validate_batch(ctx).status
    except Exception as exc:  # noqa: BLE001 - reported to the parent
        results[str(day)] = f"{type(exc).__name__}: {exc}"


def test_side_by_side_validations_of_one_model_all_pass(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mloops_home: Path
) -> None:
    models = write_models(tmp_path / "models", churn=small_churn())
    monkeypatch.setenv("MLOOPS_MODELS_DIR", str(models))
    fork = multiprocessing.get_context("fork")
    with fork.Manager() as manager:
        barrier, results = manager.Barrier(len(NIGHTS)), manager.dict()
        workers = [fork.Process(target=_validate, args=(str(models), d, barrier, results)) for d in NIGHTS]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(timeout=600)
        outcome = dict(results)
    assert outcome == {str(d): "passed" for d in NIGHTS}
    from mloops.settings import get_settings

    docs = get_settings().docs_root / "churn" / "gx" / "uncommitted" / "data_docs"
    site = docs / "local_site" / "validations"
    pages = {p.parent.parent.name for p in site.glob("churn_scoring/*/*/*.html")}
    assert pages == {f"churn_scoring-{d}" for d in NIGHTS}
