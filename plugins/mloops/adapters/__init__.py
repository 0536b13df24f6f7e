"""Adapters: the single seam to Great Expectations, MLflow and Evidently."""
