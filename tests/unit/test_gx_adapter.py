"""The GX adapter against a real file-backed GX project: stored suites are reused only while unchanged."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest

from mloops.adapters import gx_adapter

pytestmark = pytest.mark.unit

DAY = dt.date(2026, 1, 3)
FRAME = pd.DataFrame({"id": range(100), "x": [float(i % 10) for i in range(100)]})
LOOSE = [
    {"type": "expect_column_values_to_be_between", "kwargs": {"column": "x", "min_value": 0, "max_value": 9}}
]
STRICT = [
    {"type": "expect_column_values_to_be_between", "kwargs": {"column": "x", "min_value": 0, "max_value": 5}}
]


def _validate(project: Path, expectations: list[dict], day: dt.date = DAY) -> gx_adapter.ValidationOutcome:
    return gx_adapter.validate_dataframe(
        FRAME, model="m", partition=day, expectations=expectations, project_dir=project
    )


def _stored(project: Path) -> tuple[str, int]:
    import great_expectations as gx

    context = gx.get_context(mode="file", project_root_dir=str(project))
    suite = context.suites.get("m")
    return suite.meta[gx_adapter.FINGERPRINT_KEY], len(suite.expectations)


def test_changed_expectations_replace_the_stored_suite(tmp_path: Path) -> None:
    assert _validate(tmp_path, LOOSE).success
    fingerprint, count = _stored(tmp_path)
    assert count == 1
    suite_files = sorted((tmp_path / "gx" / "expectations").glob("*.json"))
    written = [p.stat().st_mtime_ns for p in suite_files]

    assert _validate(tmp_path, LOOSE, DAY + dt.timedelta(days=1)).success
    assert _stored(tmp_path) == (fingerprint, 1)
    assert [p.stat().st_mtime_ns for p in suite_files] == written, "an unchanged suite is not rewritten"

    strict = _validate(tmp_path, STRICT)
    assert not strict.success and strict.failed == 1, "the new expectations apply at once"
    assert _stored(tmp_path)[0] != fingerprint
    assert _validate(tmp_path, LOOSE).success
    assert _stored(tmp_path) == (fingerprint, 1)
    # One result per partition (re-validating a date overwrites it), kept across suite changes.
    results = sorted(
        p.parent.parent.name for p in (tmp_path / "gx" / "uncommitted" / "validations").rglob("*.json")
    )
    assert results == ["m-2026-01-03", "m-2026-01-04"]
    assert Path(strict.docs_url.removeprefix("file://")).exists()
