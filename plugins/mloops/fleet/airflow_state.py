"""What only the Airflow database knows, read by the web app in the API server: two queries per page.

Tasks cannot reach the metadata database in Airflow 3, so the snapshot the stages write holds no
run states; the API server can, and joins them in at read time: the latest run of every mloops DAG
and the approvals still waiting for a person.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from airflow.models.dagrun import DagRun
from airflow.models.hitl import HITLDetail
from airflow.models.taskinstance import TaskInstance

PREFIXES = ("mloops_train_", "mloops_score_", "mloops_monitor_")


def latest_runs(session: Any, dag_prefix: str = "mloops_") -> dict[str, dict[str, Any]]:
    """``{dag_id: {run_id, state, run_after, run_type}}`` of the newest run of each mloops DAG."""
    newest = (
        sa.select(DagRun.dag_id, sa.func.max(DagRun.run_after).label("run_after"))
        .where(DagRun.dag_id.like(f"{dag_prefix}%"))
        .group_by(DagRun.dag_id)
        .subquery()
    )
    query = sa.select(DagRun.dag_id, DagRun.run_id, DagRun.state, DagRun.run_after, DagRun.run_type).join(
        newest, sa.and_(DagRun.dag_id == newest.c.dag_id, DagRun.run_after == newest.c.run_after)
    )
    return {
        row.dag_id: {
            "run_id": row.run_id,
            "state": str(row.state),
            "run_after": row.run_after.isoformat(),
            "run_type": str(getattr(row.run_type, "value", row.run_type)),
        }
        for row in session.execute(query)
    }


def runs_of(session: Any, dag_ids: list[str], limit: int = 20) -> list[dict[str, Any]]:
    """The newest runs of a few DAGs (the model page)."""
    query = (
        sa.select(DagRun.dag_id, DagRun.run_id, DagRun.state, DagRun.run_after, DagRun.run_type)
        .where(DagRun.dag_id.in_(dag_ids))
        .order_by(DagRun.run_after.desc())
        .limit(limit)
    )
    return [
        {
            "dag_id": r.dag_id,
            "run_id": r.run_id,
            "state": str(r.state),
            "run_after": r.run_after.isoformat(),
            "run_type": str(getattr(r.run_type, "value", r.run_type)),
        }
        for r in session.execute(query)
    ]


def pending_approvals(session: Any) -> dict[str, list[dict[str, Any]]]:
    """``{model: [{dag_id, run_id, task_id, subject, since, assignees}]}`` of unanswered approvals."""
    query = (
        sa.select(
            TaskInstance.dag_id,
            TaskInstance.run_id,
            TaskInstance.task_id,
            HITLDetail.subject,
            HITLDetail.created_at,
            HITLDetail.assignees,
        )
        .join(TaskInstance, TaskInstance.id == HITLDetail.ti_id)
        .where(HITLDetail.responded_at.is_(None), TaskInstance.dag_id.like("mloops_train_%"))
        .order_by(HITLDetail.created_at)
    )
    found: dict[str, list[dict[str, Any]]] = {}
    for row in session.execute(query):
        model = row.dag_id.removeprefix("mloops_train_")
        who = [a.get("name") or a.get("id") for a in (row.assignees or [])] or ["any user with access"]
        found.setdefault(model, []).append(
            {
                "dag_id": row.dag_id,
                "run_id": row.run_id,
                "task_id": row.task_id,
                "subject": row.subject,
                "since": row.created_at.isoformat(),
                "assignees": who,
            }
        )
    return found
