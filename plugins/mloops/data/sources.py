"""Reading one partition of a model's source for a data interval.

Three source kinds share one result type: partitioned files under a path template, a SQL query run
through an Airflow connection (the caller passes the reader, so this module stays Airflow-free), and
the example generator (package ``mloops_examples``, imported only by this source kind), which lands
its partition as a file first so it behaves exactly like an upstream drop.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mloops.config import (
    FilesSource,
    GeneratorSource,
    LabelGeneratorSource,
    ModelConfig,
    ScenarioConfig,
    SqlSource,
)
from mloops.data.confinement import is_under, source_roots
from mloops.errors import DataSourceError, PartitionMissingError, UnreadablePartitionError
from mloops.partitions import (
    Partition,
    StoragePath,
    from_uri,
    partition_dir,
    read_csv,
    read_parquet,
    to_uri,
    write_parquet,
)

if TYPE_CHECKING:
    import pandas as pd

SqlReader = Callable[[str, str], "pd.DataFrame"]


@dataclass(frozen=True)
class Extracted:
    """A partition read from its source, plus where it came from (kept for quarantine copies)."""

    frame: pd.DataFrame
    source_uri: str
    source_files: tuple[StoragePath, ...] = ()


def render_query(query: str, day: Partition, field: str = "source.query") -> str:
    """Render a SQL template with the interval of ``day`` (``ds``, ``ds_nodash``, ``hour``,
    ``ts_nodash``, ``partition``, ``ts`` and the interval bounds)."""
    import jinja2

    # SQL, not HTML: escaping would corrupt the query (values come from the interval, not from users).
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False)  # noqa: S701
    try:
        return env.from_string(query).render(
            **day.fields(),
            ts=day.start.isoformat(),
            data_interval_start=day.start.isoformat(),
            data_interval_end=day.end.isoformat(),
        )
    except jinja2.TemplateError as exc:
        raise DataSourceError(f"{field} cannot be rendered for {day}: {exc}") from exc


def files_path(
    source: FilesSource,
    model: str,
    day: Partition,
    data_root: StoragePath,
    declared_roots: tuple[str, ...] | None = None,
    field: str = "source.path",
) -> StoragePath:
    """The partition file of ``day``: a local path or an object-storage URI (``s3://conn@bucket/…``).

    Refused unless it lies under the data root or a root in ``MLOOPS_SOURCE_ROOTS`` (``declared_roots``
    defaults to the environment's): the config check cannot see symlinks or where ``{model}`` leads.
    """
    rendered = source.path.format(data_root=data_root, model=model, **day.fields())
    path = from_uri(rendered)
    if declared_roots is None:
        from mloops.settings import get_settings

        declared_roots = get_settings().source_roots
    roots = source_roots(data_root, declared_roots)
    if not any(is_under(path, root) for root in roots):
        raise DataSourceError(
            f"model {model!r}: field '{field}' resolves to {rendered}, outside the allowed source roots "
            f"{[str(r) for r in roots]}; declare its folder in MLOOPS_SOURCE_ROOTS to allow it"
        )
    return path


def generator_path(model: str, day: Partition, data_root: StoragePath) -> StoragePath:
    return partition_dir(data_root, "raw", model, day) / "part.parquet"


def _read_file(path: StoragePath, fmt: str, model: str, day: Partition) -> pd.DataFrame:
    import pandas as pd

    if not path.exists():
        raise PartitionMissingError(f"model {model!r}: partition {day} is missing: no file at {path}")
    try:
        return read_parquet(path) if fmt == "parquet" else read_csv(path)
    except pd.errors.EmptyDataError:
        raise UnreadablePartitionError(
            f"model {model!r}: partition {day} at {path} is an empty file (no header row)", path=path
        ) from None
    except Exception as exc:  # noqa: BLE001 - any reader error means the partition is unreadable
        detail = str(exc)[:500]
        raise UnreadablePartitionError(
            f"model {model!r}: partition {day} at {path} cannot be read: {detail}", path=path
        ) from exc


def land_generated_partition(
    config: ModelConfig, day: Partition, data_root: StoragePath
) -> StoragePath | None:
    """Write the generator's partition for ``day`` unless it already landed; ``None`` if it is missing."""
    from mloops_examples import generator

    source = config.source
    if not isinstance(source, GeneratorSource):
        raise TypeError(f"model {config.name!r}: source kind {source.kind!r} is not the generator")
    path = generator_path(config.name, day, data_root)
    if path.exists():
        return path
    frame = generator.generate_partition(
        source.dataset,
        day.date,
        hour=None if day.daily else day.start.hour,
        rows=source.rows_per_day,
        seed=source.seed,
        scenarios=to_generator_scenarios(source.scenarios),
    )
    if frame is None:
        return None
    return write_parquet(frame, path)


def labels_generator_path(model: str, day: Partition, data_root: StoragePath) -> StoragePath:
    return partition_dir(data_root, "raw", f"{model}-labels", day) / "part.parquet"


def land_generated_labels(config: ModelConfig, day: Partition, data_root: StoragePath) -> StoragePath:
    """Write the generator's label delivery of ``day`` unless it already landed."""
    from mloops_examples import generator

    source, labels = config.source, config.labels
    if not isinstance(source, GeneratorSource) or labels is None:
        raise TypeError(f"model {config.name!r}: the generated label feed needs a generator source")
    feed = labels.source
    if not isinstance(feed, LabelGeneratorSource):
        raise TypeError(f"model {config.name!r}: labels.source kind {feed.kind!r} is not the generator")
    path = labels_generator_path(config.name, day, data_root)
    if path.exists():
        return path
    frame = generator.generate_labels(
        source.dataset,
        day.date,
        hour=None if day.daily else day.start.hour,
        rows=source.rows_per_day,
        seed=source.seed,
        scenarios=to_generator_scenarios(source.scenarios),
        delay_days=feed.delay_days,
        coverage=feed.coverage,
        unmatched_rows=feed.unmatched_rows,
    )
    return write_parquet(frame, path)


def extract_labels(
    config: ModelConfig, day: Partition | dt.date, data_root: StoragePath, sql_reader: SqlReader | None = None
) -> Extracted:
    """Read the label delivery that arrived in ``day`` (``labels.source``); raise
    :class:`PartitionMissingError` when none arrived, :class:`DataSourceError` when it cannot be read."""
    day = Partition.of(day, config.interval)
    if config.labels is None:
        raise DataSourceError(f"model {config.name!r} has no labels: block")
    source = config.labels.source
    if isinstance(source, FilesSource):
        path = files_path(source, config.name, day, data_root, field="labels.source.path")
        return Extracted(_read_labels(path, source.format, config.name, day), to_uri(path), (path,))
    if isinstance(source, LabelGeneratorSource):
        landed = land_generated_labels(config, day, data_root)
        return Extracted(_read_labels(landed, "parquet", config.name, day), to_uri(landed), (landed,))
    if sql_reader is None:
        raise DataSourceError(
            f"model {config.name!r}: a SQL label source needs a reader for connection {source.conn_id!r}"
        )
    query = render_query(source.query, day, field="labels.source.query")
    try:
        frame = sql_reader(source.conn_id, query)
    except Exception as exc:  # noqa: BLE001 - surface the driver's message with the query
        raise DataSourceError(
            f"model {config.name!r}: labels of {day}: query on connection {source.conn_id!r} failed: "
            f"{exc}\n{query}"
        ) from exc
    return Extracted(frame, f"sql://{source.conn_id}?labels&ds={day.key}")


def _read_labels(path: StoragePath, fmt: str, model: str, day: Partition) -> pd.DataFrame:
    try:
        return _read_file(path, fmt, model, day)
    except PartitionMissingError:
        raise PartitionMissingError(
            f"model {model!r}: no labels arrived on {day}: no file at {path}"
        ) from None


def to_generator_scenarios(scenarios: tuple[ScenarioConfig, ...]) -> list:
    from mloops_examples import generator

    return [
        generator.Scenario(kind=s.kind, start=s.start, end=s.end, params=dict(s.params)) for s in scenarios
    ]


def extract_partition(
    config: ModelConfig, day: Partition | dt.date, data_root: StoragePath, sql_reader: SqlReader | None = None
) -> Extracted:
    """Read the partition ``day`` (a date names a daily one); raise :class:`PartitionMissingError` or
    :class:`DataSourceError`."""
    day = Partition.of(day, config.interval)
    source = config.source
    if isinstance(source, FilesSource):
        path = files_path(source, config.name, day, data_root)
        return Extracted(_read_file(path, source.format, config.name, day), to_uri(path), (path,))
    if isinstance(source, GeneratorSource):
        landed = land_generated_partition(config, day, data_root)
        if landed is None:
            raise PartitionMissingError(
                f"model {config.name!r}: partition {day} is missing: the source delivered no data "
                f"(expected {generator_path(config.name, day, data_root)})"
            )
        return Extracted(_read_file(landed, "parquet", config.name, day), to_uri(landed), (landed,))
    if isinstance(source, SqlSource):
        if sql_reader is None:
            raise DataSourceError(
                f"model {config.name!r}: a SQL source needs a reader for connection {source.conn_id!r}"
            )
        query = render_query(source.query, day)
        try:
            frame = sql_reader(source.conn_id, query)
        except Exception as exc:  # noqa: BLE001 - surface the driver's message with the query
            raise DataSourceError(
                f"model {config.name!r}: partition {day}: query on connection {source.conn_id!r} failed: "
                f"{exc}\n{query}"
            ) from exc
        return Extracted(frame, f"sql://{source.conn_id}?ds={day.key}")
    raise DataSourceError(f"model {config.name!r}: unsupported source kind {type(source).__name__}")
