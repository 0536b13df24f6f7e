"""The approval of a promotion on Airflow's Required Actions page, answered in Chromium.

A training run of churn with ``promotion_mode: approval`` runs under ``dag.test()`` in its own process
over the same Airflow database as the API server; ``dag.test()`` keeps the run alive while the
approval task waits in ``awaiting_input`` and resumes it once a response is recorded (here: from the
browser), so no scheduler is needed. Runs after the fleet page tests (file order): it adds a version.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.helpers import REPO
from tests.ui.test_fleet_ui import FLEET, _screenshot

if TYPE_CHECKING:
    from tests.ui.conftest import ApiServer, Fleet

pytestmark = pytest.mark.ui

DAG = "mloops_train_churn"
DAY = "2026-01-05"  # the day after the fleet fixture's last training run
RUN = (
    "import json\n"
    "from tests.helpers import dag_test\n"
    f"_, states = dag_test({DAG!r}, {DAY!r}, conf={{'promotion_mode': 'approval', 'reason': 'ui test'}})\n"
    "print('STATES ' + json.dumps(states))\n"
)


@dataclass(frozen=True)
class ApprovalRun:
    process: subprocess.Popen
    log: Path

    def tail(self) -> str:
        return self.log.read_text()[-4000:]

    def states(self, timeout: float) -> dict[str, str]:
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the approval run did not end within {timeout:.0f} s:\n{self.tail()}")
        found = [line for line in self.log.read_text().splitlines() if line.startswith("STATES ")]
        assert found, f"the approval run ended without its task states:\n{self.tail()}"
        return json.loads(found[-1].removeprefix("STATES "))


@pytest.fixture(scope="module")
def approval_run(
    fleet_stores: Fleet, api_server: ApiServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ApprovalRun]:
    log = tmp_path_factory.mktemp("approval") / "dag-test.log"
    env = {**os.environ, "PYTHONPATH": f"{REPO / 'plugins'}{os.pathsep}{REPO}"}
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-c", RUN], cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        yield ApprovalRun(process, log)
    finally:
        if process.poll() is None:  # never answered: dag.test() would wait for ever
            process.kill()
            process.wait(timeout=30)


def _champion() -> str | None:
    from mloops.adapters.mlflow_adapter import client, version_by_alias
    from mloops.settings import get_settings

    found = version_by_alias(client(get_settings()), "mloops.churn", "champion")
    return None if found is None else str(found.version)


def _wait_for_pending(page, url: str, run: ApprovalRun, timeout: float = 420) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        found = page.request.get(
            f"{url}/api/v2/dags/{DAG}/dagRuns/~/hitlDetails?response_received=false"
        ).json()
        if found.get("total_entries"):
            return found["hitl_details"][0]
        if run.process.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"no approval became pending:\n{run.tail()}")
        time.sleep(2)


def test_approval_is_readable_and_approving_it_in_the_browser_promotes(
    page, api_server: ApiServer, approval_run: ApprovalRun
) -> None:
    before = _champion()
    assert before is not None
    pending = _wait_for_pending(page, api_server.url, approval_run)
    version = re.fullmatch(r"Promote mloops\.churn v(\d+) to champion\?", pending["subject"]).group(1)
    assert version != before

    # the fleet page says who must act, since when
    page.goto(f"{api_server.url}{FLEET}/")
    churn = page.locator("tr[data-model='churn']")
    assert "since" in churn.locator("td.approvals").inner_text()
    assert "approval pending since" in churn.locator("td").nth(1).inner_text()

    # Browse > Required Actions lists it; its page reads as a decision a person can make
    page.goto(f"{api_server.url}/required_actions")
    page.get_by_text(pending["subject"]).first.click()
    page.wait_for_url("**/tasks/approve_promotion/required_actions**")
    page.get_by_text("model tests").first.wait_for(timeout=60_000)
    text = page.locator("body").inner_text()
    assert f"mloops.churn v{version}" in text and "checks passed" in text
    assert "roc_auc (primary)" in text and f"champion v{before}" in text
    assert "keeps the current champion" in text
    _screenshot(page, "approval.png")

    page.locator("textarea[name='comment'], input[name='comment'], #element_comment").first.fill(
        "looks good in the browser"
    )
    page.get_by_role("button", name="Approve").click()

    states = approval_run.states(timeout=300)
    assert states["approve_promotion"] == "success" and states["promote_model"] == "success", states
    assert _champion() == version

    from mlflow import MlflowClient

    from mloops.settings import get_settings

    tags = MlflowClient(get_settings().mlflow_tracking_uri).get_model_version("mloops.churn", version).tags
    record = json.loads(tags["mloops.approval"])
    assert record["decision"] == "approved" and record["comment"] == "looks good in the browser"
    assert record["by"] == "ops"
