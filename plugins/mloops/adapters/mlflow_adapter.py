"""The one place mloops calls MLflow (tracking, logged models, registry, aliases).

With an embedded store (``sqlite:///``) each experiment gets an explicit artifact root under the
mloops home; otherwise MLflow would write artifacts into the task's temporary working directory.
Models are logged with skops and an explicit list of trusted types, never with pickle.
"""

from __future__ import annotations

import os
import socket
import urllib.parse
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mloops.adapters import model_integrity
from mloops.contracts import Tag
from mloops.errors import ServiceAuthError, ServiceUnavailableError, auth_refusal, service_error

if TYPE_CHECKING:
    import pandas as pd
    from mlflow import MlflowClient
    from mlflow.entities.model_registry import ModelVersion

    from mloops.settings import Settings


@dataclass(frozen=True)
class RunInfo:
    """The tracking facts mloops needs about one run (no ``Run.data`` reads outside this module)."""

    run_id: str
    status: str
    tags: Mapping[str, str]
    metrics: Mapping[str, float]
    params: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class DatasetInput:
    """One input of a training run, logged with ``mlflow.data``: the rows, where they came from, our
    digest."""

    frame: pd.DataFrame
    source: str
    name: str
    context: str  # "training" or "evaluation"
    digest: str


def _run_info(run: Any) -> RunInfo:
    return RunInfo(
        run_id=run.info.run_id,
        status=run.info.status,
        tags=dict(run.data.tags or {}),
        metrics=dict(run.data.metrics or {}),
        params=dict(run.data.params or {}),
    )


@dataclass(frozen=True)
class VersionInfo:
    """The registry facts mloops needs about one model version."""

    name: str
    version: str
    run_id: str | None
    source: str
    tags: Mapping[str, str]
    aliases: tuple[str, ...]

    @property
    def uri(self) -> str:
        return f"models:/{self.name}/{self.version}"


#: MLflow's own HTTP retries (7, with exponential backoff) take minutes to report a dead server; the
#: task's retries decide how long to keep trying, so a request gives up after these (env overrides).
HTTP_DEFAULTS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "3", "MLFLOW_HTTP_REQUEST_TIMEOUT": "60"}
#: Seconds to wait for the tracking server to accept a connection (and answer the probe) before a
#: stage starts.
PROBE_TIMEOUT = 5.0
SERVICE = "MLflow tracking server"
#: Answered by any MLflow server; behind ``--app-name basic-auth`` only to a signed-in user (no
#: permission needed), so wrong or missing credentials show before the stage's first real call.
PROBE_ENDPOINT = "/version"


def credentials_sent(uri: str) -> str:
    """Which credentials the MLflow client sends to ``uri`` (never the secret itself), for refusal
    messages."""
    from mlflow.environment_variables import MLFLOW_TRACKING_TOKEN, MLFLOW_TRACKING_USERNAME

    if MLFLOW_TRACKING_USERNAME.get():
        return f"user {MLFLOW_TRACKING_USERNAME.get()!r} (MLFLOW_TRACKING_USERNAME/MLFLOW_TRACKING_PASSWORD)"
    if MLFLOW_TRACKING_TOKEN.get():
        return "a token (MLFLOW_TRACKING_TOKEN)"
    if urllib.parse.urlsplit(uri).username:
        return f"user {urllib.parse.urlsplit(uri).username!r} (in the tracking URI)"
    return "none (MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD are not set)"


def reach_server(uri: str, doing: str) -> None:
    """Fail fast when the tracking server at ``uri`` does not accept a connection
    (:class:`~mloops.errors.ServiceUnavailableError`, retryable) or refuses mloops' credentials
    (:class:`~mloops.errors.ServiceAuthError`, not retried); both name the service, the masked URI and
    ``doing``."""
    parts = urllib.parse.urlsplit(uri)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        socket.create_connection((parts.hostname or "localhost", port), timeout=PROBE_TIMEOUT).close()
    except OSError as exc:
        raise ServiceUnavailableError.of(SERVICE, uri, doing, exc) from exc
    from mlflow.utils.credentials import get_default_host_creds
    from mlflow.utils.rest_utils import http_request

    # MLflow's own request function, so the probe sends exactly the credentials (basic auth, token,
    # TLS settings) the client will; no retries, since a 401 or 403 does not change on a retry.
    try:
        response = http_request(
            get_default_host_creds(uri), PROBE_ENDPOINT, "GET", max_retries=0, timeout=PROBE_TIMEOUT
        )
    except Exception as exc:  # noqa: BLE001 - connected a moment ago; anything now is "unreachable"
        raise ServiceUnavailableError.of(SERVICE, uri, doing, exc) from exc
    if response.status_code in (401, 403):
        error = _http_error(response)
        raise service_error(SERVICE, uri, doing, error, credentials_sent(uri)) from error


def _http_error(response: Any) -> Exception:
    import requests

    body = " ".join(str(response.text or "").split())[:300]
    return requests.HTTPError(f"{response.status_code} on {PROBE_ENDPOINT}: {body}", response=response)


def refusal(exc: BaseException, uri: str, doing: str) -> ServiceAuthError | None:
    """``exc`` as a :class:`~mloops.errors.ServiceAuthError` when it is MLflow's answer to a refused
    call (HTTP 401/403 after the probe passed: a user without the permission for a write), else
    ``None``."""
    if not type(exc).__module__.startswith("mlflow") or auth_refusal(exc) is None:
        return None
    error = service_error(SERVICE, uri, doing, exc, credentials_sent(uri))
    return error if isinstance(error, ServiceAuthError) else None


def client(settings: Settings, doing: str = "opening the tracking and model registry") -> MlflowClient:
    """A client bound to the configured store (also sets the process-wide tracking URI); a tracking
    server that does not answer fails here, naming ``doing``."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    for key, value in HTTP_DEFAULTS.items():
        os.environ.setdefault(key, value)
    if settings.mlflow_tracking_uri.startswith(("http://", "https://")):
        reach_server(settings.mlflow_tracking_uri, doing)
    model_integrity.disable_pickle_loading()
    import mlflow
    from mlflow import MlflowClient

    if settings.uses_local_mlflow and settings.mlflow_tracking_uri.startswith("sqlite:///"):
        Path(settings.mlflow_tracking_uri.removeprefix("sqlite:///")).parent.mkdir(
            parents=True, exist_ok=True
        )
    mlflow.set_tracking_uri(settings.mlflow_tracking_uri)
    mlflow.set_registry_uri(settings.mlflow_tracking_uri)
    return MlflowClient(tracking_uri=settings.mlflow_tracking_uri, registry_uri=settings.mlflow_tracking_uri)


def ensure_experiment(mlflow_client: MlflowClient, settings: Settings, name: str) -> str:
    experiment = mlflow_client.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    location = None
    if settings.uses_local_mlflow:
        folder = settings.mlflow_artifacts / name.replace("/", "_")
        folder.mkdir(parents=True, exist_ok=True)
        location = folder.as_uri()
    try:
        return mlflow_client.create_experiment(name, artifact_location=location)
    except Exception:  # noqa: BLE001 - another task created it first; read it back
        experiment = mlflow_client.get_experiment_by_name(name)
        if experiment is None:
            raise
        return experiment.experiment_id


def end_orphan_runs(
    mlflow_client: MlflowClient,
    experiment_id: str,
    run_key: str,
    *,
    model: str | None = None,
    started_before_ms: int | None = None,
) -> list[str]:
    """End as ``KILLED`` the training runs a dead process left ``RUNNING``; returns their ids.

    Those are the runs of ``run_key`` (Airflow starts a retry or a re-run of an interval only once
    its previous try is over) and, with ``model`` and ``started_before_ms``, any run of the model
    started before then (a task still running after its execution timeout has been killed), so the
    next night cleans up after a try that was never retried.
    """
    running = "attributes.status = 'RUNNING'"
    queries = [f"tags.`{Tag.RUN_KEY}` = '{run_key}' and {running}"]
    if model is not None and started_before_ms is not None:
        queries.append(
            f"tags.`{Tag.MODEL}` = '{model}' and {running} and attributes.start_time < {started_before_ms}"
        )
    ended: list[str] = []
    for query in queries:
        for run in mlflow_client.search_runs([experiment_id], query, max_results=100):
            if run.info.run_id in ended:
                continue
            mlflow_client.set_tag(
                run.info.run_id, Tag.ORPHAN_ENDED, "its training process died; a later training ended it"
            )
            mlflow_client.set_terminated(run.info.run_id, status="KILLED")
            ended.append(run.info.run_id)
    return ended


def find_run(
    mlflow_client: MlflowClient, experiment_id: str, run_key: str, extra: Mapping[str, str]
) -> RunInfo | None:
    """The finished run recorded for ``run_key`` whose tags match ``extra`` (used to skip re-training)."""
    clauses = [f"tags.`{Tag.RUN_KEY}` = '{run_key}'", "attributes.status = 'FINISHED'"]
    clauses += [f"tags.`{k}` = '{v}'" for k, v in extra.items()]
    runs = mlflow_client.search_runs(
        [experiment_id], " and ".join(clauses), max_results=1, order_by=["start_time DESC"]
    )
    return _run_info(runs[0]) if runs else None


def log_training_run(
    *,
    experiment_id: str,
    run_name: str,
    tags: Mapping[str, str],
    params: Mapping[str, Any],
    metrics: Mapping[str, float | None],
    datasets: Sequence[DatasetInput],
    model: Any,
    signature_example: pd.DataFrame,
    trusted_types: Sequence[str],
    artifacts: Sequence[Path] = (),
) -> dict[str, str]:
    """Log one training run and its model; return ``run_id``, ``model_uri`` and ``model_id``.

    Each of ``datasets`` is logged with ``mlflow.data`` so the run shows its exact training and
    holdout data (digest, schema, source, rows). The model's signature is inferred from
    ``signature_example`` (feature rows) and its predictions.

    No input example is logged with the model: MLflow validates one by loading the model through
    pyfunc, which refuses a skops file (its trusted types are read from the model itself) unless
    ``MLFLOW_ALLOW_PICKLE_DESERIALIZATION`` is set, which mloops never does. The check could only fail,
    with an error in every training's log and 0.5-0.7 s spent; the signature records the input schema.
    """
    import mlflow
    import numpy as np
    import pandas as pd
    import sklearn
    import skops
    from mlflow.models import infer_signature

    with mlflow.start_run(experiment_id=experiment_id, run_name=run_name, tags=dict(tags)) as run:
        mlflow.log_params({k: _param(v) for k, v in params.items()})
        mlflow.log_metrics({k: v for k, v in metrics.items() if v is not None})
        for item in datasets:
            logged = dataset(item.frame, item.source, item.name, item.digest, tags.get(Tag.TARGET))
            mlflow.log_input(logged, context=item.context)
        info = mlflow.sklearn.log_model(
            model,
            name="model",
            signature=infer_signature(signature_example, model.predict(signature_example)),
            skops_trusted_types=list(trusted_types),
            pip_requirements=[
                f"scikit-learn=={sklearn.__version__}",
                f"skops=={skops.__version__}",
                f"pandas=={pd.__version__}",
                f"numpy=={np.__version__}",
            ],
        )
        for path in artifacts:
            mlflow.log_artifact(str(path))
        # Read back from the store: what a later load is checked against (model_integrity).
        model_integrity.record_digest(mlflow.MlflowClient(), run.info.run_id, info.model_uri)
    return {"run_id": run.info.run_id, "model_uri": info.model_uri, "model_id": info.model_id}


#: Rows MLflow's schema inference looks at. It inspects object columns value by value, which took a
#: minute for a 1M-row window (bench: pipeline) and 0.5 s a dataset at 10,000 rows; the column types of
#: the first rows are the frame's (its declared types were checked before training).
SCHEMA_SAMPLE_ROWS = 1_000


def dataset(frame: pd.DataFrame, source: str, name: str, digest: str, targets: str | None) -> Any:
    """An ``mlflow.data`` pandas dataset with our digest and a schema inferred from a sample of rows.

    The digest is the caller's fingerprint of the whole data: MLflow's own hashes only the first
    10,000 rows (and maps every cell to its type to choose the columns). The profile (row and element
    counts) still describes the whole frame.
    """
    from mlflow.data.pandas_dataset import from_pandas
    from mlflow.types.utils import _infer_schema

    logged = from_pandas(frame, source=source, name=name, targets=targets, digest=digest)
    # ``schema`` is a cached property of PandasDataset: fill it so logging does not scan every row.
    logged.__dict__["schema"] = _infer_schema(frame.head(SCHEMA_SAMPLE_ROWS))
    return logged


def _param(value: Any) -> Any:
    return value if isinstance(value, str | int | float | bool) or value is None else str(value)


def log_texts(mlflow_client: MlflowClient, run_id: str, files: Mapping[str, str], artifact_path: str) -> None:
    """Log text files (name -> content) under ``artifact_path`` of the run (wherever the reports live)."""
    for name, text in files.items():
        mlflow_client.log_text(run_id, text, f"{artifact_path}/{name}")


def set_run_tags(mlflow_client: MlflowClient, run_id: str, tags: Mapping[str, str]) -> None:
    for key, value in tags.items():
        mlflow_client.set_tag(run_id, key, str(value))


def get_run(mlflow_client: MlflowClient, run_id: str) -> RunInfo:
    return _run_info(mlflow_client.get_run(run_id))


def run_datasets(mlflow_client: MlflowClient, run_id: str) -> list[dict[str, Any]]:
    """The dataset inputs of a run as plain values: context, name, digest, source, rows."""
    import json

    found = []
    inputs = mlflow_client.get_run(run_id).inputs
    for item in (inputs.dataset_inputs if inputs else None) or ():
        logged = item.dataset
        context = next((t.value for t in item.tags or () if t.key == "mlflow.data.context"), "")
        try:
            source = json.loads(logged.source).get("uri", logged.source)
        except (ValueError, AttributeError):
            source = logged.source
        try:
            rows = json.loads(logged.profile or "{}").get("num_rows")
        except ValueError:
            rows = None
        found.append(
            {"context": context, "name": logged.name, "digest": logged.digest, "source": source, "rows": rows}
        )
    return sorted(found, key=lambda d: (d["context"], d["name"]))


def read_text_artifact(mlflow_client: MlflowClient, run_id: str, path: str) -> str | None:
    """The text of one artifact of the run, or ``None`` when the run has no such artifact."""
    import tempfile

    from mlflow.exceptions import MlflowException

    with tempfile.TemporaryDirectory(prefix="mloops-artifact-") as folder:
        try:
            local = mlflow_client.download_artifacts(run_id, path, folder)
        except (MlflowException, OSError):
            return None
        return Path(local).read_text(encoding="utf-8") if Path(local).is_file() else None


@contextmanager
def _quiet_skops() -> Iterator[None]:
    """skops walks module attributes and trips every deprecated Airflow name it sees (about a thousand
    DeprecatedImportWarning lines per load in a task log); those warnings are not about our model."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*deprecated.*", category=DeprecationWarning)
        yield


def load_sklearn_model(uri: str) -> Any:
    """The model at ``uri`` after :mod:`~mloops.adapters.model_integrity` checked it is the one mloops
    logged (skops file, recorded digest, mloops' own trusted types); MLflow's loaders are never used."""
    with _quiet_skops():
        return model_integrity.load_verified_model(uri)


def load_pyfunc_model(uri: str) -> Any:
    """The smoke test's load of a just-logged model: the same verified path as scoring (the sklearn
    flavor's pyfunc is the estimator's own ``predict``), so the smoke test proves the scoring load."""
    return load_sklearn_model(uri)


def _version_info(mv: ModelVersion) -> VersionInfo:
    return VersionInfo(
        name=mv.name,
        version=str(mv.version),
        run_id=mv.run_id,
        source=mv.source or "",
        tags=dict(mv.tags or {}),
        aliases=tuple(mv.aliases or ()),
    )


def version_by_alias(mlflow_client: MlflowClient, name: str, alias: str) -> VersionInfo | None:
    from mlflow.exceptions import MlflowException

    try:
        return _version_info(mlflow_client.get_model_version_by_alias(name, alias))
    except MlflowException:
        return None


def get_version(mlflow_client: MlflowClient, name: str, version: str) -> VersionInfo:
    return _version_info(mlflow_client.get_model_version(name, version))


def versions(mlflow_client: MlflowClient, name: str, run_id: str | None = None) -> list[VersionInfo]:
    query = f"name='{name}'" + (f" and run_id='{run_id}'" if run_id else "")
    found = [_version_info(mv) for mv in mlflow_client.search_model_versions(query)]
    return sorted(found, key=lambda v: int(v.version))


def register_version(
    mlflow_client: MlflowClient,
    name: str,
    model_uri: str,
    run_id: str,
    tags: Mapping[str, str],
    model_id: str | None = None,
) -> VersionInfo:
    from mlflow.exceptions import MlflowException

    try:
        mlflow_client.create_registered_model(name, description=f"Managed by mloops ({name}).")
    except MlflowException as exc:
        if "RESOURCE_ALREADY_EXISTS" not in str(exc.error_code):
            raise
    # A tracking server requires the LoggedModel id next to a models:/m-... source (embedded stores do not).
    if model_id is None and model_uri.startswith("models:/m-"):
        model_id = model_uri.removeprefix("models:/")
    mv = mlflow_client.create_model_version(
        name, model_uri, run_id=run_id, tags=dict(tags), model_id=model_id
    )
    return _version_info(mv)


def set_version_tags(mlflow_client: MlflowClient, name: str, version: str, tags: Mapping[str, str]) -> None:
    for key, value in tags.items():
        mlflow_client.set_model_version_tag(name, version, key, str(value))


def set_alias(mlflow_client: MlflowClient, name: str, alias: str, version: str) -> None:
    mlflow_client.set_registered_model_alias(name, alias, version)


def delete_alias(mlflow_client: MlflowClient, name: str, alias: str) -> None:
    from mlflow.exceptions import MlflowException

    try:
        mlflow_client.delete_registered_model_alias(name, alias)
    except MlflowException:
        return
