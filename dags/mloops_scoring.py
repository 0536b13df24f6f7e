"""
### mloops nightly scoring (Airflow DAGs generated from model configs)

One DAG per model config (`mloops_score_<model>`): `validate_batch` → `score_batch` with the
model's `champion` alias; writes a predictions partition and updates the predictions Asset.
"""

from mloops.dag_factory import build_dags

globals().update(build_dags("scoring"))
