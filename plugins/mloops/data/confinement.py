"""Where a files source may read: its path template is checked when the config loads, the path it
resolves to is checked again before every read.

A config file is data an operator can edit, but what it names is read by every worker with the
worker's rights. Without these checks ``file:///proc/self/environ?{ds}`` met the "path has a date"
rule through its query string and copied the worker's environment into the quarantine area. So:

* the date placeholder (and for a sub-daily model the hour's) must be part of the path itself (not a
  host, query or fragment);
* only the data root's scheme is allowed (``file`` or none for a local root, ``s3`` for an s3 root);
* query strings, fragments, ``..`` segments and unknown placeholders are refused;
* at run time the resolved path (symlinks followed) must lie under the data root or a root the
  deployment declares in ``MLOOPS_SOURCE_ROOTS``.

Pure string and path logic; nothing here imports Airflow.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlparse

PLACEHOLDERS = ("data_root", "model", "ds", "ds_nodash", "hour", "ts_nodash", "partition")
#: Placeholders that carry the date of the interval (one must be part of the path).
DATE_PLACEHOLDERS = ("ds", "ds_nodash", "ts_nodash", "partition")
#: Placeholders that carry the hour, one of which a sub-daily model's path needs (checked by the config).
SUB_DAILY_PLACEHOLDERS = ("hour", "ts_nodash", "partition")
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")


def scheme_of(uri: str) -> str:
    """``file`` for a local path or ``file://`` URI, else the URI's scheme (``s3``)."""
    if "://" not in uri:
        return "file"
    return urlparse(uri).scheme or "file"


def check_path_template(template: str, data_root_uri: str) -> str:
    """Refuse a files-source template that could read outside its partition; return it unchanged.

    Raises ``ValueError`` with a message meant for ``field 'source.path': ...``.
    """
    names = _PLACEHOLDER.findall(template)
    unknown = sorted({n for n in names if n not in PLACEHOLDERS})
    if unknown:
        raise ValueError(f"unknown placeholder(s) {unknown}; use only {{{'}, {'.join(PLACEHOLDERS)}}}")
    if "?" in template or "#" in template:
        raise ValueError("must be a plain path: query strings ('?') and fragments ('#') are not allowed")
    if "{data_root}" in template and not template.startswith("{data_root}"):
        raise ValueError("{data_root} may only start the path")
    concrete = template.replace("{data_root}", data_root_uri.rstrip("/"))
    scheme, root_scheme = scheme_of(concrete), scheme_of(data_root_uri)
    if scheme != root_scheme:
        raise ValueError(
            f"scheme {scheme!r} is not allowed: the data root ({data_root_uri}) is {root_scheme!r}"
        )
    parsed = urlparse(concrete) if "://" in concrete else None
    path_part = parsed.path if parsed else concrete
    if parsed and _PLACEHOLDER.search(parsed.netloc):
        raise ValueError("placeholders may not be part of the host or bucket name")
    if not any(f"{{{name}}}" in path_part for name in DATE_PLACEHOLDERS):
        raise ValueError(
            f"path must contain {' or '.join(f'{{{n}}}' for n in DATE_PLACEHOLDERS)} so each interval reads "
            "its own partition"
        )
    if ".." in PurePosixPath(path_part).parts:
        raise ValueError("'..' segments are not allowed (a source path may not climb out of its folder)")
    return template


def source_roots(data_root: Any, declared: Iterable[str]) -> list[Any]:
    """The data root plus the declared roots (local ones resolved, object-store ones as URIs)."""
    roots: list[Any] = [data_root]
    for value in declared:
        value = value.strip()
        if value:
            roots.append(
                value
                if scheme_of(value) != "file"
                else Path(value.removeprefix("file://")).expanduser().resolve()
            )
    return roots


def is_under(path: Any, root: Any) -> bool:
    """True when ``path`` lies under ``root``: local paths with symlinks resolved, object-store
    paths by scheme, bucket and key prefix (the Airflow connection id is ignored)."""
    if isinstance(path, Path):
        if not isinstance(root, Path):
            return False
        return path.resolve().is_relative_to(Path(root).resolve())
    if isinstance(root, Path):
        return False
    target, base = _object_key(str(path)), _object_key(str(root))
    if target is None or base is None or target[0] != base[0]:
        return False
    return target[1] == base[1] or target[1].startswith(base[1].rstrip("/") + "/")


def _object_key(uri: str) -> tuple[str, str] | None:
    parsed = urlparse(uri)
    if not parsed.scheme or parsed.query or parsed.fragment:
        return None
    bucket = parsed.netloc.rpartition("@")[2]
    key = PurePosixPath("/" + parsed.path.lstrip("/"))
    if ".." in key.parts:
        return None
    return parsed.scheme, f"{bucket}{key}"
