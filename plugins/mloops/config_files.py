"""Reading model files: YAML into validated :class:`~mloops.config.ModelConfig`, all of a folder
(with the compiled index that spares each DAG file re-reading unchanged YAML), or one by name.

A broken file becomes a :class:`~mloops.errors.ModelConfigError` naming the file, the dotted field
and its line; the other files still load.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from mloops import config as config_module
from mloops.config import ModelConfig
from mloops.errors import ModelConfigError

#: libyaml's safe loader parses configs several times faster than the pure-Python one (DAG files
#: load every config on each parse).
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _location(error: Mapping[str, Any]) -> str:
    parts = [str(p) for p in error.get("loc", ()) if not (isinstance(p, str) and p in _DISCRIMINATOR_TAGS)]
    return ".".join(parts) or "<root>"


_DISCRIMINATOR_TAGS = {"files", "sql", "generator"}


def _line_of(text: str, field_path: str) -> int | None:
    """Best-effort line number of the first key of a dotted field path, for error messages."""
    key = field_path.split(".")[0]
    match = re.search(rf"^{re.escape(key)}\s*:", text, flags=re.MULTILINE)
    return text.count("\n", 0, match.start()) + 1 if match else None


def _given(error: Mapping[str, Any]) -> str:
    """`` (got <value>)`` for a field error on a plain value (a bound, a choice), so the message shows
    what the file holds; nothing for a whole section or a value the message already quotes."""
    value = error.get("input")
    if isinstance(value, Mapping | list) or "input" not in error or error.get("type") == "missing":
        return ""
    shown = repr(value)
    if len(shown) > 80 or shown in str(error.get("msg", "")):
        return ""
    return f" (got {shown})"


def load_model_config(path: str | Path) -> ModelConfig:
    """Read and validate one model file; raise :class:`ModelConfigError` naming the file and fields."""
    path = Path(path)
    shown = str(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ModelConfigError(shown, [f"cannot read file: {exc.strerror}"]) from exc
    try:
        raw = yaml.load(text, Loader=_YAML_LOADER)  # noqa: S506 - a safe loader (libyaml's when available)
    except yaml.YAMLError as exc:
        raise ModelConfigError(shown, [f"invalid YAML: {exc}"]) from exc
    if not isinstance(raw, dict):
        raise ModelConfigError(shown, ["expected a mapping of fields at the top level"])
    raw.setdefault("name", path.stem)
    if raw["name"] != path.stem:
        raise ModelConfigError(shown, [f"name: {raw['name']!r} must match the file name {path.stem!r}"])
    try:
        return ModelConfig.model_validate({**raw, "source_file": shown})
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            where, message = _location(error), error["msg"]
            if where == "<root>":
                message = message.removeprefix("Value error, ")
                head, _, rest = message.partition(": ")
                if rest and re.fullmatch(r"[A-Za-z_][\w.\[\]]*", head):
                    where, message = head, rest
            line = _line_of(text, where)
            at = f" (line {line})" if line else ""
            problems.append(f"field '{where}'{at}: {message}{_given(error)}")
        raise ModelConfigError(shown, problems) from None


def load_model_configs(
    directory: str | Path, index_dir: str | Path | None = None
) -> tuple[dict[str, ModelConfig], list[ModelConfigError]]:
    """Load every ``*.yaml``/``*.yml`` in ``directory``; return the valid configs and the errors.

    With ``index_dir``, valid configs come from a compiled index (see :func:`iter_model_configs`).
    """
    configs: dict[str, ModelConfig] = {}
    errors: list[ModelConfigError] = []
    for loaded in iter_model_configs(directory, index_dir):
        if isinstance(loaded, ModelConfigError):
            errors.append(loaded)
        else:
            configs[loaded.name] = loaded
    return configs, errors


def iter_model_configs(
    directory: str | Path, index_dir: str | Path | None = None
) -> Iterator[ModelConfig | ModelConfigError]:
    """Each ``*.yaml``/``*.yml`` of ``directory`` in name order: its valid config, or its error.

    With ``index_dir``, valid configs come from a compiled index (``config_index.json`` there) while
    their file is unchanged (same path, ``mtime_ns`` and size), so each DAG file of a parse does not
    re-read every YAML file; a changed, new or invalid file is read and validated as without it.
    One at a time, so a caller building a DAG from each keeps only the config it is using: 300
    configs held at once are 25,000 objects that Python's garbage collector promotes and then scans
    again in each full collection of the parse. Each file's key is read before the file itself and is
    the one its entry is stored under, so a file changed while it was read is read again next time.
    The keys are all read first: a ``stat`` lets other threads run, and a sampling profiler (the
    bench's) would book the DAG building between two of them to the ``stat``.
    """
    index = _ConfigIndex(Path(index_dir)) if index_dir is not None else None
    paths = list(_config_files(Path(directory)))
    keys = {path: _file_key(path) for path in paths} if index else {}
    for path in paths:
        config = index.get(path, keys[path]) if index else None
        if config is None:
            try:
                config = load_model_config(path)
            except ModelConfigError as exc:
                yield exc
                continue
            if index:
                index.put(path, config, keys[path])
        yield config
    if index:
        index.save()


class _ConfigIndex:
    """Validated configs as JSON keyed by each YAML file's ``(mtime_ns, size)``; no pickle.

    A hit skips only the YAML parse: the JSON is validated again (so validators that read the
    settings, e.g. the data-root confinement, still run), by pydantic straight from the text (its
    own parser: a third faster than ``json.loads`` and validating the dict). An entry is only written
    when its JSON validates back to an equal config, and the index is dropped when the config schema
    or the entry format changes (the keys of ``mloops/config.py`` and of this module are part of the
    file).
    """

    def __init__(self, folder: Path) -> None:
        self.path = folder / "config_index.json"
        self.code = [_file_key(Path(config_module.__file__)), _file_key(Path(__file__))]
        self.entries: dict[str, dict[str, Any]] = {}
        self.changed = False
        try:
            data = json.loads(self.path.read_text())
            if data.get("code") == self.code:
                self.entries = data["entries"]
        except (OSError, ValueError, KeyError, TypeError):
            pass

    def get(self, path: Path, key: list[int] | None) -> ModelConfig | None:
        entry = self.entries.get(str(path))
        if not entry or key is None or entry.get("key") != key:
            return None
        try:
            return ModelConfig.model_validate_json(entry["config"])
        except (ValidationError, ValueError):
            return None  # e.g. the settings changed: read the file and report its own errors

    def put(self, path: Path, config: ModelConfig, key: list[int] | None) -> None:
        """Store ``config`` read from ``path`` under ``key``, the file's key read before it was read."""
        if key is None:
            return
        # ``source_file`` is excluded from dumps; the entry is the file's, so it carries the path.
        text = json.dumps({**config.model_dump(mode="json"), "source_file": str(path)})
        if ModelConfig.model_validate_json(text) == config:
            self.entries[str(path)] = {"key": key, "config": text}
            self.changed = True

    def save(self) -> None:
        if not self.changed:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}")
            tmp.write_text(json.dumps({"code": self.code, "entries": self.entries}))
            os.replace(tmp, self.path)
        except OSError:
            pass  # a read-only home only loses the speed-up


def _file_key(path: Path) -> list[int] | None:
    """``[mtime_ns, size]``; ``None`` for a file gone since it was listed (it is then read, and
    reported as unreadable)."""
    try:
        stat = path.stat()
    except OSError:
        return None
    return [stat.st_mtime_ns, stat.st_size]


def model_names(directory: str | Path) -> list[str]:
    """The model names configured in ``directory`` (file stems), without validating the files."""
    return [p.stem for p in _config_files(Path(directory))]


def _config_files(directory: Path) -> Iterable[Path]:
    if not directory.is_dir():
        return []
    return sorted(
        p for p in directory.iterdir() if p.suffix in {".yaml", ".yml"} and not p.name.startswith(".")
    )


def find_model_config(name: str, directory: str | Path) -> ModelConfig:
    """Load the config of one model by name (what operators do at run time)."""
    directory = Path(directory)
    for suffix in (".yaml", ".yml"):
        candidate = directory / f"{name}{suffix}"
        if candidate.exists():
            return load_model_config(candidate)
    raise ModelConfigError(str(directory / f"{name}.yaml"), ["no such model config file"])
