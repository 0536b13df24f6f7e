"""Model config validation: every shipped config loads; each kind of mistake names file and field."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from mloops.config import ModelConfig
from mloops.config_files import find_model_config, load_model_config, load_model_configs
from mloops.errors import ModelConfigError

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.unit


def _base() -> dict:
    return yaml.safe_load((REPO / "include/models/churn.yaml").read_text())


def _write(tmp_path: Path, data: dict, name: str = "churn") -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_shipped_configs_load() -> None:
    configs, errors = load_model_configs(REPO / "include/models")
    assert errors == []
    assert {"churn", "house_prices"} <= set(configs)
    assert configs["churn"].task == "classification"
    assert configs["house_prices"].task == "regression"
    assert configs["churn"].registered_model_name == "mloops.churn"


def test_shipped_estimator_params_are_accepted_by_sklearn() -> None:
    from mloops.training import check_estimator_params

    configs, _ = load_model_configs(REPO / "include/models")
    for config in configs.values():
        check_estimator_params(config.training.estimator.class_path, config.training.estimator.params)


@pytest.mark.parametrize(
    ("mutate", "field", "fragment"),
    [
        (lambda d: d.pop("target"), "target", "Field required"),
        (lambda d: d.update(task="ranking"), "task", "Input should be"),
        (
            lambda d: d["training"]["estimator"].update({"class": "sklearn.svm.SVC"}),
            "training.estimator.class",
            "not a supported estimator",
        ),
        (lambda d: d["training"].update(window_days=0), "training.window_days", "greater than or equal to 1"),
        (
            lambda d: d["evaluation"].update(primary_metric="auc"),
            "evaluation.primary_metric",
            "unknown classification metric 'auc'",
        ),
        (
            lambda d: d["evaluation"]["thresholds"].update(rmse=1.0),
            "evaluation.thresholds.rmse",
            "unknown classification metric",
        ),
        (
            lambda d: d["features"].append({"name": "age", "type": "numeric"}),
            "features",
            "duplicate names ['age']",
        ),
        (
            lambda d: d["features"].append({"name": "x", "type": "numeric", "allowed_values": ["a"]}),
            "features.10",
            "categorical features only",
        ),
        (
            lambda d: d["features"].append({"name": "churned", "type": "numeric"}),
            "target",
            "also listed as a feature",
        ),
        (lambda d: d["source"].update(kind="ftp"), "source", "does not match any of the expected tags"),
        (lambda d: d["source"].update(rows_per_day=-1), "source.rows_per_day", "greater than or equal to 0"),
        (lambda d: d["schedule"].update(cron="daily"), "schedule.cron", "five fields"),
        (lambda d: d.update(surprise=1), "surprise", "Extra inputs are not permitted"),
        (
            lambda d: d["quality"].update(on_failure="drop_rows"),
            "quality.on_failure",
            "'quarantine_batch' or 'quarantine_rows'",
        ),
        (
            lambda d: d["quality"].update(on_failure="quarantine_rows", max_bad_row_share=1.5),
            "quality.max_bad_row_share",
            "less than or equal to 1",
        ),
        (
            lambda d: d["quality"].update(on_failure="quarantine_rows", max_bad_row_share=-0.1),
            "quality.max_bad_row_share",
            "greater than or equal to 0",
        ),
        (
            lambda d: d["quality"].update(max_bad_row_share=0.1),
            "quality",
            "max_bad_row_share (0.1) applies only with on_failure: quarantine_rows",
        ),
        (lambda d: d["evaluation"]["slices"][0].update(column="nope"), "evaluation.slices", "not a feature"),
        (
            lambda d: d["training"]["estimator"].update({"class": "sklearn.ensemble.RandomForestRegressor"}),
            "training.estimator.class",
            "regression estimator but task is 'classification'",
        ),
    ],
)
def test_invalid_config_names_file_and_field(tmp_path: Path, mutate, field: str, fragment: str) -> None:
    data = _base()
    mutate(data)
    path = _write(tmp_path, data)
    with pytest.raises(ModelConfigError) as caught:
        load_model_config(path)
    message = str(caught.value)
    assert str(path) in message
    assert f"field '{field}'" in message
    assert fragment in message


@pytest.mark.parametrize(
    ("text", "fragment"),
    [("a: [1, 2", "invalid YAML"), ("- just\n- a list\n", "expected a mapping"), ("", "expected a mapping")],
)
def test_unparseable_files(tmp_path: Path, text: str, fragment: str) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text(text)
    with pytest.raises(ModelConfigError, match=fragment):
        load_model_config(path)


def test_name_must_match_file(tmp_path: Path) -> None:
    data = _base()
    data["name"] = "other"
    with pytest.raises(ModelConfigError, match="must match the file name 'churn'"):
        load_model_config(_write(tmp_path, data))


def test_one_broken_file_leaves_the_others_loaded(tmp_path: Path) -> None:
    _write(tmp_path, _base(), "churn")
    broken = _base()
    broken["training"]["window_days"] = "many"
    _write(tmp_path, broken, "churn_broken")
    configs, errors = load_model_configs(tmp_path)
    assert list(configs) == ["churn"]
    assert (
        len(errors) == 1
        and "churn_broken.yaml" in str(errors[0])
        and "training.window_days" in str(errors[0])
    )


def test_find_model_config_missing(tmp_path: Path) -> None:
    with pytest.raises(ModelConfigError, match="no such model config file"):
        find_model_config("ghost", tmp_path)


def test_config_is_frozen_and_fingerprint_tracks_training_inputs() -> None:
    config = find_model_config("churn", REPO / "include/models")
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="frozen"):
        config.target = "x"  # type: ignore[misc]
    changed = ModelConfig.model_validate(
        {
            **config.model_dump(by_alias=True),
            "training": {**config.training.model_dump(by_alias=True), "window_days": 9},
        }
    )
    assert changed.fingerprint() != config.fingerprint()
    same_except_promotion = ModelConfig.model_validate(
        {**config.model_dump(by_alias=True), "promotion": {"policy": "none"}}
    )
    assert same_except_promotion.fingerprint() == config.fingerprint()
