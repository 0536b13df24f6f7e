"""Ground truth from a label feed, as pure logic on DataFrames: check a delivery, join it by id to the
predictions that were served, keep the latest label per id, and measure coverage and lateness.

The stage ``stages/labels.py`` reads and writes the partitions; nothing here does I/O or imports
Airflow. Ids are compared as text (``1``, ``"1"`` are the same id), so a feed typed differently
from the scoring batches still joins.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mloops.contracts import PREDICTION_COLUMN
from mloops.errors import LabelFeedError
from mloops.partitions import Partition

if TYPE_CHECKING:
    import pandas as pd

    from mloops.config import ModelConfig

#: Columns of a joined-labels file (besides the model's id column).
LABEL = "label"
PARTITION = "partition"
VERSION = "model_version"
ARRIVAL = "label_arrival"
LATENESS = "lateness_days"
#: Why a delivered label is in the unmatched file.
REASON = "reason"
NO_PREDICTION = "no prediction in the lookback"
MISSING_ID = "missing id"
BAD_LABEL = "missing or invalid label"


@dataclass(frozen=True)
class Delivery:
    """A label delivery checked for use: one row per id (the last delivered wins), the rows that
    cannot be used (with a reason), and how many duplicates were superseded."""

    labels: pd.DataFrame
    rejected: pd.DataFrame
    duplicates: int
    arrived: int


@dataclass(frozen=True)
class Join:
    """A delivery joined to the lookback's predictions."""

    matched: pd.DataFrame
    unmatched: pd.DataFrame


def _key(series: pd.Series) -> pd.Series:
    return series.astype("string")


def check_delivery(frame: pd.DataFrame, config: ModelConfig, where: str) -> Delivery:
    """Normalize one delivery to ``<id>, label[, event date]``; raise :class:`LabelFeedError` when the
    id or label column is missing (``where`` names the delivery in the message)."""
    import numpy as np
    import pandas as pd

    feed = config.labels
    if feed is None:
        raise LabelFeedError(f"model {config.name!r} has no labels: block")
    id_col, label_col = feed.label_id_column(config), feed.label_column_of(config)
    wanted = [("labels.id_column", id_col), ("labels.label_column", label_col)]
    if feed.event_date_column:
        wanted.append(("labels.event_date_column", feed.event_date_column))
    missing = [f"{field} {name!r}" for field, name in wanted if name not in frame.columns]
    if missing:
        raise LabelFeedError(
            f"model {config.name!r}: label delivery {where} lacks {', '.join(missing)}; "
            f"it has columns {list(map(str, frame.columns))}"
        )
    out = pd.DataFrame({config.id_column or id_col: _key(frame[id_col]).to_numpy()})
    out[LABEL] = _labels(frame[label_col], config.task).to_numpy()
    if feed.event_date_column:
        out["_event_date"] = pd.to_datetime(frame[feed.event_date_column], errors="coerce").dt.date.to_numpy()
    id_name = str(out.columns[0])
    missing_id = out[id_name].isna().to_numpy()
    bad = missing_id | out[LABEL].isna().to_numpy()
    rejected = pd.DataFrame(
        {
            id_name: out.loc[bad, id_name].to_numpy(),
            LABEL: frame[label_col].astype("string").to_numpy()[bad],
            REASON: np.where(missing_id[bad], MISSING_ID, BAD_LABEL),
        }
    )
    usable = out[~bad]
    keys = [id_name, "_event_date"] if feed.event_date_column else [id_name]
    deduplicated = usable.drop_duplicates(subset=keys, keep="last")
    return Delivery(
        labels=deduplicated.reset_index(drop=True),
        rejected=rejected.reset_index(drop=True),
        duplicates=int(len(usable) - len(deduplicated)),
        arrived=int(len(frame)),
    )


def _labels(values: pd.Series, task: str) -> pd.Series:
    """Labels as the metrics read them: 0/1 for classification (``True``/``"1"`` too), floats for
    regression; anything else becomes missing (and is rejected)."""
    import numpy as np
    import pandas as pd

    numbers = pd.to_numeric(values.astype("object").map(_bool_as_int), errors="coerce").astype("float64")
    numbers = numbers.where(np.isfinite(numbers))
    if task == "classification":
        return numbers.where(numbers.isin([0.0, 1.0])).astype("Int64")
    return numbers


def _bool_as_int(value: Any) -> Any:
    return int(value) if isinstance(value, bool) else value


def join(
    delivery: Delivery, predictions: pd.DataFrame, config: ModelConfig, arrival: Partition | dt.date
) -> Join:
    """Join a checked delivery to the served predictions of the lookback (by id, or by id and event
    date); each label joins the newest prediction of its id. ``predictions`` has the id column,
    ``prediction``, ``model_version`` and ``partition`` (the partition key) of each served row."""
    import pandas as pd

    arrival = Partition.of(arrival, config.interval)
    id_name = config.id_column or ""
    labels = delivery.labels
    served = predictions[[id_name, PREDICTION_COLUMN, VERSION, PARTITION]].copy()
    served[id_name] = _key(served[id_name])
    served[VERSION] = served[VERSION].astype("string")
    served[PARTITION] = served[PARTITION].astype("string")
    if config.labels is not None and config.labels.event_date_column:
        served["_event_date"] = pd.to_datetime(served[PARTITION]).dt.date
        keys = [id_name, "_event_date"]
    else:
        keys = [id_name]
    newest = served.sort_values(PARTITION, kind="stable").drop_duplicates(subset=keys, keep="last")
    merged = labels.merge(newest, on=keys, how="left", indicator=True)
    hit = merged["_merge"] == "both"
    matched = merged[hit].drop(columns=["_merge", "_event_date"], errors="ignore")
    matched = matched[[id_name, PARTITION, VERSION, PREDICTION_COLUMN, LABEL]].reset_index(drop=True)
    matched[ARRIVAL] = arrival.key
    late = pd.Timestamp(arrival.start.replace(tzinfo=None)) - pd.to_datetime(matched[PARTITION])
    # Whole days for daily partitions (as always); fractions of a day between sub-daily ones.
    matched[LATENESS] = late.dt.days.astype("int64") if arrival.daily else late / pd.Timedelta(days=1)
    unmatched = merged.loc[~hit, [id_name, LABEL]].assign(**{REASON: NO_PREDICTION})
    unmatched[LABEL] = unmatched[LABEL].astype("string")
    rejected = delivery.rejected[[id_name, LABEL, REASON]]
    return Join(matched=matched, unmatched=pd.concat([unmatched, rejected], ignore_index=True))


def latest_per_id(joined: pd.DataFrame, id_name: str) -> pd.DataFrame:
    """One label per served prediction (id, interval): the latest arrival wins."""
    if joined.empty:
        return joined
    ordered = joined.sort_values(ARRIVAL, kind="stable")
    return ordered.drop_duplicates(subset=[id_name, PARTITION], keep="last").reset_index(drop=True)


def coverage(predictions: int, labeled: pd.DataFrame) -> dict[str, float | None]:
    """Coverage of one interval's predictions: how many got labels, and how late (days)."""
    count = int(len(labeled))
    late = labeled[LATENESS] if count else None
    return {
        "predictions": float(predictions),
        "labeled": float(count),
        "coverage": count / predictions if predictions else None,
        "lateness_median_days": float(late.median()) if late is not None else None,
        "lateness_max_days": float(late.max()) if late is not None else None,
    }
