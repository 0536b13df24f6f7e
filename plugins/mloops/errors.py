"""Every error mloops raises on purpose, in one place.

Each message names what is wrong and where (file and field, partition and path, check and threshold)
so a data engineer can act on it without reading a traceback.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

#: Longest message an error, event or notification carries; longer ones are cut with a marker, so a
#: failure listing a million bad values cannot flood the metrics DB, XCom or a webhook.
MAX_MESSAGE_CHARS = 4_000
#: Longest JSON text of an event or failure payload; a longer one is replaced by its head.
MAX_PAYLOAD_CHARS = 64_000

_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<user>[^:@/\s]*):(?P<secret>[^@/\s]*)@")
_SECRET_QUERY = re.compile(r"(?i)(?P<key>(?:password|passwd|pwd|token|secret)=)[^&\s]+")


def masked(uri: str) -> str:
    """``uri`` with any password (``user:password@`` or ``password=`` in the query) replaced by ``***``."""
    text = _USERINFO.sub(lambda m: f"{m['scheme']}{m['user']}:***@", str(uri))
    return _SECRET_QUERY.sub(lambda m: f"{m['key']}***", text)


def bounded(text: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    """``text`` cut to ``limit`` characters, saying how much was left out."""
    text = str(text)
    if len(text) <= limit:
        return text
    kept = max(limit - len(f" ... [{len(text)} more characters cut]"), 0)
    return f"{text[:kept]} ... [{len(text) - kept} more characters cut]"


def bounded_payload(payload: Mapping[str, Any] | None, limit: int = MAX_PAYLOAD_CHARS) -> dict[str, Any]:
    """``payload`` itself when its JSON fits in ``limit`` characters, else its head and its size."""
    import json

    data = dict(payload or {})
    text = json.dumps(data, sort_keys=True, default=str)
    if len(text) <= limit:
        return data
    return {"truncated": True, "chars": len(text), "head": text[: limit // 2]}


class MloopsError(Exception):
    """Base class of all mloops errors.

    ``result`` is the stage's result at the point of failure (a JSON-able dict, e.g. the failing
    validation or test report) that the operator publishes to XCom before the task fails, so the
    failing report stays inspectable; ``None`` when the error has no report of its own.
    """

    result: dict[str, Any] | None = None

    def __init__(self, message: str, *, result: Mapping[str, Any] | None = None) -> None:
        super().__init__(message)
        self.result = dict(result) if result is not None else None


class SkipStage(MloopsError):
    """An intended "nothing to do": the operator ends the task ``skipped`` with this reason, never
    ``failed``."""


class NoChampionError(SkipStage):
    """The model has no champion yet: nothing to score or monitor."""


class ModelConfigError(MloopsError):
    """A model YAML file is missing, unreadable or invalid."""

    def __init__(self, path: str, problems: list[str]) -> None:
        self.path = path
        self.problems = problems
        super().__init__(f"{path}: " + "; ".join(problems))


class PartitionMissingError(MloopsError):
    """The partition for a data interval does not exist at its source."""


class DataSourceError(MloopsError):
    """A partition exists but cannot be read (corrupt file, failing query)."""


class UnreadablePartitionError(DataSourceError):
    """A delivered partition file cannot be parsed; ``path`` is the file, quarantined like an invalid
    batch."""

    def __init__(self, message: str, *, path: Any) -> None:
        super().__init__(message)
        self.path = path


class StateFileError(MloopsError):
    """A state file mloops wrote (a verdict) is corrupt: the message names it and how to rebuild it."""


class StorageError(MloopsError):
    """The data root (a folder or object storage through an Airflow connection) cannot be used."""


class ValidationFailedError(MloopsError):
    """A batch failed its expectation suite and was quarantined."""


class InsufficientDataError(MloopsError):
    """The training window holds too few validated rows or partitions."""


class TrainingError(MloopsError):
    """Training could not run as configured (bad estimator parameters, one-class target, ...)."""


class ModelGateFailedError(MloopsError):
    """A model test (threshold, champion comparison, slice, smoke test) failed."""


class RegistryError(MloopsError):
    """A registry operation was refused or is inconsistent."""


class TransientError(MloopsError):
    """A fault a retry can fix (a store unreachable, a lock held by another writer): the task fails
    with this message and Airflow retries it, unlike the data and gate errors above."""


class RegistryBusyError(TransientError, RegistryError):
    """Another writer held the registry lock of the model for too long; nothing was changed."""


class ProjectBusyError(TransientError):
    """Another validation held the model's GX project for too long; nothing was validated."""


class ServiceUnavailableError(TransientError):
    """A store mloops depends on (MLflow, the metrics DB, the data root) cannot be reached: the message
    names the service, its address (credentials masked) and what was being done."""

    @classmethod
    def of(cls, service: str, uri: str, doing: str, cause: BaseException) -> ServiceUnavailableError:
        return cls(bounded(f"{service} at {masked(uri)} cannot be reached while {doing}: {_reason(cause)}"))


class ServiceAuthError(MloopsError):
    """A store mloops depends on answered but refused its credentials (HTTP 401/403, a database login
    refused). A retry cannot fix that, so the task fails at once: the message names the service, its
    address (credentials masked), what was being done, the refusal and the credentials sent."""


#: MLflow's error codes for HTTP 401 and 403 (``mlflow.protos.databricks_pb2``), and what they mean.
_REFUSED_CODES = {
    "UNAUTHENTICATED": "authentication failed (HTTP 401: the credentials are missing or wrong)",
    "PERMISSION_DENIED": "permission denied (HTTP 403: the user may not do this)",
}
_REFUSED_STATUS = {401: _REFUSED_CODES["UNAUTHENTICATED"], 403: _REFUSED_CODES["PERMISSION_DENIED"]}
#: How PostgreSQL (libpq) and MySQL word a refused login; their drivers give it no code of its own.
_DB_LOGIN_REFUSED = re.compile(
    r"password authentication failed|authentication failed for user|no pg_hba\.conf entry|"
    r'no password supplied|Access denied for user|role "[^"]*" does not exist',
    re.IGNORECASE,
)


def auth_refusal(cause: BaseException) -> str | None:
    """What kind of credential refusal ``cause`` is (an HTTP 401/403 from MLflow or any HTTP client,
    a database login refused), or ``None`` for any other failure."""
    code = getattr(cause, "error_code", None)
    if code in _REFUSED_CODES:
        return _REFUSED_CODES[str(code)]
    response = getattr(cause, "response", None)
    status = getattr(cause, "status_code", None) or getattr(response, "status_code", None)
    if status in _REFUSED_STATUS:
        return _REFUSED_STATUS[int(status)]
    if _DB_LOGIN_REFUSED.search(str(cause)):
        return "the database refused the login (authentication failed)"
    return None


def service_error(
    service: str, uri: str, doing: str, cause: BaseException, credentials: str = ""
) -> ServiceAuthError | ServiceUnavailableError:
    """The error to raise when ``service`` at ``uri`` failed while ``doing``: a
    :class:`ServiceAuthError` (not retried) when it refused the credentials (``credentials`` says which
    were sent), else the retryable :class:`ServiceUnavailableError`."""
    refusal = auth_refusal(cause)
    if refusal is None:
        return ServiceUnavailableError.of(service, uri, doing, cause)
    sent = f"; credentials sent: {credentials}" if credentials else ""
    return ServiceAuthError(
        bounded(f"{service} at {masked(uri)} refused mloops while {doing}: {refusal}{sent}. {_reason(cause)}")
    )


def _reason(cause: BaseException) -> str:
    text = str(cause).strip()
    return masked(text.splitlines()[0] if text else type(cause).__name__)


class InvalidParamsError(MloopsError):
    """A manually supplied run parameter is invalid."""


class DriftInputError(MloopsError):
    """The windows cannot be compared (empty window, feature missing from the current data)."""


class LabelFeedError(MloopsError):
    """A label delivery cannot be joined (its id or label column is missing): the message names the
    delivery and the columns it has."""


class ModelIntegrityError(MloopsError):
    """A model version is not verifiably the one mloops logged (flavor, digest, trusted types): it is
    not loaded."""
