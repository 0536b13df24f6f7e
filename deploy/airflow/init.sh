#!/usr/bin/env bash
# airflow-init (one-shot): refuse to run without the required secrets, migrate the Airflow metadata DB,
# write the Simple auth manager passwords (the admin's from AIRFLOW_ADMIN_PASSWORD, a generated one
# for every other user of AIRFLOW_USERS), create the mloops_registry pool.
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
    AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS
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
import re
import sys

from cryptography.fernet import Fernet

errors = []
roles = ("viewer", "user", "op", "admin")
admin = os.environ.get("AIRFLOW_ADMIN_USERNAME") or "admin"
seen = {}
for entry in [e.strip() for e in os.environ["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"].split(",") if e.strip()]:
    name, _, role = entry.partition(":")
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.@+-]{0,127}", name) or role not in roles:
        errors.append(f"AIRFLOW_USERS entry {entry!r} is not name:role with role one of {', '.join(roles)}")
    elif name in seen:
        errors.append(f"AIRFLOW_USERS lists {name!r} twice")
    seen[name] = role
if seen.get(admin) != "admin":
    errors.append(f"AIRFLOW_USERS must list {admin}:admin (the account AIRFLOW_ADMIN_PASSWORD is for)")
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

echo "airflow-init: writing the Simple auth manager passwords of AIRFLOW_USERS"
python - <<'PY'
import json
import os
import secrets

path = os.environ["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"]
username = os.environ.get("AIRFLOW_ADMIN_USERNAME") or "admin"
users = [entry.split(":")[0].strip()
         for entry in os.environ["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"].split(",") if entry.strip()]

known = {}
if os.path.exists(path):
    with open(path) as fh:
        content = fh.read().strip()
    known = json.loads(content) if content else {}
# Exactly the listed users: a person removed from AIRFLOW_USERS loses the password too. A new user gets a
# generated password (never printed: an admin reads it from the file and hands it over).
passwords = {name: known.get(name) or secrets.token_urlsafe(18) for name in users}
passwords[username] = os.environ["AIRFLOW_ADMIN_PASSWORD"]
new = sorted(set(users) - set(known) - {username})
if new:
    print(f"airflow-init: generated passwords for {', '.join(new)}: read them from {path}")

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
