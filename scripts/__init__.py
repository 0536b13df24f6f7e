"""Scripts of the local setup (the demo, the local Airflow driver); importable so tests reuse them."""
