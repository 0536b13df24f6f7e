"""Deployment contract: docker-compose.yml, .env.example, Dockerfile and the deploy/ scripts.

Static checks parse the files with PyYAML. ``test_compose_config_*`` validate the file with a real
compose implementation (``docker-compose`` 1.29 from Debian, or the ``docker compose`` v2 plugin): the
test skips when neither is installed, unless ``CI`` is set, in which case it fails.
"""

from __future__ import annotations

import base64
import configparser
import json
import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:  # pyproject's pythonpath normally does this
    sys.path.insert(0, str(REPO_ROOT))

from tests.deploy.compose_contract import (  # noqa: E402
    AIRFLOW_SERVICES,
    COMMON_KEY,
    MissingVariableError,
    airflow_environment,
    compose_variables,
    interpolate,
    load_compose,
    native_paths,
    required_variables,
    rewrite_hosts,
    service_command,
    service_environment,
    variable_references,
)

pytestmark = pytest.mark.deploy

COMPOSE = REPO_ROOT / "docker-compose.yml"
ENV_EXAMPLE = REPO_ROOT / ".env.example"
DOCKERFILE = REPO_ROOT / "Dockerfile"
AIRFLOW_INIT_SCRIPT = REPO_ROOT / "deploy" / "airflow" / "init.sh"
POSTGRES_INIT_SCRIPT = REPO_ROOT / "deploy" / "postgres" / "init-databases.sh"

REQUIRED_SERVICES = {"postgres", "redis", "mlflow", *AIRFLOW_SERVICES}
SECRETS = {
    "POSTGRES_PASSWORD",
    "AIRFLOW_FERNET_KEY",
    "AIRFLOW_JWT_SECRET",
    "AIRFLOW_API_SECRET_KEY",
    "AIRFLOW_ADMIN_PASSWORD",
    "REDIS_PASSWORD",
    "MLFLOW_ADMIN_PASSWORD",
    "MLFLOW_FLASK_SECRET_KEY",
}
#: Required settings that are not secrets: the per-person Airflow logins.
REQUIRED = {*SECRETS, "AIRFLOW_USERS"}
LONG_RUNNING_AIRFLOW = [s for s in AIRFLOW_SERVICES if s != "airflow-init"]
SECRET_KEY_PATTERN = re.compile(r"PASSWORD|SECRET|FERNET|TOKEN|_KEY$", re.I)
REQUIRED_REF = re.compile(r"^\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*):\?[^}]+\}$")


def dummy_variables() -> dict[str, str]:
    """Values a filled-in .env would have (a valid Fernet key, long random-looking secrets)."""
    return {
        "POSTGRES_PASSWORD": "pg-dummy-" + "p" * 32,
        "AIRFLOW_FERNET_KEY": base64.urlsafe_b64encode(b"k" * 32).decode(),
        "AIRFLOW_JWT_SECRET": "jwt-dummy-" + "j" * 40,
        "AIRFLOW_API_SECRET_KEY": "api-dummy-" + "a" * 40,
        "AIRFLOW_ADMIN_PASSWORD": "admin-dummy-" + "x" * 12,
        "REDIS_PASSWORD": "redis-dummy-" + "r" * 32,
        "MLFLOW_ADMIN_PASSWORD": "mlflow-dummy-" + "m" * 12,
        "MLFLOW_FLASK_SECRET_KEY": "flask-dummy-" + "f" * 40,
        "AIRFLOW_USERS": "admin:admin,alice:op,carol:user,dave:viewer",
    }


def parse_env_example(path: Path = ENV_EXAMPLE) -> dict[str, dict[str, str]]:
    """``{NAME: {"value": ..., "comment": <comment block above it>}}``."""
    entries: dict[str, dict[str, str]] = {}
    comment: list[str] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        if not stripped:
            comment = []
        elif stripped.startswith("#"):
            comment.append(stripped.lstrip("#").strip())
        else:
            name, sep, value = stripped.partition("=")
            assert sep, f".env.example: not NAME=value: {line!r}"
            entries[name.strip()] = {"value": value, "comment": "\n".join(comment)}
    return entries


@pytest.fixture(scope="module")
def compose() -> dict:
    return load_compose(COMPOSE)


@pytest.fixture(scope="module")
def services(compose) -> dict:
    return compose["services"]


def _depends(svc: dict) -> dict[str, str]:
    raw = svc.get("depends_on") or {}
    if isinstance(raw, list):
        return {name: "service_started" for name in raw}
    return {name: (spec or {}).get("condition", "service_started") for name, spec in raw.items()}


def _healthcheck_text(svc: dict) -> str:
    test = (svc.get("healthcheck") or {}).get("test")
    return " ".join(test) if isinstance(test, list) else str(test or "")


# --------------------------------------------------------------------------------------------------
# Structure
# --------------------------------------------------------------------------------------------------


def test_compose_spec_without_version_key(compose):
    assert "version" not in compose, "compose spec: no top-level version key"
    assert COMMON_KEY in compose


def test_required_services_exist(services):
    missing = REQUIRED_SERVICES - set(services)
    assert not missing, f"missing services: {sorted(missing)}"
    assert services["postgres"]["image"] == "postgres:16"
    assert services["redis"]["image"] == "redis:7.2-bookworm"


def test_service_commands(services):
    expected = {
        "airflow-apiserver": ["airflow", "api-server"],
        "airflow-scheduler": ["airflow", "scheduler"],
        "airflow-dag-processor": ["airflow", "dag-processor"],
        "airflow-triggerer": ["airflow", "triggerer"],
        "airflow-worker": ["python", "-m", "mloops.warm", "celery", "worker"],
    }
    for name, argv in expected.items():
        assert services[name]["command"] == argv, name


def test_airflow_services_share_image_and_common_environment(compose, services):
    common = compose[COMMON_KEY]
    common_env = common["environment"]
    for name in AIRFLOW_SERVICES:
        svc = services[name]
        assert svc["image"] == common["image"], name
        assert svc.get("build") == common["build"], name
        env = svc["environment"]
        for key, value in common_env.items():
            assert env.get(key) == value, f"{name}: {key} differs from {COMMON_KEY}"
    # MLflow runs from the same image (it contains mlflow) but gets no Airflow settings.
    assert services["mlflow"]["image"] == common["image"]
    assert not any(k.startswith("AIRFLOW__") for k in services["mlflow"].get("environment") or {})


def test_common_environment_values(compose, services):
    env = compose[COMMON_KEY]["environment"]
    assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    broker = env["AIRFLOW__CELERY__BROKER_URL"]
    assert broker.startswith("redis://:${REDIS_PASSWORD:?") and broker.endswith("}@redis:6379/0")
    assert REQUIRED_REF.match(env["MLFLOW_TRACKING_PASSWORD"])["name"] == "MLFLOW_ADMIN_PASSWORD"
    assert env["MLFLOW_TRACKING_USERNAME"] == "${MLFLOW_ADMIN_USERNAME:-admin}"
    assert env["AIRFLOW__CELERY__RESULT_BACKEND"].startswith("db+postgresql://")
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql+psycopg2://")
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].endswith("@postgres:5432/airflow")
    assert env["AIRFLOW__CELERY__RESULT_BACKEND"].endswith("@postgres:5432/airflow")
    assert env["MLOOPS_METRICS_DB_URI"].endswith("@postgres:5432/mloops")
    assert REQUIRED_REF.match(env["AIRFLOW__CORE__FERNET_KEY"])["name"] == "AIRFLOW_FERNET_KEY"
    assert REQUIRED_REF.match(env["AIRFLOW__API_AUTH__JWT_SECRET"])["name"] == "AIRFLOW_JWT_SECRET"
    assert REQUIRED_REF.match(env["AIRFLOW__API__SECRET_KEY"])["name"] == "AIRFLOW_API_SECRET_KEY"
    assert env["AIRFLOW__API_AUTH__JWT_ISSUER"] == "mloops"
    assert env["AIRFLOW__CORE__LOAD_EXAMPLES"] == "false"
    assert env["AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION"] == "true"
    assert env["AIRFLOW__CORE__DAGS_FOLDER"] == "/opt/airflow/dags"
    assert env["AIRFLOW__CORE__PLUGINS_FOLDER"] == "/opt/airflow/plugins"
    assert env["AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK"] == "true"
    assert env["AIRFLOW__CORE__AUTH_MANAGER"] == (
        "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
    )
    # One login per person (AIRFLOW_USERS), not a shared admin.
    assert REQUIRED_REF.match(env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"])["name"] == "AIRFLOW_USERS"
    assert env["MLOOPS_HOME"] == "/opt/airflow/mloops"
    # The data root is the shared volume unless .env puts it on object storage (s3://<conn>@bucket/prefix).
    assert env["MLOOPS_DATA_ROOT"] == "${MLOOPS_DATA_ROOT:-/opt/airflow/mloops/data}"
    assert env["MLOOPS_DATA_CONN_ID"] == "${MLOOPS_DATA_CONN_ID:-}"
    assert env["MLOOPS_MODELS_DIR"] == "/opt/airflow/include/models"
    assert env["MLOOPS_EXPECTATIONS_DIR"] == "/opt/airflow/include/expectations"
    assert env["MLOOPS_REGISTRY_POOL"] == "mloops_registry"
    assert env["MLFLOW_TRACKING_URI"] == "http://mlflow:5000"
    assert env["MLFLOW_DISABLE_TELEMETRY"] == "true"
    assert env["DO_NOT_TRACK"] == "1"
    # Values are strings in the YAML (compose rejects unquoted booleans in environment mappings).
    assert all(isinstance(v, str) for v in env.values())


def test_execution_api_url_points_at_the_apiserver(compose, services):
    url = compose[COMMON_KEY]["environment"]["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"]
    assert url == "http://airflow-apiserver:8080/execution/"
    assert "airflow-apiserver" in services
    assert services["airflow-apiserver"]["command"] == ["airflow", "api-server"]
    assert any(str(p).endswith(":8080") for p in services["airflow-apiserver"]["ports"])


def test_mlops_settings_match_the_package(compose):
    """Every setting mloops.settings reads that the stack needs is set in the shared environment."""
    env = compose[COMMON_KEY]["environment"]
    settings_src = REPO_ROOT / "plugins" / "mloops" / "settings.py"
    if settings_src.exists():
        names = set(re.findall(r'"((?:MLOOPS|MLFLOW)_[A-Z_]+)"', settings_src.read_text(encoding="utf-8")))
        # MLOOPS_MLFLOW_ARTIFACTS only applies to an embedded (non-server) MLflow store.
        missing = names - set(env) - {"MLOOPS_MLFLOW_ARTIFACTS"}
        assert not missing, f"settings read by mloops but not set in compose: {sorted(missing)}"


def test_code_and_state_mounts(compose, services):
    for name in AIRFLOW_SERVICES:
        volumes = services[name]["volumes"]
        for folder in ("dags", "plugins", "include"):
            assert any(v.startswith(f"./{folder}:/opt/airflow/{folder}") for v in volumes), (name, folder)
        assert "airflow-logs:/opt/airflow/logs" in volumes, name
        # MLOOPS_DATA_ROOT (/opt/airflow/mloops/data) lives on one named volume shared by all services.
        assert "mloops-data:/opt/airflow/mloops" in volumes, name
    for volume in ("airflow-logs", "mloops-data", "mlflow-artifacts", "postgres-data", "airflow-auth"):
        assert volume in compose["volumes"], volume
    assert "mlflow-artifacts:/mlflow/artifacts" in services["mlflow"]["volumes"]
    # The Simple auth manager's password file is shared by airflow-init (writer) and the api-server.
    for name in ("airflow-init", "airflow-apiserver"):
        assert "airflow-auth:/opt/airflow/auth" in services[name]["volumes"], name
    auth_file = compose[COMMON_KEY]["environment"]["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"]
    assert auth_file.startswith("/opt/airflow/auth/")


# --------------------------------------------------------------------------------------------------
# Secrets
# --------------------------------------------------------------------------------------------------


def test_secrets_use_the_required_form():
    refs = compose_variables(COMPOSE)
    assert SECRETS <= set(refs), f"secrets not referenced: {sorted(SECRETS - set(refs))}"
    for name in SECRETS:
        for ref in refs[name]:
            assert ref.operator == ":?", f"{name} must always be referenced as ${{{name}:?message}}"
            assert ref.argument and name in ref.argument, f"{name}: the message should name the variable"
    # Nothing else is required, and no variable has an inline default that looks like a secret.
    assert set(required_variables(COMPOSE)) == REQUIRED
    for name, name_refs in refs.items():
        if SECRET_KEY_PATTERN.search(name):
            assert all(not r.has_default for r in name_refs), f"{name} has a default value"


def test_no_literal_passwords(compose, services):
    text = COMPOSE.read_text(encoding="utf-8")
    # URL credentials: the password part is always a required variable.
    for match in re.finditer(r"://(?P<user>[^:/@\s]+):(?P<password>[^@\s]+)@", text):
        assert REQUIRED_REF.match(match["password"]), f"literal credential in URL: {match.group(0)}"

    def check_env(where: str, env: dict) -> None:
        for key, value in (env or {}).items():
            if SECRET_KEY_PATTERN.search(key) and not key.endswith("_FILE"):
                assert REQUIRED_REF.match(str(value)), f"{where}: {key} is not a ${{VAR:?...}} reference"

    check_env(COMMON_KEY, compose[COMMON_KEY]["environment"])
    for name, svc in services.items():
        env = svc.get("environment") or {}
        check_env(name, env if isinstance(env, dict) else dict(e.split("=", 1) for e in env))
        for arg in svc.get("command") or []:
            assert not re.search(r"--password[= ]", str(arg)), f"{name}: password on the command line"


def test_worker_is_scalable(services):
    worker = services["airflow-worker"]
    assert "container_name" not in worker
    assert "ports" not in worker
    assert "hostname" not in worker
    assert worker["environment"]["DUMB_INIT_SETSID"] == "0"


def test_mlflow_server_command(services):
    mlflow = services["mlflow"]
    argv = mlflow["command"]
    assert argv[:2] == ["mlflow", "server"]

    def flag(name: str) -> str:
        assert name in argv, f"mlflow command lacks {name}"
        return argv[argv.index(name) + 1]

    assert flag("--host") == "0.0.0.0"
    assert flag("--port") == "5000"
    allowed = flag("--allowed-hosts").split(",")
    assert "mlflow:*" in allowed, "workers reach MLflow as http://mlflow:5000 (Host header mlflow:5000)"
    assert {"localhost:*", "127.0.0.1:*"} <= set(allowed)
    backend = flag("--backend-store-uri")
    assert backend.startswith("postgresql+psycopg2://") and backend.endswith("@postgres:5432/mlflow")
    assert flag("--artifacts-destination") == "/mlflow/artifacts"
    assert "--serve-artifacts" in argv
    # The Airflow image entrypoint would run `airflow db check` and prefix `airflow`.
    assert mlflow["entrypoint"] == ["/usr/bin/dumb-init", "--"]
    assert mlflow["environment"]["MLFLOW_DISABLE_TELEMETRY"] == "true"
    # Basic auth: the admin account from .env, the auth DB on its own volume, the config from deploy/.
    assert flag("--app-name") == "basic-auth"
    env = mlflow["environment"]
    assert REQUIRED_REF.match(env["MLFLOW_AUTH_ADMIN_PASSWORD"])["name"] == "MLFLOW_ADMIN_PASSWORD"
    assert REQUIRED_REF.match(env["MLFLOW_FLASK_SERVER_SECRET_KEY"])["name"] == "MLFLOW_FLASK_SECRET_KEY"
    assert env["MLFLOW_AUTH_CONFIG_PATH"] == "/mlflow/basic_auth.ini"
    assert "./deploy/mlflow/basic_auth.ini:/mlflow/basic_auth.ini:ro" in mlflow["volumes"]
    assert mlflow["working_dir"] == "/mlflow/auth" and "mlflow-auth:/mlflow/auth" in mlflow["volumes"]
    ini = configparser.ConfigParser()
    ini.read(REPO_ROOT / "deploy" / "mlflow" / "basic_auth.ini")
    assert ini["mlflow"]["database_uri"] == "sqlite:///basic_auth.db"
    assert "admin_password" not in ini["mlflow"], "the admin password comes from .env only"
    requirements = (REPO_ROOT / "requirements.txt").read_text().splitlines()
    assert any(line.startswith("mlflow[auth]==") for line in requirements), "basic auth needs Flask-WTF"
    assert "flask_wtf" in DOCKERFILE.read_text(), "the image build checks the basic-auth app imports"


def test_redis_requires_a_password(services):
    redis = services["redis"]
    argv = service_command(COMPOSE, "redis", dummy_variables(), options={"--port": "7000"})
    assert argv[:2] == ["sh", "-c"] and 'redis-server --requirepass "$REDIS_PASSWORD" "$@"' in argv[2]
    assert argv[3:] == ["redis-server", "--port", "7000"], "extra options reach redis-server"
    assert dummy_variables()["REDIS_PASSWORD"] not in " ".join(argv), "not on the command line"
    for key in ("REDIS_PASSWORD", "REDISCLI_AUTH"):
        assert REQUIRED_REF.match(redis["environment"][key])["name"] == "REDIS_PASSWORD"


# --------------------------------------------------------------------------------------------------
# Ordering and health
# --------------------------------------------------------------------------------------------------


def test_depends_on_ordering(services):
    init = _depends(services["airflow-init"])
    assert init.get("postgres") == "service_healthy"
    assert init.get("redis") == "service_healthy"
    for name in LONG_RUNNING_AIRFLOW:
        deps = _depends(services[name])
        assert deps.get("airflow-init") == "service_completed_successfully", name
        assert deps.get("postgres") == "service_healthy", name
        assert deps.get("redis") == "service_healthy", name
    worker = _depends(services["airflow-worker"])
    assert worker.get("airflow-apiserver") == "service_healthy"
    assert worker.get("mlflow") == "service_healthy"
    assert _depends(services["mlflow"]).get("postgres") == "service_healthy"


def test_depends_on_targets_exist_and_are_acyclic(services):
    for name, svc in services.items():
        for target, condition in _depends(svc).items():
            assert target in services, f"{name} depends on unknown {target}"
            if condition == "service_healthy":
                assert "healthcheck" in services[target], (
                    f"{name} waits for {target}, which has no healthcheck"
                )
    state: dict[str, str] = {}

    def visit(node: str, path: tuple[str, ...]) -> None:
        if state.get(node) == "done":
            return
        assert state.get(node) != "active", f"depends_on cycle: {' -> '.join((*path, node))}"
        state[node] = "active"
        for target in _depends(services[node]):
            visit(target, (*path, node))
        state[node] = "done"

    for name in services:
        visit(name, ())


def test_healthchecks(compose, services):
    expected = {
        "postgres": "pg_isready",
        "redis": "redis-cli ping",
        "airflow-apiserver": "http://localhost:8080/api/v2/version",
        "airflow-scheduler": "http://localhost:8974/health",
        "mlflow": "http://localhost:5000/health",
        "airflow-dag-processor": "DagProcessorJob",
        "airflow-triggerer": "TriggererJob",
        "airflow-worker": "inspect ping",
    }
    for name, needle in expected.items():
        assert needle in _healthcheck_text(services[name]), f"{name}: healthcheck should use {needle!r}"
    assert compose[COMMON_KEY]["environment"]["AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK"] == "true"


def test_postgres_creates_the_three_databases(services):
    pg = services["postgres"]
    assert pg["environment"]["POSTGRES_DB"] == "airflow"
    assert set(pg["environment"]["MLOOPS_EXTRA_DATABASES"].split()) == {"mlflow", "mloops"}
    assert any(
        v.startswith("./deploy/postgres/init-databases.sh:/docker-entrypoint-initdb.d/")
        for v in pg["volumes"]
    )
    assert POSTGRES_INIT_SCRIPT.exists()
    assert POSTGRES_INIT_SCRIPT.stat().st_mode & stat.S_IXUSR


def test_postgres_init_script_runs_create_database(tmp_path):
    """Run the init script with a fake psql that records the SQL it receives."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "psql.log"
    fake = bin_dir / "psql"
    fake.write_text(f'#!/usr/bin/env bash\necho "ARGS $*" >> {log}\ncat >> {log}\n')
    fake.chmod(0o755)
    env = {
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        "POSTGRES_USER": "mloops",
        "POSTGRES_DB": "airflow",
        "MLOOPS_EXTRA_DATABASES": "mlflow mloops",
    }
    result = subprocess.run(["bash", str(POSTGRES_INIT_SCRIPT)], env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    sql = log.read_text()
    for db in ("mlflow", "mloops"):
        assert f'CREATE DATABASE {db} OWNER "mloops"' in sql
        assert f"datname = '{db}'" in sql
    assert "--dbname airflow" in sql


# --------------------------------------------------------------------------------------------------
# airflow-init
# --------------------------------------------------------------------------------------------------


def test_airflow_init_service(services):
    init = services["airflow-init"]
    assert service_command(COMPOSE, "airflow-init", {}) == ["bash", "/opt/airflow/deploy/airflow/init.sh"]
    assert (
        REQUIRED_REF.match(init["environment"]["AIRFLOW_ADMIN_PASSWORD"])["name"] == "AIRFLOW_ADMIN_PASSWORD"
    )
    # Only airflow-init sees the admin password.
    for name in LONG_RUNNING_AIRFLOW:
        assert "AIRFLOW_ADMIN_PASSWORD" not in services[name]["environment"], name
    text = AIRFLOW_INIT_SCRIPT.read_text(encoding="utf-8")
    assert "airflow db migrate" in text
    assert 'airflow pools set "${pool}" 1 "Serializes MLflow registry writes"' in text
    assert "mloops_registry" in text


def _run_init(
    tmp_path: Path, env_overrides: dict[str, str | None]
) -> tuple[subprocess.CompletedProcess, Path]:
    """Run deploy/airflow/init.sh natively with a fake `airflow` that records its arguments."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    calls = tmp_path / "airflow-calls.log"
    fake = bin_dir / "airflow"
    fake.write_text(f'#!/usr/bin/env bash\nprintf "%s\\n" "$*" >> {calls}\n')
    fake.chmod(0o755)
    env = airflow_environment(COMPOSE, dummy_variables(), paths=native_paths(REPO_ROOT, tmp_path))
    env |= service_environment(
        COMPOSE, "airflow-init", dummy_variables(), paths=native_paths(REPO_ROOT, tmp_path)
    )
    env["PATH"] = f"{bin_dir}:{Path(sys.executable).parent}:/usr/bin:/bin"
    for key, value in env_overrides.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    result = subprocess.run(["bash", str(AIRFLOW_INIT_SCRIPT)], env=env, capture_output=True, text=True)
    return result, calls


def test_airflow_init_script_happy_path(tmp_path):
    result, calls = _run_init(tmp_path, {})
    assert result.returncode == 0, result.stdout + result.stderr
    assert calls.read_text().splitlines() == [
        "db migrate",
        "pools set mloops_registry 1 Serializes MLflow registry writes",
    ]
    passwords_file = tmp_path / "auth" / "simple_auth_manager_passwords.json"
    passwords = json.loads(passwords_file.read_text())
    # One password per person of AIRFLOW_USERS: the admin's as given, the others generated.
    assert set(passwords) == {"admin", "alice", "carol", "dave"}
    assert passwords["admin"] == dummy_variables()["AIRFLOW_ADMIN_PASSWORD"]
    assert len({passwords[n] for n in ("alice", "carol", "dave")}) == 3
    assert all(len(passwords[n]) >= 20 for n in ("alice", "carol", "dave"))
    assert stat.S_IMODE(passwords_file.stat().st_mode) == 0o600
    assert "generated passwords for alice, carol, dave" in result.stdout
    for secret in passwords.values():
        assert secret not in result.stdout + result.stderr, "no password is printed"
    # Re-running keeps the people's passwords, replaces the admin's and drops people no longer listed.
    result, _ = _run_init(
        tmp_path,
        {
            "AIRFLOW_ADMIN_PASSWORD": "a-new-password-123",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin,alice:op",
        },
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(passwords_file.read_text()) == {
        "admin": "a-new-password-123",
        "alice": passwords["alice"],
    }


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"AIRFLOW_ADMIN_PASSWORD": None}, "AIRFLOW_ADMIN_PASSWORD"),
        ({"AIRFLOW__API_AUTH__JWT_SECRET": ""}, "AIRFLOW__API_AUTH__JWT_SECRET"),
        ({"AIRFLOW__CORE__FERNET_KEY": "not-a-fernet-key"}, "AIRFLOW_FERNET_KEY is not a valid Fernet key"),
        ({"AIRFLOW__API__SECRET_KEY": "short"}, "AIRFLOW_API_SECRET_KEY must be at least 32 characters"),
        ({"AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "alice:admin"}, "AIRFLOW_USERS must list admin:admin"),
        (
            {"AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin,bob:approver"},
            "AIRFLOW_USERS entry 'bob:approver' is not name:role with role one of viewer, user, op, admin",
        ),
        ({"AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin,bob:op,bob:user"}, "lists 'bob' twice"),
    ],
)
def test_airflow_init_script_refuses_missing_or_bad_secrets(tmp_path, overrides, message):
    result, calls = _run_init(tmp_path, overrides)
    assert result.returncode != 0
    assert message in result.stderr
    assert not calls.exists(), "airflow must not run before the secrets are validated"
    assert "not-a-fernet-key" not in result.stderr


# --------------------------------------------------------------------------------------------------
# .env.example and Dockerfile
# --------------------------------------------------------------------------------------------------


def test_env_example_lists_every_variable():
    entries = parse_env_example()
    referenced = set(compose_variables(COMPOSE))
    missing = referenced - set(entries)
    assert not missing, f".env.example lacks {sorted(missing)}"
    unused = set(entries) - referenced
    assert not unused, f".env.example lists variables the compose file does not use: {sorted(unused)}"
    for name, entry in entries.items():
        assert entry["value"] == "", f"{name}: .env.example values must be empty"
        assert entry["comment"], f"{name}: needs a comment"
    for name in SECRETS:
        comment = entries[name]["comment"]
        assert re.search(r"Generate: python -c ", comment), f"{name}: needs a generation command"
    assert "Fernet.generate_key()" in entries["AIRFLOW_FERNET_KEY"]["comment"]


def test_env_example_generation_commands_work():
    entries = parse_env_example()
    for name in SECRETS:
        command = re.search(r'Generate: python -c "(?P<code>[^"]+)"', entries[name]["comment"])["code"]
        value = subprocess.run(
            [sys.executable, "-c", command], capture_output=True, text=True, check=True
        ).stdout.strip()
        assert value and re.fullmatch(r"[A-Za-z0-9_\-=]+", value), f"{name}: generated value is not URL-safe"
        if name in {"AIRFLOW_JWT_SECRET", "AIRFLOW_API_SECRET_KEY"}:
            assert len(value) >= 32
        if name == "AIRFLOW_ADMIN_PASSWORD":
            assert len(value) >= 12


def test_env_file_is_git_ignored():
    gitignore = REPO_ROOT / ".gitignore"
    assert gitignore.exists() and ".env" in gitignore.read_text().split(), ".env must be git-ignored"


def _dockerfile_instructions() -> list[tuple[str, str]]:
    text = DOCKERFILE.read_text(encoding="utf-8").replace("\\\n", " ")
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            out.append((keyword.upper(), rest.strip()))
    return out


def test_dockerfile():
    instructions = _dockerfile_instructions()
    froms = [rest for kw, rest in instructions if kw == "FROM"]
    assert froms == ["apache/airflow:3.3.2-python3.11"]
    pip_index = next(i for i, (kw, rest) in enumerate(instructions) if kw == "RUN" and "pip install" in rest)
    pip = instructions[pip_index][1]
    assert re.search(r"pip install --no-cache-dir -r \S*requirements\.txt -c \S*constraints\.txt", pip)
    assert "apache-airflow==" not in pip, "constraints.txt pins Airflow; do not install another version"
    users = [rest for kw, rest in instructions[:pip_index] if kw == "USER"]
    assert users and users[-1] == "airflow", "pip must run as the airflow user"
    copies = [rest for kw, rest in instructions if kw == "COPY"]
    assert any("requirements.txt" in c and "constraints.txt" in c for c in copies)
    for src, dest in (
        ("plugins/", "/opt/airflow/plugins/"),
        ("dags/", "/opt/airflow/dags/"),
        ("include/", "/opt/airflow/include/"),
    ):
        assert any(c.split()[-2:] == [src, dest] for c in copies), f"COPY {src} {dest}"
    assert any(c.split()[-2:] == ["deploy/airflow/", "/opt/airflow/deploy/airflow/"] for c in copies)
    last_user = [rest for kw, rest in instructions if kw == "USER"][-1]
    assert last_user == "airflow", "the image must not end as root"


def test_dockerfile_has_no_secrets():
    for keyword, rest in _dockerfile_instructions():
        if keyword in {"ENV", "ARG"}:
            for name in re.findall(r"([A-Za-z_][A-Za-z0-9_]*)=", rest) or [rest.split()[0]]:
                assert not SECRET_KEY_PATTERN.search(name), f"{keyword} {name} looks like a secret"
    assert "PASSWORD" not in DOCKERFILE.read_text().upper().replace("NO SECRETS", "")


# --------------------------------------------------------------------------------------------------
# The contract helpers (tests/deploy/compose_contract.py)
# --------------------------------------------------------------------------------------------------


def test_interpolate_follows_compose_rules():
    v = {"SET": "x", "EMPTY": ""}
    assert interpolate("$$HOME $${HOSTNAME}", v) == "$HOME ${HOSTNAME}"
    assert interpolate("${SET} $SET", v) == "x x"
    assert interpolate("${MISSING:-d} ${EMPTY:-d} ${EMPTY-d} ${MISSING-d}", v) == "d d  d"
    assert interpolate("${SET:+alt}${EMPTY:+alt}${EMPTY+alt}", v) == "altalt"
    assert interpolate("${EMPTY?must be set}", v) == ""
    with pytest.raises(MissingVariableError) as exc:
        interpolate("${EMPTY:?EMPTY is required}", v)
    assert exc.value.name == "EMPTY" and exc.value.message == "EMPTY is required"
    with pytest.raises(MissingVariableError):
        interpolate("${MISSING?nope}", v)
    refs = variable_references("a ${A:?m} $$B ${C:-d} $D")
    assert [(r.name, r.operator) for r in refs] == [("A", ":?"), ("C", ":-"), ("D", None)]


def test_airflow_environment_resolves_placeholders():
    variables = dummy_variables()
    env = airflow_environment(COMPOSE, variables)
    pw = variables["POSTGRES_PASSWORD"]
    assert (
        env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
        == f"postgresql+psycopg2://mloops:{pw}@postgres:5432/airflow"
    )
    assert env["AIRFLOW__CELERY__RESULT_BACKEND"] == f"db+postgresql://mloops:{pw}@postgres:5432/airflow"
    assert env["MLOOPS_METRICS_DB_URI"] == f"postgresql+psycopg2://mloops:{pw}@postgres:5432/mloops"
    assert env["AIRFLOW__CORE__FERNET_KEY"] == variables["AIRFLOW_FERNET_KEY"]
    assert env["AIRFLOW__API_AUTH__JWT_SECRET"] == variables["AIRFLOW_JWT_SECRET"]
    assert env["AIRFLOW__API__SECRET_KEY"] == variables["AIRFLOW_API_SECRET_KEY"]
    assert not any("${" in value for value in env.values())
    assert "AIRFLOW_ADMIN_PASSWORD" not in env
    # POSTGRES_USER is optional.
    custom = airflow_environment(COMPOSE, {**variables, "POSTGRES_USER": "ops"})
    assert custom["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql+psycopg2://ops:")


def test_airflow_environment_refuses_missing_secret():
    for secret in REQUIRED - {"AIRFLOW_ADMIN_PASSWORD", "MLFLOW_FLASK_SECRET_KEY"}:
        variables = dummy_variables()
        del variables[secret]
        with pytest.raises(MissingVariableError) as exc:
            airflow_environment(COMPOSE, variables)
        assert exc.value.name == secret
        assert f"{secret} is required" in str(exc.value)
    # The admin password is only needed by airflow-init.
    with pytest.raises(MissingVariableError):
        service_environment(
            COMPOSE,
            "airflow-init",
            {k: v for k, v in dummy_variables().items() if k != "AIRFLOW_ADMIN_PASSWORD"},
        )


def test_every_airflow_service_environment_is_the_shared_one_plus_extras():
    variables = dummy_variables()
    common = airflow_environment(COMPOSE, variables)
    extras = {
        "airflow-worker": {"DUMB_INIT_SETSID", "OMP_NUM_THREADS"},
        "airflow-init": {"AIRFLOW_ADMIN_USERNAME", "AIRFLOW_ADMIN_PASSWORD"},
    }
    for name in AIRFLOW_SERVICES:
        env = service_environment(COMPOSE, name, variables)
        assert {k: env[k] for k in common} == common, name
        assert set(env) - set(common) == extras.get(name, set()), name


def test_native_rewrites_for_the_integration_test(tmp_path):
    hosts = {
        "postgres": "127.0.0.1:5433",
        "redis": "127.0.0.1",
        "airflow-apiserver": "127.0.0.1",
        "mlflow": "127.0.0.1:5001",
    }
    paths = native_paths(REPO_ROOT, tmp_path)
    env = airflow_environment(COMPOSE, dummy_variables(), hosts=hosts, paths=paths)
    pw = dummy_variables()["POSTGRES_PASSWORD"]
    assert (
        env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
        == f"postgresql+psycopg2://mloops:{pw}@127.0.0.1:5433/airflow"
    )
    redis_pw = dummy_variables()["REDIS_PASSWORD"]
    assert env["AIRFLOW__CELERY__BROKER_URL"] == f"redis://:{redis_pw}@127.0.0.1:6379/0"
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://127.0.0.1:8080/execution/"
    assert env["MLFLOW_TRACKING_URI"] == "http://127.0.0.1:5001"
    assert env["AIRFLOW__CORE__DAGS_FOLDER"] == str(REPO_ROOT / "dags")
    assert env["AIRFLOW__CORE__PLUGINS_FOLDER"] == str(REPO_ROOT / "plugins")
    assert env["MLOOPS_MODELS_DIR"] == str(REPO_ROOT / "include" / "models")
    assert env["MLOOPS_DATA_ROOT"] == str(tmp_path / "mloops" / "data")
    assert rewrite_hosts("http://mlflow-other:5000", hosts) == "http://mlflow-other:5000"

    init = service_command(COMPOSE, "airflow-init", {}, paths=paths)
    assert init == ["bash", str(REPO_ROOT / "deploy" / "airflow" / "init.sh")]
    assert Path(init[1]).exists()


def test_service_command_resolves_every_service():
    variables = dummy_variables()
    for name in LONG_RUNNING_AIRFLOW:
        argv = service_command(COMPOSE, name, variables)
        assert argv[0] == "airflow" or argv[:3] == ["python", "-m", "mloops.warm"], name
    mlflow = service_command(COMPOSE, "mlflow", variables)
    uri = mlflow[mlflow.index("--backend-store-uri") + 1]
    assert uri == f"postgresql+psycopg2://mloops:{variables['POSTGRES_PASSWORD']}@postgres:5432/mlflow"
    native = service_command(
        COMPOSE,
        "mlflow",
        variables,
        hosts={"postgres": "127.0.0.1"},
        paths={"/mlflow/artifacts": "/tmp/artifacts"},
    )
    assert native[native.index("--backend-store-uri") + 1].endswith("@127.0.0.1:5432/mlflow")
    assert native[native.index("--artifacts-destination") + 1] == "/tmp/artifacts"
    assert native[native.index("--allowed-hosts") + 1] == "mlflow:*,localhost:*,127.0.0.1:*"
    with pytest.raises(MissingVariableError):
        service_command(COMPOSE, "mlflow", {})
    with pytest.raises(KeyError):
        service_command(COMPOSE, "no-such-service", variables)


# --------------------------------------------------------------------------------------------------
# A real compose implementation
# --------------------------------------------------------------------------------------------------


def _compose_cli() -> list[str]:
    if path := shutil.which("docker-compose"):
        return [path]
    docker = shutil.which("docker")
    if docker:
        probe = subprocess.run([docker, "compose", "version"], capture_output=True, text=True)
        if probe.returncode == 0:
            return [docker, "compose"]
    message = (
        "no compose implementation: install one, e.g. "
        "`apt-get install -y --no-install-recommends docker-compose` (Debian, 1.29) "
        "or the docker compose plugin"
    )
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def _write_env_file(path: Path, drop: str | None = None) -> Path:
    """A .env built from .env.example: secrets filled with dummies, optional settings left empty."""
    variables = dummy_variables()
    lines = []
    for name, entry in parse_env_example().items():
        if name == drop:
            continue
        lines.append(f"{name}={variables.get(name, entry['value'])}")
    path.write_text("\n".join(lines) + "\n")
    return path


def _run_compose(cli: list[str], env_file: Path, *args: str) -> subprocess.CompletedProcess:
    referenced = set(compose_variables(COMPOSE))
    env = {k: v for k, v in os.environ.items() if k not in referenced and not k.startswith("COMPOSE_")}
    return subprocess.run(
        [*cli, "--env-file", str(env_file), "-f", str(COMPOSE), "--project-directory", str(REPO_ROOT), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_compose_config_accepts_the_file(tmp_path):
    cli = _compose_cli()
    result = _run_compose(cli, _write_env_file(tmp_path / ".env"), "config", "-q")
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_config_matches_the_contract(tmp_path):
    """The real compose interpolation gives the same commands and environment as compose_contract."""
    cli = _compose_cli()
    result = _run_compose(cli, _write_env_file(tmp_path / ".env"), "config")
    assert result.returncode == 0, result.stderr
    rendered = yaml.safe_load(result.stdout)["services"]
    variables = {**{name: "" for name in parse_env_example()}, **dummy_variables()}
    for name in AIRFLOW_SERVICES:
        env = {k: str(v) for k, v in rendered[name]["environment"].items()}
        assert env == service_environment(COMPOSE, name, variables), name
        assert [str(a) for a in rendered[name]["command"]] == service_command(COMPOSE, name, variables), name
    mlflow_cmd = [str(a) for a in rendered["mlflow"]["command"]]
    assert mlflow_cmd == service_command(COMPOSE, "mlflow", variables)
    assert "airflow-worker" in rendered and not rendered["airflow-worker"].get("ports")


@pytest.mark.parametrize("secret", sorted(SECRETS))
def test_compose_config_refuses_a_missing_secret(tmp_path, secret):
    cli = _compose_cli()
    result = _run_compose(cli, _write_env_file(tmp_path / ".env", drop=secret), "config", "-q")
    assert result.returncode != 0, f"compose accepted the file without {secret}"
    output = result.stdout + result.stderr
    assert f"{secret} is required - copy .env.example to .env and fill it in" in output
