"""The names that cross module boundaries, defined once.

MLflow tag keys, verdict statuses, aliases, promotion policies, registry actions, event kinds and
scenario kinds are plain string enums: they compare equal to their text (``Status.PASSED ==
"passed"``), serialize to JSON as that text, and a rename happens here or nowhere. Nothing here
imports anything heavy: DAG files reach this module at parse time. The typed results at the end are
what tasks pass each other through XCom (as plain dicts: :meth:`StageResult.to_xcom`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from enum import StrEnum
from typing import Any, Self


class Status(StrEnum):
    """The verdict of one partition's validation (``staged/<model>/dt=<ds>/verdict.json``)."""

    PASSED = "passed"
    #: Row-level quarantine (``quality.on_failure: quarantine_rows``): the rows that failed row-level
    #: expectations were quarantined, the kept rows are staged and used like a passed batch.
    PASSED_WITH_QUARANTINED_ROWS = "passed_with_quarantined_rows"
    QUARANTINED = "quarantined"
    MISSING = "missing"
    NOT_VALIDATED = "not validated"

    @staticmethod
    def usable(status: object) -> bool:
        """Whether training, scoring and monitoring may read the partition's staged snapshot: every
        reader of a verdict asks this, never ``== PASSED``."""
        return status in (Status.PASSED, Status.PASSED_WITH_QUARANTINED_ROWS)


class OnFailure(StrEnum):
    """What a failing validation quarantines (config ``quality.on_failure``)."""

    QUARANTINE_BATCH = "quarantine_batch"
    QUARANTINE_ROWS = "quarantine_rows"


class Use(StrEnum):
    """What a batch is validated for. The training contract requires the target; the scoring contract
    does not (scoring data arrives unlabeled), and each use keeps its own verdicts and snapshots."""

    TRAINING = "training"
    SCORING = "scoring"


class Alias(StrEnum):
    """Registry aliases: ``challenger`` is the latest tested version, ``champion`` serves,
    ``previous`` is the champion it replaced (the rollback target)."""

    CHALLENGER = "challenger"
    CHAMPION = "champion"
    PREVIOUS = "previous"


class PromotionPolicy(StrEnum):
    AUTO = "auto"
    APPROVAL = "approval"
    NONE = "none"
    #: Staged rollout: a tested challenger is scored beside the champion (never served) until the
    #: label feed covers ``promotion.shadow_intervals`` intervals; then promoted or retired.
    SHADOW = "shadow"
    #: Shadow first; a challenger that passes its shadow then waits for a person's approval.
    SHADOW_THEN_APPROVAL = "shadow_then_approval"

    @staticmethod
    def shadowed(policy: object) -> bool:
        """Whether a tested challenger goes through the shadow stage before it may serve."""
        return policy in (PromotionPolicy.SHADOW, PromotionPolicy.SHADOW_THEN_APPROVAL)


class ShadowStatus(StrEnum):
    """Where a version stands in the shadow stage (tag ``mloops.shadow.status``)."""

    SHADOWING = "shadowing"  # scored nightly beside the champion, never served
    PASSED = "passed"  # no worse than the champion on live labels; waiting for an approval
    PROMOTED = "promoted"
    RETIRED = "retired"  # worse than the champion on live labels: never served
    SUPERSEDED = "superseded"  # a newer tested version took its place in the shadow


class ChampionChange(StrEnum):
    """What promotion does when the champion changed after the challenger was tested against another
    one (config ``promotion.on_champion_change``): compare again on the same holdout, or refuse."""

    RECOMPARE = "recompare"
    REFUSE = "refuse"


class RegistryAction(StrEnum):
    PROMOTE = "promote"
    ROLLBACK = "rollback"
    ARCHIVE = "archive"


class EventKind(StrEnum):
    """What :mod:`mloops.alerts` records and sends."""

    BATCH_QUARANTINED = "batch_quarantined"
    ROWS_QUARANTINED = "rows_quarantined"  # a warning: the batch was used without its bad rows
    BATCH_MISSING = "batch_missing"
    GATE_FAILED = "gate_failed"
    DRIFT_DETECTED = "drift_detected"
    RETRAIN_TRIGGERED = "retrain_triggered"
    MODEL_PROMOTED = "model_promoted"
    MODEL_ROLLED_BACK = "model_rolled_back"
    MODEL_ARCHIVED = "model_archived"
    PROMOTION_APPROVED = "promotion_approved"
    PROMOTION_REJECTED = "promotion_rejected"
    MODEL_REFUSED = "model_refused"
    SHADOW_STARTED = "shadow_started"
    SHADOW_PASSED = "shadow_passed"  # passed its shadow, waiting for an approval
    SHADOW_RETIRED = "shadow_retired"
    PROMOTION_REFUSED = "promotion_refused"  # compare-and-set: the champion changed and the challenger lost


#: The event a registry action records.
EVENT_OF_ACTION: dict[RegistryAction, EventKind] = {
    RegistryAction.PROMOTE: EventKind.MODEL_PROMOTED,
    RegistryAction.ROLLBACK: EventKind.MODEL_ROLLED_BACK,
    RegistryAction.ARCHIVE: EventKind.MODEL_ARCHIVED,
}


class ScenarioKind(StrEnum):
    """Data scenarios of the bundled example generator (config ``source.scenarios[].kind``)."""

    COVARIATE_DRIFT = "covariate_drift"
    CONCEPT_DRIFT = "concept_drift"
    NULL_BURST = "null_burst"
    OUT_OF_RANGE = "out_of_range"
    RENAMED_COLUMN = "renamed_column"
    MISSING_COLUMN = "missing_column"
    DUPLICATE_ROWS = "duplicate_rows"
    EMPTY_PARTITION = "empty_partition"
    MISSING_PARTITION = "missing_partition"


class Tag(StrEnum):
    """MLflow tag keys mloops writes on runs and model versions (and reads back)."""

    # identity of a training run (re-runs with equal values reuse it)
    RUN_KEY = "mloops.run_key"
    DATA_FINGERPRINT = "mloops.data_fingerprint"
    CONFIG_FINGERPRINT = "mloops.config_fingerprint"
    OVERRIDES_FINGERPRINT = "mloops.overrides_fingerprint"
    #: on a run its training process left RUNNING (killed): why mloops ended it
    ORPHAN_ENDED = "mloops.orphan_ended"
    # lineage of a training run
    MODEL = "mloops.model"
    TARGET = "mloops.target"
    DATA_INTERVAL = "mloops.data_interval_start"
    WINDOW = "mloops.window"
    PARTITIONS = "mloops.partitions"
    EXCLUDED_PARTITIONS = "mloops.excluded_partitions"
    VALIDATION = "mloops.validation"
    VALIDATION_DOCS = "mloops.validation_docs"
    QUARANTINED_ROWS = "mloops.quarantined_rows"  # {date: rows left out} of row-level quarantines
    REFERENCE_URI = "mloops.reference_uri"
    MODEL_URI = "mloops.model_uri"
    MODEL_SHA256 = "mloops.model.sha256"  # digest of the logged model.skops, checked before every load
    OVERRIDES = "mloops.overrides"
    REASON = "mloops.reason"
    # what started the run
    TRIGGER = "mloops.trigger"
    DRIFT_WINDOW = "mloops.drift.window"
    DRIFT_COLUMNS = "mloops.drift.columns"
    DRIFT_REASONS = "mloops.drift.reasons"
    DRIFT_REPORT = "mloops.drift.report"
    # model tests (run and version)
    TEST_STATUS = "mloops.test_status"
    TESTS = "mloops.tests"
    TEST_REPORT = "mloops.test_report"
    IMPORTANCES = "mloops.importances"
    COMPARED_WITH = "mloops.compared_with"  # the champion version test_model compared with ("none": none)
    CODE_VERSION = "mloops.code_version"  # git commit of the bundle that trained the run ("unknown")
    MODEL_CARD = "mloops.model_card"  # URI of the version's model card (HTML) under reports/
    # promotion, approval, audit (version)
    PROMOTED_FROM = "mloops.promoted_from"
    PROMOTION_REASON = "mloops.promotion_reason"
    APPROVAL = "mloops.approval"
    PROMOTED_AT = "mloops.promoted_at"
    PROMOTION_POLICY = "mloops.promotion_policy"
    RECOMPARISON = "mloops.recomparison"  # the re-comparison with a champion that changed since the test
    PROMOTION_REFUSED = "mloops.promotion_refused"
    PROMOTION_PENDING = "mloops.promotion.pending"  # intent written before an alias move, then "recorded"
    ARCHIVED = "mloops.archived"
    LAST_ACTION = "mloops.last_action"
    # shadow stage (version): its status, and the evidence of the decision (JSON)
    SHADOW_STATUS = "mloops.shadow.status"
    SHADOW = "mloops.shadow"


#: Prefixes of tag families: ``metric.<name>`` (holdout metrics on a version),
#: ``mloops.promoted_by.<field>`` and ``mloops.audit.<time>.<action>``.
METRIC_TAG_PREFIX = "metric."
PROMOTED_BY_TAG_PREFIX = "mloops.promoted_by."
AUDIT_TAG_PREFIX = "mloops.audit."

#: The lineage key of the DAG run's bundle version (a versioned bundle's git commit), when Airflow has one.
BUNDLE_VERSION = "airflow.bundle_version"

#: The column of a prediction in predictions partitions, references and drift inputs.
PREDICTION_COLUMN = "prediction"

#: The ``model_version`` of metrics that belong to no single version (a label delivery's counts).
ANY_VERSION = "*"

#: Metric families of the metrics store (the first dotted part of a metric's name); each stage
#: replaces only its own families of a (model, version, window).
DRIFT_METRIC_FAMILIES = ("drift", "rows", "policy", "quality")
LABEL_METRIC_FAMILIES = ("labels",)
SHADOW_METRIC_FAMILIES = ("shadow",)


def shadowed_champion(record: Mapping[str, Any]) -> str | None:
    """The champion version a ``mloops.shadow`` record names: ``compared_with`` once a decision ran
    (its ``champion`` then holds the champion's metrics), else the ``champion`` it entered beside."""
    found = record.get("compared_with") or record.get("champion")
    return str(found) if isinstance(found, str | int) else None


class ShadowMetric:
    """``shadow.*`` metrics ``decide_shadow`` records for the challenger over its shadow so far (window:
    shadow start..run date); the live metrics of both versions on the same labeled rows follow the
    prefixes (``shadow.challenger.roc_auc``)."""

    INTERVALS = "shadow.intervals"  # prediction intervals labeled for both versions
    SCORED = "shadow.scored"  # intervals the challenger was scored on in shadow
    ROWS = "shadow.rows"
    CHALLENGER = "shadow.challenger."
    CHAMPION = "shadow.champion."


#: Who an automatic rollback is audited as (the ``by`` of its audit tag).
AUTOMATIC_ACTOR = "mloops (automatic rollback on live quality)"


# ------------------------------------------------------------------------------ results through XCom


@dataclass(frozen=True)
class StageResult:
    """What one task hands the next through XCom: small, JSON-able, references not payloads."""

    def to_xcom(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_xcom(cls, data: Mapping[str, Any]) -> Self:
        """Rebuild from an XCom value; keys the class does not know are ignored (older runs)."""
        names = {f.name for f in fields(cls)}
        return cls(**{key: value for key, value in data.items() if key in names})


@dataclass(frozen=True)
class ValidationResult(StageResult):
    model: str
    partition: str
    status: str
    rows: int = 0
    fingerprint: str | None = None
    uri: str | None = None
    docs_url: str | None = None
    failures: list[dict[str, Any]] = field(default_factory=list)
    quarantine: str | None = None
    also_validated: dict[str, str] = field(default_factory=dict)
    #: Row-level quarantine: the rows staged and the rows quarantined (``rows`` is what arrived).
    rows_kept: int | None = None
    rows_quarantined: int = 0
    message: str | None = None


@dataclass(frozen=True)
class TrainingResult(StageResult):
    model: str
    partition: str
    data_fingerprint: str
    holdout_uri: str
    rows_train: int
    rows_holdout: int
    partitions: list[str]
    excluded: dict[str, str]
    run_id: str
    model_uri: str
    metrics: dict[str, float | None]
    reused: bool
    model_id: str | None = None
    #: The trained model's predictions of the holdout, recorded by the training that fitted it (none
    #: when a finished run was reused: the model tests then predict with the logged model).
    holdout_predictions_uri: str | None = None


@dataclass(frozen=True)
class TestResult(StageResult):
    __test__ = False  # not a pytest test class

    model: str
    partition: str
    passed: bool
    report_uri: str
    checks: dict[str, bool]
    metrics: dict[str, float | None]
    champion_version: str | None = None
    importances: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class RegistrationResult(StageResult):
    model: str
    registered_model: str
    version: str
    reused: bool


@dataclass(frozen=True)
class PromotionResult(StageResult):
    model: str
    action: str
    reason: str
    champion: str | None
    previous: str | None
    version: str


@dataclass(frozen=True)
class ScoringResult(StageResult):
    model: str
    partition: str
    uri: str
    rows: int
    model_version: str
    mean_prediction: float | None


@dataclass(frozen=True)
class DriftResult(StageResult):
    model: str
    champion_version: str
    window_start: str
    window_end: str
    partitions: list[str]
    skipped: dict[str, str]
    columns: list[dict[str, Any]]
    share: float
    drifted_columns: dict[str, float | None]
    prediction: dict[str, Any] | None
    quality: dict[str, float | None]
    quality_reference: float | None
    labeled_rows: int
    breached: bool
    reasons: list[str]
    report_uri: str
    report_json_uri: str


@dataclass(frozen=True)
class LabelJoinResult(StageResult):
    """One label delivery joined to the served predictions (``join_labels``).

    ``coverage`` has one entry per (prediction interval, model version) of the lookback:
    predictions, labeled, coverage, lateness median/max in days; ``quality`` the configured metrics
    per version over the monitoring window ending at the arrival date.
    """

    model: str
    arrival: str
    delivered: bool
    source_uri: str
    arrived: int
    matched: int
    unmatched: int
    rejected: int
    duplicates: int
    unmatched_uri: str
    lookback_start: str
    coverage: list[dict[str, Any]]
    quality_window_start: str
    quality: dict[str, dict[str, float | None]]
    labeled_uris: list[str] = field(default_factory=list)
    shadow_labeled_uris: list[str] = field(default_factory=list)
    #: ``{version: card URI}`` of the model cards rewritten with the new live quality.
    model_cards: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RegistryActionResult(StageResult):
    model: str
    action: str
    version: str
    aliases: dict[str, str]
    audit: dict[str, Any]
    from_champion: str | None


@dataclass(frozen=True)
class ShadowScoringResult(StageResult):
    """The challenger's shadow predictions of one interval (``shadow/<model>/dt=<ds>/version=<v>/``)."""

    model: str
    partition: str
    uri: str
    rows: int
    model_version: str
    champion_version: str | None
    mean_prediction: float | None


@dataclass(frozen=True)
class ShadowDecisionResult(StageResult):
    """The shadow decision of one monitoring run (``decide_shadow``). ``action`` is ``promote``,
    ``approve`` (passed, waiting for a person), ``retire`` or ``wait``. ``registered_model``,
    ``version`` and ``reused`` make it readable as a registration by the approval and promotion steps."""

    model: str
    registered_model: str
    version: str
    champion_version: str | None
    action: str
    reason: str
    metric: str
    intervals: list[str]
    rows: int
    challenger: float | None
    champion: float | None
    promotion: dict[str, Any] | None = None
    reused: bool = True


@dataclass(frozen=True)
class RollbackCheckResult(StageResult):
    """The automatic rollback check of one monitoring run (``check_rollback``)."""

    model: str
    action: str
    reason: str
    champion_version: str | None
    previous_version: str | None
    metric: str
    champion: float | None
    previous: float | None
    promoted_on: str | None
    rollback: dict[str, Any] | None = None
