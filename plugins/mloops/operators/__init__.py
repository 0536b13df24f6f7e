"""Thin Airflow operators over :mod:`mloops.stages`; importing them costs no heavy imports."""

from mloops.operators.quality import GXValidateBatchOperator
from mloops.operators.registry import MLflowPromoteModelOperator, MLflowRegisterModelOperator
from mloops.operators.training import MLflowTestModelOperator, MLflowTrainModelOperator

__all__ = [
    "GXValidateBatchOperator",
    "MLflowPromoteModelOperator",
    "MLflowRegisterModelOperator",
    "MLflowTestModelOperator",
    "MLflowTrainModelOperator",
]
