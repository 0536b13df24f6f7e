"""The human approval step before a promotion (policy ``approval``), on Airflow's HITL ApprovalOperator."""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping, Sequence
from typing import Any

from airflow.sdk.exceptions import AirflowSkipException

from mloops.contracts import METRIC_TAG_PREFIX, Alias, EventKind, PromotionPolicy, Tag
from mloops.operators.base import emit_event


def approval_request(
    registered_model: str,
    version: str,
    tags: Mapping[str, str],
    *,
    primary_metric: str,
    champion: tuple[str, Mapping[str, str]] | None,
    timeout_hours: float,
) -> tuple[str, str]:
    """Subject and Markdown body of the Required Actions entry: which version, its test results, its
    metrics against the champion's, where the report is and what Reject (or no answer) does."""
    try:
        checks = json.loads(tags.get(Tag.TESTS, "{}"))
    except ValueError:
        checks = {}
    passed = sum(1 for ok in checks.values() if ok)
    status = tags.get(Tag.TEST_STATUS, "not tested")
    metrics = {
        k.removeprefix(METRIC_TAG_PREFIX): v
        for k, v in sorted(tags.items())
        if k.startswith(METRIC_TAG_PREFIX)
    }
    lines = [
        f"**{registered_model} v{version}**, trained on data to {tags.get(Tag.DATA_INTERVAL, 'unknown')}: "
        f"model tests **{status}** ({passed} of {len(checks)} checks passed).",
        "",
        "| Check | Result |",
        "|---|---|",
        *(f"| {check} | {'pass' if ok else 'FAIL'} |" for check, ok in sorted(checks.items())),
        "",
    ]
    champion_tags = champion[1] if champion else {}
    header = f"| Metric | v{version} |" + (f" champion v{champion[0]} |" if champion else "")
    lines += [header, "|---|---|" + ("---|" if champion else "")]
    for metric, value in metrics.items():
        mark = " (primary)" if metric == primary_metric else ""
        row = f"| {metric}{mark} | {_number(value)} |"
        if champion:
            row += f" {_number(champion_tags.get(METRIC_TAG_PREFIX + metric))} |"
        lines.append(row)
    lines += [
        "",
        f"Current champion: v{champion[0]}."
        if champion
        else "No champion yet: Approve makes this the first.",
        f"Test report: `{tags.get(Tag.TEST_REPORT) or 'none'}`",
        "",
        f"Approve moves the champion alias to v{version}. Reject (or no answer within {timeout_hours:g} h) "
        "keeps the current champion.",
    ]
    return f"Promote {registered_model} v{version} to champion?", "\n".join(lines)


def _number(value: str | None) -> str:
    if value is None:
        return "n/a"
    try:
        return f"{float(value):.4f}"
    except ValueError:
        return value


@functools.cache
def approval_operator_class() -> type:
    """The approval step, built on Airflow's human-in-the-loop ApprovalOperator (standard provider).

    Built on first use (the provider's import stays out of modules that never approve) and once per
    process: a class per DAG would cost each parse a class creation (Airflow wraps its ``__init__``
    and reads its signature) per model, and give each DAG's task a different class.
    """
    from airflow.providers.standard.operators.hitl import ApprovalOperator

    class MLflowPromotionApprovalOperator(ApprovalOperator):
        """Wait for a person to Approve or Reject promoting the registered version (policy ``approval``).

        Skips when the effective policy is not ``approval``. A rejection (or the timeout, which
        defaults to Reject) skips ``promote_model``, leaves the champion untouched and records who
        decided and why on the version and in the events table.

        :param model: model config name (templated).
        :param policy: promotion policy override of the run (templated); default: the config's.
        :param register_task_id: task whose XCom holds the registration result (or the shadow
            decision: an ``action`` other than ``approve`` needs no approval and skips).
        """

        template_fields: Sequence[str] = (*ApprovalOperator.template_fields, "model", "policy")

        def __init__(
            self,
            *,
            model: str,
            policy: str | None = None,
            register_task_id: str = "register_model",
            **kwargs: Any,
        ) -> None:
            from airflow.sdk import Param

            kwargs.pop("params", None)  # DAG-level params reach here through default args; the form is ours
            super().__init__(
                subject=f"Promote a new {model} model to champion?",
                defaults="Reject",
                params={
                    "comment": Param(
                        "", type="string", title="Comment", description="Why (recorded on the version)"
                    )
                },
                **kwargs,
            )
            self.model = model
            self.policy = policy
            self.register_task_id = register_task_id

        def execute(self, context: Any) -> Any:
            from mloops.adapters import mlflow_adapter
            from mloops.config_files import find_model_config
            from mloops.settings import get_settings

            settings = get_settings()
            config = find_model_config(self.model, settings.models_dir)
            policy = str(self.policy or config.promotion.policy)
            if policy != PromotionPolicy.APPROVAL:
                raise AirflowSkipException(f"promotion policy is {policy!r}: no approval needed")
            registered = context["ti"].xcom_pull(task_ids=self.register_task_id)
            if registered.get("action", "approve") != "approve":  # a shadow decision needing no approval
                raise AirflowSkipException(f"no approval needed: {registered.get('reason')}")
            mlflow = mlflow_adapter.client(settings)
            name = config.registered_model_name
            version = mlflow_adapter.get_version(mlflow, name, registered["version"])
            champion = mlflow_adapter.version_by_alias(mlflow, name, Alias.CHAMPION)
            self.subject, self.body = approval_request(
                name,
                str(version.version),
                dict(version.tags),
                primary_metric=config.evaluation.primary_metric,
                champion=None if champion is None else (str(champion.version), dict(champion.tags)),
                timeout_hours=config.promotion.approval_timeout_hours,
            )
            if "action" in registered:
                self.body += f"\n\nShadow on live labels: {registered.get('reason')}"
            return super().execute(context)

        def execute_complete(self, context: Any, event: dict[str, Any]) -> Any:
            # Record first: on Reject the parent skips the downstream tasks by raising, so nothing
            # after ``super().execute_complete`` would run.
            if "error" not in event:
                self.validate_chosen_options(event["chosen_options"])
                self._record(context, event)
            return super().execute_complete(context=context, event=event)

        def _rewrite_card(self, context: Any, config: Any, settings: Any, client: Any, version: str) -> None:
            """The card states the decision (a rejected version is never promoted, so nothing else would
            rewrite it); an approved one is rewritten again by ``promote_model``. Best effort: a card
            that cannot be written now never blocks the decision."""
            from mloops.operators.base import run_partition
            from mloops.stages import registry
            from mloops.stages.layout import RunContext

            try:
                registry.write_model_card(
                    RunContext(config, run_partition(context, config.interval), settings), client, version
                )
            except Exception:  # noqa: BLE001 - logged; the decision is recorded either way
                self.log.warning("model card of v%s not rewritten after the decision", version, exc_info=True)

        def _record(self, context: Any, event: dict[str, Any]) -> None:
            import datetime as dt

            from mloops.adapters import mlflow_adapter
            from mloops.config_files import find_model_config
            from mloops.settings import get_settings

            settings = get_settings()
            config = find_model_config(self.model, settings.models_dir)
            registered = context["ti"].xcom_pull(task_ids=self.register_task_id)
            decision = "approved" if event["chosen_options"][0] == self.APPROVE else "rejected"
            responder = event.get("responded_by_user")
            if isinstance(responder, dict):
                by = responder.get("name") or responder.get("id")
            else:
                by = getattr(responder, "name", None) or (str(responder) if responder else None)
            record = {
                "decision": decision,
                "by": by or "timeout (default: Reject)",
                "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                "comment": (event.get("params_input") or {}).get("comment", ""),
                "timed_out": bool(event.get("timedout")),
                "dag_run": f"{context['dag_run'].dag_id}/{context['dag_run'].run_id}",
            }
            client = mlflow_adapter.client(settings)
            mlflow_adapter.set_version_tags(
                client,
                config.registered_model_name,
                registered["version"],
                {Tag.APPROVAL: json.dumps(record, sort_keys=True)},
            )
            self._rewrite_card(context, config, settings, client, str(registered["version"]))
            emit_event(
                context,
                self.model,
                EventKind.PROMOTION_APPROVED if decision == "approved" else EventKind.PROMOTION_REJECTED,
                f"{config.registered_model_name} v{registered['version']} {decision} by {record['by']}: "
                f"{record['comment']}",
                record,
                length=config.interval,
            )

    return MLflowPromotionApprovalOperator
