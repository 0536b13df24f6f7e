"""Racing registry writers are serialized inside mloops, not only by the Airflow pool.

On main, promotions racing outside the pool lost an update 8 times in 8 (two writers read the same
champion, both moved it, one promotion vanished from the ``previous`` chain) and twice hit a raw
``IntegrityError`` (MLflow's read-then-insert of an alias row). Here the writers are real promotion
tasks (``MLflowPromoteModelOperator.execute``) in threads against one real MLflow store, with the
lock on the local file system and on a real PostgreSQL metrics DB.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from mloops.contracts import Alias, Tag
from mloops.operators import MLflowPromoteModelOperator
from tests.faults.test_promotion_faults import _registered
from tests.operators.test_operators import _execute, churn_models  # noqa: F401 - fixture

pytestmark = pytest.mark.faults

RACERS = 5
NAME = "mloops.churn"


@pytest.fixture
def postgres_metrics_db(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The metrics store on a fresh database of the PostgreSQL server on 127.0.0.1 (advisory locks)."""
    from tests.integration.native_stack import Postgres

    server = Postgres.discover()
    database = f"mloops_race_{uuid.uuid4().hex[:10]}"
    with contextlib.closing(server.connect()) as conn, conn.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{database}"')
    uri = f"postgresql+psycopg2://{server.user}@{server.host}:{server.port}/{database}"
    monkeypatch.setenv("MLOOPS_METRICS_DB_URI", uri)
    try:
        yield uri
    finally:
        from mloops import store

        store.engine(uri).dispose()
        store.engine.cache_clear()
        with contextlib.closing(server.connect()) as conn, conn.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def _race(calls: list) -> list:
    """Run the calls in threads released together; every outcome (result or exception) is returned."""
    start = threading.Barrier(len(calls))
    outcomes: list = [None] * len(calls)

    def run(index: int) -> None:
        start.wait()
        try:
            outcomes[index] = calls[index]()
        except Exception as exc:  # noqa: BLE001 - the outcome under test
            outcomes[index] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=180)
    return outcomes


def _promote(version: str):
    registered = {"model": "churn", "registered_model": NAME, "version": version, "reused": False}

    def call() -> dict:
        return _execute(
            MLflowPromoteModelOperator(task_id="promote_model", model="churn"),
            {("register_model", "return_value"): registered},
        )

    return call


@pytest.mark.parametrize("backend", ["file", pytest.param("postgres", marks=pytest.mark.services)])
def test_racing_promotions_lose_no_update(
    backend: str,
    churn_models: Path,  # noqa: F811 - the imported fixture
    mloops_home: Path,
    request: pytest.FixtureRequest,
) -> None:
    from mloops import store as metrics
    from mloops.adapters import mlflow_adapter
    from mloops.settings import get_settings

    if backend == "postgres":
        request.getfixturevalue("postgres_metrics_db")
    runs: dict = {}
    _registered(runs)
    _execute(MLflowPromoteModelOperator(task_id="promote_model", model="churn"), runs)  # v1 bootstraps
    client = mlflow_adapter.client(get_settings())
    first = mlflow_adapter.get_version(client, NAME, "1")
    tested = {k: v for k, v in first.tags.items() if "promot" not in k}  # what registration wrote
    challengers = [
        mlflow_adapter.register_version(client, NAME, first.source, first.run_id or "", tested)
        for _ in range(RACERS)
    ]

    outcomes = _race([_promote(v.version) for v in challengers])

    failures = [o for o in outcomes if isinstance(o, Exception)]
    assert not failures, f"racing promotions failed: {failures!r}"
    assert all(o["action"] == "promote" for o in outcomes)
    # No lost update: the promotions form one chain v1 -> a -> b -> ... each replacing the one before.
    replaced = {o["previous"]: o["version"] for o in outcomes}
    assert len(replaced) == RACERS, f"two promotions replaced the same champion: {outcomes}"
    chain, at = ["1"], "1"
    while at in replaced:
        at = replaced[at]
        chain.append(at)
    assert sorted(chain) == sorted(["1", *(v.version for v in challengers)], key=int)
    champion = mlflow_adapter.version_by_alias(client, NAME, Alias.CHAMPION)
    previous = mlflow_adapter.version_by_alias(client, NAME, Alias.PREVIOUS)
    assert (champion.version, previous.version) == (chain[-1], chain[-2])
    # Audit tags and events agree with the aliases: each version says whom it replaced, once.
    for before, after in zip(chain, chain[1:], strict=False):
        tags = mlflow_adapter.get_version(client, NAME, after).tags
        assert tags[Tag.PROMOTED_FROM] == before and tags[Tag.PROMOTION_PENDING] == "recorded"
    events = metrics.read_events(get_settings().metrics_db_uri, "churn", "model_promoted")
    recorded = {e["payload"]["version"]: e["payload"]["previous"] for e in events[1:]}
    assert recorded == {after: before for before, after in zip(chain, chain[1:], strict=False)}


def test_lock_held_too_long_refuses_with_nothing_changed(mloops_home: Path) -> None:
    """A writer that cannot get the lock in time fails with the model and the lock named, and retries."""
    from mloops.errors import RegistryBusyError
    from mloops.locks import registry_lock
    from mloops.settings import get_settings

    settings = get_settings()
    holding, release = threading.Event(), threading.Event()

    def hold() -> None:
        with registry_lock(settings, NAME):
            holding.set()
            release.wait(30)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert holding.wait(10)
        started = time.monotonic()
        with (
            pytest.raises(RegistryBusyError, match=r"mloops\.churn: another registry write has held"),
            registry_lock(settings, NAME, timeout=0.3),
        ):
            pass
        assert time.monotonic() - started < 5
    finally:
        release.set()
        holder.join()
    with registry_lock(settings, NAME, timeout=1), registry_lock(settings, NAME):  # re-entered
        pass


def test_a_killed_lock_holder_leaves_no_stale_lock(mloops_home: Path) -> None:
    """The lock dies with its holder: a task killed mid-promotion does not block the next one."""
    from mloops.locks import registry_lock
    from mloops.settings import get_settings

    ready = mloops_home / "holding"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import pathlib, sys, time\n"
            "from mloops.locks import registry_lock\n"
            "from mloops.settings import get_settings\n"
            f"with registry_lock(get_settings(), {NAME!r}):\n"
            f"    pathlib.Path({str(ready)!r}).touch()\n"
            "    time.sleep(120)\n",
        ],
        cwd=Path(__file__).resolve().parents[2] / "plugins",
    )
    try:
        deadline = time.monotonic() + 30
        while not ready.exists():
            assert holder.poll() is None and time.monotonic() < deadline, "the holder did not start"
            time.sleep(0.05)
        holder.kill()
        holder.wait(10)
        with registry_lock(get_settings(), NAME, timeout=5):
            pass
    finally:
        if holder.poll() is None:
            holder.kill()
