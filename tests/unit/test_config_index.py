"""The compiled config index: a DAG file reuses validated configs while their YAML files are unchanged.

Keyed by each file's (path, mtime_ns, size): a hit never reads the YAML file, any change of the file
is read and validated again (errors included), and an index written by other code is ignored.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from mloops.config_files import load_model_configs
from tests.helpers import example_config, write_models

pytestmark = pytest.mark.unit


def _models(tmp_path: Path) -> Path:
    configs = {"churn": example_config("churn"), "house_prices": example_config("house_prices")}
    return write_models(tmp_path / "models", **configs)


def test_unchanged_files_come_from_the_index(tmp_path: Path, mloops_home: Path) -> None:
    models, index = _models(tmp_path), tmp_path / "cache"
    plain, _ = load_model_configs(models)
    first, errors = load_model_configs(models, index_dir=index)
    assert errors == [] and first == plain
    entries = json.loads((index / "config_index.json").read_text())["entries"]
    assert sorted(Path(p).name for p in entries) == ["churn.yaml", "house_prices.yaml"]

    # Same size and mtime, different bytes: only a hit can still see the old description.
    path = models / "churn.yaml"
    stat, text = path.stat(), path.read_text()
    path.write_text(text.replace("description: ", "description: X", 1)[:-1])
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    again, _ = load_model_configs(models, index_dir=index)
    assert again["churn"] == plain["churn"]
    assert again["churn"].source_file == str(path)


def test_a_changed_file_is_read_and_validated_again(tmp_path: Path, mloops_home: Path) -> None:
    models, index = _models(tmp_path), tmp_path / "cache"
    load_model_configs(models, index_dir=index)
    path = models / "churn.yaml"
    data = example_config("churn")
    data["description"] = "changed"
    write_models(models, churn=data)
    configs, _ = load_model_configs(models, index_dir=index)
    assert configs["churn"].description == "changed"

    data["evaluation"]["primary_metric"] = "auc"
    write_models(models, churn=data)
    configs, errors = load_model_configs(models, index_dir=index)
    assert "churn" not in configs
    assert str(path) in str(errors[0]) and "evaluation.primary_metric" in str(errors[0])


def test_an_index_from_other_code_is_ignored(tmp_path: Path, mloops_home: Path) -> None:
    models, index = _models(tmp_path), tmp_path / "cache"
    load_model_configs(models, index_dir=index)
    stored = json.loads((index / "config_index.json").read_text())
    for entry in stored["entries"].values():
        entry["config"] = json.dumps({**json.loads(entry["config"]), "description": "stale"})
    stored["code"] = [0, 0]
    (index / "config_index.json").write_text(json.dumps(stored))
    configs, _ = load_model_configs(models, index_dir=index)
    assert configs["churn"].description != "stale"
