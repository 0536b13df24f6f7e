"""Registry writes serialized inside mloops, one writer per registered model at a time (and a model's GX
project, one validation at a time: :func:`project_lock`).

The MLflow registry has no compare-and-set: two writers that read ``champion`` and then move it both
succeed, and one promotion is lost (or MLflow's read-then-insert of an alias row raises a raw
``IntegrityError``). The Airflow pool only guards tasks that run in it, not a second deployment, a
manual CLI call or a task outside the pool, so every alias move takes :func:`registry_lock`:

- with a PostgreSQL metrics store (production), a session-level advisory lock on that database,
  keyed by the registered model: every worker of every host shares it;
- otherwise (the local SQLite stack, whose processes share one machine), an ``flock`` on a file under
  ``$MLOOPS_HOME/locks``.

Both are released by the operating system or the database when the holder dies (a killed task never
leaves a stale lock). A lock already held by the same thread is re-entered, so a locked stage may
call another.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Concatenate, ParamSpec, TypeVar

from mloops.errors import ProjectBusyError, RegistryBusyError, RegistryError, TransientError

if TYPE_CHECKING:
    from mloops.settings import Settings
    from mloops.stages.layout import RunContext

P = ParamSpec("P")
R = TypeVar("R")

#: How long a registry write waits for another writer of the same model before it gives up (seconds);
#: a promotion holds the lock for a few registry calls, so a wait this long means a stuck writer.
DEFAULT_TIMEOUT = 120.0
TIMEOUT_ENV = "MLOOPS_REGISTRY_LOCK_TIMEOUT"
_POLL = 0.05

_held = threading.local()


def lock_timeout() -> float:
    value = os.environ.get(TIMEOUT_ENV, "")
    try:
        return float(value) if value else DEFAULT_TIMEOUT
    except ValueError:
        raise RegistryError(f"{TIMEOUT_ENV}={value!r} is not a number of seconds") from None


#: What a lock guards: the registry writes of a registered model, or a model's GX project.
REGISTRY, PROJECT = "registry", "project"
#: How long a validation waits for another validation of the same model's GX project (seconds): one
#: validation of a large batch holds it for a minute or more.
PROJECT_TIMEOUT = 900.0


def advisory_key(name: str, kind: str = REGISTRY) -> int:
    """A stable signed 64-bit key for ``pg_advisory_lock`` (the same in every process and host)."""
    digest = hashlib.sha256(f"mloops.{kind}:{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


@contextlib.contextmanager
def registry_lock(settings: Settings, name: str, *, timeout: float | None = None) -> Iterator[None]:
    """Hold the registry write lock of registered model ``name`` for the duration of the block.

    Raises :class:`~mloops.errors.RegistryBusyError` (retryable) naming the model and the lock when
    another writer holds it for longer than ``timeout`` seconds (default
    ``MLOOPS_REGISTRY_LOCK_TIMEOUT``, 120): nothing was changed and the task may be retried.
    """
    with _lock(settings, REGISTRY, name, lock_timeout() if timeout is None else timeout):
        yield


@contextlib.contextmanager
def project_lock(settings: Settings, model: str, *, timeout: float = PROJECT_TIMEOUT) -> Iterator[None]:
    """Hold the lock of ``model``'s GX project (its suites, checkpoints and Data Docs site) for the block.

    GX's file-backed project is not safe for concurrent writers: two validations of the same model at
    once (scoring nights of a backfill run side by side) both create the suite, and the second fails with
    ``Store already has the following key``. Raises the retryable :class:`ProjectBusyError` after
    ``timeout`` seconds.
    """
    with _lock(settings, PROJECT, model, timeout):
        yield


@contextlib.contextmanager
def _lock(settings: Settings, kind: str, name: str, wait: float) -> Iterator[None]:
    held: set[str] = _held.__dict__.setdefault("names", set())
    key = f"{kind}:{name}"
    if key in held:
        yield
        return
    uri = settings.metrics_db_uri
    shared = uri.startswith("postgresql")
    with _advisory_lock(uri, name, wait, kind) if shared else _file_lock(settings, name, wait, kind):
        held.add(key)
        try:
            yield
        finally:
            held.discard(key)


def serialized(stage: Callable[Concatenate[RunContext, P], R]) -> Callable[Concatenate[RunContext, P], R]:
    """Run a registry stage ``stage(ctx, ...)`` under the :func:`registry_lock` of its model, so it
    reads the aliases, decides and moves them with no other writer in between."""

    @functools.wraps(stage)
    def locked(ctx: RunContext, /, *args: P.args, **kwargs: P.kwargs) -> R:
        with registry_lock(ctx.settings, ctx.config.registered_model_name):
            return stage(ctx, *args, **kwargs)

    return locked


def _timed_out(name: str, where: str, wait: float, kind: str) -> TransientError:
    if kind == PROJECT:
        return ProjectBusyError(
            f"{name}: another validation has held the model's GX project ({where}) for {wait:.0f} s; "
            "nothing was validated, retry the task once it is done"
        )
    return RegistryBusyError(
        f"{name}: another registry write has held the lock ({where}) for {wait:.0f} s; nothing was "
        "changed, retry the task once it is done"
    )


@contextlib.contextmanager
def _file_lock(settings: Settings, name: str, wait: float, kind: str) -> Iterator[None]:
    import fcntl

    folder = settings.home / "locks"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{kind}.{re.sub(r'[^A-Za-z0-9_.-]', '_', name)}.lock"
    deadline = time.monotonic() + wait
    with open(path, "a+b") as handle:  # one open file description per holder: threads exclude too
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise _timed_out(name, f"file {path}", wait, kind) from None
                time.sleep(_POLL)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextlib.contextmanager
def _advisory_lock(uri: str, name: str, wait: float, kind: str) -> Iterator[None]:
    import sqlalchemy as sa

    from mloops import store
    from mloops.errors import service_error

    key = advisory_key(name, kind)
    deadline = time.monotonic() + wait
    try:
        conn = store.engine(uri).connect()
    except (sa.exc.OperationalError, sa.exc.InterfaceError) as exc:
        doing = f"taking the {kind} lock of {name}"
        raise service_error("metrics DB", uri, doing, getattr(exc, "orig", None) or exc) from exc
    with conn:
        while not conn.execute(sa.text("SELECT pg_try_advisory_lock(:key)"), {"key": key}).scalar():
            conn.rollback()
            if time.monotonic() >= deadline:
                raise _timed_out(name, f"PostgreSQL advisory lock {key} on the metrics DB", wait, kind)
            time.sleep(_POLL)
        conn.commit()  # a session-level lock outlives the transaction; do not hold one open meanwhile
        try:
            yield
        finally:
            conn.execute(sa.text("SELECT pg_advisory_unlock(:key)"), {"key": key})
            conn.commit()
