"""The text a person reads on the Required Actions page before approving a promotion."""

from __future__ import annotations

import json

import pytest

from mloops.operators.approval import approval_request

pytestmark = pytest.mark.unit

CANDIDATE = {
    "mloops.data_interval_start": "2026-01-05",
    "mloops.test_status": "passed",
    "mloops.tests": json.dumps({"threshold:roc_auc": True, "slice:contract_type": True, "smoke": True}),
    "mloops.test_report": "file:///data/reports/churn/dt=2026-01-05/report.md",
    "metric.roc_auc": "0.81234",
    "metric.f1": "0.5",
}


def test_names_the_version_its_tests_and_metrics_against_the_champion() -> None:
    subject, body = approval_request(
        "mloops.churn",
        "3",
        CANDIDATE,
        primary_metric="roc_auc",
        champion=("2", {"metric.roc_auc": "0.8", "metric.f1": "0.45"}),
        timeout_hours=24,
    )
    assert subject == "Promote mloops.churn v3 to champion?"
    assert "**mloops.churn v3**, trained on data to 2026-01-05: model tests **passed** (3 of 3" in body
    assert "| slice:contract_type | pass |" in body
    assert "| Metric | v3 | champion v2 |" in body
    assert "| roc_auc (primary) | 0.8123 | 0.8000 |" in body
    assert "| f1 | 0.5000 | 0.4500 |" in body
    assert "report.md" in body and "no answer within 24 h" in body


@pytest.mark.parametrize(
    ("tags", "expected"),
    [
        ({**CANDIDATE, "mloops.tests": json.dumps({"smoke": True, "threshold:roc_auc": False})}, "| FAIL |"),
        ({**CANDIDATE, "mloops.tests": "not json"}, "(0 of 0 checks passed)"),
        ({}, "model tests **not tested**"),
    ],
)
def test_failed_missing_or_unreadable_test_tags_are_said_plainly(tags: dict, expected: str) -> None:
    _, body = approval_request(
        "mloops.churn", "1", tags, primary_metric="roc_auc", champion=None, timeout_hours=0.5
    )
    assert expected in body
    assert "No champion yet" in body and "| Metric | v1 |" in body and "0.5 h" in body
