"""Only models mloops logged itself are loaded: a pickle "model" or a tampered artifact never runs.

The probes that broke main: a pickle model registered and set as ``@champion`` ran its payload in
the next ``score_batch``; so did a real version whose ``MLmodel`` was edited. Each test below uses a
real MLflow store (SQLite tracking + local artifacts) and a payload that would write a marker file.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path

import pytest

from mloops.adapters import model_integrity
from mloops.errors import ModelIntegrityError

pytestmark = pytest.mark.security

NAME = "mloops.integrity"
ESTIMATOR = "sklearn.linear_model.LogisticRegression"


class Payload:
    """Unpickling this runs ``exec``: it writes the marker file named in MARKER."""

    def __reduce__(self):
        return (exec, (f"open({os.environ['MARKER']!r}, 'w').write('pwned')",))

    def predict(self, frame):  # pragma: no cover - never reached
        return frame


@pytest.fixture
def store(mloops_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from mloops.adapters import mlflow_adapter
    from mloops.settings import get_settings

    monkeypatch.setenv("MARKER", str(tmp_path / "marker"))
    settings = get_settings()
    client = mlflow_adapter.client(settings)
    experiment_id = mlflow_adapter.ensure_experiment(client, settings, "integrity")
    return client, experiment_id, settings


def _fit():
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    frame = pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]})
    return LogisticRegression().fit(frame, [0, 0, 0, 1, 1, 1]), frame


def _log(client, experiment_id: str, model, *, fmt: str = "skops", digest: bool = True) -> tuple[str, str]:
    """Log and register ``model`` as mloops does (skops, explicit trusted types); return
    (version, model_uri)."""
    import mlflow

    from mloops import training

    with mlflow.start_run(experiment_id=experiment_id) as run:
        mlflow.log_param("estimator", ESTIMATOR)
        kwargs = {"skops_trusted_types": training.trusted_types(ESTIMATOR)} if fmt == "skops" else {}
        info = mlflow.sklearn.log_model(model, name="model", serialization_format=fmt, **kwargs)
    if digest:
        model_integrity.record_digest(client, run.info.run_id, info.model_uri)
    with contextlib.suppress(Exception):  # exists already
        client.create_registered_model(NAME)
    mv = client.create_model_version(NAME, info.model_uri, run_id=run.info.run_id, model_id=info.model_id)
    client.set_registered_model_alias(NAME, "champion", mv.version)
    return mv.version, info.model_uri


def _artifact_dir(settings, model_uri: str) -> Path:
    model_id = model_uri.removeprefix("models:/")
    found = [p.parent for p in settings.mlflow_artifacts.rglob("MLmodel") if model_id in str(p)]
    assert len(found) == 1, found
    return found[0]


def test_the_model_mloops_logged_loads(store) -> None:
    client, experiment_id, _ = store
    model, frame = _fit()
    version, _ = _log(client, experiment_id, model)
    loaded = model_integrity.load_verified_model(f"models:/{NAME}@champion", client)
    assert list(loaded.predict(frame)) == list(model.predict(frame))
    assert (
        model_integrity.load_verified_model(f"models:/{NAME}/{version}", client).coef_.tolist()
        == model.coef_.tolist()
    )


def test_pickle_champion_is_refused_and_its_payload_never_runs(store, tmp_path: Path) -> None:
    client, experiment_id, _ = store
    version, _ = _log(client, experiment_id, Payload(), fmt="cloudpickle", digest=False)
    with pytest.raises(
        ModelIntegrityError, match=rf"{NAME} version {version} .*is refused: .*records no model digest"
    ):
        model_integrity.load_verified_model(f"models:/{NAME}@champion", client)
    assert not (tmp_path / "marker").exists()


def test_pickle_with_a_forged_digest_is_refused_by_its_flavor(store, tmp_path: Path) -> None:
    client, experiment_id, _ = store
    version, _ = _log(client, experiment_id, Payload(), fmt="cloudpickle", digest=False)
    client.set_tag(client.get_model_version(NAME, version).run_id, model_integrity.DIGEST_TAG, "0" * 64)
    with pytest.raises(ModelIntegrityError, match=r"serialization_format 'cloudpickle'.*only skops"):
        model_integrity.load_verified_model(f"models:/{NAME}@champion", client)
    assert not (tmp_path / "marker").exists()


def test_tampered_mlmodel_of_a_real_version_is_refused(store, tmp_path: Path) -> None:
    """The version's MLmodel is edited to point at a pickle file dropped next to it."""
    import cloudpickle

    client, experiment_id, settings = store
    version, model_uri = _log(client, experiment_id, _fit()[0])
    folder = _artifact_dir(settings, model_uri)
    (folder / "model.pkl").write_bytes(cloudpickle.dumps(Payload()))
    mlmodel = folder / "MLmodel"
    mlmodel.write_text(
        mlmodel.read_text()
        .replace("serialization_format: skops", "serialization_format: cloudpickle")
        .replace("pickled_model: model.skops", "pickled_model: model.pkl")
    )
    with pytest.raises(ModelIntegrityError, match=rf"version {version} .*serialization_format 'cloudpickle'"):
        model_integrity.load_verified_model(f"models:/{NAME}@champion", client)
    assert not (tmp_path / "marker").exists()


def test_replaced_skops_file_fails_the_digest(store) -> None:
    client, experiment_id, settings = store
    _, first_uri = _log(client, experiment_id, _fit()[0])
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    other = LogisticRegression(C=0.01).fit(pd.DataFrame({"x": [0.0, 9.0, 1.0, 8.0]}), [1, 0, 1, 0])
    version, second_uri = _log(client, experiment_id, other)
    shutil.copy(
        _artifact_dir(settings, first_uri) / "model.skops",
        _artifact_dir(settings, second_uri) / "model.skops",
    )
    with pytest.raises(
        ModelIntegrityError, match=rf"version {version} .*SHA-256 .*the artifact was changed after training"
    ):
        model_integrity.load_verified_model(f"models:/{NAME}@champion", client)


def test_widened_trusted_types_in_mlmodel_are_ignored(store, tmp_path: Path) -> None:
    """The artifact's own trusted-type list is never used: widening it changes nothing."""
    client, experiment_id, settings = store
    model, frame = _fit()
    _, model_uri = _log(client, experiment_id, model)
    mlmodel = _artifact_dir(settings, model_uri) / "MLmodel"
    import yaml

    meta = yaml.safe_load(mlmodel.read_text())
    meta["flavors"]["sklearn"]["skops_trusted_types"].append("builtins.exec")
    mlmodel.write_text(yaml.safe_dump(meta))
    loaded = model_integrity.load_verified_model(f"models:/{NAME}@champion", client)
    assert list(loaded.predict(frame)) == list(model.predict(frame))


def test_missing_artifact_is_named_with_the_version(store) -> None:
    """Main failed here with ``No such artifact: ''``."""
    client, experiment_id, settings = store
    version, model_uri = _log(client, experiment_id, _fit()[0])
    shutil.rmtree(_artifact_dir(settings, model_uri))
    with pytest.raises(
        ModelIntegrityError, match=rf"{NAME} version {version} .*(cannot be downloaded|is missing)"
    ):
        model_integrity.load_verified_model(f"models:/{NAME}@champion", client)


def test_mlflow_own_pickle_loading_is_switched_off(store, tmp_path: Path) -> None:
    import mlflow
    from mlflow.exceptions import MlflowException

    client, experiment_id, _ = store
    _log(client, experiment_id, Payload(), fmt="cloudpickle", digest=False)
    model_integrity.disable_pickle_loading()
    with pytest.raises(MlflowException, match="MLFLOW_ALLOW_PICKLE_DESERIALIZATION"):
        mlflow.sklearn.load_model(f"models:/{NAME}@champion")
    assert not (tmp_path / "marker").exists()


@pytest.fixture
def server_store(mloops_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """An ``mlflow server`` on a free loopback port (proxied artifacts), as the compose stack runs it."""
    import subprocess
    import sys
    import time
    import urllib.request

    from mloops.adapters import mlflow_adapter
    from mloops.settings import get_settings
    from tests.conftest import free_port

    port = free_port()
    log = (tmp_path / "mlflow-server.log").open("w")
    server = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "mlflow"),
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--backend-store-uri",
            f"sqlite:///{tmp_path / 'server.db'}",
            "--artifacts-destination",
            str(tmp_path / "artifacts"),
            "--serve-artifacts",
            "--workers",
            "1",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2):
                    break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"mlflow server did not start: {(tmp_path / 'mlflow-server.log').read_text()[-2000:]}"
                    ) from None
                time.sleep(1)
        monkeypatch.setenv("MARKER", str(tmp_path / "marker"))
        monkeypatch.setenv("MLFLOW_TRACKING_URI", url)
        settings = get_settings()
        client = mlflow_adapter.client(settings)
        yield client, mlflow_adapter.ensure_experiment(client, settings, "integrity"), tmp_path
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()


def test_against_a_tracking_server_pickle_champion_is_refused_and_the_real_one_loads(server_store) -> None:
    client, experiment_id, tmp_path = server_store
    model, frame = _fit()
    good, _ = _log(client, experiment_id, model)
    assert list(
        model_integrity.load_verified_model(f"models:/{NAME}@champion", client).predict(frame)
    ) == list(model.predict(frame))
    bad, _ = _log(client, experiment_id, Payload(), fmt="cloudpickle", digest=False)
    with pytest.raises(ModelIntegrityError, match=rf"{NAME} version {bad} .*is refused"):
        model_integrity.load_verified_model(f"models:/{NAME}@champion", client)
    assert not (tmp_path / "marker").exists()
    assert good != bad
