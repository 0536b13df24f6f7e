"""
### mloops drift monitoring (Airflow DAGs generated from model configs)

One DAG per model config (`mloops_monitor_<model>`): `check_drift` (Evidently, against the
champion's training reference) → `trigger_retraining` (emits the model's drift Asset, which
schedules its training DAG).
"""

from mloops.dag_factory import build_dags

globals().update(build_dags("monitoring"))
