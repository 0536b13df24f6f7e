"""The data root on object storage: ``s3://<conn>@bucket/prefix`` through an Airflow connection.

Everything runs against an S3-compatible server on loopback (moto, its own process; see
tests/s3_server.py) reached only through the Airflow connection ``mloops_s3``: first the storage
primitives every stage uses, then whole nightly runs with ``dag.test()`` (training with a quarantined
batch, scoring, the drift check with its Evidently reports) with no local data folder at all.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
import pytest

from mloops import partitions
from mloops.errors import StorageError
from mloops.settings import get_settings
from tests.helpers import dag_test, small_churn, write_models

if TYPE_CHECKING:
    from tests.conftest import S3DataRoot

pytestmark = [pytest.mark.integration, pytest.mark.storage]


def _fail_mid_write(path: Path) -> None:
    """Start an atomic write of ``path``, write part of it, then fail before the write completes."""
    with partitions.atomic_path(path) as tmp:
        tmp.write_text("half")
        raise RuntimeError("boom")


def test_storage_primitives_on_s3(s3_data_root: S3DataRoot, tmp_path: Path) -> None:
    root = get_settings().data_root
    assert not partitions.is_local(root) and root.conn_id == "mloops_s3"
    target = partitions.partition_dir(root, "staged", "churn", dt.date(2026, 1, 3))

    assert partitions.read_json(target / "verdict.json") is None
    partitions.write_json(target / "verdict.json", {"status": "passed", "rows": 3})
    assert json.loads(s3_data_root.read("staged/churn/dt=2026-01-03/verdict.json")) == {
        "rows": 3,
        "status": "passed",
    }
    assert partitions.read_json(target / "verdict.json") == {"rows": 3, "status": "passed"}

    frame = pd.DataFrame({"id": [1, 2, 3], "x": [0.5, None, 2.0], "c": ["a", "b", "a"]})
    partitions.write_parquet(frame, target / "data.parquet")
    uri = partitions.to_uri(target / "data.parquet")
    assert uri == f"{s3_data_root.uri}/staged/churn/dt=2026-01-03/data.parquet"
    assert partitions.public_uri(target / "data.parquet") == (
        f"s3://{s3_data_root.bucket}/data/staged/churn/dt=2026-01-03/data.parquet"
    )
    pd.testing.assert_frame_equal(partitions.read_parquet(partitions.from_uri(uri)), frame)
    stored = s3_data_root.read("staged/churn/dt=2026-01-03/data.parquet")
    pd.testing.assert_frame_equal(pd.read_parquet(io.BytesIO(stored)), frame)
    assert partitions.file_digest(target / "data.parquet") == hashlib.sha256(stored).hexdigest()
    downloaded = partitions.download(target / "data.parquet", tmp_path / "copy.parquet")
    assert downloaded.read_bytes() == stored

    # A failed write leaves the previous object untouched (no partial upload, no temporary key).
    with pytest.raises(RuntimeError, match="boom"):
        _fail_mid_write(target / "verdict.json")
    assert partitions.read_json(target / "verdict.json") == {"rows": 3, "status": "passed"}
    assert s3_data_root.keys("staged") == [
        "staged/churn/dt=2026-01-03/data.parquet",
        "staged/churn/dt=2026-01-03/verdict.json",
    ]

    # replace_dir makes the target exactly the source: a re-run drops files of the previous run.
    first, second = tmp_path / "first", tmp_path / "second"
    for folder, names in ((first, ("a.txt", "stale.txt", "sub/b.txt")), (second, ("a.txt", "sub/b.txt"))):
        for name in names:
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            (folder / name).write_text(f"{folder.name}:{name}")
    quarantine = partitions.partition_dir(root, "quarantine", "churn", dt.date(2026, 1, 4))
    partitions.replace_dir(first, quarantine)
    partitions.replace_dir(second, quarantine)
    assert s3_data_root.keys("quarantine") == [
        "quarantine/churn/dt=2026-01-04/a.txt",
        "quarantine/churn/dt=2026-01-04/sub/b.txt",
    ]
    assert (quarantine / "sub" / "b.txt").read_text() == "second:sub/b.txt"
    partitions.remove_tree(quarantine)
    partitions.remove_tree(quarantine)  # absent: nothing to do
    assert s3_data_root.keys("quarantine") == []


def test_connection_id_from_its_own_setting(
    s3_data_root: S3DataRoot, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLOOPS_DATA_ROOT", f"s3://{s3_data_root.bucket}/other")
    monkeypatch.setenv("MLOOPS_DATA_CONN_ID", s3_data_root.conn_id)
    root = get_settings().data_root
    partitions.write_text(root / "hello.txt", "hi")
    assert partitions.to_uri(root / "hello.txt") == f"s3://mloops_s3@{s3_data_root.bucket}/other/hello.txt"
    assert s3_data_root.server.read(s3_data_root.bucket, "other/hello.txt") == b"hi"


def test_missing_connection_is_named(s3_data_root: S3DataRoot, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without this check the S3 hook would fall back to anonymous access and fail later, somewhere else."""
    monkeypatch.setenv("MLOOPS_DATA_ROOT", f"s3://no_such_conn@{s3_data_root.bucket}/data")
    settings = get_settings()  # resolving the root is deferred: DAG files never look connections up
    with pytest.raises(StorageError, match=r"MLOOPS_DATA_ROOT.*connection 'no_such_conn'.*isn't defined"):
        settings.data_root  # noqa: B018 - the property resolves the root


def test_files_source_in_the_bucket(s3_data_root: S3DataRoot) -> None:
    """Partitions an upstream job drops in the bucket (CSV under {data_root}), read through the connection."""
    from mloops.config import ModelConfig
    from mloops.data.sources import extract_partition
    from mloops.errors import DataSourceError, PartitionMissingError
    from mloops_examples.generator import generate_partition

    day = dt.date(2026, 2, 1)
    frame = generate_partition("churn", day, rows=50, seed=3)
    s3_data_root.server.client().put_object(
        Bucket=s3_data_root.bucket,
        Key="data/landing/20260201/customers.csv",
        Body=frame.to_csv(index=False).encode(),
    )
    s3_data_root.server.client().put_object(
        Bucket=s3_data_root.bucket, Key="data/landing/20260203/customers.csv", Body=b""
    )
    data = small_churn()
    data["source"] = {
        "kind": "files",
        "path": "{data_root}/landing/{ds_nodash}/customers.csv",
        "format": "csv",
    }
    config = ModelConfig.model_validate({**data, "name": "churn_csv"})
    root = get_settings().data_root

    extracted = extract_partition(config, day, root)
    assert len(extracted.frame) == 50 and list(extracted.frame.columns) == list(frame.columns)
    assert extracted.source_uri == f"{s3_data_root.uri}/landing/20260201/customers.csv"
    with pytest.raises(
        PartitionMissingError,
        match=(
            rf"partition 2026-02-02 is missing: no file at "
            rf"{s3_data_root.uri}/landing/20260202/customers.csv"
        ),
    ):
        extract_partition(config, dt.date(2026, 2, 2), root)
    with pytest.raises(
        DataSourceError,
        match=r"partition 2026-02-03 at s3://.*/landing/20260203/customers.csv is an empty file",
    ):
        extract_partition(config, dt.date(2026, 2, 3), root)


def test_nightly_pipeline_with_the_data_root_on_s3(
    s3_data_root: S3DataRoot,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    mloops_home: Path,
    airflow_db: Path,
) -> None:
    """Train (one batch quarantined), score and check drift: every data file lives in the bucket."""
    bad = small_churn(
        scenarios=[
            {
                "kind": "null_burst",
                "start": "2026-01-04",
                "end": "2026-01-04",
                "params": {"column": "monthly_charges", "fraction": 0.6},
            }
        ]
    )
    bad["monitoring"].update({"window_days": 2, "label_delay_days": 0, "min_rows": 100})
    monkeypatch.setenv("MLOOPS_MODELS_DIR", str(write_models(tmp_path / "models", churn=bad)))

    _, states = dag_test("mloops_train_churn", "2026-01-03")
    assert {states.pop("approve_promotion")} <= {"skipped"} and set(states.values()) == {"success"}, states
    _, states = dag_test("mloops_train_churn", "2026-01-04")
    assert states["validate_batch"] == "failed" and states["train_model"] == "upstream_failed"

    keys = s3_data_root.keys()
    assert {
        "raw/churn/dt=2026-01-02/part.parquet",
        "raw/churn/dt=2026-01-03/part.parquet",
        "raw/churn/dt=2026-01-04/part.parquet",
        "staged/churn/dt=2026-01-03/data.parquet",
        "staged/churn/dt=2026-01-03/verdict.json",
        "staged/churn/dt=2026-01-04/verdict.json",
        "runs/churn/dt=2026-01-03/holdout.parquet",
        "runs/churn/dt=2026-01-03/holdout_predictions.parquet",
        "runs/churn/dt=2026-01-03/reference.parquet",
        "reports/churn/dt=2026-01-03/model_tests.json",
        "reports/churn/dt=2026-01-03/model_tests.md",
        "quarantine/churn/dt=2026-01-04/part.parquet",
        "quarantine/churn/dt=2026-01-04/validation_result.json",
        "quarantine/churn/dt=2026-01-04/failures.txt",
    } <= set(keys), keys
    assert "staged/churn/dt=2026-01-04/data.parquet" not in keys, "a failing batch must never be staged"
    # The model tests found the training's recorded predictions in the bucket and checked them.
    tested = json.loads(s3_data_root.read("reports/churn/dt=2026-01-03/model_tests.json"))
    assert {c["name"]: c["passed"] for c in tested["checks"]}["reproduce:holdout_predictions"] is True
    assert not (mloops_home / "data").exists(), "nothing may fall back to the local data folder"
    # The quarantined copy is byte-identical to the original, which is kept.
    assert s3_data_root.read("quarantine/churn/dt=2026-01-04/part.parquet") == s3_data_root.read(
        "raw/churn/dt=2026-01-04/part.parquet"
    )
    assert (
        "expect_column_values_to_not_be_null(monthly_charges)"
        in s3_data_root.read("quarantine/churn/dt=2026-01-04/failures.txt").decode()
    )
    verdict = json.loads(s3_data_root.read("staged/churn/dt=2026-01-04/verdict.json"))
    assert (
        verdict["status"] == "quarantined"
        and verdict["quarantine"] == f"{s3_data_root.uri}/quarantine/churn/dt=2026-01-04"
    )

    from mloops.adapters.mlflow_adapter import client as mlflow_client

    client = mlflow_client(get_settings())
    champion = client.get_model_version_by_alias("mloops.churn", "champion")
    assert str(champion.version) == "1"
    run = client.get_run(champion.run_id)
    assert (
        run.data.tags["mloops.reference_uri"]
        == f"{s3_data_root.uri}/runs/churn/dt=2026-01-03/reference.parquet"
    )
    sources = sorted(json.loads(i.dataset.source)["uri"] for i in run.inputs.dataset_inputs)
    assert sources == [
        f"s3://{s3_data_root.bucket}/data/runs/churn/dt=2026-01-03/holdout.parquet",
        f"s3://{s3_data_root.bucket}/data/staged/churn",
    ], "lineage names the objects without the connection id"

    # `make summary` lists partitions and open quarantines from the bucket.
    from mloops.summary import model_summary

    summary = model_summary("churn", get_settings())
    assert summary["partitions"] == {
        "2026-01-02": "passed",
        "2026-01-03": "passed",
        "2026-01-04": "quarantined",
    }
    assert summary["quarantined"] == [f"{s3_data_root.uri}/quarantine/churn/dt=2026-01-04"]

    # Scoring and the drift check read the staged batch and the training reference from the bucket.
    _, states = dag_test("mloops_score_churn", "2026-01-03", hour=6)
    assert set(states.values()) == {"success"}, states
    predictions = pd.read_parquet(
        io.BytesIO(s3_data_root.read("predictions/churn/dt=2026-01-03/predictions.parquet"))
    )
    assert len(predictions) == 600 and set(predictions["model_version"]) == {"1"}
    dr, states = dag_test("mloops_monitor_churn", "2026-01-03", hour=7)
    assert set(states.values()) <= {"success", "skipped"} and states["check_drift"] == "success", states
    drift = dr.get_task_instance("check_drift").xcom_pull(task_ids="check_drift")
    assert drift["report_uri"].startswith(
        f"{s3_data_root.uri}/monitoring/churn/window=2026-01-02_2026-01-03/"
    )
    reports = s3_data_root.keys("monitoring/churn")
    assert {"drift.html", "drift.json", "quality.html", "quality.json"} <= {
        key.rsplit("/", 1)[-1] for key in reports
    }
    drift_html = next(key for key in reports if key.endswith("/drift.html"))
    assert b"<html" in s3_data_root.read(drift_html).lower()
    assert json.loads(s3_data_root.read(drift_html.replace(".html", ".json")))["metrics"], (
        "the JSON snapshot has the metrics"
    )
