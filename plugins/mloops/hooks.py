"""Stateless hooks: turn an Airflow connection into what the pure layer needs."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd


def read_sql(conn_id: str, query: str) -> pd.DataFrame:
    """Run ``query`` on the connection ``conn_id`` through its provider hook (common-sql ``DbApiHook``)."""
    from airflow.sdk import BaseHook

    hook = BaseHook.get_connection(conn_id).get_hook()
    if not hasattr(hook, "get_df"):
        raise TypeError(f"connection {conn_id!r} ({type(hook).__name__}) is not a SQL connection")
    return hook.get_df(query, df_type="pandas")
