"""Data as it really arrives (issue 13): integer-coded categoricals in CSV, numbers delivered as text,
a renamed column. Each runs the real ``validate_batch`` stage (Great Expectations) on files a
partner dropped under the data root."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from mloops.errors import ValidationFailedError

pytestmark = pytest.mark.integration

DAY = dt.date(2026, 3, 1)


def _survey(allowed: list[Any]) -> dict[str, Any]:
    return {
        "description": "Satisfaction survey delivered as CSV.",
        "task": "classification",
        "target": "left",
        "id_column": "respondent",
        "features": [
            {"name": "score", "type": "categorical", "allowed_values": allowed},
            {"name": "tenure", "type": "numeric", "min": 0, "max": 100},
        ],
        "source": {"kind": "files", "path": "{data_root}/landing/survey/dt={ds}/part.csv", "format": "csv"},
        "quality": {"min_rows": 10, "max_null_fraction": 0.05},
        "training": {
            "window_days": 1,
            "min_rows": 10,
            "estimator": {"class": "sklearn.linear_model.LogisticRegression", "params": {}},
        },
        "evaluation": {"primary_metric": "roc_auc", "thresholds": {"roc_auc": 0.5}},
        "schedule": {"cron": "0 2 * * *", "start_date": "2026-01-01"},
    }


def _land(home: Path, text: str) -> Path:
    path = home / "data" / "landing" / "survey" / f"dt={DAY}" / "part.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _rows(n: int = 60, *, score: str = "score", tenure: Any = None) -> str:
    lines = [f"respondent,{score},tenure,left"]
    for i in range(n):
        lines.append(f"r{i},{1 + i % 3},{tenure if tenure is not None and i % 10 == 0 else i % 50},{i % 2}")
    return "\n".join(lines) + "\n"


def _context(tmp_path: Path, home: Path, allowed: list[Any]):
    import yaml

    from mloops.config_files import load_model_config
    from mloops.settings import get_settings
    from mloops.stages.layout import RunContext

    models = tmp_path / "models"
    models.mkdir(exist_ok=True)
    (models / "survey.yaml").write_text(yaml.safe_dump(_survey(allowed)))
    return RunContext(load_model_config(models / "survey.yaml"), DAY, get_settings())


@pytest.mark.parametrize("allowed", [[1, 2, 3], ["1", "2", "3"]], ids=["numbers", "strings"])
def test_integer_coded_categories_validate_against_numbers_or_text(
    tmp_path: Path, mloops_home: Path, allowed: list[Any]
) -> None:
    from mloops import partitions
    from mloops.stages import validate

    _land(mloops_home, _rows())
    ctx = _context(tmp_path, mloops_home, allowed)
    assert ctx.config.features[0].allowed_values == ("1", "2", "3")
    result = validate.validate_batch(ctx)
    assert result.status == "passed", result
    staged = partitions.read_parquet(partitions.from_uri(result.uri))
    assert sorted(staged["score"].unique()) == ["1", "2", "3"]


def test_text_in_a_numeric_column_is_reported_with_examples(tmp_path: Path, mloops_home: Path) -> None:
    from mloops.stages import validate

    source = _land(mloops_home, _rows(tenure="unknown"))
    original = source.read_bytes()
    with pytest.raises(ValidationFailedError) as failed:
        validate.validate_batch(_context(tmp_path, mloops_home, [1, 2, 3]))
    message = str(failed.value)
    assert "(tenure): observed text in a numeric column: 6 of 60 rows, e.g. ['unknown']" in message, message
    assert source.read_bytes() == original
    quarantined = Path(failed.value.result["quarantine"]) / "part.csv"
    assert quarantined.read_bytes() == original


def test_a_renamed_column_is_reported_once_with_the_rename_hint(tmp_path: Path, mloops_home: Path) -> None:
    from mloops.stages import validate

    _land(mloops_home, _rows(score="scores"))
    with pytest.raises(ValidationFailedError) as failed:
        validate.validate_batch(_context(tmp_path, mloops_home, [1, 2, 3]))
    message = str(failed.value)
    lines = [line for line in message.splitlines() if line.startswith("  - ")]
    about_score = [line for line in lines if "(score)" in line]
    assert len(about_score) == 1, message
    assert "columns not in the contract: ['scores']" in about_score[0]
    assert "'scores' looks like a rename of 'score'" in about_score[0]
    assert "error:" not in message and "list index out of range" not in message
