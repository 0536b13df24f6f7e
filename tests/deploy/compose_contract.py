"""docker-compose.yml as the single source of truth for commands and environment.

The compose file is the deployment contract. A native integration test (no Docker) must start the same
processes with the same settings, so it reads them from here instead of repeating them:

    from tests.deploy.compose_contract import airflow_environment, service_command, native_paths

    env = airflow_environment(variables=secrets, hosts={"postgres": "127.0.0.1:5432", ...},
                              paths=native_paths(repo_root, tmp_path))
    cmd = service_command(None, "airflow-scheduler", variables=secrets)  # ["airflow", "scheduler"]

Native processes share one machine, so besides hostnames and paths they may need their own database
names (``databases={"postgres/airflow": "it_1234_airflow", "redis/0": "7"}``) and their own listening
ports or bind addresses (``service_command(..., options={"--port": "41234"})``). Those are the only
swaps offered: everything else comes from the compose file unchanged.

``${VAR}``, ``${VAR:-default}``, ``${VAR-default}``, ``${VAR:?message}``, ``${VAR?message}``,
``${VAR:+alt}``, ``${VAR+alt}``, ``$VAR`` and the ``$$`` escape are resolved like compose does. A required
variable that is missing raises :class:`MissingVariableError` carrying compose's message.

Only PyYAML and the standard library are used, so this module can be imported anywhere.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO_ROOT / "docker-compose.yml"

#: Top-level extension block holding the settings shared by every Airflow service.
COMMON_KEY = "x-airflow-common"

#: Every service built from ``x-airflow-common``.
AIRFLOW_SERVICES = (
    "airflow-init",
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
    "airflow-worker",
)

_REFERENCE = re.compile(r"\$(?:(?P<escaped>\$)|\{(?P<braced>[^}]*)\}|(?P<named>[A-Za-z_][A-Za-z0-9_]*))")
_BRACED = re.compile(r"^(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:-|-|:\?|\?|:\+|\+)(?P<arg>.*))?$", re.S)
# scheme://[userinfo@]host[:port] -- the host is group "host".
_URL_HOST = re.compile(
    r"(?P<prefix>[A-Za-z][A-Za-z0-9+.\-]*://(?:[^@/\s]*@)?)(?P<host>[A-Za-z0-9_.\-]+)(?P<port>:\d+)?"
)
# scheme://[userinfo@]host[:port]/database -- a database name or number as the whole URL path.
_URL_DATABASE = re.compile(
    r"(?P<prefix>[A-Za-z][A-Za-z0-9+.\-]*://(?:[^@/\s]*@)?(?P<host>[A-Za-z0-9_.\-]+)(?::\d+)?/)"
    r"(?P<database>[A-Za-z0-9_\-]+)(?=$|[?#,\s])"
)


class MissingVariableError(KeyError):
    """A ``${VAR:?message}`` / ``${VAR?message}`` reference had no value."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(name)
        self.name = name
        self.message = message

    def __str__(self) -> str:
        return f"required variable {self.name} is missing a value: {self.message}"


@dataclass(frozen=True)
class VariableReference:
    """One ``${...}`` or ``$NAME`` occurrence in the compose file."""

    name: str
    operator: str | None  # None, ":-", "-", ":?", "?", ":+", "+"
    argument: str | None

    @property
    def required(self) -> bool:
        return self.operator in (":?", "?")

    @property
    def has_default(self) -> bool:
        return self.operator in (":-", "-")


# --------------------------------------------------------------------------------------------------
# Interpolation
# --------------------------------------------------------------------------------------------------


def _parse_braced(body: str) -> VariableReference:
    match = _BRACED.match(body)
    if match is None:
        raise ValueError(f"invalid interpolation format: ${{{body}}}")
    return VariableReference(match["name"], match["op"], match["arg"])


def variable_references(text: str) -> list[VariableReference]:
    """Every variable reference in ``text`` (``$$`` escapes are skipped)."""
    refs = []
    for match in _REFERENCE.finditer(text):
        if match["escaped"]:
            continue
        if match["named"]:
            refs.append(VariableReference(match["named"], None, None))
        else:
            refs.append(_parse_braced(match["braced"]))
    return refs


def interpolate(value: str, variables: Mapping[str, str]) -> str:
    """Resolve compose variable references in ``value`` from ``variables``."""

    def substitute(match: re.Match[str]) -> str:
        if match["escaped"]:
            return "$"
        if match["named"]:
            return variables.get(match["named"], "")
        ref = _parse_braced(match["braced"])
        current = variables.get(ref.name)
        is_set = current is not None
        is_non_empty = bool(current)
        if ref.operator == ":-":
            return current if is_non_empty else ref.argument  # type: ignore[return-value]
        if ref.operator == "-":
            return current if is_set else ref.argument  # type: ignore[return-value]
        if ref.operator == ":?":
            if not is_non_empty:
                raise MissingVariableError(ref.name, ref.argument or "")
            return current  # type: ignore[return-value]
        if ref.operator == "?":
            if not is_set:
                raise MissingVariableError(ref.name, ref.argument or "")
            return current  # type: ignore[return-value]
        if ref.operator == ":+":
            return ref.argument if is_non_empty else ""  # type: ignore[return-value]
        if ref.operator == "+":
            return ref.argument if is_set else ""  # type: ignore[return-value]
        return current or ""

    return _REFERENCE.sub(substitute, value)


# --------------------------------------------------------------------------------------------------
# Reading the file
# --------------------------------------------------------------------------------------------------


def _compose_path(compose_path: str | Path | None) -> Path:
    return Path(compose_path) if compose_path is not None else COMPOSE_FILE


def load_compose(compose_path: str | Path | None = None) -> dict[str, Any]:
    """Parse the compose file; YAML anchors and ``<<`` merge keys are resolved, variables are not."""
    with open(_compose_path(compose_path), encoding="utf-8") as fh:
        data = yaml.safe_load(fh)
    if not isinstance(data, dict):
        raise ValueError(f"{compose_path}: not a compose mapping")
    return data


def compose_variables(compose_path: str | Path | None = None) -> dict[str, list[VariableReference]]:
    """All variables the compose file references, with every reference (comments excluded)."""
    data = load_compose(compose_path)
    found: dict[str, list[VariableReference]] = {}

    def walk(node: Any) -> None:
        if isinstance(node, str):
            for ref in variable_references(node):
                found.setdefault(ref.name, []).append(ref)
        elif isinstance(node, Mapping):
            for key, value in node.items():
                walk(key)
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(data)
    return found


def required_variables(compose_path: str | Path | None = None) -> dict[str, str]:
    """Variables referenced with ``:?`` / ``?``, mapped to their error message."""
    return {
        name: next(r.argument or "" for r in refs if r.required)
        for name, refs in compose_variables(compose_path).items()
        if any(r.required for r in refs)
    }


def _stringify(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def _environment_mapping(raw: Any) -> dict[str, str]:
    if raw is None:
        return {}
    if isinstance(raw, Mapping):
        return {str(k): _stringify(v) for k, v in raw.items()}
    env = {}
    for item in raw:  # list form: ["KEY=value", ...]
        key, _, value = str(item).partition("=")
        env[key] = value
    return env


def service(compose_path: str | Path | None, name: str) -> dict[str, Any]:
    """The raw (merged, uninterpolated) definition of one service."""
    services = load_compose(compose_path).get("services") or {}
    if name not in services:
        raise KeyError(f"service {name!r} is not defined in {_compose_path(compose_path)}")
    return services[name]


# --------------------------------------------------------------------------------------------------
# Native rewriting: compose hostnames and container paths -> local equivalents
# --------------------------------------------------------------------------------------------------


def rewrite_hosts(value: str, hosts: Mapping[str, str] | None) -> str:
    """Replace compose service names used as URL hosts, e.g. ``{"postgres": "127.0.0.1:5433"}``.

    A replacement without a port keeps the URL's port; one with ``host:port`` replaces both.
    """
    if not hosts:
        return value

    def substitute(match: re.Match[str]) -> str:
        host = match["host"]
        if host not in hosts:
            return match.group(0)
        target = hosts[host]
        port = match["port"] or ""
        if ":" in target:
            return f"{match['prefix']}{target}"
        return f"{match['prefix']}{target}{port}"

    return _URL_HOST.sub(substitute, value)


def rewrite_databases(value: str, databases: Mapping[str, str] | None) -> str:
    """Rename databases in URLs, keyed by compose service and path: ``{"postgres/airflow": "it_airflow"}``.

    Several native stacks can share one PostgreSQL or Redis server this way, each with its own
    databases (or Redis database number). Keys use the compose service names, so apply this before
    :func:`rewrite_hosts`.
    """
    if not databases:
        return value

    def substitute(match: re.Match[str]) -> str:
        key = f"{match['host']}/{match['database']}"
        if key not in databases:
            return match.group(0)
        return f"{match['prefix']}{databases[key]}"

    return _URL_DATABASE.sub(substitute, value)


def override_options(argv: list[str], options: Mapping[str, str] | None) -> list[str]:
    """Set ``--flag value`` options in ``argv``: replace the value when the flag is there, else append it.

    Meant for what differs between a container and a native process on a shared machine: listening
    ports, bind addresses and process counts. Both ``--flag value`` and ``--flag=value`` are recognised.
    """
    out = list(argv)
    for flag, value in (options or {}).items():
        for index, part in enumerate(out):
            if part == flag and index + 1 < len(out):
                out[index + 1] = value
                break
            if part.startswith(f"{flag}="):
                out[index] = f"{flag}={value}"
                break
        else:
            out += [flag, value]
    return out


def rewrite_paths(value: str, paths: Mapping[str, str | Path] | None) -> str:
    """Replace container path prefixes (longest first), e.g. ``{"/opt/airflow/dags": "/repo/dags"}``."""
    if not paths:
        return value
    for prefix in sorted(paths, key=len, reverse=True):
        target = str(paths[prefix])
        if value == prefix:
            return target
        if value.startswith(prefix.rstrip("/") + "/"):
            return target.rstrip("/") + value[len(prefix.rstrip("/")) :]
    return value


def native_paths(repo_root: str | Path, state_dir: str | Path) -> dict[str, str]:
    """Container paths of the compose file mapped to a native layout.

    Code comes from the checkout (``repo_root``); everything the containers keep in named volumes goes
    under ``state_dir``.
    """
    repo, state = Path(repo_root), Path(state_dir)
    return {
        "/opt/airflow/dags": str(repo / "dags"),
        "/opt/airflow/plugins": str(repo / "plugins"),
        "/opt/airflow/include": str(repo / "include"),
        "/opt/airflow/deploy": str(repo / "deploy"),
        "/opt/airflow/mloops": str(state / "mloops"),
        "/opt/airflow/auth": str(state / "auth"),
        "/opt/airflow/logs": str(state / "logs"),
        "/mlflow/artifacts": str(state / "mlflow-artifacts"),
        "/mlflow/auth": str(state / "mlflow-auth"),
        "/mlflow/basic_auth.ini": str(repo / "deploy" / "mlflow" / "basic_auth.ini"),
    }


def _resolve(
    value: str,
    variables: Mapping[str, str] | None,
    hosts: Mapping[str, str] | None,
    paths: Mapping[str, str | Path] | None,
    databases: Mapping[str, str] | None = None,
) -> str:
    if variables is None:
        import os

        variables = os.environ
    resolved = rewrite_databases(interpolate(value, variables), databases)
    return rewrite_paths(rewrite_hosts(resolved, hosts), paths)


# --------------------------------------------------------------------------------------------------
# The contract
# --------------------------------------------------------------------------------------------------


def airflow_environment(
    compose_path: str | Path | None = None,
    variables: Mapping[str, str] | None = None,
    *,
    hosts: Mapping[str, str] | None = None,
    paths: Mapping[str, str | Path] | None = None,
    databases: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The environment shared by every Airflow service (``x-airflow-common.environment``).

    ``variables`` resolves ``${VAR...}`` references (default: ``os.environ``); a missing required secret
    raises :class:`MissingVariableError`. ``hosts`` / ``paths`` / ``databases`` optionally rewrite compose
    service names, container paths and database names for native processes (see :func:`native_paths`,
    :func:`rewrite_databases`).
    """
    common = load_compose(compose_path).get(COMMON_KEY) or {}
    raw = _environment_mapping(common.get("environment"))
    return {key: _resolve(value, variables, hosts, paths, databases) for key, value in raw.items()}


def service_environment(
    compose_path: str | Path | None,
    name: str,
    variables: Mapping[str, str] | None = None,
    *,
    hosts: Mapping[str, str] | None = None,
    paths: Mapping[str, str | Path] | None = None,
    databases: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """One service's full environment (shared block plus its own additions), resolved."""
    raw = _environment_mapping(service(compose_path, name).get("environment"))
    return {key: _resolve(value, variables, hosts, paths, databases) for key, value in raw.items()}


def service_command(
    compose_path: str | Path | None,
    name: str,
    variables: Mapping[str, str] | None = None,
    *,
    hosts: Mapping[str, str] | None = None,
    paths: Mapping[str, str | Path] | None = None,
    databases: Mapping[str, str] | None = None,
    options: Mapping[str, str] | None = None,
) -> list[str]:
    """A service's ``command`` as an argv list, resolved.

    The Airflow image entrypoint runs ``airflow ...`` and ``bash ...`` commands unchanged (after waiting
    for the database), so the returned argv is exactly what a native process must run. ``options``
    sets listening ports or bind addresses a native process needs (see :func:`override_options`).
    """
    raw = service(compose_path, name).get("command")
    if raw is None:
        raise KeyError(f"service {name!r} has no command")
    argv = shlex.split(raw) if isinstance(raw, str) else [_stringify(part) for part in raw]
    return override_options([_resolve(part, variables, hosts, paths, databases) for part in argv], options)
