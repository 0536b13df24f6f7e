"""A store that refuses mloops' login is named as a refusal and not retried; a store that is down is
still an outage, retried.

On main every failure of the metrics DB, a refused login included, was "cannot be reached" and left
to the task's retries, which were refused the same way.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from mloops.errors import ServiceAuthError, ServiceUnavailableError, auth_refusal, service_error
from tests.conftest import require_service
from tests.operators.test_operators import churn_models, refused_promotion  # noqa: F401 - fixture

pytestmark = pytest.mark.security


class HTTPFailure(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(f"HTTP {status}")
        self.status_code = status


class MlflowLike(Exception):
    def __init__(self, code: str) -> None:
        super().__init__(f"API request failed: {code}")
        self.error_code = code


@pytest.mark.parametrize(
    ("cause", "refusal"),
    [
        (MlflowLike("UNAUTHENTICATED"), "authentication failed (HTTP 401"),
        (MlflowLike("PERMISSION_DENIED"), "permission denied (HTTP 403"),
        (MlflowLike("RESOURCE_DOES_NOT_EXIST"), None),
        (HTTPFailure(401), "authentication failed (HTTP 401"),
        (HTTPFailure(403), "permission denied (HTTP 403"),
        (HTTPFailure(503), None),
        (OSError('FATAL:  password authentication failed for user "mloops"'), "the database refused"),
        (OSError("FATAL:  no pg_hba.conf entry for host"), "the database refused"),
        (OSError("fe_sendauth: no password supplied"), "the database refused"),
        (OSError('FATAL:  role "intruder" does not exist'), "the database refused"),
        (ConnectionRefusedError("[Errno 111] Connection refused"), None),
        (TimeoutError("timed out"), None),
    ],
)
def test_refusals_are_told_apart_from_outages(cause: BaseException, refusal: str | None) -> None:
    found = auth_refusal(cause)
    assert (found is None) if refusal is None else (found or "").startswith(refusal)
    error = service_error("metrics DB", "postgresql://u:pw@db:5432/m", "recording an event", cause)
    assert isinstance(error, ServiceUnavailableError if refusal is None else ServiceAuthError)
    assert "pw@" not in str(error) and "u:***@db:5432" in str(error)


def test_a_metrics_db_login_refused_fails_the_task_at_once_naming_the_db(
    churn_models: Path,  # noqa: F811 - the imported fixture
    mloops_home: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The real PostgreSQL on 127.0.0.1:5432 refuses a user it does not know."""
    require_service("PostgreSQL", "127.0.0.1", 5432)
    uri = "postgresql+psycopg2://intruder:s3cret@127.0.0.1:5432/postgres"
    monkeypatch.setenv("MLOOPS_METRICS_DB_URI", uri)
    message = refused_promotion()
    assert message.startswith(
        "promote_model of model 'churn': metrics DB at "
        "postgresql+psycopg2://intruder:***@127.0.0.1:5432/postgres refused mloops while taking the "
        "registry lock of mloops.churn: the database refused the login"
    ), message
    assert 'role "intruder" does not exist' in message and "s3cret" not in message
    assert "cannot be reached" not in message
