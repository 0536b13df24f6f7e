"""The GX adapter against a real file-backed GX project: stored suites are reused only while unchanged."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pandas as pd
import pytest

from mloops.adapters import gx_adapter

pytestmark = pytest.mark.unit

DAY = dt.date(2026, 1, 3)
FRAME = pd.DataFrame({"id": range(100), "x": [float(i % 10) for i in range(100)]})
LOOSE = [
    {"type": "expect_column_values_to_be_between", "kwargs": {"column": "x", "min_value": 0, "max_value": 9}}
]
STRICT = [
    {"type": "expect_column_values_to_be_between", "kwargs": {"column": "x", "min_value": 0, "max_value": 5}}
]


def _validate(project: Path, expectations: list[dict], day: dt.date = DAY) -> gx_adapter.ValidationOutcome:
    return gx_adapter.validate_dataframe(
        FRAME, model="m", partition=day, expectations=expectations, project_dir=project
    )


def _stored(project: Path) -> tuple[str, int]:
    import great_expectations as gx

    context = gx.get_context(mode="file", project_root_dir=str(project))
    suite = context.suites.get("m")
    return suite.meta[gx_adapter.FINGERPRINT_KEY], len(suite.expectations)


def test_changed_expectations_replace_the_stored_suite(tmp_path: Path) -> None:
    assert _validate(tmp_path, LOOSE).success
    fingerprint, count = _stored(tmp_path)
    assert count == 1
    suite_files = sorted((tmp_path / "gx" / "expectations").glob("*.json"))
    written = [p.stat().st_mtime_ns for p in suite_files]

    assert _validate(tmp_path, LOOSE, DAY + dt.timedelta(days=1)).success
    assert _stored(tmp_path) == (fingerprint, 1)
    assert [p.stat().st_mtime_ns for p in suite_files] == written, "an unchanged suite is not rewritten"

    strict = _validate(tmp_path, STRICT)
    assert not strict.success and strict.failed == 1, "the new expectations apply at once"
    assert _stored(tmp_path)[0] != fingerprint
    assert _validate(tmp_path, LOOSE).success
    assert _stored(tmp_path) == (fingerprint, 1)
    # One result per partition (re-validating a date overwrites it), kept across suite changes.
    results = sorted(
        p.parent.parent.name for p in (tmp_path / "gx" / "uncommitted" / "validations").rglob("*.json")
    )
    assert results == ["m-2026-01-03", "m-2026-01-04"]
    assert Path(strict.docs_url.removeprefix("file://")).exists()


# ---------------------------------------------------------------- per-column batches vs checkpoint.run

ROWS = 3000
_ids = [f"C{i:05d}" for i in range(ROWS)]
_ids[7] = _ids[8]  # one duplicate key
RICH = pd.DataFrame(
    {
        "customer_id": pd.Series(_ids, dtype="str"),
        "tenure": [float(i % 130) if i % 17 else None for i in range(ROWS)],  # nulls and values > 120
        "charges": [20.0 + (i % 90) for i in range(ROWS)],
        "calls": [i % 7 for i in range(ROWS)],
        "region": pd.Series(
            [("north", "south", "east", "mars")[i % 4] if i % 11 else None for i in range(ROWS)]
        ),
        "plan": pd.Series([("a", "b")[i % 2] for i in range(ROWS)], dtype="str"),
        "churned": [i % 3 == 0 for i in range(ROWS)],
    }
)
NUMERIC = ["int64", "float64"]
RICH_SUITE = [
    {"type": "expect_table_row_count_to_be_between", "kwargs": {"min_value": 100}},
    *({"type": "expect_column_to_exist", "kwargs": {"column": c}} for c in RICH.columns),
    {"type": "expect_column_values_to_be_unique", "kwargs": {"column": "customer_id"}},
    {"type": "expect_column_values_to_be_in_type_list", "kwargs": {"column": "tenure", "type_list": NUMERIC}},
    {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "tenure", "mostly": 0.99}},
    {
        "type": "expect_column_values_to_be_between",
        "kwargs": {"column": "tenure", "min_value": 0, "max_value": 120},
    },
    {
        "type": "expect_column_mean_to_be_between",
        "kwargs": {"column": "tenure", "min_value": 0, "max_value": 50},
    },
    {
        "type": "expect_column_stdev_to_be_between",
        "kwargs": {"column": "charges", "min_value": 0, "max_value": 90},
    },
    {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "region", "mostly": 0.95}},
    {
        "type": "expect_column_values_to_be_in_set",
        "kwargs": {"column": "region", "value_set": ["north", "south", "east"]},
    },
    {
        "type": "expect_column_proportion_of_unique_values_to_be_between",
        "kwargs": {"column": "plan", "max_value": 0.01},
    },
    {
        "type": "expect_column_distinct_values_to_be_in_set",
        "kwargs": {"column": "calls", "value_set": [0, 1, 2, 3, 4, 5]},
    },
    {
        "type": "expect_column_mean_to_be_between",
        "kwargs": {"column": "churned", "min_value": 0.05, "max_value": 0.6},
    },
    {
        "type": "expect_column_pair_values_a_to_be_greater_than_b",
        "kwargs": {"column_A": "charges", "column_B": "tenure", "or_equal": True, "mostly": 0.5},
    },
    {"type": "expect_compound_columns_to_be_unique", "kwargs": {"column_list": ["customer_id", "plan"]}},
]
#: Expectations that need the whole frame: the table's columns, and a column the frame lacks.
WHOLE_TABLE = [
    {"type": "expect_table_columns_to_match_set", "kwargs": {"column_set": [*RICH.columns, "age"]}},
    {"type": "expect_column_values_to_be_between", "kwargs": {"column": "age", "min_value": 0}},
]


def _stored_result(project: Path, run_name: str) -> dict:
    """A stored validation result as Data Docs read it, minus what differs between two runs."""
    import json

    (path,) = (project / "gx" / "uncommitted" / "validations" / "m" / run_name).rglob("*.json")
    stored = json.loads(path.read_text())
    for key in ("run_id", "validation_time"):
        stored["meta"].pop(key)
    stored["meta"]["batch_markers"].pop("ge_load_time")
    return stored


def _page(project: Path, run_name: str) -> str:
    """A run's Data Docs validation page, minus the run's name and times and the random element ids."""
    import re

    (path,) = (
        project / "gx" / "uncommitted" / "data_docs" / "local_site" / "validations" / "m" / run_name
    ).rglob("*.html")
    text = path.read_text().replace(run_name, "RUN")
    text = re.sub(r"\d{8}T\d{6}\.\d{6}Z|\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(\+00:00|Z)?", "TIME", text)
    return re.sub(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", "UUID", text)


def _checkpoint_run(project: Path, run_name: str) -> None:
    """GX's own run of the model's stored checkpoint over the whole frame."""
    import great_expectations as gx
    from great_expectations.core.run_identifier import RunIdentifier

    context = gx.get_context(mode="file", project_root_dir=str(project))
    context.checkpoints.get("m").run(
        batch_parameters={"dataframe": RICH},
        run_id=RunIdentifier(run_name=run_name, run_time=dt.datetime(2026, 2, 1, tzinfo=dt.UTC)),
    )


def _facts(stored: dict) -> list[tuple]:
    return [
        (
            r["expectation_config"]["type"],
            r["expectation_config"]["kwargs"].get("column"),
            r["success"],
            r["result"].get("unexpected_count"),
            r["result"].get("observed_value"),
            r["exception_info"].get("raised_exception"),
        )
        for r in stored["results"]
    ]


@pytest.mark.parametrize(
    "suite", [RICH_SUITE, RICH_SUITE + WHOLE_TABLE], ids=["by-column", "with-whole-table"]
)
def test_results_and_data_docs_equal_a_checkpoint_run_over_the_whole_frame(
    tmp_path: Path, suite: list
) -> None:
    outcome = gx_adapter.validate_dataframe(
        RICH, model="m", partition=DAY, expectations=suite, project_dir=tmp_path
    )
    _checkpoint_run(tmp_path, "stock")

    ours, stock = _stored_result(tmp_path, "m-2026-01-03"), _stored_result(tmp_path, "stock")
    facts = _facts(ours)
    assert facts == _facts(stock)  # success flags, unexpected counts, observed values, in GX's order
    assert ours == stock  # and everything else: statistics, partial lists, batch fingerprint, ids
    # The comparison is not vacuous: the suite fails in several ways.
    failed = {(kind, column) for kind, column, success, *_ in facts if not success}
    assert {
        ("expect_column_values_to_be_unique", "customer_id"),
        ("expect_column_values_to_be_between", "tenure"),
        ("expect_column_mean_to_be_between", "tenure"),
        ("expect_column_values_to_be_in_set", "region"),
    } <= failed
    assert outcome.failed == len(failed) and not outcome.success
    assert any(count for *_, count, _observed, _raised in facts if count)
    assert ours["meta"]["batch_markers"]["pandas_data_fingerprint"]
    assert _page(tmp_path, "m-2026-01-03") == _page(tmp_path, "stock")


def test_gx_gets_batches_of_the_columns_each_expectation_reads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """GX loads only narrow batches, and fingerprints none of them: the batch fingerprint in the
    result is the whole frame's all the same, as GX computes it."""
    from great_expectations.execution_engine import pandas_execution_engine as engine

    loaded: list[list[str]] = []
    hashed: list[list[str]] = []
    load, hash_batch = engine.PandasExecutionEngine.load_batch_data, engine.hash_pandas_dataframe

    def load_spy(self: engine.PandasExecutionEngine, batch_id: str, batch_data: object) -> None:
        loaded.append(list(batch_data.dataframe.columns))  # type: ignore[attr-defined]
        load(self, batch_id, batch_data)  # type: ignore[arg-type]

    def hash_spy(df: pd.DataFrame) -> str:
        hashed.append(list(df.columns))
        return hash_batch(df)

    monkeypatch.setattr(engine.PandasExecutionEngine, "load_batch_data", load_spy)
    monkeypatch.setattr(engine, "hash_pandas_dataframe", hash_spy)
    gx_adapter.validate_dataframe(
        RICH, model="m", partition=DAY, expectations=RICH_SUITE, project_dir=tmp_path
    )
    assert loaded and max(len(columns) for columns in loaded) == 2  # the pair and the compound key
    assert sorted({c for columns in loaded for c in columns}) == sorted(RICH.columns)
    assert hashed == [], "GX fingerprints none of the batches mloops hands it"
    assert _stored_result(tmp_path, "m-2026-01-03")["meta"]["batch_markers"][
        "pandas_data_fingerprint"
    ] == hash_batch(RICH)

    # No effect on GX elsewhere in the process: its own run of the same checkpoint, in the same
    # project, still fingerprints the frame it loads.
    _checkpoint_run(tmp_path, "stock")
    assert hashed == [list(RICH.columns)]


@pytest.mark.parametrize(
    "suite", [RICH_SUITE + WHOLE_TABLE, WHOLE_TABLE], ids=["with-whole-table", "whole-only"]
)
def test_a_whole_frame_batch_carries_the_fingerprint_gx_computes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, suite: list
) -> None:
    """The part judged on the whole frame is not fingerprinted by GX either; its marker is mloops'
    (from the row hashes), equal to GX's ``hash_pandas_dataframe`` of the frame."""
    from great_expectations.execution_engine import pandas_execution_engine as engine

    hash_batch = engine.hash_pandas_dataframe
    expected = hash_batch(RICH)
    hashed: list[int] = []
    monkeypatch.setattr(engine, "hash_pandas_dataframe", lambda df: hashed.append(len(df)) or hash_batch(df))
    gx_adapter.validate_dataframe(RICH, model="m", partition=DAY, expectations=suite, project_dir=tmp_path)
    markers = _stored_result(tmp_path, "m-2026-01-03")["meta"]["batch_markers"]
    assert markers == {"pandas_data_fingerprint": expected}  # ge_load_time is dropped by _stored_result
    assert hashed == []


def test_mloops_data_source_leaves_the_project_and_gx_as_they_were(tmp_path: Path) -> None:
    """GX users open the project without mloops: the stored data source is GX's ``pandas`` type, and
    GX's own pandas data source (its factory, its engine) is untouched."""
    import great_expectations as gx
    from great_expectations.datasource.fluent import PandasDatasource
    from great_expectations.datasource.fluent.sources import DataSourceManager
    from great_expectations.execution_engine import PandasExecutionEngine

    _validate(tmp_path, LOOSE)
    assert "type: pandas\n" in (tmp_path / "gx" / "great_expectations.yml").read_text()
    assert DataSourceManager.type_lookup["pandas"] is PandasDatasource
    context = gx.get_context(mode="file", project_root_dir=str(tmp_path))
    reopened = context.data_sources.get("mloops")
    assert type(reopened) is PandasDatasource
    assert type(reopened.get_execution_engine()) is PandasExecutionEngine
    plain = gx.get_context(mode="ephemeral").data_sources.add_pandas(name="other")
    assert type(plain.get_execution_engine()) is PandasExecutionEngine


@pytest.mark.parametrize(
    ("expectation_type", "kwargs", "read"),
    [
        ("expect_table_row_count_to_be_between", {"min_value": 1}, ()),
        ("expect_column_to_exist", {"column": "a"}, ("a",)),
        ("expect_column_to_exist", {"column": "a", "column_index": 0}, None),
        ("expect_column_to_exist", {"column": "zz"}, None),
        ("expect_column_values_to_be_between", {"column": "a", "min_value": 0}, ("a",)),
        ("expect_column_values_to_be_between", {"column": "a", "row_condition": 'b=="x"'}, None),
        ("expect_column_pair_values_to_be_equal", {"column_A": "a", "column_B": "b"}, ("a", "b")),
        ("expect_compound_columns_to_be_unique", {"column_list": ["b", "a", "b"]}, ("b", "a")),
        ("expect_table_columns_to_match_set", {"column_set": ["a", "b"]}, None),
        ("expect_table_row_count_to_equal_other_table", {"other_table_name": "t"}, None),
        ("unexpected_rows_expectation", {"unexpected_rows_query": "select * from {batch}"}, None),
    ],
)
def test_columns_read(expectation_type: str, kwargs: dict, read: tuple | None) -> None:
    assert gx_adapter.columns_read(expectation_type, kwargs, ["a", "b"]) == read


def test_in_memory_checks_equal_gx_on_the_whole_frame(monkeypatch: pytest.MonkeyPatch) -> None:
    """``check_in_memory`` / ``failing_rows`` (row mode) run by column too, with GX's results (and
    the whole frame's fingerprint, which GX computes for its own batch and not for mloops')."""
    import great_expectations as gx
    from great_expectations.execution_engine import pandas_execution_engine as engine
    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

    hash_batch, hashed = engine.hash_pandas_dataframe, []
    monkeypatch.setattr(engine, "hash_pandas_dataframe", lambda df: hashed.append(len(df)) or hash_batch(df))
    suite = RICH_SUITE + WHOLE_TABLE
    ours = gx_adapter._in_memory(RICH, suite, gx_adapter._ROWS_RESULT_FORMAT)
    assert hashed == []
    context = gx.get_context(mode="ephemeral")
    batch = (
        context.data_sources.add_pandas(name="mloops")
        .add_dataframe_asset(name="batch")
        .add_batch_definition_whole_dataframe("whole")
        .get_batch(batch_parameters={"dataframe": RICH})
    )
    stock = batch.validate(
        gx.ExpectationSuite(
            name="mloops_rows",
            expectations=[
                ExpectationConfiguration(type=e["type"], kwargs=e["kwargs"]).to_domain_obj() for e in suite
            ],
        ),
        result_format=gx_adapter._ROWS_RESULT_FORMAT,
    )

    def plain(result: object) -> dict:
        described = result.to_json_dict()  # type: ignore[attr-defined]
        described["meta"]["batch_markers"].pop("ge_load_time")
        return described

    assert plain(ours) == plain(stock)
    assert hashed and set(hashed) == {len(RICH)}, "GX still fingerprints its own whole-frame batch"
    assert any(r["result"].get("unexpected_index_list") for r in plain(ours)["results"])


# ---------------------------------------------------------------------------- the Data Docs index


def test_the_data_docs_index_lists_the_newest_runs_and_every_result_is_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The index links the newest ``MLOOPS_DOCS_INDEX_RUNS`` validation runs; the older results stay in
    the store and keep their pages, and GX loads only the listed results to rebuild the index."""
    from great_expectations.data_context.data_context.abstract_data_context import AbstractDataContext

    monkeypatch.setenv(gx_adapter.DOCS_INDEX_RUNS_ENV, "2")
    loaded: list[str] = []
    get_result = AbstractDataContext.get_validation_result

    def counting(self: AbstractDataContext, *args: object, **kwargs: object) -> object:
        loaded.append(str(kwargs.get("run_id")))
        return get_result(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(AbstractDataContext, "get_validation_result", counting)
    days = [DAY + dt.timedelta(days=n) for n in range(4)]
    for day in days:
        loaded.clear()
        outcome = _validate(tmp_path, LOOSE, day)
    assert len(loaded) == 2, f"the last index rebuild loaded {loaded}"

    index = Path(outcome.docs_url.removeprefix("file://")).read_text()
    assert "m-2026-01-06" in index and "m-2026-01-05" in index
    assert "m-2026-01-04" not in index and "m-2026-01-03" not in index
    validations = tmp_path / "gx" / "uncommitted" / "validations"
    assert sorted(p.parent.parent.name for p in validations.rglob("*.json")) == [f"m-{d}" for d in days]
    pages = tmp_path / "gx" / "uncommitted" / "data_docs" / "local_site" / "validations"
    assert sorted({p.parent.parent.name for p in pages.rglob("*.html")}) == [f"m-{d}" for d in days]

    # Raising the limit lists them again (the site config follows the setting).
    monkeypatch.setenv(gx_adapter.DOCS_INDEX_RUNS_ENV, "10")
    index = Path(_validate(tmp_path, LOOSE, days[-1]).docs_url.removeprefix("file://")).read_text()
    assert all(f"m-{d}" in index for d in days)


@pytest.mark.parametrize("value", ["0", "-3", "many", "2.5"])
def test_a_bad_docs_index_setting_is_refused_naming_it(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv(gx_adapter.DOCS_INDEX_RUNS_ENV, value)
    expected = rf"MLOOPS_DOCS_INDEX_RUNS='{re.escape(value)}' is not a whole number"
    with pytest.raises(gx_adapter.MloopsError, match=expected):
        gx_adapter.docs_index_runs()
