"""Thin Airflow operators over :mod:`mloops.stages`; importing them costs no heavy imports."""

from mloops.operators.labels import LabelFeedJoinOperator
from mloops.operators.monitoring import DriftRetrainTriggerOperator, EvidentlyDriftCheckOperator
from mloops.operators.params import CheckRunParamsOperator
from mloops.operators.quality import GXValidateBatchOperator
from mloops.operators.registry import MLflowPromoteModelOperator, MLflowRegisterModelOperator
from mloops.operators.registry_actions import MLflowRegistryActionOperator
from mloops.operators.scoring import MLflowScoreBatchOperator
from mloops.operators.shadow import (
    AutoRollbackOperator,
    MLflowShadowScoreOperator,
    ShadowDecisionOperator,
    ShadowPromoteOperator,
)
from mloops.operators.training import MLflowTestModelOperator, MLflowTrainModelOperator

__all__ = [
    "AutoRollbackOperator",
    "MLflowShadowScoreOperator",
    "ShadowDecisionOperator",
    "ShadowPromoteOperator",
    "CheckRunParamsOperator",
    "MLflowRegistryActionOperator",
    "DriftRetrainTriggerOperator",
    "EvidentlyDriftCheckOperator",
    "MLflowScoreBatchOperator",
    "GXValidateBatchOperator",
    "LabelFeedJoinOperator",
    "MLflowPromoteModelOperator",
    "MLflowRegisterModelOperator",
    "MLflowTestModelOperator",
    "MLflowTrainModelOperator",
]
