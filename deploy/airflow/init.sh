#!/usr/bin/env bash
# airflow-init (one-shot): refuse to run without the required secrets, migrate the Airflow metadata DB,
# set the admin password for the Simple auth manager, create the mloops_registry pool.
# Runs through the official image entrypoint, which has already waited for `airflow db check`.
# Idempotent: safe to re-run (`docker compose up airflow-init`), e.g. after an upgrade or to change
# the admin password.
set -euo pipefail

required=(
    AIRFLOW__DATABASE__SQL_ALCHEMY_CONN
    AIRFLOW__CELERY__RESULT_BACKEND
    AIRFLOW__CORE__FERNET_KEY
    AIRFLOW__API_AUTH__JWT_SECRET
    AIRFLOW__API__SECRET_KEY
    AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE
    AIRFLOW_ADMIN_PASSWORD
    MLOOPS_METRICS_DB_URI
)
missing=()
for name in "${required[@]}"; do
    if [[ -z "${!name:-}" ]]; then
        missing+=("${name}")
    fi
done
if (( ${#missing[@]} > 0 )); then
    echo "airflow-init: ERROR: required settings are missing: ${missing[*]}" >&2
    echo "airflow-init: copy .env.example to .env and fill in every secret." >&2
    exit 1
fi

# Validate the shape of the secrets without printing them.
python - <<'PY'
import os
import sys

from cryptography.fernet import Fernet

errors = []
try:
    Fernet(os.environ["AIRFLOW__CORE__FERNET_KEY"])
except Exception:
    errors.append("AIRFLOW_FERNET_KEY is not a valid Fernet key (32 url-safe base64-encoded bytes)")
for env, name in (("AIRFLOW__API_AUTH__JWT_SECRET", "AIRFLOW_JWT_SECRET"),
                  ("AIRFLOW__API__SECRET_KEY", "AIRFLOW_API_SECRET_KEY")):
    if len(os.environ[env]) < 32:
        errors.append(f"{name} must be at least 32 characters")
if len(os.environ["AIRFLOW_ADMIN_PASSWORD"]) < 12:
    errors.append("AIRFLOW_ADMIN_PASSWORD must be at least 12 characters")
if errors:
    for error in errors:
        print(f"airflow-init: ERROR: {error}", file=sys.stderr)
    sys.exit(1)
PY

echo "airflow-init: migrating the Airflow metadata database"
airflow db migrate

echo "airflow-init: writing the Simple auth manager password for ${AIRFLOW_ADMIN_USERNAME:-admin}"
python - <<'PY'
import json
import os
import sys

path = os.environ["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"]
username = os.environ.get("AIRFLOW_ADMIN_USERNAME") or "admin"
users = [entry.split(":")[0].strip()
         for entry in os.environ.get("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS", "").split(",") if entry.strip()]
if username not in users:
    sys.exit(f"airflow-init: ERROR: user {username!r} is not in AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS")

passwords = {}
if os.path.exists(path):
    with open(path) as fh:
        content = fh.read().strip()
    passwords = json.loads(content) if content else {}
passwords[username] = os.environ["AIRFLOW_ADMIN_PASSWORD"]

os.makedirs(os.path.dirname(path), exist_ok=True)
tmp = f"{path}.tmp"
fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
with os.fdopen(fd, "w") as fh:
    fh.write(json.dumps(passwords) + "\n")
os.replace(tmp, path)
PY

pool="${MLOOPS_REGISTRY_POOL:-mloops_registry}"
echo "airflow-init: creating pool ${pool} (1 slot)"
airflow pools set "${pool}" 1 "Serializes MLflow registry writes"

if [[ -n "${MLOOPS_DATA_ROOT:-}" ]]; then
    mkdir -p "${MLOOPS_DATA_ROOT}"
fi

echo "airflow-init: done"
