"""The staged-rollout story shared by its ``dag.test()`` and real-scheduler tests (issue 15).

The world changes under the models: from 2026-01-03 customers churn for other reasons (the
generator's concept drift). v1 is trained on the old world (01-01..01-02), v2 on the new one
(01-03..01-04); both pass their holdout tests. The live labels decide what happens next: a change
that lasts (``LASTING``) makes v2 better on the rows both versions scored, a blip (``BLIP``) makes it
worse. Here: the model configs, the landed partitions and label deliveries, the set-up steps run as
stage functions (validation, training, serving: other tests cover them), and readers of the registry,
the events and the model cards.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pandas as pd

from tests.helpers import small_churn

ROWS = 500
DAY = [None, *(dt.date(2026, 1, d) for d in range(1, 10))]  # DAY[n] is 2026-01-0n
BLIP = ("2026-01-03", "2026-01-04")  # concept B only on the training days of v2
LASTING = ("2026-01-03", "2026-01-31")
RB_BLIP = ("2026-01-05", "2026-01-06")  # rollback story: v1 serves 01-03..01-04, v2 trains on 01-05..01-06
SHADOW = {"policy": "shadow", "shadow_intervals": 2, "shadow_tolerance": 0.0}
ROLLBACK = {"policy": "auto", "auto_rollback": {"within_intervals": 3, "tolerance": 0.05}}


def config(name: str, promotion: dict[str, Any]) -> dict[str, Any]:
    """A small churn model on landed files with a label feed (labels a day late, 4 days of lookback);
    its drift check never starts a retraining (drift has its own tests)."""
    data = small_churn()
    data["source"] = {"kind": "files", "path": "{data_root}/landing/{model}/dt={ds}/part.parquet"}
    data["labels"] = {
        "source": {"kind": "files", "path": "{data_root}/landing/{model}-labels/dt={ds}/labels.parquet"},
        "event_date_column": "event_date",
        "expected_delay_days": 1,
        "lookback_days": 4,
    }
    data["monitoring"] = {"window_days": 3, "min_rows": 100, "retrain_on_drift": False}
    data["promotion"] = promotion
    data["schedule"]["end_date"] = "2026-01-31"
    return data


def land(data: Path, model: str, concept: tuple[str, str], scored: list[dt.date], labels: dict) -> None:
    """Partitions 01-01..01-08 of ``model`` (the target dropped on the ``scored`` days) and the label
    deliveries ``{arrival: [event days]}``."""
    from mloops_examples.generator import Scenario, generate_labels, generate_partition

    scenarios = [Scenario("concept_drift", *map(dt.date.fromisoformat, concept), {"strength": 1.0})]
    for day in DAY[1:9]:
        frame = generate_partition("churn", day, rows=ROWS, seed=11, scenarios=scenarios)
        if day in scored:
            frame = frame.drop(columns=["churned"])
        _write(frame, data / "landing" / model / f"dt={day}" / "part.parquet")
    for arrival, days in labels.items():
        delivered = pd.concat(
            [
                generate_labels(
                    "churn", arrival, rows=ROWS, seed=11, scenarios=scenarios, delay_days=(arrival - d).days
                )
                for d in days
            ],
            ignore_index=True,
        )
        _write(delivered, data / "landing" / f"{model}-labels" / f"dt={arrival}" / "labels.parquet")


def _write(frame: pd.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(path, index=False)


def ctx(model: str, day: dt.date, use: str = "training") -> Any:
    from mloops.config_files import find_model_config
    from mloops.contracts import Use
    from mloops.settings import get_settings
    from mloops.stages.layout import RunContext

    return RunContext(find_model_config(model, get_settings().models_dir), day, get_settings(), use=Use(use))


def train_and_promote(model: str, day: dt.date) -> str:
    """Validate the window's days, train, test, register and apply the policy (stage functions)."""
    from mloops.stages import registry, test, train, validate

    run = ctx(model, day)
    for back in (1, 0):
        validate.validate_batch(run.at(day - dt.timedelta(days=back)))
    trained = train.train_model(run)
    tested = test.test_model(run, trained)
    assert tested.passed, tested.checks
    registered = registry.register_model(run, trained, tested)
    registry.promote_model(run, registered)
    return registered.version


def validate(model: str, day: dt.date) -> None:
    from mloops.stages import validate as stage

    stage.validate_batch(ctx(model, day))


def serve(model: str, days: list[dt.date], *, shadow: bool) -> None:
    from mloops.stages import score, validate
    from mloops.stages import shadow as shadow_stage

    for day in days:
        run = ctx(model, day, "scoring")
        validate.validate_batch(run)
        score.score_batch(run)
        if shadow:
            shadow_stage.score_shadow(run)


def v2_in_shadow(model: str, scored: list[dt.date]) -> None:
    """v1 bootstraps champion, v2 enters shadow beside it, both score ``scored`` (stage functions)."""
    assert train_and_promote(model, DAY[2]) == "1"
    assert train_and_promote(model, DAY[4]) == "2"
    serve(model, scored, shadow=True)


def versions(name: str) -> dict[str, Any]:
    """The aliases of ``mloops.<name>`` and the tags of each of its versions."""
    from mloops.adapters.mlflow_adapter import client
    from mloops.settings import get_settings

    mlflow = client(get_settings())
    aliases = {}
    for alias in ("champion", "previous", "challenger"):
        try:
            aliases[alias] = str(mlflow.get_model_version_by_alias(f"mloops.{name}", alias).version)
        except Exception:  # noqa: BLE001 - alias not set
            aliases[alias] = None
    tags = {str(v.version): dict(v.tags) for v in mlflow.search_model_versions(f"name = 'mloops.{name}'")}
    return {"aliases": aliases, "tags": tags}


def events(model: str, kind: str) -> list[dict[str, Any]]:
    from mloops import store
    from mloops.settings import get_settings

    return store.read_events(get_settings().metrics_db_uri, model, kind)


def card(name: str, version: str) -> str:
    """The Markdown model card logged to the MLflow run of ``mloops.<name>`` v``version``, and the
    same card's HTML file that the version's ``mloops.model_card`` tag points at (they must agree)."""
    from mloops import partitions
    from mloops.adapters import mlflow_adapter
    from mloops.settings import get_settings

    mlflow = mlflow_adapter.client(get_settings())
    info = mlflow_adapter.get_version(mlflow, f"mloops.{name}", version)
    markdown = mlflow_adapter.read_text_artifact(mlflow, info.run_id, "model_card/model_card.md") or ""
    page = partitions.from_uri(info.tags["mloops.model_card"]).read_text()
    assert info.tags["mloops.model_card"].endswith(f"model_card_v{version}.html")
    assert f"Model card: mloops.{name} v{version}" in page and markdown.startswith(
        f"# Model card: mloops.{name} v{version}"
    )
    return markdown


def live_windows(markdown: str) -> list[str]:
    """The windows of a card's served live quality table (``2026-01-03..2026-01-05``), oldest first."""
    section = markdown.split("## Live quality since", 1)[1]
    return [
        line.split(" | ")[0].removeprefix("| ") for line in section.splitlines() if line.startswith("| 2026")
    ]


def shadow_record(tags: dict[str, str]) -> dict[str, Any]:
    return json.loads(tags["mloops.shadow"])
