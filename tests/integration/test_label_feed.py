"""Ground truth from a separate feed, two days late, closes the loop (issue 13).

Scoring batches arrive unlabeled; from 2026-01-04 the world changes under the model (concept drift:
same customers, different reasons to churn), which no feature or prediction drift can show. The
labels of 2026-01-04 land on 2026-01-06 in their own feed. The monitoring DAG (``dag.test()``)
joins them to the predictions v1 actually served, records coverage and live quality in the metrics
store, and the drift check, reading the same joined labels, finds the quality drop and triggers
retraining.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest

from tests.helpers import dag_test, small_churn, write_models

pytestmark = pytest.mark.integration

CHANGE = dt.date(2026, 1, 4)
ARRIVAL = dt.date(2026, 1, 6)  # the labels of 2026-01-04, two days late
UNMATCHED = 10


def _land(frame: pd.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(path, index=False)


@pytest.fixture
def churn_with_feed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mloops_home: Path, airflow_db: Path):
    from mloops_examples.generator import Scenario, generate_labels, generate_partition

    config = small_churn()
    config["source"] = {"kind": "files", "path": "{data_root}/landing/churn/dt={ds}/part.parquet"}
    config["labels"] = {
        "source": {"kind": "files", "path": "{data_root}/landing/churn-labels/dt={ds}/labels.parquet"},
        "event_date_column": "event_date",
        "expected_delay_days": 2,
        "lookback_days": 5,
    }
    config["monitoring"] = {"window_days": 3, "sample_size": 5000, "min_rows": 100, "cooldown_hours": 48}
    landing = mloops_home / "data" / "landing"
    concept = [Scenario("concept_drift", CHANGE, dt.date(2026, 1, 31), {"strength": 1.0})]
    for offset in range(2, 7):
        day = dt.date(2026, 1, offset)
        frame = generate_partition("churn", day, rows=600, seed=7, scenarios=concept)
        if day >= CHANGE:  # scoring batches arrive without their target
            frame = frame.drop(columns=["churned"])
        _land(frame, landing / "churn" / f"dt={day}" / "part.parquet")
    delivered = generate_labels(
        "churn", ARRIVAL, rows=600, seed=7, scenarios=concept, delay_days=2, coverage=0.9,
        unmatched_rows=UNMATCHED,
    )  # fmt: skip
    _land(delivered, landing / "churn-labels" / f"dt={ARRIVAL}" / "labels.parquet")
    directory = write_models(tmp_path / "models", churn=config)
    monkeypatch.setenv("MLOOPS_MODELS_DIR", str(directory))
    return directory, delivered


def _champion_and_served(models_dir: Path) -> float:
    """v1 trained on 01-02..01-03 and promoted; it scores 01-04..01-06. Returns its test roc_auc."""
    from mloops.config_files import find_model_config
    from mloops.contracts import Use
    from mloops.settings import get_settings
    from mloops.stages import registry, score, test, train, validate
    from mloops.stages.layout import RunContext

    ctx = RunContext(find_model_config("churn", models_dir), dt.date(2026, 1, 3), get_settings())
    validate.validate_batch(ctx)
    trained = train.train_model(ctx)
    tested = test.test_model(ctx, trained)
    assert registry.promote_model(ctx, registry.register_model(ctx, trained, tested)).action == "promote"
    for offset in (4, 5, 6):
        day = ctx.at(dt.date(2026, 1, offset)).for_use(Use.SCORING)
        validate.validate_batch(day)
        score.score_batch(day)
    return float(tested.metrics["roc_auc"])


def test_late_labels_feed_live_quality_and_a_quality_drop_triggers_retraining(
    churn_with_feed, mloops_home: Path
) -> None:
    from mloops import store
    from mloops.contracts import EventKind
    from mloops.settings import get_settings

    models_dir, delivered = churn_with_feed
    test_auc = _champion_and_served(models_dir)

    _, states = dag_test("mloops_monitor_churn", ARRIVAL.isoformat(), hour=6)
    assert states == {
        "join_labels": "success",
        "check_drift": "success",
        "trigger_retraining": "success",
    }, states

    # The labels joined the predictions actually served: interval 01-04, by v1, two days late.
    data = mloops_home / "data"
    served = pd.read_parquet(data / "predictions/churn/dt=2026-01-04/predictions.parquet")
    joined = pd.read_parquet(data / "labeled/churn/dt=2026-01-04/version=1/arrival=2026-01-06.parquet")
    assert set(served["model_version"]) == {"1"} and set(joined["model_version"]) == {"1"}
    assert len(joined) == len(delivered) - UNMATCHED and set(joined["lateness_days"]) == {2}
    truth = delivered.set_index("customer_id")["churned"]
    assert (joined.set_index("customer_id")["label"] == truth.loc[joined["customer_id"]]).all()
    scores = served.set_index("customer_id")["prediction"]
    assert (joined.set_index("customer_id")["prediction"] == scores.loc[joined["customer_id"]]).all()
    unmatched = pd.read_parquet(data / "labels-unmatched/churn/dt=2026-01-06/labels.parquet")
    assert len(unmatched) == UNMATCHED and unmatched["customer_id"].str.startswith("X").all()

    # Coverage and live quality in the metrics store; the drift check used the same joined labels.
    metrics = {
        (r["model_version"], str(r["window_start"]), str(r["window_end"]), r["metric"]): r["value"]
        for r in store.read_metrics(get_settings().metrics_db_uri, "churn")
    }
    assert metrics[("1", "2026-01-04", "2026-01-04", "labels.coverage")] == pytest.approx(len(joined) / 600)
    assert metrics[("1", "2026-01-04", "2026-01-04", "labels.lateness_median_days")] == 2.0
    assert metrics[("*", "2026-01-06", "2026-01-06", "labels.unmatched")] == UNMATCHED
    live = metrics[("1", "2026-01-04", "2026-01-06", "labels.quality.roc_auc")]
    assert live < test_auc - 0.05, (live, test_auc)
    assert metrics[("1", "2026-01-04", "2026-01-06", "quality.roc_auc")] == pytest.approx(live)
    assert metrics[("1", "2026-01-04", "2026-01-06", "rows.labeled")] == len(joined)

    (retrain,) = store.read_events(get_settings().metrics_db_uri, "churn", EventKind.RETRAIN_TRIGGERED)
    assert f"roc_auc on {len(joined)} labeled rows is {live:.4f}" in retrain["message"], retrain["message"]
