"""The fleet dashboard: a snapshot of every model's health, served inside the Airflow UI."""
