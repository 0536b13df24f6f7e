"""The summary's partition list: dates before a model's first delivered partition are not reported."""

from __future__ import annotations

import pytest

from mloops.summary import reported_partitions

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("verdicts", "reported"),
    [
        # the first night's window reaches six days before the data starts
        (
            {
                "2025-12-26": "missing",
                "2025-12-27": "missing",
                "2026-01-01": "passed",
                "2026-01-02": "missing",
                "2026-01-03": "quarantined",
                "2026-01-04": "passed",
            },
            {
                "2026-01-01": "passed",
                "2026-01-02": "missing",
                "2026-01-03": "quarantined",
                "2026-01-04": "passed",
            },
        ),
        # read in folder order is not date order
        (
            {"2026-01-02": "passed", "2025-12-31": "missing", "2026-01-01": "quarantined"},
            {"2026-01-01": "quarantined", "2026-01-02": "passed"},
        ),
        (
            {"2026-01-01": "passed", "2026-01-05": "missing"},
            {"2026-01-01": "passed", "2026-01-05": "missing"},
        ),
        ({"2026-01-01": "missing", "2026-01-02": "missing"}, {}),
        ({}, {}),
    ],
)
def test_dates_before_the_first_partition_are_not_reported(verdicts: dict, reported: dict) -> None:
    result = reported_partitions(verdicts)
    assert result == reported
    assert list(result) == sorted(result)
