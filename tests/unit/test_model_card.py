"""The model card as a pure function of plain values, its two renderings, and what it explains."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from mloops import bundle, card, explain

pytestmark = pytest.mark.unit

RUN_TAGS = {
    "mloops.data_interval_start": "2026-01-03",
    "mloops.window": "2026-01-02..2026-01-03",
    "mloops.partitions": "2026-01-02,2026-01-03",
    "mloops.excluded_partitions": json.dumps({"2026-01-01": "quarantined"}),
    "mloops.data_fingerprint": "abcd1234abcd1234",
    "mloops.validation": json.dumps({"2026-01-02": "passed", "2026-01-03": "passed_with_quarantined_rows"}),
    "mloops.validation_docs": "file:///docs/churn/validations/x.html",
    "mloops.code_version": "0" * 40,
    "airflow.dag_id": "mloops_train_churn",
    "airflow.run_id": "scheduled__2026-01-04",
    "airflow.run_type": "scheduled",
}
VERSION_TAGS = {
    "mloops.test_status": "passed",
    "mloops.compared_with": "1",
    "metric.roc_auc": "0.812345",
    "metric.f1": "0.5",
    "mloops.test_report": "file:///data/reports/churn/dt=2026-01-03/model_tests.json",
    "mloops.promoted_from": "1",
    "mloops.promotion_reason": "v2 replaces v1",
    "mloops.promoted_at": "2026-01-04T02:10:00+00:00",
    "mloops.promotion_policy": "approval",
    "mloops.promoted_by.dag_id": "mloops_train_churn",
    "mloops.promoted_by.run_id": "scheduled__2026-01-04",
    "mloops.promoted_by.run_type": "scheduled",
    "mloops.approval": json.dumps(
        {
            "decision": "approved",
            "by": "carol",
            "at": "2026-01-04T02:09:00+00:00",
            "comment": "<b>ok</b> | go",
        }
    ),
}
REPORT = {
    "checks": [
        {
            "name": "threshold:roc_auc",
            "value": 0.812345,
            "comparator": ">=",
            "threshold": 0.7,
            "passed": True,
        },
        {
            "name": "champion:roc_auc",
            "value": 0.812345,
            "comparator": ">=",
            "threshold": 0.78,
            "passed": True,
            "detail": "champion v1 scores 0.8100 on the same holdout; tolerance 0.03",
        },
        {
            "name": "smoke:load_and_predict",
            "value": 20.0,
            "comparator": "==",
            "threshold": 20.0,
            "passed": True,
        },
    ]
}
CHANGES = explain.ranking_changes(
    {"tenure_months": 0.08, "contract_type": 0.05, "age": 0.001},
    {"contract_type": 0.07, "tenure_months": 0.02, "age": 0.002},
)
IMPORTANCES = {
    "metric": "roc_auc",
    "rows": 2000,
    "repeats": 3,
    "champion_version": "1",
    "features": CHANGES,
    "shifts": explain.biggest_shifts(CHANGES),
}


def _build(**overrides):
    values = {
        "registered_model": "mloops.churn",
        "version": "2",
        "aliases": ["champion"],
        "version_tags": VERSION_TAGS,
        "run_id": "r1",
        "run_tags": RUN_TAGS,
        "params": {
            "estimator": "sklearn.ensemble.HistGradientBoostingClassifier",
            "estimator.max_iter": "40",
        },
        "datasets": [
            {
                "context": "training",
                "name": "churn-train-2026-01-03",
                "digest": "d1",
                "source": "file:///s",
                "rows": 900,
            },
        ],
        "report": REPORT,
        "importances": IMPORTANCES,
        "live_quality": [
            {
                "metric": "labels.quality.roc_auc",
                "value": 0.79,
                "window_start": "2026-01-04",
                "window_end": "2026-01-06",
            },
            {
                "metric": "labels.coverage",
                "value": 0.9,
                "window_start": "2026-01-04",
                "window_end": "2026-01-04",
            },
        ],
        "primary_metric": "roc_auc",
        "policy": "auto",
        "written_at": "2026-01-04T02:10:01+00:00",
    }
    return card.build(**{**values, **overrides})


def test_the_card_answers_every_question_from_the_values_it_is_given() -> None:
    built = _build()
    assert [s.title for s in built.sections] == [
        "Trained on",
        "Validated by",
        "Built by",
        "Tested",
        "Explained",
        "Promotion",
        "Live quality since",
    ]
    md = card.markdown(built)
    assert "- **Data fingerprint:** abcd1234abcd1234" in md
    assert "- **Excluded partitions:** 2026-01-01 (quarantined)" in md
    assert "| training | churn-train-2026-01-03 | 900 | d1 | file:///s |" in md
    assert "| 2026-01-03 | passed_with_quarantined_rows |" in md
    assert f"- **Code (git commit of the bundle):** {'0' * 40}" in md
    assert "- **DAG run:** mloops_train_churn/scheduled__2026-01-04" in md
    assert "| threshold:roc_auc | 0.8123 | >= | 0.7000 | pass |" in md
    assert "| champion:roc_auc | 0.8123 | >= | 0.7800 | pass | champion v1 scores 0.8100" in md
    assert "| roc_auc (primary) | 0.8123 |" in md and "- **Compared with:** champion v1" in md
    assert "| 1 | tenure_months | 0.0800 | 2 | 0.0200 |" in md
    assert "tenure_months: importance 0.0200 -> 0.0800 (+0.0600), rank 2 -> 1" in md
    assert "- **Promotion policy:** approval" in md and "- **Replaced:** v1" in md
    assert "- **Approval:** approved by carol at 2026-01-04T02:09:00+00:00: &lt;b>ok&lt;/b> \\| go" in md
    assert "| 2026-01-04..2026-01-06 | 0.7900 |" in md and "coverage" not in md.split("Live quality")[1]


@pytest.mark.parametrize(
    ("aliases", "tags", "status"),
    [
        (["champion", "challenger"], {}, "champion"),
        (["previous"], {"mloops.promoted_from": "1"}, "previous champion (the rollback target)"),
        ([], {"mloops.promotion_refused": "{}"}, "promotion refused"),
        ([], {"mloops.approval": json.dumps({"decision": "rejected"})}, "promotion rejected"),
        ([], {"mloops.archived": "true", "mloops.promoted_from": "1"}, "archived"),
        ([], {"mloops.promoted_from": "none"}, "former champion"),
        (["challenger"], {}, "challenger"),
        ([], {}, "registered"),
        (["challenger"], {"mloops.shadow.status": "shadowing"}, "challenger in shadow (scored beside"),
        (["challenger"], {"mloops.shadow.status": "passed"}, "passed its shadow, waiting for approval"),
        (["challenger"], {"mloops.shadow.status": "retired"}, "retired after its shadow"),
        ([], {"mloops.shadow.status": "superseded"}, "superseded in shadow by a newer version"),
        (["champion"], {"mloops.shadow.status": "promoted"}, "champion"),
    ],
)
def test_status_of_a_version(aliases, tags, status) -> None:
    assert card.status_of(aliases, tags).startswith(status)


def test_a_challenger_in_shadow_shows_its_evidence_and_its_shadow_quality() -> None:
    state = {
        "status": "shadowing",
        "since": "2026-01-05",
        "champion": "1",
        "at_interval": "2026-01-06",
        "intervals": 2,
        "intervals_labeled": ["2026-01-05"],
        "intervals_scored": 2,
        "max_intervals": 9,
        "rows": 500,
        "reason": "v2 in shadow: labels cover 1 of the 2 intervals needed (2026-01-05)",
    }
    window = {"window_start": "2026-01-05", "window_end": "2026-01-06"}
    shadow_rows = [
        {**window, "metric": name, "value": value}
        for name, value in (
            ("shadow.intervals", 1.0),
            ("shadow.scored", 2.0),
            ("shadow.rows", 500.0),
            ("shadow.challenger.roc_auc", 0.81),
            ("shadow.champion.roc_auc", 0.74),
        )
    ]
    md = card.markdown(
        _build(
            aliases=["challenger"],
            version_tags={"mloops.shadow.status": "shadowing", "mloops.shadow": json.dumps(state)},
            live_quality=shadow_rows,
        )
    )
    assert "- **Status:** challenger in shadow (scored beside the champion, never served)" in md
    assert (
        "- **Shadow:** shadowing (in shadow from 2026-01-05 beside champion v1, last judged on 2026-01-06)"
    ) in md
    assert (
        "- **Shadow evidence:** labels cover 1 of the 2 intervals needed, 500 rows labeled for both "
        "versions; scored on 2 of at most 9 intervals"
    ) in md
    assert "- **Shadow decision:** v2 in shadow: labels cover 1 of the 2" in md
    # After a decision the record's "champion" holds the champion's metrics; "compared_with" names it.
    decided = {**state, "status": "retired", "compared_with": "1", "champion": {"roc_auc": 0.74}}
    retired = card.markdown(
        _build(
            aliases=[],
            version_tags={"mloops.shadow.status": "retired", "mloops.shadow": json.dumps(decided)},
            live_quality=[],
        )
    )
    assert "- **Shadow:** retired (in shadow from 2026-01-05 beside champion v1, last judged" in retired
    live = md.split("## Live quality since")[1]
    assert "| Window | Intervals labeled | Rows | roc_auc |" in live
    assert "| 2026-01-05..2026-01-06 | 1 | 500 | 0.8100 vs 0.7400 |" in live
    assert "No labeled predictions" not in live


def test_html_escapes_everything_and_links_only_known_schemes() -> None:
    hostile = {
        **RUN_TAGS,
        "mloops.validation_docs": "javascript:alert(1)",
        "mloops.reason": '<script>alert("x")</script>',
    }
    page = card.html_page(_build(run_tags=hostile))
    assert "<script>" not in page and "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page
    assert 'href="javascript:' not in page and "javascript:alert(1)" in page  # shown, not linked
    assert '<a href="file:///data/reports/churn/dt=2026-01-03/model_tests.json">' in page
    assert "&lt;b&gt;ok&lt;/b&gt; | go" in page
    md = card.markdown(_build(run_tags=hostile))
    assert "(<javascript:" not in md and "&lt;script>" in md


def test_a_card_without_a_run_report_or_importances_says_so() -> None:
    built = _build(
        aliases=[],
        run_tags={},
        params={},
        datasets=[],
        report=None,
        importances=None,
        live_quality=[],
        version_tags={"mloops.test_status": "failed", "mloops.tests": json.dumps({"smoke": False})},
    )
    md = card.markdown(built)
    assert "- **Data interval:** unknown" in md and "- **Code (git commit of the bundle):** unknown" in md
    assert "| smoke | FAIL |" in md and "No importances recorded" in md
    assert "No labeled predictions of this version yet." in md and "- **Status:** registered" in md


def test_biggest_shifts_rank_by_importance_change_and_need_a_champion() -> None:
    shifts = explain.biggest_shifts(CHANGES)
    assert [s["feature"] for s in shifts] == ["tenure_months", "contract_type", "age"]
    assert shifts[0]["change"] == pytest.approx(0.06) and (shifts[0]["champion_rank"], shifts[0]["rank"]) == (
        2,
        1,
    )
    assert explain.biggest_shifts(explain.ranking_changes({"a": 0.1}, None)) == []
    assert len(explain.biggest_shifts(CHANGES, n=1)) == 1


def test_bundle_commit_with_bundle_version_checkout_or_unknown(tmp_path: Path) -> None:
    assert bundle.commit(tmp_path, bundle_version="abc123") == "abc123"
    assert bundle.commit(tmp_path) == bundle.UNKNOWN  # not a git checkout
    repo = Path(__file__).resolve().parents[2]
    head = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True)
    if head.returncode == 0:
        assert bundle.commit(repo).split("+")[0] == head.stdout.strip()
