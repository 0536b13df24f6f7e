"""Build one DAG per model config. Imported by DAG files at parse time: Airflow SDK and config only.

A broken config file does not take the other models down: its error is attached to a placeholder
DAG whose ``validate()`` raises, so the DAG processor records it as an import error of the DAG
file (naming the YAML file and the field) and still bags every valid model's DAG.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path

from airflow.sdk import DAG, Param

from mloops.config import ModelConfig, load_model_configs
from mloops.errors import ModelConfigError
from mloops.operators import (
    GXValidateBatchOperator,
    MLflowPromoteModelOperator,
    MLflowRegisterModelOperator,
    MLflowTestModelOperator,
    MLflowTrainModelOperator,
)
from mloops.settings import get_settings

TRAINING_DAG_PREFIX = "mloops_train_"


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


def training_params(config: ModelConfig) -> dict[str, Param]:
    """The trigger form of a training DAG."""
    return {
        "partition_date": Param(
            None,
            type=["null", "string"],
            format="date",
            title="Partition date",
            description="Train on the window ending at this date (YYYY-MM-DD). Empty: the run's data interval.",
        ),
        "promotion_mode": Param(
            None,
            type=["null", "string"],
            enum=[None, "auto", "approval", "none"],
            title="Promotion mode",
            description=f"Override the promotion policy of this run. Empty: the config's ({config.promotion.policy}).",
        ),
        "estimator_overrides": Param(
            {},
            type="object",
            title="Estimator parameter overrides",
            description=f"Parameters of {config.training.estimator.class_path} replacing the config's, "
            'e.g. {"max_depth": 6}. Checked against the estimator before training.',
        ),
        "reason": Param(
            "",
            type="string",
            maxLength=500,
            title="Reason",
            description="Why this run was started by hand; recorded on the MLflow run.",
        ),
    }


def build_training_dag(config: ModelConfig) -> DAG:
    """``mloops_train_<model>``: validate_batch >> train_model >> test_model >> register_model >> promote_model."""
    from airflow.sdk import CronDataIntervalTimetable

    settings = get_settings()
    schedule = CronDataIntervalTimetable(config.schedule.cron, timezone=config.schedule.timezone)
    doc = (
        f"### Nightly training of `{config.name}`\n\n{config.description}\n\n"
        f"Config: `{Path(config.source_file or '').name}`. Window: {config.training.window_days} daily partitions; "
        f"estimator `{config.training.estimator.class_path}`; gate metric `{config.evaluation.primary_metric}`; "
        f"promotion `{config.promotion.policy}`. Registered model: `{config.registered_model_name}`."
    )
    with DAG(
        dag_id=f"{TRAINING_DAG_PREFIX}{config.name}",
        description=f"Validate, train, test, register and promote {config.name}",
        doc_md=doc,
        schedule=schedule,
        start_date=dt.datetime.combine(config.schedule.start_date, dt.time(), tzinfo=dt.UTC),
        catchup=False,
        max_active_runs=1,
        render_template_as_native_obj=True,
        dagrun_timeout=dt.timedelta(hours=6),
        tags=["mloops", "training", f"model:{config.name}", *config.tags],
        params=training_params(config),
        default_args={
            "owner": config.owner,
            "retries": 1,
            "retry_delay": dt.timedelta(minutes=2),
            "execution_timeout": dt.timedelta(hours=2),
        },
    ) as dag:
        validate = GXValidateBatchOperator(task_id="validate_batch", model=config.name, retries=0)
        train = MLflowTrainModelOperator(
            task_id="train_model",
            model=config.name,
            estimator_overrides="{{ params.estimator_overrides }}",
        )
        test = MLflowTestModelOperator(task_id="test_model", model=config.name, retries=0)
        register = MLflowRegisterModelOperator(task_id="register_model", model=config.name, pool=settings.registry_pool)
        promote = MLflowPromoteModelOperator(
            task_id="promote_model",
            model=config.name,
            policy="{{ params.promotion_mode or '' }}",
            pool=settings.registry_pool,
        )
        validate >> train >> test >> register >> promote
    return dag


def build_training_dags(models_dir: str | Path | None = None) -> dict[str, DAG]:
    """Every model's training DAG by dag_id, plus a placeholder carrying config errors, if any."""
    configs, errors = load_model_configs(models_dir or get_settings().models_dir)
    dags = {}
    for config in configs.values():
        dag = build_training_dag(config)
        dags[dag.dag_id] = dag
    if errors:
        dags["mloops_config_errors"] = _errors_dag(errors)
    return dags
