"""One bad file must not block a fleet, and a fault while filing a batch must not leave a wrong state.

On main: a truncated Parquet or broken CSV partition got a read error but no quarantine, no verdict
and no alert, and every later night failed re-reading it; a corrupt ``verdict.json`` crashed every run
with a bare ``JSONDecodeError``; a full disk while quarantining a re-delivered bad batch deleted the
good staged copy while its verdict still said ``passed``.
"""

from __future__ import annotations

import errno
import json
from pathlib import Path

import pytest
from airflow.sdk.exceptions import AirflowFailException

from mloops.operators import GXValidateBatchOperator, MLflowTrainModelOperator
from tests.helpers import small_churn, write_models
from tests.operators.test_operators import _execute

pytestmark = pytest.mark.faults

DAYS = ("2026-01-02", "2026-01-03")


def _landing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fmt: str) -> Path:
    """Two good deliveries of churn as files under ``tmp_path/landing`` and a config reading them."""
    import datetime as dt

    from mloops_examples import generator

    landing = tmp_path / "landing"
    for day in DAYS:
        generator.write_partition(
            generator.generate_partition("churn", dt.date.fromisoformat(day), rows=600, seed=4),
            landing / f"{day}.{fmt}",
        )
    config = small_churn()
    config["source"] = {"kind": "files", "path": str(landing / f"{{ds}}.{fmt}"), "format": fmt}
    monkeypatch.setenv("MLOOPS_MODELS_DIR", str(write_models(tmp_path / "models", churn=config)))
    return landing


def _staged(home: Path, day: str) -> Path:
    return home / "data" / "staged" / "churn" / f"dt={day}"


def _quarantine(home: Path, day: str) -> Path:
    return home / "data" / "quarantine" / "churn" / f"dt={day}"


def _validate(day: str = "2026-01-03") -> dict:
    return _execute(GXValidateBatchOperator(task_id="validate_batch", model="churn"), {}, day=day)


@pytest.mark.parametrize(
    ("fmt", "corrupt"),
    [
        ("parquet", lambda data: data[: len(data) // 2]),
        ("csv", lambda data: data.replace(b"\n", b'\n"', 1)),
    ],
    ids=["truncated-parquet", "broken-csv"],
)
def test_unreadable_batch_is_quarantined_and_later_windows_exclude_it(
    tmp_path: Path, mloops_home: Path, monkeypatch: pytest.MonkeyPatch, fmt: str, corrupt
) -> None:
    from mloops import store
    from mloops.settings import get_settings

    landing = _landing(tmp_path, monkeypatch, fmt)
    bad = landing / f"{DAYS[0]}.{fmt}"
    bad.write_bytes(corrupt(bad.read_bytes()))
    original = bad.read_bytes()

    with pytest.raises(
        AirflowFailException, match=rf"partition {DAYS[0]} at .* (cannot be read|empty file).*quarantined at"
    ):
        _validate(DAYS[0])
    kept = _quarantine(mloops_home, DAYS[0])
    assert (kept / bad.name).read_bytes() == original, "the quarantine keeps the delivered bytes"
    assert "cannot be read" in (kept / "failures.txt").read_text()
    verdict = json.loads((_staged(mloops_home, DAYS[0]) / "verdict.json").read_text())
    assert verdict["status"] == "quarantined" and verdict["quarantine"] == str(kept)
    assert [
        str(e["partition"])
        for e in store.read_events(get_settings().metrics_db_uri, "churn", "batch_quarantined")
    ] == [DAYS[0]]

    result = _validate(DAYS[1])  # the next night: its window holds the bad day, which no longer blocks it
    assert result["status"] == "passed" and result["also_validated"] == {}
    trained = _execute(MLflowTrainModelOperator(task_id="train_model", model="churn"), {}, day=DAYS[1])
    assert trained["partitions"] == [DAYS[1]] and trained["excluded"] == {DAYS[0]: "quarantined"}


def test_corrupt_verdict_is_named_with_the_way_out(
    tmp_path: Path, mloops_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _landing(tmp_path, monkeypatch, "parquet")
    _validate(DAYS[1])
    verdict = _staged(mloops_home, DAYS[0]) / "verdict.json"
    verdict.write_text('{"status": "pass')
    with pytest.raises(
        AirflowFailException,
        match=rf"verdict file {verdict} of partition {DAYS[0]} is corrupt "
        rf"\(JSONDecodeError.*re-validate that date.*partition_date={DAYS[0]}",
    ):
        _validate(DAYS[1])
    assert _validate(DAYS[0])["status"] == "passed"  # the way out works
    assert json.loads(verdict.read_text())["status"] == "passed"
    assert _validate(DAYS[1])["status"] == "passed"


def test_disk_full_while_quarantining_keeps_the_staged_copy_and_its_verdict(
    tmp_path: Path, mloops_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A re-delivered bad batch of a date that passed; the quarantine copy hits ENOSPC."""
    from mloops import partitions

    landing = _landing(tmp_path, monkeypatch, "parquet")
    assert _validate(DAYS[1])["status"] == "passed"
    staged = _staged(mloops_home, DAYS[1])
    snapshot = (staged / "data.parquet").read_bytes()

    delivered = landing / f"{DAYS[1]}.parquet"
    delivered.write_bytes(delivered.read_bytes()[:100])

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    with monkeypatch.context() as patch:
        patch.setattr(partitions, "replace_dir", full)
        with pytest.raises(OSError, match="No space left"):
            _validate(DAYS[1])
    verdict = json.loads((staged / "verdict.json").read_text())
    assert verdict["status"] == "passed" and (staged / "data.parquet").read_bytes() == snapshot, (
        "verdict and snapshot agree"
    )
    assert not _quarantine(mloops_home, DAYS[1]).exists()

    with pytest.raises(AirflowFailException, match="quarantined at"):  # the retry, with space again
        _validate(DAYS[1])
    assert json.loads((staged / "verdict.json").read_text())["status"] == "quarantined"
    assert not (staged / "data.parquet").exists()
    assert (_quarantine(mloops_home, DAYS[1]) / delivered.name).read_bytes() == delivered.read_bytes()
