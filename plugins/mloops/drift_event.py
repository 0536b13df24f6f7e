"""The drift Asset event: what ``trigger_retraining`` writes into its extra, and what a run started by
one accepts from it.

Whoever may create Asset events (Airflow's REST API, the UI) can start a model's training with an
extra of their own, so a triggered run treats the extra as input, like a trigger form: before any of
it sets the run's partition or goes into MLflow tags, every field is checked for type, size and
meaning, and a bad field refuses the run with an error naming the field, the model and the value.

Oversize values are refused, not cut: mloops' own trigger writes within these limits (it keeps at most
:data:`MAX_REASONS` reasons of at most :data:`MAX_REASON_CHARS` characters, cut with a marker), so an
event over them was not written by mloops. Keys the event has beyond the fields below are ignored and
never copied anywhere.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mloops.contracts import Tag
from mloops.errors import InvalidParamsError, bounded
from mloops.partitions import Partition, in_schedule

if TYPE_CHECKING:
    from mloops.config import ModelConfig

KIND = "drift"
#: Longest partition or version text accepted (``2026-01-01T13:00:00+00:00`` is 25).
MAX_VALUE_CHARS = 64
MAX_REASONS = 10
MAX_REASON_CHARS = 2_000
MAX_URI_CHARS = 2_048
#: MLflow keeps at most 8,000 characters of a tag value and silently cuts a longer one; lineage tags
#: of a drift event stay under this, whole JSON included.
MAX_TAG_CHARS = 5_000
_VERSION = re.compile(r"[1-9][0-9]{0,9}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class DriftEvent:
    """A checked drift event: the window whose drift breached the policy, and what was found."""

    model: str
    partition: Partition
    window_start: Partition
    window_end: Partition
    champion_version: str
    drifted_columns: Mapping[str, float | None]
    share: float
    reasons: tuple[str, ...]
    report_uri: str

    def extra(self) -> dict[str, Any]:
        """The Asset event's extra (JSON): what :func:`parse` reads back."""
        return {
            "kind": KIND,
            "model": self.model,
            "partition_date": self.partition.key,
            "window_start": self.window_start.key,
            "window_end": self.window_end.key,
            "champion_version": self.champion_version,
            "drifted_columns": dict(self.drifted_columns),
            "share": self.share,
            "reasons": list(self.reasons),
            "report_uri": self.report_uri,
        }

    def tags(self) -> dict[str, str]:
        """The lineage tags of a run this event started, each within :data:`MAX_TAG_CHARS`."""
        return {
            Tag.TRIGGER: KIND,
            Tag.DRIFT_WINDOW: f"{self.window_start.key}..{self.window_end.key}",
            Tag.DRIFT_COLUMNS: fitted_columns(self.drifted_columns, MAX_TAG_CHARS),
            Tag.DRIFT_REASONS: bounded("; ".join(self.reasons), MAX_TAG_CHARS),
            Tag.DRIFT_REPORT: self.report_uri,
        }


def latest(extras: Iterable[Any]) -> Mapping[str, Any] | None:
    """The extra of the drift event with the latest window among ``extras`` (an Asset event's extra
    may be anything: only mappings of kind ``drift`` count)."""
    found: Mapping[str, Any] | None = None
    for extra in extras:
        if not isinstance(extra, Mapping) or extra.get("kind") != KIND:
            continue
        if found is None or _order(extra) >= _order(found):
            found = extra
    return found


def _order(extra: Mapping[str, Any]) -> str:
    return str(extra.get("window_end", ""))[:MAX_VALUE_CHARS]


def build(finding: Mapping[str, Any], config: ModelConfig) -> DriftEvent:
    """The event ``trigger_retraining`` emits for a breached drift check (``check_drift``'s result):
    reasons beyond the limits are cut with a marker, so a run it starts never refuses it."""
    reasons = [str(r) for r in finding["reasons"]]
    if len(reasons) > MAX_REASONS:
        reasons = [*reasons[: MAX_REASONS - 1], f"... and {len(reasons) - MAX_REASONS + 1} more reasons"]
    end = Partition.parse(finding["window_end"], config.interval)
    return DriftEvent(
        model=config.name,
        partition=end,
        window_start=Partition.parse(finding["window_start"], config.interval),
        window_end=end,
        champion_version=str(finding["champion_version"]),
        drifted_columns=dict(finding["drifted_columns"]),
        share=float(finding["share"]),
        reasons=tuple(bounded(r, MAX_REASON_CHARS) for r in reasons),
        report_uri=str(finding["report_uri"]),
    )


def parse(extra: Mapping[str, Any], config: ModelConfig, *, report_root: str | None = None) -> DriftEvent:
    """Check the extra of a drift event that started a run of ``config``'s model; every problem is
    named in one :class:`~mloops.errors.InvalidParamsError` (field, model, value).

    ``report_root``, when given, is the URI prefix every drift report of the model lies under (its
    ``monitoring/<model>/`` folder of the data root): a report elsewhere is refused, so a model card
    never links to a place mloops did not write.
    """
    problems: list[str] = []

    def field(name: str, check: Any) -> Any:
        try:
            return check(extra.get(name))
        except ValueError as exc:
            problems.append(f"{name}: {exc}")
            return None

    model = field("model", lambda v: _model(v, config.name))
    partition = field(
        "partition_date",
        lambda v: in_schedule(_short(v), config.interval, config.schedule.start_date),
    )
    start = field("window_start", lambda v: Partition.parse(_short(v), config.interval))
    end = field("window_end", lambda v: Partition.parse(_short(v), config.interval))
    if start is not None and end is not None and start > end:
        problems.append(f"window_start: {start.key} is after window_end {end.key}")
    version = field("champion_version", _champion_version)
    columns = field("drifted_columns", lambda v: _columns(v, config.feature_names))
    share = field("share", _share)
    reasons = field("reasons", _reasons)
    report = field("report_uri", lambda v: _report_uri(v, report_root))
    if problems:
        raise InvalidParamsError(
            f"Invalid drift event for model {config.name!r} (the extra of the Asset event that started "
            "this run; mloops' own trigger never writes these):\n  - " + "\n  - ".join(problems)
        )
    return DriftEvent(model, partition, start, end, version, columns, share, reasons, report)


def fitted_columns(columns: Mapping[str, float | None], limit: int) -> str:
    """``columns`` as JSON of at most ``limit`` characters: the highest scores first, and when some do
    not fit, a ``"..."`` entry saying how many were left out (still valid JSON)."""
    ranked = sorted(columns.items(), key=lambda item: (item[1] is None, -(item[1] or 0.0), item[0]))
    text = json.dumps(dict(ranked))
    if len(text) <= limit:
        return json.dumps(dict(sorted(columns.items())))
    kept: dict[str, Any] = {}
    for count, (name, score) in enumerate(ranked):
        marker = {"...": f"{len(ranked) - count} more drifted columns not shown"}
        if len(json.dumps({**kept, name: score, **marker})) > limit:
            return json.dumps({**kept, **marker})
        kept[name] = score
    return json.dumps(kept)


def _show(value: Any) -> str:
    return bounded(repr(value), 80)


def _short(value: Any) -> Any:
    if isinstance(value, str) and len(value) > MAX_VALUE_CHARS:
        raise ValueError(f"{len(value)} characters is longer than {MAX_VALUE_CHARS}: {_show(value)}")
    if value is None:
        raise ValueError("missing")
    return value


def _model(value: Any, name: str) -> str:
    if value != name:
        raise ValueError(f"{_show(value)} is not this model ({name!r}): the event is for another model")
    return name


def _champion_version(value: Any) -> str:
    text = str(value) if isinstance(value, int) and not isinstance(value, bool) else value
    if not isinstance(text, str) or not _VERSION.fullmatch(text):
        raise ValueError(f"{_show(value)} is not a model version number")
    return text


def _number(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{_show(value)} is not a finite number")
    return float(value)


def _columns(value: Any, features: list[str]) -> dict[str, float | None]:
    if not isinstance(value, Mapping):
        raise ValueError(f"expected an object of feature: score, got {type(value).__name__}")
    if len(value) > len(features):
        raise ValueError(f"{len(value)} columns; model has {len(features)} features")
    unknown = [name for name in value if name not in features]
    if unknown:
        raise ValueError(
            f"{len(unknown)} not a feature of the model: {_show(unknown[:5])} (features: {_show(features)})"
        )
    try:
        return {name: _number(score) for name, score in value.items()}
    except ValueError as exc:
        raise ValueError(f"score {exc}") from None


def _share(value: Any) -> float:
    number = _number(value)
    if number is None or not 0.0 <= number <= 1.0:
        raise ValueError(f"{_show(value)} is not a share between 0 and 1")
    return number


def _reasons(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list | tuple) or not all(isinstance(r, str) for r in value):
        raise ValueError(f"expected a list of texts, got {_show(value)}")
    if len(value) > MAX_REASONS:
        raise ValueError(f"{len(value)} reasons; at most {MAX_REASONS}")
    long = [len(r) for r in value if len(r) > MAX_REASON_CHARS]
    if long:
        raise ValueError(f"a reason of {long[0]} characters; at most {MAX_REASON_CHARS}")
    return tuple(value)


def _report_uri(value: Any, root: str | None) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"expected the URI of the drift report, got {_show(value)}")
    if len(value) > MAX_URI_CHARS:
        raise ValueError(f"{len(value)} characters; at most {MAX_URI_CHARS}")
    if _CONTROL.search(value) or ".." in value.split("/"):
        raise ValueError(f"{_show(value)} has control characters or '..'")
    if root is not None and not value.startswith(root.rstrip("/") + "/"):
        raise ValueError(f"{_show(value)} is not under the model's drift reports {root!r}")
    return value
