"""
### mloops nightly training (Airflow DAGs generated from model configs)

One DAG per model config in `include/models/` (`mloops_train_<model>`), on a nightly
data-interval timetable: `validate_batch` (Great Expectations; failing batches quarantined)
→ `train_model` (scikit-learn, tracked in MLflow) → `test_model` (thresholds, champion,
slices, smoke test) → `register_model` → `promote_model` (MLflow aliases).
Add a model by adding a YAML file; no code change.
"""

from mloops.dag_factory import build_training_dags

globals().update(build_training_dags())
