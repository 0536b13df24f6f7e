"""
### mloops registry operations (Airflow DAG, manual only)

`mloops_registry_ops`: promote a version to champion, roll champion back to previous, or archive a
version, from the trigger form; every change is audited on the model version.
"""

from mloops.dag_factory import build_dags

globals().update(build_dags("operations"))
