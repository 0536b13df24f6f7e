"""A model YAML file cannot make the workers read outside the data root and the declared source roots.

The probe that broke main: ``file:///proc/self/environ?{ds}`` met "the path contains {ds}" through
its query string, and ``validate_batch`` copied the worker's environment into the quarantine area.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from mloops.config_files import load_model_config
from mloops.data.sources import extract_partition
from mloops.errors import DataSourceError, ModelConfigError
from tests.helpers import small_churn, write_models

pytestmark = pytest.mark.security

DAY = dt.date(2026, 1, 3)


def _config_file(tmp_path: Path, source: dict) -> Path:
    config = small_churn()
    config["source"] = source
    return write_models(tmp_path / "models", churn=config) / "churn.yaml"


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("file:///proc/self/environ?{ds}", "query strings"),
        ("/proc/self/environ#{ds}", "fragments"),
        ("{data_root}/../../../etc/passwd-{ds}", "'..' segments"),
        ("/landing/churn/../../etc/{ds_nodash}", "'..' segments"),
        ("http://attacker.example/{ds}.csv", "scheme 'http' is not allowed"),
        ("s3://bucket/landing/{ds}/part.parquet", "scheme 's3' is not allowed"),
        ("/landing/{ds}/{secret}.parquet", "unknown placeholder"),
        ("/landing/churn/part.parquet", "must contain {ds} or {ds_nodash}"),
        ("/landing/{data_root}/{ds}", "{data_root} may only start the path"),
    ],
)
def test_escaping_source_path_is_refused_naming_the_field(
    tmp_path: Path, mloops_home: Path, path: str, reason: str
) -> None:
    with pytest.raises(ModelConfigError) as caught:
        load_model_config(_config_file(tmp_path, {"kind": "files", "path": path}))
    message = str(caught.value)
    assert "field 'source.path'" in message and reason in message, message


def test_placeholder_in_the_bucket_name_is_refused(
    tmp_path: Path, mloops_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLOOPS_DATA_ROOT", "s3://conn@bucket/data")
    with pytest.raises(ModelConfigError, match=r"field 'source.path'.*host or bucket"):
        load_model_config(_config_file(tmp_path, {"kind": "files", "path": "s3://landing-{ds}/part.parquet"}))


@pytest.mark.parametrize(
    "path",
    [
        "{data_root}/landing/dt={ds}/part.parquet",
        "file:///landing/{ds_nodash}.csv",
        "/landing/churn/dt={ds}/x.csv",
    ],
)
def test_paths_under_the_data_root_are_accepted(tmp_path: Path, mloops_home: Path, path: str) -> None:
    config = load_model_config(_config_file(tmp_path, {"kind": "files", "path": path, "format": "csv"}))
    assert config.source.path == path


def test_path_outside_the_allowed_roots_is_refused_at_run_time(
    tmp_path: Path, mloops_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A plain absolute path passes the config check but not the run-time root check, and nothing is read."""
    monkeypatch.delenv("MLOOPS_SOURCE_ROOTS")
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "2026-01-03.csv").write_text("customer_id,churned\n1,0\n")
    config = load_model_config(
        _config_file(tmp_path, {"kind": "files", "path": str(outside / "{ds}.csv"), "format": "csv"})
    )
    data_root = mloops_home / "data"
    with pytest.raises(
        DataSourceError,
        match=(
            r"field 'source.path' resolves to .*elsewhere/2026-01-03.csv, "
            r"outside the allowed source roots.*MLOOPS_SOURCE_ROOTS"
        ),
    ):
        extract_partition(config, DAY, data_root)
    monkeypatch.setenv("MLOOPS_SOURCE_ROOTS", f"{tmp_path / 'other'},{outside}")
    assert len(extract_partition(config, DAY, data_root).frame) == 1


def test_symlink_out_of_the_data_root_is_refused(
    tmp_path: Path, mloops_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The config check cannot see links: a partition file linked to /proc/self/environ is refused when
    resolved."""
    monkeypatch.delenv("MLOOPS_SOURCE_ROOTS")
    data_root = mloops_home / "data"
    landing = data_root / "landing"
    landing.mkdir(parents=True)
    (landing / "2026-01-03.csv").symlink_to("/proc/self/environ")
    config = load_model_config(
        _config_file(tmp_path, {"kind": "files", "path": "{data_root}/landing/{ds}.csv", "format": "csv"})
    )
    with pytest.raises(DataSourceError, match="outside the allowed source roots"):
        extract_partition(config, DAY, data_root)


def test_proc_environ_probe_never_reaches_quarantine(
    tmp_path: Path, mloops_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The original probe, through the operator: the task fails on the config, nothing is copied anywhere."""
    from airflow.sdk.exceptions import AirflowFailException

    from mloops.operators import GXValidateBatchOperator
    from tests.operators.test_operators import _execute

    config = small_churn()
    config["source"] = {"kind": "files", "path": "file:///proc/self/environ?{ds}", "format": "csv"}
    monkeypatch.setenv("MLOOPS_MODELS_DIR", str(write_models(tmp_path / "models", churn=config)))
    monkeypatch.setenv("MLOOPS_PROBE_SECRET", "s3cr3t-value")
    with pytest.raises(AirflowFailException, match=r"churn.yaml: field 'source.path'.*query strings"):
        _execute(GXValidateBatchOperator(task_id="validate_batch", model="churn"), {})
    leaked = [p for p in mloops_home.rglob("*") if p.is_file() and b"s3cr3t-value" in p.read_bytes()]
    assert leaked == []
