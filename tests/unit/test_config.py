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


# ------------------------------------------------------------------------------ partition intervals


def _hourly(**schedule: object) -> dict:
    data = _base()
    data["schedule"] = {"cron": "0 * * * *", "scoring_cron": "20 * * * *", **schedule}
    return data


def _loaded(tmp_path: Path, data: dict) -> ModelConfig:
    return load_model_config(_write(tmp_path, data))


def test_daily_stays_the_default(tmp_path: Path) -> None:
    import datetime as dt

    config = _loaded(tmp_path, _base())
    assert config.interval == dt.timedelta(days=1) and config.intervals_per_day == 1
    assert (config.training_window, config.monitoring_window) == (3, 3)  # window_days, as before
    default = _base()
    del default["training"]["window_days"], default["monitoring"]["window_days"]
    assert (_loaded(tmp_path, default).training_window, _loaded(tmp_path, default).monitoring_window) == (
        7,
        3,
    )


@pytest.mark.parametrize(
    ("schedule", "hours"),
    [
        ({"cron": "0 * * * *", "scoring_cron": "20 * * * *"}, 1),  # derived from the training cron
        ({"cron": "@hourly", "scoring_cron": "20 * * * *"}, 1),
        ({"cron": "0 */6 * * *", "scoring_cron": "30 */6 * * *"}, 6),
        # Hourly partitions, trained once a night on the last day of them.
        ({"cron": "0 2 * * *", "scoring_cron": "20 * * * *", "interval": "hourly"}, 1),
        ({"cron": "0 2 * * *", "scoring_cron": "0 4 * * *", "interval": "1d"}, 24),
    ],
)
def test_interval_from_schedule(tmp_path: Path, schedule: dict, hours: int) -> None:
    import datetime as dt

    data = _base()
    data["schedule"] = schedule
    assert _loaded(tmp_path, data).interval == dt.timedelta(hours=hours)


@pytest.mark.parametrize(
    ("window", "count"),
    [
        ({"window_days": 2}, 48),
        ({"window": "36h"}, 36),
        ({"window": "1d"}, 24),
        ({"window_intervals": 24}, 24),
    ],
)
def test_windows_in_intervals_or_durations(tmp_path: Path, window: dict, count: int) -> None:
    data = _hourly()
    for section in ("training", "monitoring"):
        data[section].pop("window_days")
        data[section].update(window)
    config = _loaded(tmp_path, data)
    assert config.training_window == count and config.monitoring_window == count


def test_fingerprint_of_a_daily_config_is_unchanged_by_the_new_fields() -> None:
    config = find_model_config("churn", REPO / "include/models")
    # The fingerprint of churn.yaml before windows could be durations (tags of existing MLflow runs).
    legacy = config.model_dump(mode="json", include={"task", "target", "features", "training", "id_column"})
    del legacy["training"]["window"], legacy["training"]["window_intervals"]
    import hashlib
    import json

    assert (
        config.fingerprint() == hashlib.sha256(json.dumps(legacy, sort_keys=True).encode()).hexdigest()[:16]
    )


@pytest.mark.parametrize(
    ("mutate", "field", "fragment"),
    [
        (
            lambda d: d["schedule"].update(interval="5h"),
            "schedule.interval",
            "'5h' is not a partition interval",
        ),
        (lambda d: d["schedule"].update(interval="90m"), "schedule.interval", "'90m' is not a duration"),
        (lambda d: d["schedule"].update(cron="@weekly"), "schedule.cron", "must have five fields"),
        (
            lambda d: d["schedule"].update(scoring_cron="0 4 * * *"),
            "schedule.scoring_cron",
            "'0 4 * * *' does not run once per 1h partition, so partitions would go unscored; "
            "use e.g. '15 * * * *'",
        ),
        (
            lambda d: d["schedule"].update(interval="1d"),
            "schedule.cron",
            "'0 * * * *' runs every 1h but a partition is 1d: 24 runs would rewrite each partition",
        ),
        (
            lambda d: d["training"].update(window="2x"),
            "training.window",
            "'2x' is not a duration",
        ),
        (
            lambda d: (
                d["training"].update(window="36h", window_days=None) or d["schedule"].update(interval="12h")
            ),
            "schedule.cron",
            "runs every 1h but a partition is 12h",
        ),
        (
            lambda d: d["training"].update(window_intervals=24),
            "training",
            "give one of window_days, window_intervals",
        ),
        (
            lambda d: (
                d["monitoring"].update(window="3d", window_days=None)
                or d["schedule"].update(cron="0 */6 * * *", scoring_cron="0 */6 * * *", interval="6h")
                or d["monitoring"].update(window="9h")
            ),
            "monitoring.window",
            "9h is not a whole number of 6h intervals",
        ),
        (
            lambda d: (
                d.pop("labels")
                and d.update(
                    source={"kind": "files", "path": "{data_root}/landing/churn/dt={ds}/part.parquet"}
                )
            ),
            "source.path",
            "has no hour: a 1h partition's path must contain {hour} or {ts_nodash} or {partition}",
        ),
        (
            lambda d: (
                d.pop("labels")
                and d.update(
                    source={"kind": "sql", "conn_id": "crm", "query": "select * from t where d = '{{ ds }}'"}
                )
            ),
            "source.query",
            "a 1h partition's query must select its interval",
        ),
    ],
)
def test_invalid_interval_config_names_file_and_field(
    tmp_path: Path, mutate, field: str, fragment: str
) -> None:
    data = _hourly()
    mutate(data)
    path = _write(tmp_path, data)
    with pytest.raises(ModelConfigError) as caught:
        load_model_config(path)
    message = str(caught.value)
    assert str(path) in message and f"field '{field}'" in message and fragment in message, message


def test_hourly_files_source_with_an_hour_loads(tmp_path: Path) -> None:
    data = _hourly()
    data.pop("labels")
    data["source"] = {"kind": "files", "path": "{data_root}/landing/churn/dt={ds}/hour={hour}/part.parquet"}
    assert _loaded(tmp_path, data).source.path.endswith("hour={hour}/part.parquet")  # type: ignore[union-attr]
