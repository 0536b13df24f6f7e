"""The model card of a registered version: one document that answers where the model came from, how
it was checked, why it serves and how it has done since.

Pure: :func:`build` reads the plain values MLflow and the stores hold about a version (its tags, its
run's params, metrics, tags and dataset inputs, the model-test report, the importances table, the
live-quality metrics) and returns :class:`Section` blocks; :func:`markdown` and :func:`html_page`
render the same blocks, so the two formats never disagree. Everything shown is escaped, and only
links with a known scheme become links (a tag is data, not markup).
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from mloops.contracts import (
    BUNDLE_VERSION,
    METRIC_TAG_PREFIX,
    PROMOTED_BY_TAG_PREFIX,
    SHADOW_METRIC_FAMILIES,
    Alias,
    ShadowMetric,
    ShadowStatus,
    Tag,
    shadowed_champion,
)

#: Artifact folder of the card on the version's MLflow run, and its file names.
ARTIFACT_PATH = "model_card"
MARKDOWN_FILE = "model_card.md"
HTML_FILE = "model_card.html"
#: The live-quality metric family the label feed writes (``labels.quality.<metric>``).
LIVE_QUALITY_PREFIX = "labels.quality."
#: The metrics of a challenger's shadow (:class:`~mloops.contracts.ShadowMetric`).
SHADOW_PREFIX = f"{SHADOW_METRIC_FAMILIES[0]}."
#: How a version's shadow status reads on its card (a promoted one is read from its aliases).
SHADOW_STATUS_TEXT: dict[str, str] = {
    ShadowStatus.SHADOWING: "challenger in shadow (scored beside the champion, never served)",
    ShadowStatus.PASSED: "passed its shadow, waiting for approval",
    ShadowStatus.RETIRED: "retired after its shadow",
    ShadowStatus.SUPERSEDED: "superseded in shadow by a newer version",
}
#: Link schemes a card turns into links; anything else is shown as text.
LINK_SCHEMES = ("http", "https", "file", "s3", "gs", "abfs", "models", "runs", "mlflow-artifacts")
LIVE_WINDOWS_SHOWN = 10


@dataclass(frozen=True)
class Fact:
    label: str
    value: str
    href: str | None = None


@dataclass(frozen=True)
class Table:
    headers: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


@dataclass(frozen=True)
class Note:
    text: str


Block = Fact | Table | Note


@dataclass(frozen=True)
class Section:
    title: str
    blocks: tuple[Block, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class Card:
    title: str
    summary: str
    sections: tuple[Section, ...]

    def section(self, title: str) -> Section:
        return next(s for s in self.sections if s.title == title)


# ------------------------------------------------------------------------------------------ building


def _json(text: str | None, default: Any) -> Any:
    if not text:
        return default
    try:
        return json.loads(text)
    except ValueError:
        return default


def _number(value: Any) -> str:
    if value is None or value == "":
        return "n/a"
    try:
        return f"{float(value):.4f}"
    except (TypeError, ValueError):
        return str(value)


def status_of(aliases: Sequence[str], tags: Mapping[str, str]) -> str:
    """Where the version stands: champion, previous, refused, rejected, archived or challenger."""
    if Alias.CHAMPION in aliases:
        return "champion"
    if tags.get(Tag.ARCHIVED) == "true":
        return "archived"
    if Alias.PREVIOUS in aliases:
        return "previous champion (the rollback target)"
    if tags.get(Tag.PROMOTION_REFUSED):
        return "promotion refused"
    if _json(tags.get(Tag.APPROVAL), {}).get("decision") == "rejected":
        return "promotion rejected"
    shadow = SHADOW_STATUS_TEXT.get(tags.get(Tag.SHADOW_STATUS, ""))
    if shadow:
        return shadow
    if tags.get(Tag.PROMOTED_FROM):
        return "former champion"
    if Alias.CHALLENGER in aliases:
        return "challenger"
    return "registered"


def _data(run_tags: Mapping[str, str], datasets: Sequence[Mapping[str, Any]]) -> Section:
    excluded = _json(run_tags.get(Tag.EXCLUDED_PARTITIONS), {})
    quarantined = _json(run_tags.get(Tag.QUARANTINED_ROWS), {})
    blocks: list[Block] = [
        Fact("Data interval", run_tags.get(Tag.DATA_INTERVAL, "unknown")),
        Fact("Window", run_tags.get(Tag.WINDOW, "unknown")),
        Fact("Partitions", run_tags.get(Tag.PARTITIONS, "") or "none"),
        Fact("Excluded partitions", ", ".join(f"{d} ({s})" for d, s in sorted(excluded.items())) or "none"),
        Fact("Data fingerprint", run_tags.get(Tag.DATA_FINGERPRINT, "unknown")),
    ]
    if quarantined:
        blocks.append(Fact("Rows left out", ", ".join(f"{d}: {n}" for d, n in sorted(quarantined.items()))))
    if datasets:
        blocks.append(
            Table(
                ("Input", "Dataset", "Rows", "Digest", "Source"),
                tuple(
                    (
                        str(d.get("context", "")),
                        str(d.get("name", "")),
                        "" if d.get("rows") is None else str(d["rows"]),
                        str(d.get("digest", "")),
                        str(d.get("source", "")),
                    )
                    for d in datasets
                ),
            )
        )
    return Section("Trained on", tuple(blocks))


def _validation(run_tags: Mapping[str, str]) -> Section:
    verdicts = _json(run_tags.get(Tag.VALIDATION), {})
    docs = run_tags.get(Tag.VALIDATION_DOCS) or None
    blocks: list[Block] = [
        Table(("Partition", "Validation"), tuple((d, str(s)) for d, s in sorted(verdicts.items())))
        if verdicts
        else Note("No validation verdicts recorded on the run."),
    ]
    blocks.append(Fact("Great Expectations Data Docs", docs or "none", docs))
    return Section("Validated by", tuple(blocks))


def _code(run_tags: Mapping[str, str], params: Mapping[str, str]) -> Section:
    dag_run = "/".join(filter(None, (run_tags.get("airflow.dag_id"), run_tags.get("airflow.run_id"))))
    blocks: list[Block] = [
        Fact("Code (git commit of the bundle)", run_tags.get(Tag.CODE_VERSION, "unknown")),
        Fact("DAG run", dag_run or "unknown"),
        Fact("Run type", run_tags.get("airflow.run_type") or "unknown"),
    ]
    if run_tags.get(BUNDLE_VERSION):
        blocks.append(Fact("Bundle version", run_tags[BUNDLE_VERSION]))
    if run_tags.get(Tag.TRIGGER):
        reasons = run_tags.get(Tag.DRIFT_REASONS) or ""
        report = run_tags.get(Tag.DRIFT_REPORT) or None
        blocks.append(Fact("Triggered by", f"{run_tags[Tag.TRIGGER]}: {reasons}".strip(": "), report))
    if run_tags.get(Tag.REASON):
        blocks.append(Fact("Reason given", run_tags[Tag.REASON]))
    blocks.append(Fact("Estimator", params.get("estimator", "unknown")))
    settings = {k: v for k, v in sorted(params.items()) if k != "estimator"}
    if settings:
        blocks.append(Table(("Parameter", "Value"), tuple((k, str(v)) for k, v in settings.items())))
    return Section("Built by", tuple(blocks))


def _tests(version_tags: Mapping[str, str], report: Mapping[str, Any] | None, primary_metric: str) -> Section:
    status = version_tags.get(Tag.TEST_STATUS, "not tested")
    blocks: list[Block] = [Fact("Result", status)]
    checks = (report or {}).get("checks") or []
    if checks:
        blocks.append(
            Table(
                ("Gate", "Value", "Comparator", "Threshold", "Result", "Detail"),
                tuple(
                    (
                        str(c.get("name", "")),
                        _number(c.get("value")),
                        str(c.get("comparator", "")),
                        "" if c.get("threshold") is None else _number(c.get("threshold")),
                        "pass" if c.get("passed") else "FAIL",
                        str(c.get("detail", "")),
                    )
                    for c in checks
                ),
            )
        )
    else:
        outcome = _json(version_tags.get(Tag.TESTS), {})
        blocks.append(
            Table(
                ("Gate", "Result"), tuple((k, "pass" if ok else "FAIL") for k, ok in sorted(outcome.items()))
            )
        )
    compared = version_tags.get(Tag.COMPARED_WITH)
    if compared:
        blocks.append(
            Fact(
                "Compared with", "no champion (bootstrap)" if compared == "none" else f"champion v{compared}"
            )
        )
    metrics = {
        k.removeprefix(METRIC_TAG_PREFIX): v
        for k, v in sorted(version_tags.items())
        if k.startswith(METRIC_TAG_PREFIX)
    }
    if metrics:
        blocks.append(
            Table(
                ("Holdout metric", "Value"),
                tuple(
                    (f"{k} (primary)" if k == primary_metric else k, _number(v)) for k, v in metrics.items()
                ),
            )
        )
    report_uri = version_tags.get(Tag.TEST_REPORT) or None
    blocks.append(Fact("Test report", report_uri or "none", report_uri))
    return Section("Tested", tuple(blocks))


def _explained(importances: Mapping[str, Any] | None, version_tags: Mapping[str, str]) -> Section:
    if not importances or not importances.get("features"):
        top = _json(version_tags.get(Tag.IMPORTANCES), {})
        if not top:
            return Section("Explained", (Note("No importances recorded for this version."),))
        rows = tuple((str(i + 1), name, _number(v)) for i, (name, v) in enumerate(top.items()))
        return Section("Explained", (Table(("Rank", "Feature", "Importance"), rows),))
    champion = importances.get("champion_version")
    blocks: list[Block] = [
        Note(
            f"Permutation importance on {importances.get('rows', '?')} holdout rows "
            f"({importances.get('repeats', '?')} shuffles per feature): the mean drop of "
            f"{importances.get('metric', 'the primary metric')} when a feature is shuffled."
        ),
        Table(
            (
                "Rank",
                "Feature",
                "Importance",
                f"Champion v{champion} rank" if champion else "Champion rank",
                "Champion importance",
            ),
            tuple(
                (
                    str(row.get("rank", "")),
                    str(row.get("feature", "")),
                    _number(row.get("importance")),
                    "" if row.get("champion_rank") is None else str(row["champion_rank"]),
                    "" if row.get("champion_importance") is None else _number(row["champion_importance"]),
                )
                for row in importances["features"]
            ),
        ),
    ]
    shifts = importances.get("shifts") or []
    if champion and shifts:
        blocks.append(Note(f"What changed in what the model relies on, against champion v{champion}:"))
        blocks.append(Table(("Biggest shifts",), tuple((str(s.get("text", "")),) for s in shifts)))
    elif not champion:
        blocks.append(Note("No champion to compare with when it was tested."))
    return Section("Explained", tuple(blocks))


def _promotion(aliases: Sequence[str], tags: Mapping[str, str], policy: str) -> Section:
    blocks: list[Block] = [
        Fact("Status", status_of(aliases, tags)),
        Fact("Promotion policy", tags.get(Tag.PROMOTION_POLICY, policy)),
    ]
    approval = _json(tags.get(Tag.APPROVAL), None)
    if approval:
        blocks.append(
            Fact(
                "Approval",
                f"{approval.get('decision')} by {approval.get('by')} at {approval.get('at')}"
                + (f": {approval['comment']}" if approval.get("comment") else ""),
            )
        )
    if tags.get(Tag.PROMOTED_FROM):
        by = {
            k.removeprefix(PROMOTED_BY_TAG_PREFIX): v
            for k, v in tags.items()
            if k.startswith(PROMOTED_BY_TAG_PREFIX)
        }
        run = "/".join(filter(None, (by.get("dag_id"), by.get("run_id"))))
        blocks += [
            Fact("Promoted at", tags.get(Tag.PROMOTED_AT, "unknown")),
            Fact("Promoted by", f"{run} ({by.get('run_type', 'unknown')} run)" if run else "unknown"),
            Fact(
                "Replaced",
                "no champion" if tags[Tag.PROMOTED_FROM] == "none" else f"v{tags[Tag.PROMOTED_FROM]}",
            ),
            Fact("Why", tags.get(Tag.PROMOTION_REASON, "")),
        ]
    blocks += _shadow(tags)
    refused = _json(tags.get(Tag.PROMOTION_REFUSED), None)
    if refused:
        blocks += [
            Fact("Refused at", str(refused.get("at", ""))),
            Fact("Why refused", str(refused.get("reason", ""))),
        ]
    recomparison = _json(tags.get(Tag.RECOMPARISON), None)
    if recomparison:
        blocks.append(
            Fact(
                "Re-compared with",
                f"champion v{recomparison.get('champion')}: {_number(recomparison.get('value'))} "
                f"{recomparison.get('comparator')} {_number(recomparison.get('threshold'))} "
                f"({'pass' if recomparison.get('passed') else 'FAIL'}; {recomparison.get('detail', '')})",
            )
        )
    audits = sorted(
        (_json(v, {}) for k, v in tags.items() if k.startswith("mloops.audit.")),
        key=lambda a: str(a.get("at", "")),
    )
    if audits:
        blocks.append(
            Table(
                ("Registry action", "By", "At", "Why", "DAG run"),
                tuple(
                    (
                        str(a.get("action", "")),
                        str(a.get("by", "")),
                        str(a.get("at", "")),
                        str(a.get("why", "")),
                        str(a.get("dag_run", "")),
                    )
                    for a in audits
                ),
            )
        )
    return Section("Promotion", tuple(blocks))


def _shadow(tags: Mapping[str, str]) -> list[Block]:
    """The version's shadow stage, from its ``mloops.shadow`` record (nothing if it never was in one)."""
    state = _json(tags.get(Tag.SHADOW), None)
    if not isinstance(state, dict) or not state:
        return []
    status = tags.get(Tag.SHADOW_STATUS) or state.get("status") or "unknown"
    blocks: list[Block] = [
        Fact(
            "Shadow",
            f"{status} (in shadow from {state.get('since', '?')} beside champion "
            f"v{shadowed_champion(state) or '?'}, last judged on {state.get('at_interval', '?')})",
        )
    ]
    if "intervals_labeled" in state:
        blocks.append(
            Fact(
                "Shadow evidence",
                f"labels cover {len(state.get('intervals_labeled') or [])} of the "
                f"{state.get('intervals', '?')} intervals needed, {state.get('rows', 0)} rows labeled for "
                f"both versions; scored on {state.get('intervals_scored', '?')} of at most "
                f"{state.get('max_intervals', '?')} intervals",
            )
        )
    if state.get("reason"):
        blocks.append(Fact("Shadow decision", str(state["reason"])))
    return blocks


def _windows(rows: Sequence[Mapping[str, Any]], prefix: str) -> dict[tuple[str, str], dict[str, Any]]:
    """``{(window start, end): {metric without prefix: value}}`` of the rows named ``prefix...``."""
    windows: dict[tuple[str, str], dict[str, Any]] = {}
    for row in rows:
        name = str(row["metric"])
        if name.startswith(prefix):
            key = (str(row["window_start"])[:10], str(row["window_end"])[:10])
            windows.setdefault(key, {})[name.removeprefix(prefix)] = row.get("value")
    return windows


def _live(rows: Sequence[Mapping[str, Any]]) -> Section:
    blocks: list[Block] = []
    windows = _windows(rows, LIVE_QUALITY_PREFIX)
    if windows:
        names = sorted({m for w in windows.values() for m in w})
        shown = sorted(windows)[-LIVE_WINDOWS_SHOWN:]
        blocks += [
            Note(
                "On the label feed's labels of the rows this version served "
                "(metrics store, labels.quality.*)."
            ),
            Table(
                ("Window", *names),
                tuple((f"{s}..{e}", *(_number(windows[(s, e)].get(m)) for m in names)) for s, e in shown),
            ),
        ]
    blocks += _shadow_quality(rows)
    if not blocks:
        blocks.append(Note("No labeled predictions of this version yet."))
    return Section("Live quality since", tuple(blocks))


def _shadow_quality(rows: Sequence[Mapping[str, Any]]) -> list[Block]:
    """The shadow's windows: intervals and rows labeled for both versions, and each metric of this
    version vs the champion's on those rows."""
    windows = _windows(rows, "")
    shadowed = sorted(w for w, values in windows.items() if ShadowMetric.INTERVALS in values)
    if not shadowed:
        return []
    names = sorted(
        {
            k.removeprefix(ShadowMetric.CHALLENGER)
            for w in shadowed
            for k in windows[w]
            if k.startswith(ShadowMetric.CHALLENGER)
        }
    )

    def versus(values: Mapping[str, Any], name: str) -> str:
        mine, theirs = values.get(ShadowMetric.CHALLENGER + name), values.get(ShadowMetric.CHAMPION + name)
        return f"{_number(mine)} vs {_number(theirs)}"

    return [
        Note(
            "In shadow (never served): this version against the champion on the same labeled rows over the "
            "shadow so far (metrics store, shadow.*); each cell reads this version vs the champion."
        ),
        Table(
            ("Window", "Intervals labeled", "Rows", *names),
            tuple(
                (
                    f"{s}..{e}",
                    _count(windows[(s, e)].get(ShadowMetric.INTERVALS)),
                    _count(windows[(s, e)].get(ShadowMetric.ROWS)),
                    *(versus(windows[(s, e)], m) for m in names),
                )
                for s, e in shadowed[-LIVE_WINDOWS_SHOWN:]
            ),
        ),
    ]


def _count(value: Any) -> str:
    return "n/a" if value is None else str(int(float(value)))


def build(
    *,
    registered_model: str,
    version: str,
    aliases: Sequence[str],
    version_tags: Mapping[str, str],
    run_id: str | None,
    run_tags: Mapping[str, str],
    params: Mapping[str, str],
    datasets: Sequence[Mapping[str, Any]],
    report: Mapping[str, Any] | None,
    importances: Mapping[str, Any] | None,
    live_quality: Sequence[Mapping[str, Any]],
    primary_metric: str,
    policy: str,
    written_at: str,
) -> Card:
    """The card of ``registered_model`` v``version`` from what the registry, its run and the stores hold."""
    status = status_of(aliases, version_tags)
    return Card(
        title=f"Model card: {registered_model} v{version}",
        summary=(
            f"{registered_model} v{version} ({status}; aliases: {', '.join(sorted(aliases)) or 'none'}), "
            f"MLflow run {run_id or 'unknown'}. Written {written_at}."
        ),
        sections=(
            _data(run_tags, datasets),
            _validation(run_tags),
            _code(run_tags, params),
            _tests(version_tags, report, primary_metric),
            _explained(importances, version_tags),
            _promotion(aliases, version_tags, policy),
            _live(live_quality),
        ),
    )


# ----------------------------------------------------------------------------------------- rendering


def safe_href(href: str | None) -> str | None:
    """``href`` when it is a link with a known scheme (or a path), else ``None`` (shown as text)."""
    if not href:
        return None
    scheme = urlsplit(href).scheme.lower()
    if scheme in LINK_SCHEMES or (not scheme and href.startswith("/")):
        return href
    return None


def _md(text: str) -> str:
    return " ".join(str(text).split()).replace("\\", "\\\\").replace("|", "\\|").replace("<", "&lt;")


def _md_link(fact: Fact) -> str:
    href = safe_href(fact.href)
    if href is None:
        return _md(fact.value)
    text = _md(fact.value).replace("[", "\\[").replace("]", "\\]")
    return f"[{text}](<{href.replace('>', '%3E')}>)"


def markdown(card: Card) -> str:
    lines = [f"# {_md(card.title)}", "", _md(card.summary), ""]
    for section in card.sections:
        lines += [f"## {_md(section.title)}", ""]
        previous: Block | None = None
        for block in section.blocks:
            if isinstance(block, Fact):
                lines.append(f"- **{_md(block.label)}:** {_md_link(block)}")
            else:
                if isinstance(previous, Fact):
                    lines.append("")
                if isinstance(block, Note):
                    lines += [_md(block.text), ""]
                else:
                    lines.append("| " + " | ".join(_md(h) for h in block.headers) + " |")
                    lines.append("|" + "---|" * len(block.headers))
                    lines += ["| " + " | ".join(_md(c) for c in row) + " |" for row in block.rows]
                    lines.append("")
            previous = block
        if isinstance(previous, Fact):
            lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def _h(text: str) -> str:
    return html.escape(str(text), quote=True)


def _html_fact(fact: Fact) -> str:
    href = safe_href(fact.href)
    value = f'<a href="{_h(href)}">{_h(fact.value)}</a>' if href else _h(fact.value)
    return f"<li><strong>{_h(fact.label)}:</strong> {value}</li>"


STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:70rem;margin:2rem auto;padding:0 1rem;color:#1f2328}"
    "table{border-collapse:collapse;margin:.5rem 0 1rem}td,th{border:1px solid #d0d7de;padding:.25rem .5rem;"
    "text-align:left;vertical-align:top}th{background:#f6f8fa}.muted{color:#59636e}"
)


def html_page(card: Card) -> str:
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{_h(card.title)}</title><style>{STYLE}</style></head><body>",
        f"<h1>{_h(card.title)}</h1>",
        f'<p class="muted">{_h(card.summary)}</p>',
    ]
    for section in card.sections:
        slug = "-".join(section.title.lower().split())
        parts.append(f'<section id="{_h(slug)}"><h2>{_h(section.title)}</h2>')
        facts: list[str] = []
        for block in (*section.blocks, None):
            if isinstance(block, Fact):
                facts.append(_html_fact(block))
                continue
            if facts:
                parts.append("<ul>" + "".join(facts) + "</ul>")
                facts = []
            if isinstance(block, Note):
                parts.append(f"<p>{_h(block.text)}</p>")
            elif isinstance(block, Table):
                head = "".join(f"<th>{_h(h)}</th>" for h in block.headers)
                body = "".join(
                    "<tr>" + "".join(f"<td>{_h(c)}</td>" for c in row) + "</tr>" for row in block.rows
                )
                parts.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
        parts.append("</section>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
