"""Every mloops DAG's trigger form in Chromium: no error before typing, readable choices, a valid run.

Runs after the fleet tests (file order): triggering unpauses and queues runs, which the fleet page
would then show as the newest runs.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from tests.ui.conftest import ApiServer

pytestmark = pytest.mark.ui

WITH_DEFAULTS = (
    "mloops_train_churn",
    "mloops_score_churn",
    "mloops_monitor_churn",
    "mloops_train_house_prices",
)


def _open_form(page, url: str, dag_id: str):
    page.goto(f"{url}/dags/{dag_id}")
    page.get_by_role("button", name="Trigger").first.click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_text("Run Parameters").wait_for(timeout=60_000)
    time.sleep(1)  # the form validates its defaults once rendered
    return dialog


def _error_markers(dialog) -> int:
    """The red marker sits beside the "Run Parameters" heading (its chevron is the one other icon)."""
    heading = dialog.locator("[data-part='item-trigger']", has_text="Run Parameters")
    return heading.locator("svg").count() - 1


def _runs(page, url: str, dag_id: str) -> list[dict]:
    return page.request.get(f"{url}/api/v2/dags/{dag_id}/dagRuns?order_by=-run_after").json()["dag_runs"]


def _trigger_and_wait(page, url: str, dag_id: str, dialog) -> dict:
    before = {r["dag_run_id"] for r in _runs(page, url, dag_id)}
    button = dialog.get_by_role("button", name="Trigger", exact=True).last
    assert button.is_enabled()
    button.click()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        new = [r for r in _runs(page, url, dag_id) if r["dag_run_id"] not in before]
        if new:
            return new[0]
        time.sleep(0.5)
    raise AssertionError(f"no run of {dag_id} was created")


@pytest.mark.parametrize("dag_id", WITH_DEFAULTS)
def test_form_opens_clean_and_triggers_a_valid_run_with_its_defaults(
    page, api_server: ApiServer, dag_id: str
) -> None:
    dialog = _open_form(page, api_server.url, dag_id)
    assert _error_markers(dialog) == 0
    assert dialog.locator("[data-part='required-indicator']").count() == 0
    text = dialog.inner_text()
    assert "This field is required" not in text
    assert "\nnull\n" not in f"\n{text}\n"
    if dag_id.startswith("mloops_train_"):  # the fixture's churn runs the shadow policy
        assert f"Config default ({'shadow' if dag_id == 'mloops_train_churn' else 'auto'})" in text
    run = _trigger_and_wait(page, api_server.url, dag_id, dialog)
    assert run["state"] in ("queued", "running")
    if dag_id.startswith("mloops_train_"):
        assert run["conf"]["promotion_mode"] is None and run["conf"]["reason"] is None
        assert run["conf"]["estimator_overrides"] in (None, {})


def test_registry_ops_form_says_why_reason_is_required(page, api_server: ApiServer) -> None:
    dialog = _open_form(page, api_server.url, "mloops_registry_ops")
    text = dialog.inner_text()
    assert "Required: every registry change is audited" in text
    assert "Promote a version to champion" in text
    assert not dialog.get_by_role("button", name="Trigger", exact=True).last.is_enabled()
    dialog.locator("input[id=reason], input[name=reason], textarea[name=reason], #element_reason").first.fill(
        "roll back after a bad release"
    )
    time.sleep(1)
    assert _error_markers(dialog) == 0
    run = _trigger_and_wait(page, api_server.url, "mloops_registry_ops", dialog)
    assert run["conf"]["reason"] == "roll back after a bad release" and run["conf"]["action"] == "promote"
