"""Partition keys (daily and sub-daily), parsing, windows, atomic writes, directory replacement,
fingerprints."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest

from mloops import partitions
from mloops.partitions import Partition

pytestmark = pytest.mark.unit


HOUR = dt.timedelta(hours=1)


def _utc(*parts: int) -> dt.datetime:
    return dt.datetime(*parts, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("end", "days", "expected"),
    [
        (dt.date(2026, 1, 3), 3, ["2026-01-01", "2026-01-02", "2026-01-03"]),
        (dt.date(2026, 3, 1), 2, ["2026-02-28", "2026-03-01"]),
        (dt.date(2026, 1, 1), 1, ["2026-01-01"]),
    ],
)
def test_daily_window(end, days, expected) -> None:
    assert [p.key for p in Partition.day(end).window(days)] == expected


def test_hourly_window_crosses_the_day_boundary() -> None:
    end = Partition.parse("2026-01-02T01", HOUR)
    assert [p.key for p in end.window(4)] == [
        "2026-01-01T22",
        "2026-01-01T23",
        "2026-01-02T00",
        "2026-01-02T01",
    ]
    assert (
        end.start == _utc(2026, 1, 2, 1)
        and end.end == _utc(2026, 1, 2, 2)
        and end.date == dt.date(2026, 1, 2)
    )


@pytest.mark.parametrize(
    ("length", "moment", "key"),
    [
        (partitions.DAY, _utc(2026, 1, 3, 2), "2026-01-03"),  # the nightly 02:00 run: its date, as always
        (HOUR, _utc(2026, 1, 3, 13, 15), "2026-01-03T13"),  # a :15 scoring cron lands in its hour
        (dt.timedelta(hours=6), _utc(2026, 1, 3, 13), "2026-01-03T12"),
        (HOUR, dt.datetime(2026, 1, 3, 14, 0, tzinfo=dt.timezone(dt.timedelta(hours=1))), "2026-01-03T13"),
        (HOUR, dt.datetime(2026, 1, 3, 13), "2026-01-03T13"),  # naive: UTC
    ],
)
def test_containing_keys_by_interval(length, moment, key) -> None:
    partition = Partition.containing(moment, length)
    assert partition.key == str(partition) == key
    assert Partition.parse(key, length) == partition  # the key parses back to the same interval


def test_keys_sort_as_time_and_stay_path_safe() -> None:
    hours = Partition.parse("2026-01-02T05", HOUR).window(30)
    keys = [p.key for p in hours]
    assert sorted(keys) == keys and len(set(keys)) == 30
    assert all(set(k) <= set("0123456789-T") for k in keys)
    assert partitions.partition_dir(Path("/r"), "staged", "m", hours[-1]) == Path(
        "/r/staged/m/dt=2026-01-02T05"
    )
    assert partitions.partition_dir(Path("/r"), "staged", "m", dt.date(2026, 1, 2)) == Path(
        "/r/staged/m/dt=2026-01-02"
    )


@pytest.mark.parametrize(
    ("value", "length", "key"),
    [
        ("2026-01-05", partitions.DAY, "2026-01-05"),
        (dt.date(2026, 1, 5), partitions.DAY, "2026-01-05"),
        ("2026-01-05T00:00:00+00:00", partitions.DAY, "2026-01-05"),
        ("2026-01-05T13", HOUR, "2026-01-05T13"),
        ("2026-01-05T13:00", HOUR, "2026-01-05T13"),
        ("2026-01-05 13:00:00Z", HOUR, "2026-01-05T13"),
        ("2026-01-05T14:00:00+01:00", HOUR, "2026-01-05T13"),
        (_utc(2026, 1, 5, 13), HOUR, "2026-01-05T13"),
        ("2026-01-05T12", dt.timedelta(hours=6), "2026-01-05T12"),
    ],
)
def test_parse_accepts_aligned_values(value, length, key) -> None:
    assert Partition.parse(value, length).key == key


@pytest.mark.parametrize(
    ("value", "length", "message"),
    [
        ("yesterday", partitions.DAY, "partition 'yesterday' is not a date (YYYY-MM-DD)"),
        ("2026-02-30", partitions.DAY, "'2026-02-30' is not a date"),
        ("2026-01-05T13:00", partitions.DAY, "'2026-01-05T13:00' is not aligned to the model's 1d interval"),
        (
            "2026-01-05",
            HOUR,
            "partition '2026-01-05' is a date; this model's partition is a datetime on a 1h",
        ),
        (dt.date(2026, 1, 5), HOUR, "is a date"),
        ("2026-01-05T13:30", HOUR, "falls inside the interval starting 2026-01-05T13"),
        ("2026-01-05T13", dt.timedelta(hours=6), "not aligned to the model's 6h interval"),
        ("", HOUR, "partition '' is not a datetime"),
        (17, partitions.DAY, "partition 17 is not a date"),
    ],
)
def test_parse_rejects_malformed_or_misaligned_values(value, length, message) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        Partition.parse(value, length)


def test_partition_refuses_misaligned_starts_and_unknown_intervals() -> None:
    with pytest.raises(ValueError, match="not the start of a 1h interval"):
        Partition(_utc(2026, 1, 1, 13, 30), HOUR)
    with pytest.raises(ValueError, match="unsupported partition interval"):
        Partition(_utc(2026, 1, 1), dt.timedelta(hours=5))


@pytest.mark.parametrize(
    ("text", "length"),
    [
        ("daily", partitions.DAY),
        ("1d", partitions.DAY),
        ("hourly", HOUR),
        ("1h", HOUR),
        ("6h", dt.timedelta(hours=6)),
    ],
)
def test_parse_interval(text, length) -> None:
    assert partitions.parse_interval(text) == length


@pytest.mark.parametrize("text", ["5h", "2d", "30m", "0h", "weekly", "25h"])
def test_parse_interval_refuses_lengths_that_do_not_tile_a_day(text) -> None:
    with pytest.raises(ValueError, match="is not a"):
        partitions.parse_interval(text)


def test_durations_in_intervals() -> None:
    assert partitions.intervals_in(partitions.parse_duration("2d"), HOUR) == 48
    assert partitions.intervals_in(partitions.parse_duration("36h"), dt.timedelta(hours=12)) == 3
    with pytest.raises(ValueError, match="36h is not a whole number of 1d intervals"):
        partitions.intervals_in(partitions.parse_duration("36h"), partitions.DAY)


def test_template_fields_of_an_hour() -> None:
    assert Partition.parse("2026-01-05T07", HOUR).fields() == {
        "ds": "2026-01-05",
        "ds_nodash": "20260105",
        "hour": "07",
        "ts_nodash": "20260105T070000",
        "partition": "2026-01-05T07",
    }


def test_key_of_stored_values() -> None:
    assert partitions.key_of(dt.date(2026, 1, 5)) == "2026-01-05"
    assert partitions.key_of(_utc(2026, 1, 5, 13), HOUR) == "2026-01-05T13"
    assert partitions.key_of("2026-01-05T13:00:00", HOUR) == "2026-01-05T13"
    assert partitions.key_of(_utc(2026, 1, 5, 13)) == "2026-01-05"


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


def test_hourly_sources_read_their_own_hour(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mloops.config import FilesSource
    from mloops.data.sources import files_path, render_query

    monkeypatch.setenv("MLOOPS_DATA_ROOT", str(tmp_path))
    hour = Partition.parse("2026-01-02T07", HOUR)
    source = FilesSource(kind="files", path="{data_root}/landing/{model}/dt={ds}/hour={hour}/part.parquet")
    assert (
        files_path(source, "churn", hour, tmp_path, ())
        == tmp_path / "landing/churn/dt=2026-01-02/hour=07/part.parquet"
    )
    stamped = FilesSource(kind="files", path="{data_root}/landing/{ts_nodash}.csv")
    assert files_path(stamped, "churn", hour, tmp_path, ()).name == "20260102T070000.csv"
    query = "where t >= '{{ data_interval_start }}' and t < '{{ data_interval_end }}' -- {{ partition }}"
    assert render_query(query, hour) == (
        "where t >= '2026-01-02T07:00:00+00:00' and t < '2026-01-02T08:00:00+00:00' -- 2026-01-02T07"
    )
    # A daily partition renders as it always did.
    assert render_query("{{ ds }} {{ data_interval_end }}", Partition.day(dt.date(2026, 1, 2))) == (
        "2026-01-02 2026-01-03T00:00:00+00:00"
    )


def test_metrics_store_keeps_hourly_windows_apart(tmp_path: Path) -> None:
    from mloops import store

    uri = f"sqlite:///{tmp_path / 'metrics.db'}"
    for hour in (13, 14):
        start = Partition.parse(f"2026-01-02T{hour}", HOUR)
        store.write_metrics(
            uri,
            model="m",
            model_version="1",
            window_start=start.value,
            window_end=start.value,
            metrics={"drift.share": hour / 100},
        )
    store.write_metrics(
        uri,
        model="m",
        model_version="1",
        window_start=dt.date(2026, 1, 1),
        window_end=dt.date(2026, 1, 2),
        metrics={"drift.share": 0.5},
    )
    rows = store.read_metrics(uri, "m")
    assert [(r["window_end"], r["value"]) for r in rows] == [
        (dt.date(2026, 1, 2), 0.5),
        (dt.datetime(2026, 1, 2, 13, tzinfo=dt.UTC), 0.13),
        (dt.datetime(2026, 1, 2, 14, tzinfo=dt.UTC), 0.14),
    ]
    store.record_event(
        uri, model="m", kind="k", message="x", partition=Partition.parse("2026-01-02T13", HOUR).value
    )
    assert store.read_events(uri, "m")[0]["partition"] == dt.datetime(2026, 1, 2, 13, tzinfo=dt.UTC)


def test_generator_hours_are_distinct_and_days_unchanged() -> None:
    from mloops_examples.generator import generate_partition

    day = dt.date(2026, 1, 2)
    thirteen = generate_partition("churn", day, rows=20, seed=7, hour=13)
    fourteen = generate_partition("churn", day, rows=20, seed=7, hour=14)
    assert thirteen is not None and fourteen is not None
    assert not set(thirteen["customer_id"]) & set(fourteen["customer_id"])
    assert set(thirteen["event_date"]) == {dt.datetime(2026, 1, 2, 13)}
    assert not thirteen["tenure_months"].equals(fourteen["tenure_months"])
    assert generate_partition("churn", day, rows=20, seed=7).equals(
        generate_partition("churn", day, rows=20, seed=7, hour=None)
    )
    with pytest.raises(ValueError, match="hour must be an int from 0 to 23, got 24"):
        generate_partition("churn", day, rows=20, hour=24)
