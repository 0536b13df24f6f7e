"""Partition helpers: windows, atomic writes, directory replacement, fingerprints."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from mloops import partitions

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("end", "days", "expected"),
    [
        (dt.date(2026, 1, 3), 3, ["2026-01-01", "2026-01-02", "2026-01-03"]),
        (dt.date(2026, 3, 1), 2, ["2026-02-28", "2026-03-01"]),
        (dt.date(2026, 1, 1), 1, ["2026-01-01"]),
    ],
)
def test_window_dates(end, days, expected) -> None:
    assert [d.isoformat() for d in partitions.window_dates(end, days)] == expected


def _fail_mid_write(path: Path) -> None:
    """Start an atomic write of ``path``, write part of it, then crash before the write completes."""
    with partitions.atomic_path(path) as tmp:
        tmp.write_text("partial")
        raise RuntimeError("crash mid-write")


def test_atomic_write_leaves_no_temp_and_failure_keeps_old(tmp_path: Path) -> None:
    target = tmp_path / "a" / "out.json"
    partitions.write_json(target, {"v": 1})
    with pytest.raises(RuntimeError):
        _fail_mid_write(target)
    assert partitions.read_json(target) == {"v": 1}
    assert [p.name for p in target.parent.iterdir()] == ["out.json"]
    assert partitions.read_json(tmp_path / "missing.json") is None


def test_replace_dir_overwrites(tmp_path: Path) -> None:
    source, target = tmp_path / "src", tmp_path / "dst"
    source.mkdir()
    (source / "new.txt").write_text("new")
    target.mkdir()
    (target / "stale.txt").write_text("old")
    partitions.replace_dir(source, target)
    assert sorted(p.name for p in target.iterdir()) == ["new.txt"]


def test_fingerprints_are_order_independent(tmp_path: Path) -> None:
    path = tmp_path / "f.bin"
    path.write_bytes(b"abc")
    assert partitions.file_digest(path) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert partitions.combine_digests({"a": "1", "b": "2"}) == partitions.combine_digests(
        {"b": "2", "a": "1"}
    )
    assert partitions.combine_digests({"a": "1"}) != partitions.combine_digests({"a": "2"})
