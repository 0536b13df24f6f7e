"""Build one DAG per model config. Imported by DAG files at parse time: Airflow SDK and config only.

A broken config file does not take the other models down: its error is attached to a placeholder
DAG whose ``validate()`` raises, so the DAG processor records it as an import error of the DAG
file (naming the YAML file and the field) and still bags every valid model's DAG.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from airflow.sdk import DAG, Asset, BaseOperator, Param

from mloops.config_files import iter_model_configs, model_names
from mloops.contracts import PromotionPolicy, RegistryAction
from mloops.errors import ModelConfigError
from mloops.operators import (
    CheckRunParamsOperator,
    DriftRetrainTriggerOperator,
    EvidentlyDriftCheckOperator,
    GXValidateBatchOperator,
    LabelFeedJoinOperator,
    MLflowPromoteModelOperator,
    MLflowRegisterModelOperator,
    MLflowRegistryActionOperator,
    MLflowScoreBatchOperator,
    MLflowTestModelOperator,
    MLflowTrainModelOperator,
)
from mloops.operators.approval import approval_operator_class
from mloops.operators.shadow import (
    AutoRollbackOperator,
    MLflowShadowScoreOperator,
    ShadowDecisionOperator,
    ShadowPromoteOperator,
)
from mloops.partitions import DAY, interval_text
from mloops.settings import get_settings

if TYPE_CHECKING:
    from mloops.config import ModelConfig
    from mloops.settings import Settings

TRAINING_DAG_PREFIX = "mloops_train_"
SCORING_DAG_PREFIX = "mloops_score_"
MONITORING_DAG_PREFIX = "mloops_monitor_"


def drift_asset(model: str) -> Asset:
    """Updated when the model's drift policy is breached; its training DAG is scheduled on it."""
    return Asset(name=f"mloops_{model}_drift", uri=f"x-mloops://drift/{model}", group="mloops")


def predictions_asset(model: str) -> Asset:
    """Updated by each nightly scoring run of the model."""
    return Asset(name=f"mloops_{model}_predictions", uri=f"x-mloops://predictions/{model}", group="mloops")


def _default_args(config: ModelConfig) -> dict:
    return {
        "owner": config.owner,
        "retries": 1,
        "retry_delay": dt.timedelta(minutes=2),
        "execution_timeout": dt.timedelta(hours=2),
    }


def _start(config: ModelConfig) -> dt.datetime:
    return dt.datetime.combine(config.schedule.start_date, dt.time(), tzinfo=dt.UTC)


def _end(config: ModelConfig) -> dt.datetime | None:
    end = config.schedule.end_date
    return dt.datetime.combine(end, dt.time(23, 59), tzinfo=dt.UTC) if end else None


def _interval_name(config: ModelConfig) -> str:
    """``daily`` or the interval length (``1h``), as the DAG docs name a model's partitions."""
    return "daily" if config.interval == DAY else interval_text(config.interval)


def _partition_param(config: ModelConfig | None = None) -> Param:
    """The form field of a run's partition: a date for a daily model, a datetime on an interval
    boundary for a sub-daily one (checked by :meth:`Partition.parse` before any work)."""
    if config is not None and config.interval == DAY:
        return Param(
            None,
            type=["null", "string"],
            format="date",
            title="Partition date",
            description="Work on this partition (YYYY-MM-DD). Empty: the run's data interval start.",
        )
    interval = "" if config is None else f" {interval_text(config.interval)}"
    return Param(
        None,
        type=["null", "string"],
        title="Partition",
        description=f"Work on this partition: a date for a daily model, the start of a{interval} interval in "
        "UTC for a sub-daily one (YYYY-MM-DDTHH, e.g. 2026-01-01T13). Empty: the run's data interval start.",
    )


class InvalidModelConfigs(Exception):
    """Raised while bagging :class:`ConfigErrorDAG`; its text is what the UI shows as the import error."""


class ConfigErrorDAG(DAG):
    """Carries config errors to the DAG processor: bagging it fails with the collected messages."""

    def validate(self) -> None:
        raise InvalidModelConfigs(self.description or "invalid model config")


def _errors_dag(errors: Sequence[ModelConfigError]) -> DAG:
    return ConfigErrorDAG(
        dag_id="mloops_config_errors",
        description="\n".join(str(e) for e in errors),
        schedule=None,
        tags=["mloops"],
    )


def _run_policies(config: ModelConfig) -> list[str]:
    """The promotion modes a training run may choose: the shadow ones only for a model whose scoring and
    monitoring DAGs carry the shadow tasks (its configured policy is a shadow policy)."""
    plain = [PromotionPolicy.AUTO.value, PromotionPolicy.APPROVAL.value, PromotionPolicy.NONE.value]
    if PromotionPolicy.shadowed(config.promotion.policy):
        return [*plain, PromotionPolicy.SHADOW.value, PromotionPolicy.SHADOW_THEN_APPROVAL.value]
    return plain


def training_params(config: ModelConfig) -> dict[str, Param]:
    """The trigger form of a training DAG."""
    return {
        "partition_date": _partition_param(config),
        "promotion_mode": Param(
            None,
            type=["null", "string"],
            enum=[None, *_run_policies(config)],
            # The form labels each choice by values_display, keyed by the JSON text of the value.
            values_display={
                "null": f"Config default ({config.promotion.policy})",
                PromotionPolicy.AUTO.value: "auto: promote when the tests pass",
                PromotionPolicy.APPROVAL.value: "approval: a person approves",
                PromotionPolicy.NONE.value: "none: register only",
                PromotionPolicy.SHADOW.value: "shadow: scored beside the champion until live labels decide",
                PromotionPolicy.SHADOW_THEN_APPROVAL.value: "shadow, then a person approves",
            },
            title="Promotion mode",
            description="Override the promotion policy of this run. Empty: the config's "
            f"({config.promotion.policy}).",
        ),
        "estimator_overrides": Param(
            None,
            type=["null", "object"],
            title="Estimator parameter overrides",
            description=f"Parameters of {config.training.estimator.class_path} replacing the config's, "
            'e.g. {"max_depth": 6}. Checked against the estimator before training.',
        ),
        "reason": Param(
            None,
            type=["null", "string"],
            maxLength=500,
            title="Reason",
            description="Why this run was started by hand; recorded on the MLflow run.",
        ),
    }


def build_training_dag(config: ModelConfig, settings: Settings | None = None) -> DAG:
    """``mloops_train_<model>``: validate_batch >> train_model >> test_model >> register_model >>
    promote_model.

    Scheduled nightly on its data-interval timetable, or by the model's drift Asset. ``settings``:
    those in force (read once by :func:`build_dags` for all the models; by default read here).
    """
    from airflow.sdk import AssetOrTimeSchedule, CronDataIntervalTimetable

    settings = settings or get_settings()
    schedule = AssetOrTimeSchedule(
        timetable=CronDataIntervalTimetable(config.schedule.cron, timezone=config.schedule.timezone),
        assets=[drift_asset(config.name)],
    )
    doc = (
        f"### Nightly training of `{config.name}`\n\n{config.description}\n\n"
        f"Config: `{Path(config.source_file or '').name}`. Window: {config.training_window} "
        f"{_interval_name(config)} partitions; "
        f"estimator `{config.training.estimator.class_path}`; gate metric "
        f"`{config.evaluation.primary_metric}`; "
        f"promotion `{config.promotion.policy}`. Registered model: `{config.registered_model_name}`. "
        f"Also runs when monitoring finds drift (Asset `mloops_{config.name}_drift`)."
    )
    with DAG(
        dag_id=f"{TRAINING_DAG_PREFIX}{config.name}",
        description=f"Validate, train, test, register and promote {config.name}",
        doc_md=doc,
        schedule=schedule,
        start_date=_start(config),
        end_date=_end(config),
        catchup=False,
        max_active_runs=1,
        render_template_as_native_obj=True,
        dagrun_timeout=dt.timedelta(hours=6),
        tags=["mloops", "training", f"model:{config.name}", *config.tags],
        params=training_params(config),
        default_args=_default_args(config),
    ) as dag:
        check = CheckRunParamsOperator(task_id="check_params", model=config.name, retries=0)
        validate = GXValidateBatchOperator(task_id="validate_batch", model=config.name, retries=0)
        train = MLflowTrainModelOperator(
            task_id="train_model",
            model=config.name,
            estimator_overrides="{{ params.estimator_overrides }}",
        )
        test = MLflowTestModelOperator(task_id="test_model", model=config.name, retries=0)
        register = MLflowRegisterModelOperator(
            task_id="register_model", model=config.name, pool=settings.registry_pool
        )
        approve = approval_operator_class()(
            task_id="approve_promotion",
            model=config.name,
            policy="{{ params.promotion_mode or '' }}",
            response_timeout=dt.timedelta(hours=config.promotion.approval_timeout_hours),
            assigned_users=[{"id": name, "name": name} for name in config.promotion.approvers] or None,
            execution_timeout=None,
            retries=0,
        )
        promote = MLflowPromoteModelOperator(
            task_id="promote_model",
            model=config.name,
            policy="{{ params.promotion_mode or '' }}",
            pool=settings.registry_pool,
            trigger_rule="none_failed",  # runs after an approval, or when no approval was needed (skipped)
        )
        check >> validate >> train >> test >> register >> approve >> promote
    return dag


def _nightly_dag_args(config: ModelConfig, kind: str, cron: str) -> dict:
    """What the scoring and monitoring DAGs share: a data-interval timetable, one run at a time, the form."""
    from airflow.sdk import CronDataIntervalTimetable

    return {
        "schedule": CronDataIntervalTimetable(cron, timezone=config.schedule.timezone),
        "start_date": _start(config),
        "end_date": _end(config),
        "catchup": False,
        "max_active_runs": 1,
        "dagrun_timeout": dt.timedelta(hours=4),
        "tags": ["mloops", kind, f"model:{config.name}", *config.tags],
        "params": {"partition_date": _partition_param(config)},
        "default_args": _default_args(config),
    }


def build_scoring_dag(config: ModelConfig, settings: Settings | None = None) -> DAG:
    """``mloops_score_<model>``: validate_batch >> score_batch, nightly after training (``settings``: as
    :func:`build_training_dag`'s; none of them changes this DAG)."""
    with DAG(
        dag_id=f"{SCORING_DAG_PREFIX}{config.name}",
        description=f"Score the nightly partition of {config.name} with its champion",
        doc_md=(
            f"### Nightly scoring of `{config.name}`\n\nLoads `{config.registered_model_name}@champion`, "
            "scores the "
            f"validated partition and writes `predictions/{config.name}/dt=<date>/`. Skips while no "
            "champion exists."
        ),
        **_nightly_dag_args(config, "scoring", config.schedule.scoring_cron),
    ) as dag:
        validate = GXValidateBatchOperator(
            task_id="validate_batch", model=config.name, use="scoring", retries=0
        )
        score = MLflowScoreBatchOperator(
            task_id="score_batch", model=config.name, outlets=[predictions_asset(config.name)]
        )
        validate >> score
        if PromotionPolicy.shadowed(config.promotion.policy):
            validate >> MLflowShadowScoreOperator(task_id="score_shadow", model=config.name)
    return dag


def build_monitoring_dag(config: ModelConfig, settings: Settings | None = None) -> DAG:
    """``mloops_monitor_<model>``: [join_labels >>] check_drift >> trigger_retraining, on the monitoring
    schedule (``join_labels`` only for a model with a ``labels:`` feed; ``settings``: as
    :func:`build_training_dag`'s)."""
    m = config.monitoring
    feed = config.labels
    quality_doc = (
        f"quality on the label feed (joined by `join_labels`, expected {feed.expected_delay_days} day(s) "
        "late) of the rows the champion served"
        if feed
        else f"quality on labels delayed {m.label_delay_days} day(s)"
    )
    with DAG(
        dag_id=f"{MONITORING_DAG_PREFIX}{config.name}",
        description=f"Drift checks of {config.name} (Evidently); drift triggers retraining",
        doc_md=(
            f"### Drift monitoring of `{config.name}`\n\nCompares the last {config.monitoring_window} "
            f"validated, scored {_interval_name(config)} partitions "
            f"with the champion's training reference (fixed-seed samples of at most {m.sample_size:,} rows "
            "per side): "
            f"`{m.numeric_method}` on numeric and `{m.categorical_method}` on categorical features, "
            f"prediction drift, and {quality_doc}. When {m.drift_share:.0%} of features "
            "drift (or "
            f"predictions drift, or quality drops by more than {m.max_quality_drop}), emits Asset "
            f"`mloops_{config.name}_drift`, which starts `mloops_train_{config.name}`."
        ),
        **_nightly_dag_args(config, "monitoring", m.cron),
    ) as dag:
        # With a label feed, a broken delivery must not blind the drift check: it runs on the labels
        # joined so far (the failed join_labels still fails the run).
        check = EvidentlyDriftCheckOperator(
            task_id="check_drift", model=config.name, trigger_rule="all_done" if feed else "all_success"
        )
        trigger = DriftRetrainTriggerOperator(
            task_id="trigger_retraining", model=config.name, outlets=[drift_asset(config.name)], retries=0
        )
        if feed:
            join = LabelFeedJoinOperator(task_id="join_labels", model=config.name)
            join >> check
            _live_promotion_tasks(config, join, (settings or get_settings()).registry_pool)
        check >> trigger
    return dag


def _live_promotion_tasks(config: ModelConfig, join: BaseOperator, pool: str) -> None:
    """After ``join_labels``: ``decide_shadow`` (shadow policies; with ``shadow_then_approval`` followed
    by ``approve_promotion >> promote_shadow``) and ``check_rollback`` (``promotion.auto_rollback``),
    each in the registry ``pool``."""
    promotion = config.promotion
    if PromotionPolicy.shadowed(promotion.policy):
        decide = ShadowDecisionOperator(task_id="decide_shadow", model=config.name, pool=pool)
        join >> decide
        if promotion.policy == PromotionPolicy.SHADOW_THEN_APPROVAL:
            approve = approval_operator_class()(
                task_id="approve_promotion",
                model=config.name,
                policy=PromotionPolicy.APPROVAL.value,
                register_task_id="decide_shadow",
                response_timeout=dt.timedelta(hours=promotion.approval_timeout_hours),
                execution_timeout=None,
                retries=0,
            )
            promote = ShadowPromoteOperator(task_id="promote_shadow", model=config.name, pool=pool)
            decide >> approve >> promote
    if promotion.auto_rollback is not None:
        join >> AutoRollbackOperator(task_id="check_rollback", model=config.name, pool=pool, retries=0)


def build_registry_ops_dag(model_names: list[str]) -> DAG:
    """``mloops_registry_ops``: manual, audited promote / rollback / archive of any model's versions."""
    settings = get_settings()
    names = sorted(model_names) or ["none"]
    with DAG(
        dag_id="mloops_registry_ops",
        description="Promote a version, roll back the champion, or archive a version (audited)",
        doc_md=(
            "### Registry operations\n\nManual only. Pick the model and the action in the trigger form:\n\n"
            "* **promote**: the given version becomes `champion`; the old champion becomes `previous`.\n"
            "* **rollback**: `champion` moves to `previous` (and `previous` to the rolled-back version, so "
            "a second "
            "rollback undoes the first).\n* **archive**: the version loses its aliases and is tagged "
            "archived "
            "(never the champion).\n\nA version whose tests failed is refused unless *allow failed tests* "
            "is set. "
            "Every change is tagged on the versions it touches (who, when, why, which run) and recorded as "
            "an event."
        ),
        schedule=None,
        start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
        catchup=False,
        max_active_runs=4,
        dagrun_timeout=dt.timedelta(hours=1),
        render_template_as_native_obj=True,
        tags=["mloops", "operations", "model:*"],
        params={
            "model": Param(names[0], type="string", enum=names, title="Model"),
            "action": Param(
                "promote",
                type="string",
                enum=[a.value for a in RegistryAction],
                title="Action",
                values_display={
                    "promote": "Promote a version to champion",
                    "rollback": "Roll champion back to previous",
                    "archive": "Archive a version",
                },
            ),
            "version": Param(
                None,
                type=["null", "integer"],
                minimum=1,
                title="Version",
                description="The registry version to promote or archive (not used by rollback).",
            ),
            "reason": Param(
                "",
                type="string",
                minLength=5,
                maxLength=1000,
                title="Reason",
                description="Required: every registry change is audited with who, when and why "
                "(at least 5 characters); recorded on the model version.",
            ),
            "allow_failed_tests": Param(
                False,
                type="boolean",
                title="Allow a version that failed its tests",
                description="Audited override.",
            ),
            "partition_date": _partition_param(),
        },
        default_args={"owner": "mloops", "retries": 0, "execution_timeout": dt.timedelta(minutes=30)},
    ) as dag:
        MLflowRegistryActionOperator(
            task_id="apply_registry_action",
            model="{{ params.model }}",
            action="{{ params.action }}",
            version="{{ params.version }}",
            reason="{{ params.reason }}",
            allow_failed_tests="{{ params.allow_failed_tests }}",
            pool=settings.registry_pool,
        )
    return dag


BUILDERS = {"training": build_training_dag, "scoring": build_scoring_dag, "monitoring": build_monitoring_dag}


def build_dags(kind: str, models_dir: str | Path | None = None) -> dict[str, DAG]:
    """Every model's DAG of ``kind`` by dag_id. Config errors are reported once, by the training file."""
    settings = get_settings()  # once per file: read from the environment, they cost half a task each time
    directory = Path(models_dir or settings.models_dir)
    if kind == "operations":  # needs the model names only: no need to parse every config on each parse
        dag = build_registry_ops_dag(model_names(directory))
        return {dag.dag_id: dag}
    dags, errors = {}, []
    for loaded in iter_model_configs(directory, index_dir=settings.home / "cache"):
        if isinstance(loaded, ModelConfigError):
            errors.append(loaded)
        elif kind in BUILDERS:
            dag = BUILDERS[kind](loaded, settings)
            dags[dag.dag_id] = dag
    if errors and kind == "training":
        dags["mloops_config_errors"] = _errors_dag(errors)
    return dags


def build_training_dags(models_dir: str | Path | None = None) -> dict[str, DAG]:
    return build_dags("training", models_dir)
