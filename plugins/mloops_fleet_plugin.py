"""Loaded by Airflow's plugin manager: the mloops fleet dashboard ("Models" in the Airflow UI menu)."""

from mloops.fleet.plugin import MloopsFleetPlugin

__all__ = ["MloopsFleetPlugin"]
