"""What a model relies on: permutation importance of every feature on the holdout, and how it moved.

scikit-learn's own ``permutation_importance`` with the model's primary metric as the score, on a
fixed-seed sample of at most ``evaluation.explain_rows`` holdout rows so the cost is bounded at any
window size. Pure logic: the test stage logs the result with the run and the registered version.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from mloops import monitoring, training

if TYPE_CHECKING:
    import pandas as pd

    from mloops.config import ModelConfig

#: Importances kept in a version tag (MLflow tags are bounded: the full table is an artifact).
TAG_TOP = 10


def permutation_importances(model: Any, holdout: pd.DataFrame, config: ModelConfig) -> dict[str, float]:
    """Mean drop of the primary metric when each feature is shuffled (higher = relied on more)."""
    from sklearn.inspection import permutation_importance

    e = config.evaluation
    sample = monitoring.sample(holdout, e.explain_rows, config.monitoring.seed)
    metric, sign = e.primary_metric, 1.0 if config.greater_is_better else -1.0

    def score(estimator: Any, features: pd.DataFrame, target: Any) -> float:
        predicted, probability = training.predict(estimator, features, config.task)
        value = training.compute_metrics(config.task, target, predicted, probability, only=metric)[metric]
        return sign * (value if value is not None else 0.0)

    found = permutation_importance(
        model,
        training.feature_frame(sample, config),
        training.target_series(sample, config),
        scoring=score,
        n_repeats=e.explain_repeats,
        random_state=config.monitoring.seed,
        n_jobs=1,
    )
    pairs = zip(config.feature_names, found.importances_mean, strict=True)
    return dict(sorted(((name, round(float(value), 6)) for name, value in pairs), key=lambda kv: -kv[1]))


def ranking_changes(
    current: Mapping[str, float], previous: Mapping[str, float] | None
) -> list[dict[str, Any]]:
    """Per feature: importance now and under the champion, rank now and then (``None`` when unknown)."""
    before = dict(previous or {})
    rank_before = {name: i + 1 for i, name in enumerate(sorted(before, key=lambda n: -before[n]))}
    return [
        {
            "feature": name,
            "importance": value,
            "champion_importance": before.get(name),
            "rank": i + 1,
            "champion_rank": rank_before.get(name),
        }
        for i, (name, value) in enumerate(current.items())
    ]


#: Shifts named in a model card and the importances table (the biggest moves, by importance change).
SHIFTS_SHOWN = 3


def biggest_shifts(changes: Sequence[Mapping[str, Any]], n: int = SHIFTS_SHOWN) -> list[dict[str, Any]]:
    """What changed in what the model relies on: the ``n`` features of :func:`ranking_changes` whose
    importance moved most against the champion's, each with its rank move (empty without a champion)."""
    compared = [row for row in changes if row.get("champion_importance") is not None]
    moved = sorted(
        compared,
        key=lambda row: (-abs(row["importance"] - row["champion_importance"]), row["feature"]),
    )
    return [
        {
            "feature": row["feature"],
            "change": round(row["importance"] - row["champion_importance"], 6),
            "rank": row["rank"],
            "champion_rank": row.get("champion_rank"),
            "text": (
                f"{row['feature']}: importance {row['champion_importance']:.4f} -> {row['importance']:.4f} "
                f"({row['importance'] - row['champion_importance']:+.4f}), rank "
                f"{row.get('champion_rank')} -> {row['rank']}"
            ),
        }
        for row in moved[:n]
    ]


def top(importances: Mapping[str, float], n: int = TAG_TOP) -> dict[str, float]:
    return dict(list(importances.items())[:n])
