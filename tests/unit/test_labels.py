"""The label feed: a delivery checked, joined by id to the predictions served, kept per prediction
interval and version; coverage, lateness, unmatched labels, re-runs and re-deliveries."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from mloops import labels, store
from mloops.config import ModelConfig
from mloops.config_files import load_model_config
from mloops.errors import LabelFeedError, ModelConfigError
from tests.helpers import example_config, write_models

pytestmark = pytest.mark.unit

D1, D2, D3, D4 = (dt.date(2026, 1, day) for day in (1, 2, 3, 4))


def _config(**labels_block: Any) -> ModelConfig:
    data = example_config("churn")
    data["monitoring"]["min_rows"] = 2
    data["monitoring"]["window_days"] = 3
    data["labels"] = {
        "source": {"kind": "files", "path": "{data_root}/landing/labels/dt={ds}/labels.parquet"},
        "expected_delay_days": 2,
        "lookback_days": 5,
        **labels_block,
    }
    return ModelConfig.model_validate({**data, "name": "churn"})


def _delivery(rows: list[tuple[Any, Any]], **extra: list[Any]) -> pd.DataFrame:
    return pd.DataFrame({"customer_id": [r[0] for r in rows], "churned": [r[1] for r in rows], **extra})


def _served(day: dt.date, version: str, ids: list[str], scores: list[float]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "customer_id": ids,
            "prediction": scores,
            "predicted_label": [int(s >= 0.5) for s in scores],
            "registered_model": "mloops.churn",
            "model_version": version,
            "partition": day.isoformat(),
        }
    )


# ----------------------------------------------------------------------------------------- pure logic


def test_a_delivery_without_its_label_column_is_refused_naming_the_columns() -> None:
    frame = pd.DataFrame({"customer_id": ["a"], "outcome": [1]})
    with pytest.raises(LabelFeedError) as caught:
        labels.check_delivery(frame, _config(), "landing/labels/dt=2026-01-03")
    message = str(caught.value)
    assert "labels.label_column 'churned'" in message and "['customer_id', 'outcome']" in message
    assert "landing/labels/dt=2026-01-03" in message


def test_unusable_labels_are_rejected_with_a_reason_and_duplicates_keep_the_last() -> None:
    frame = _delivery([("a", 1), (None, 0), ("b", "maybe"), ("c", 2), ("a", 0), ("d", True)])
    delivery = labels.check_delivery(frame, _config(), "test")
    assert delivery.arrived == 6 and delivery.duplicates == 1
    assert dict(zip(delivery.labels["customer_id"], delivery.labels[labels.LABEL], strict=True)) == {
        "a": 0,  # delivered twice: the last one wins
        "d": 1,
    }
    rejected = delivery.rejected.set_index(labels.LABEL)[labels.REASON].to_dict()
    assert rejected == {"0": labels.MISSING_ID, "maybe": labels.BAD_LABEL, "2": labels.BAD_LABEL}


def test_late_labels_join_the_newest_prediction_of_their_id_and_the_rest_is_unmatched() -> None:
    config = _config()
    served = pd.concat(
        [_served(D1, "1", ["a", "b"], [0.9, 0.2]), _served(D2, "2", ["b", "c"], [0.7, 0.4])],
        ignore_index=True,
    )
    delivery = labels.check_delivery(_delivery([("a", 1), ("b", 0), (7, 1), ("zz", 0)]), config, "test")
    joined = labels.join(delivery, served, config, D3)
    matched = joined.matched.set_index("customer_id")
    assert matched.loc["a", [labels.PARTITION, labels.VERSION, labels.LATENESS]].tolist() == [
        "2026-01-01",
        "1",
        2,
    ]
    # b was scored twice: its label belongs to the newest prediction served (v2, on 01-02).
    assert matched.loc["b", [labels.PARTITION, labels.VERSION, "prediction"]].tolist() == [
        "2026-01-02",
        "2",
        0.7,
    ]
    assert sorted(joined.unmatched["customer_id"]) == ["7", "zz"]
    assert set(joined.unmatched[labels.REASON]) == {labels.NO_PREDICTION}


def test_with_an_event_date_a_label_joins_only_the_prediction_of_that_date() -> None:
    config = _config(event_date_column="event_date")
    served = pd.concat([_served(D1, "1", ["a"], [0.9]), _served(D2, "1", ["a"], [0.1])], ignore_index=True)
    frame = _delivery([("a", 1), ("a", 0)], event_date=["2026-01-01", "2026-01-04"])
    joined = labels.join(labels.check_delivery(frame, config, "test"), served, config, D4)
    assert joined.matched[[labels.PARTITION, labels.LABEL]].values.tolist() == [["2026-01-01", 1]]
    assert joined.unmatched[labels.LABEL].tolist() == ["0"]


def test_coverage_counts_labeled_predictions_and_lateness() -> None:
    joined = pd.DataFrame({labels.LATENESS: [1, 2, 2, 5]})
    assert labels.coverage(8, joined) == {
        "predictions": 8.0,
        "labeled": 4.0,
        "coverage": 0.5,
        "lateness_median_days": 2.0,
        "lateness_max_days": 5.0,
    }
    assert labels.coverage(0, joined.iloc[0:0])["coverage"] is None


# ---------------------------------------------------------------------------------- the stage on files


@pytest.fixture
def stage(mloops_home: Path):
    """The churn config with a files label feed, and helpers to land predictions and deliveries."""
    from mloops.settings import get_settings
    from mloops.stages.layout import RunContext, predictions_path

    config = _config()
    settings = get_settings()

    def ctx(day: dt.date) -> RunContext:
        return RunContext(config, day, settings)

    def serve(day: dt.date, version: str, ids: list[str], scores: list[float]) -> None:
        path = predictions_path(ctx(day))
        path.parent.mkdir(parents=True, exist_ok=True)
        _served(day, version, ids, scores).to_parquet(path, index=False)

    def deliver(day: dt.date, rows: list[tuple[Any, Any]]) -> None:
        path = settings.data_root / "landing" / "labels" / f"dt={day}" / "labels.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        _delivery(rows).to_parquet(path, index=False)

    return ctx, serve, deliver, settings


def _metrics(settings: Any) -> dict[tuple[str, str, str, str], float | None]:
    return {
        (r["model_version"], str(r["window_start"]), str(r["window_end"]), r["metric"]): r["value"]
        for r in store.read_metrics(settings.metrics_db_uri, "churn")
    }


def test_join_labels_writes_the_join_per_prediction_interval_and_version(stage) -> None:
    from mloops.stages import labels as stage_labels
    from mloops.stages.layout import labeled_path, unmatched_labels_path

    ctx, serve, deliver, settings = stage
    serve(D1, "1", ["a", "b", "c", "d"], [0.9, 0.8, 0.2, 0.1])
    serve(D2, "2", ["e", "f"], [0.6, 0.3])
    deliver(D3, [("a", 1), ("b", 0), ("c", 0), ("e", 1), ("e", 1), ("ghost", 1), (None, 1)])

    result = stage_labels.join_labels(ctx(D3), refresh_cards=False)

    assert (result.arrived, result.matched, result.unmatched, result.rejected, result.duplicates) == (
        7,
        4,
        1,
        1,
        1,
    )
    v1 = pd.read_parquet(labeled_path(ctx(D1), "1", D3))
    assert sorted(v1["customer_id"]) == ["a", "b", "c"] and set(v1[labels.LATENESS]) == {2}
    assert pd.read_parquet(labeled_path(ctx(D2), "2", D3))[labels.LATENESS].tolist() == [1]
    unmatched = pd.read_parquet(unmatched_labels_path(ctx(D3)))
    assert sorted(unmatched[labels.REASON]) == sorted([labels.NO_PREDICTION, labels.MISSING_ID])
    assert result.coverage == [
        {
            "partition": "2026-01-01",
            "model_version": "1",
            "predictions": 4.0,
            "labeled": 3.0,
            "coverage": 0.75,
            "lateness_median_days": 2.0,
            "lateness_max_days": 2.0,
        },
        {
            "partition": "2026-01-02",
            "model_version": "2",
            "predictions": 2.0,
            "labeled": 1.0,
            "coverage": 0.5,
            "lateness_median_days": 1.0,
            "lateness_max_days": 1.0,
        },
    ]
    assert result.quality["1"]["rows"] == 3.0 and result.quality["1"]["accuracy"] == pytest.approx(2 / 3)
    assert result.quality["2"] == {"rows": 1.0}  # below monitoring.min_rows: counted, not scored
    metrics = _metrics(settings)
    assert metrics[("*", "2026-01-03", "2026-01-03", "labels.unmatched")] == 1.0
    assert metrics[("1", "2026-01-01", "2026-01-01", "labels.coverage")] == 0.75
    assert metrics[("1", "2026-01-01", "2026-01-03", "labels.quality.accuracy")] == pytest.approx(2 / 3)
    assert type(result).from_xcom(result.to_xcom()) == result


def test_rerun_overwrites_and_a_redelivered_label_supersedes_without_duplicating(stage) -> None:
    from mloops.stages import labels as stage_labels
    from mloops.stages.layout import labeled_files

    ctx, serve, deliver, settings = stage
    serve(D1, "1", ["a", "b"], [0.9, 0.2])
    deliver(D2, [("a", 0), ("b", 0)])
    first = stage_labels.join_labels(ctx(D2), refresh_cards=False)
    again = stage_labels.join_labels(ctx(D2), refresh_cards=False)
    assert first.coverage == again.coverage and len(stage_labels.read_labeled(ctx(D1))) == 2

    deliver(D4, [("a", 1)])  # a corrected label for a, two days later
    corrected = stage_labels.join_labels(ctx(D4), refresh_cards=False)
    joined = stage_labels.read_labeled(ctx(D1)).set_index("customer_id")
    assert len(joined) == 2 and joined.loc["a", labels.LABEL] == 1 and joined.loc["a", labels.LATENESS] == 3
    assert corrected.coverage[0]["labeled"] == 2.0 and corrected.coverage[0]["lateness_max_days"] == 3.0

    # The 01-02 delivery is re-delivered without b: its re-run drops b's join, nothing stale remains.
    deliver(D2, [("a", 0)])
    stage_labels.join_labels(ctx(D2), refresh_cards=False)
    assert [a.key for _, a, _ in labeled_files(ctx(D1))] == [D2.isoformat(), D4.isoformat()]
    assert sorted(stage_labels.read_labeled(ctx(D1))["customer_id"]) == ["a"]


def test_a_day_without_a_delivery_joins_nothing_and_keeps_coverage(stage) -> None:
    from mloops.stages import labels as stage_labels

    ctx, serve, deliver, _ = stage
    serve(D1, "1", ["a", "b"], [0.9, 0.2])
    deliver(D2, [("a", 1)])
    stage_labels.join_labels(ctx(D2), refresh_cards=False)
    quiet = stage_labels.join_labels(ctx(D3), refresh_cards=False)
    assert not quiet.delivered and "no labels arrived on 2026-01-03" in quiet.source_uri
    assert (quiet.arrived, quiet.matched, quiet.unmatched) == (0, 0, 0)
    assert quiet.coverage[0]["coverage"] == 0.5


# --------------------------------------------------------------------------------------------- config


@pytest.mark.parametrize(
    ("mutate", "field", "fragment"),
    [
        (lambda d: d.pop("id_column"), "labels", "needs an id_column"),
        (
            lambda d: d["labels"].update(lookback_days=2),
            "labels.lookback_days",
            "must be greater than labels.expected_delay_days (2)",
        ),
        (
            lambda d: d["labels"].update(lookback_days=500),
            "labels.lookback_days",
            "less than or equal to 120",
        ),
        (
            lambda d: d["labels"]["source"].update(path="/etc/labels?{ds}"),
            "labels.source.path",
            "query strings",
        ),
        (
            lambda d: d["labels"].update(source={"kind": "generator"}),
            "labels.source",
            "but source.kind is 'files'",
        ),
        (lambda d: d["labels"].update(label_column="customer_id"), "labels.label_column", "also the id"),
        (lambda d: d["labels"].update(delay=2), "labels.delay", "Extra inputs are not permitted"),
    ],
)
def test_invalid_labels_blocks_name_the_field(
    tmp_path: Path, mloops_home: Path, mutate, field, fragment
) -> None:
    data = example_config("churn")
    data["source"] = {"kind": "files", "path": "{data_root}/landing/churn/dt={ds}/part.parquet"}
    data["labels"] = {
        "source": {"kind": "files", "path": "{data_root}/landing/labels/dt={ds}/labels.parquet"},
        "expected_delay_days": 2,
        "lookback_days": 5,
    }
    mutate(data)
    path = write_models(tmp_path / "models", churn=data) / "churn.yaml"
    with pytest.raises(ModelConfigError) as caught:
        load_model_config(path)
    assert f"field '{field}'" in str(caught.value) and fragment in str(caught.value), str(caught.value)


def test_the_labels_source_path_is_confined_at_read_time(stage, tmp_path: Path) -> None:
    from mloops.data.sources import extract_labels
    from mloops.errors import DataSourceError

    ctx, _, _, settings = stage
    outside = _config(source={"kind": "files", "path": "/var/elsewhere/dt={ds}/labels.parquet"})
    with pytest.raises(DataSourceError, match="field 'labels.source.path' resolves to /var/elsewhere"):
        extract_labels(outside, D3, settings.data_root)


# ------------------------------------------------------------------------------------- example feed


def test_the_generator_delivers_each_days_labels_late_as_its_own_feed(mloops_home: Path) -> None:
    from mloops.config_files import find_model_config
    from mloops.data.sources import extract_labels, to_generator_scenarios
    from mloops.settings import get_settings
    from mloops_examples.generator import generate_labels, generate_partition
    from tests.helpers import REPO

    config = find_model_config("churn", REPO / "include/models")  # the example uses the feed
    assert config.labels is not None and config.labels.source.kind == "generator"
    settings = get_settings()
    extracted = extract_labels(config, dt.date(2026, 1, 10), settings.data_root)
    assert str(extracted.source_files[0]).endswith("raw/churn-labels/dt=2026-01-10/part.parquet")
    frame = extracted.frame
    scenarios = to_generator_scenarios(config.source.scenarios)  # covariate drift from 01-08
    events = generate_partition("churn", dt.date(2026, 1, 8), rows=1500, seed=7, scenarios=scenarios)
    assert set(frame["event_date"].dt.date) == {dt.date(2026, 1, 8)}  # two days late
    scored = frame[frame["customer_id"].isin(events["customer_id"])]
    assert len(frame) - len(scored) == 25  # ids that were never scored
    assert 0.85 < len(scored) / len(events) < 0.95  # coverage 0.9
    truth = events.set_index("customer_id")["churned"]
    assert (scored.set_index("customer_id")["churned"] == truth.loc[scored["customer_id"]]).all()
    again = generate_labels(
        "churn", dt.date(2026, 1, 10), rows=1500, seed=7, scenarios=scenarios, coverage=0.9, unmatched_rows=25
    )
    assert again.equals(frame)
