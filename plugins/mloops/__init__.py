"""mloops: nightly data-quality gates, training, model tests, promotion and drift checks for Airflow 3.

The package has three layers. Pure logic (``config``, ``partitions``, ``data``, ``quality``,
``training``, ``evaluation``, ``registry``) imports nothing from Airflow. ``adapters`` is the one seam
to Great Expectations, MLflow and Evidently. ``operators`` and ``dag_factory`` are thin Airflow
wiring. Nothing heavy is imported by this module, so DAG files stay cheap to parse.
"""

__version__ = "0.1.0"
