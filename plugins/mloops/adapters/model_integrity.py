"""Loading a model is verified, not trusted: mloops loads only what it logged itself.

MLflow's own loaders take the flavor, the serialization format and skops' trusted-type list from the
artifact's ``MLmodel`` file, so whoever can write to the registry chooses what runs in the next
``score_batch`` (a pickle "model", or a real version whose ``MLmodel`` was edited to trust anything).
Here every load:

1. downloads the model's files itself (``models:/<name>/<version>`` or ``models:/m-<id>``);
2. requires the ``sklearn`` flavor with ``serialization_format: skops`` and the file ``model.skops``;
3. requires the training run's recorded SHA-256 of that file (tag :data:`DIGEST_TAG`, written by
   :func:`record_digest` when the run logged the model) and compares it;
4. loads with ``skops.io.load(trusted=...)`` where the list is mloops' own for the estimator class
   recorded in the run's (immutable) params, never the artifact's.

MLflow's pickle paths are switched off for the whole process (``MLFLOW_ALLOW_PICKLE_DESERIALIZATION``).
A version failing any step raises :class:`~mloops.errors.ModelIntegrityError` naming it and the reason.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mloops.contracts import Tag
from mloops.errors import ModelIntegrityError

if TYPE_CHECKING:
    from mlflow import MlflowClient

DIGEST_TAG = Tag.MODEL_SHA256
SKOPS_FILE = "model.skops"
ESTIMATOR_PARAM = "estimator"


def disable_pickle_loading() -> None:
    """MLflow refuses every sklearn deserialization of its own (pickle, cloudpickle, skops with the
    artifact's trusted list) in this process; mloops loads through :func:`load_verified_model` only."""
    os.environ["MLFLOW_ALLOW_PICKLE_DESERIALIZATION"] = "false"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def record_digest(mlflow_client: MlflowClient, run_id: str, model_uri: str) -> str:
    """Tag the run with the SHA-256 of the ``model.skops`` it just logged (read back from the store)."""
    import mlflow

    location = model_uri
    if model_uri.startswith("models:/m-"):
        location = mlflow_client.get_logged_model(model_uri.removeprefix("models:/")).artifact_location
    with tempfile.TemporaryDirectory(prefix="mloops-model-") as tmp:
        local = Path(
            mlflow.artifacts.download_artifacts(artifact_uri=f"{location}/{SKOPS_FILE}", dst_path=tmp)
        )
        digest = sha256_of(local)
    mlflow_client.set_tag(run_id, DIGEST_TAG, digest)
    return digest


@dataclass(frozen=True)
class _Origin:
    label: str
    run_id: str | None


def _origin(mlflow_client: MlflowClient, uri: str) -> _Origin:
    """Which version (for messages) and which training run (for the digest) ``uri`` names."""
    from mlflow.exceptions import MlflowException

    ref = uri.removeprefix("models:/")
    try:
        if ref.startswith("m-"):
            model = mlflow_client.get_logged_model(ref.split("/", 1)[0])
            return _Origin(f"logged model {ref}", model.source_run_id)
        name, _, version = ref.partition("/")
        if "@" in name:
            name, _, alias = name.partition("@")
            mv = mlflow_client.get_model_version_by_alias(name, alias)
        else:
            mv = mlflow_client.get_model_version(name, version)
        return _Origin(f"{mv.name} version {mv.version}", mv.run_id)
    except MlflowException as exc:
        raise ModelIntegrityError(f"model {uri}: cannot be resolved in the registry: {exc.message}") from exc


def load_verified_model(uri: str, mlflow_client: MlflowClient | None = None) -> Any:
    """Load the sklearn model at ``uri`` after checking it is the one mloops logged (see module doc)."""
    import mlflow
    from mlflow import MlflowClient

    disable_pickle_loading()
    mlflow_client = mlflow_client or MlflowClient()
    origin = _origin(mlflow_client, uri)
    if not origin.run_id:
        raise ModelIntegrityError(
            f"{origin.label} ({uri}) is refused: it has no training run, so mloops did not log it"
        )
    run = mlflow_client.get_run(origin.run_id)
    expected = run.data.tags.get(DIGEST_TAG)
    if not expected:
        raise ModelIntegrityError(
            f"{origin.label} ({uri}) is refused: its run {origin.run_id} records no model digest "
            f"({DIGEST_TAG}); "
            "only models logged by mloops are loaded"
        )
    with tempfile.TemporaryDirectory(prefix="mloops-model-") as tmp:
        try:
            local = Path(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=tmp))
        except Exception as exc:  # noqa: BLE001 - a missing or unreachable artifact is named with the version
            raise ModelIntegrityError(
                f"{origin.label} ({uri}): its model files cannot be downloaded: {exc}"
            ) from exc
        skops_path = _checked_skops_file(local, origin, uri)
        actual = sha256_of(skops_path)
        if actual != expected:
            raise ModelIntegrityError(
                f"{origin.label} ({uri}) is refused: {SKOPS_FILE} has SHA-256 {actual[:16]}…, "
                f"the run logged {expected[:16]}… (the artifact was changed after training)"
            )
        return _load_skops(skops_path, run.data.params.get(ESTIMATOR_PARAM), origin, uri)


def _checked_skops_file(local: Path, origin: _Origin, uri: str) -> Path:
    import yaml

    mlmodel = local / "MLmodel"
    if not mlmodel.is_file():
        raise ModelIntegrityError(
            f"{origin.label} ({uri}) cannot be loaded: its MLmodel file is missing from its artifacts"
        )
    try:
        meta = yaml.safe_load(mlmodel.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ModelIntegrityError(
            f"{origin.label} ({uri}) is refused: its MLmodel file cannot be read: {exc}"
        ) from exc
    flavor = (meta.get("flavors") or {}).get("sklearn")
    if not isinstance(flavor, dict):
        raise ModelIntegrityError(f"{origin.label} ({uri}) is refused: MLmodel has no sklearn flavor")
    if flavor.get("serialization_format") != "skops" or flavor.get("pickled_model") != SKOPS_FILE:
        raise ModelIntegrityError(
            f"{origin.label} ({uri}) is refused: MLmodel declares serialization_format "
            f"{flavor.get('serialization_format')!r} with file {flavor.get('pickled_model')!r}; "
            f"mloops loads only skops files named {SKOPS_FILE}"
        )
    path = local / SKOPS_FILE
    if not path.is_file():
        raise ModelIntegrityError(
            f"{origin.label} ({uri}) is refused: {SKOPS_FILE} is missing from its artifacts"
        )
    return path


def _load_skops(path: Path, estimator: str | None, origin: _Origin, uri: str) -> Any:
    import warnings

    import skops.io

    from mloops import training

    if estimator not in training.TRUSTED_TYPES:
        raise ModelIntegrityError(
            f"{origin.label} ({uri}) is refused: its run's estimator {estimator!r} is not one mloops allows"
        )
    with warnings.catch_warnings():
        # skops walks module attributes and trips every deprecated Airflow name it sees.
        warnings.filterwarnings("ignore", message=".*deprecated.*", category=DeprecationWarning)
        try:
            return skops.io.load(path, trusted=training.trusted_types(estimator))
        except Exception as exc:  # noqa: BLE001 - untrusted types or a corrupt file: refuse, naming why
            raise ModelIntegrityError(
                f"{origin.label} ({uri}) is refused: skops refused to load it: {exc}"
            ) from exc
