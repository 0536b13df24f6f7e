#!/usr/bin/env bash
# Run once by the postgres image on an empty data volume (/docker-entrypoint-initdb.d).
# POSTGRES_DB (airflow) is created by the image; this adds the MLflow backend store and the mloops
# metrics/events store, owned by POSTGRES_USER. Databases: airflow, mlflow, mloops.
set -euo pipefail

for db in ${MLOOPS_EXTRA_DATABASES:-mlflow mloops}; do
    if [[ ! "${db}" =~ ^[a-z_][a-z0-9_]*$ ]]; then
        echo "init-databases: refusing invalid database name '${db}'" >&2
        exit 1
    fi
    echo "init-databases: ensuring database ${db}"
    psql -v ON_ERROR_STOP=1 --username "${POSTGRES_USER}" --dbname "${POSTGRES_DB}" <<-EOSQL
	SELECT 'CREATE DATABASE ${db} OWNER "${POSTGRES_USER}"'
	WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '${db}')\gexec
	EOSQL
done
