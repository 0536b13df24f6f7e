# mloops image: the official Airflow image plus the project's pinned dependencies and code.
# Used by every Airflow service and by the MLflow tracking server (mlflow is a project dependency).
# No secrets here: everything sensitive comes from the environment at run time (see .env.example).
FROM apache/airflow:3.3.2-python3.11

# Must match the base image tag; the build fails if pip moved Airflow to another version.
ARG AIRFLOW_VERSION=3.3.2

# Directories that back named volumes. Docker copies their ownership into a fresh volume, so the
# airflow user (uid 50000, gid 0) can write to them without an init step running as root.
USER root
RUN mkdir -p /opt/airflow/mloops/data /opt/airflow/mloops/data_docs /opt/airflow/auth /mlflow/artifacts /mlflow/auth \
    && chown -R airflow:0 /opt/airflow/mloops /opt/airflow/auth /mlflow \
    && chmod -R g+rwX /opt/airflow/mloops /mlflow \
    && chmod 0700 /opt/airflow/auth

# Dependencies are installed as the airflow user, as the official image expects (PIP_USER is set there).
# constraints.txt pins apache-airflow itself, so pip keeps the image's Airflow.
USER airflow
COPY --chown=airflow:0 requirements.txt constraints.txt /opt/airflow/requirements/
# requirements.txt asks for mlflow[auth] (Flask-WTF): the MLflow server runs the basic-auth app (docker-compose.yml).
RUN pip install --no-cache-dir -r /opt/airflow/requirements/requirements.txt -c /opt/airflow/requirements/constraints.txt \
    && python -c "import sys, airflow; v = airflow.__version__; sys.exit(0 if v == '${AIRFLOW_VERSION}' else f'apache-airflow changed to {v}, expected ${AIRFLOW_VERSION}')" \
    && python -c "import psycopg2, mlflow.server, flask_wtf" \
    && mlflow --version

# Project code. docker-compose.yml bind-mounts dags/, plugins/ and include/ over these for development;
# without the mounts the image runs the code baked in at build time.
COPY --chown=airflow:0 plugins/ /opt/airflow/plugins/
COPY --chown=airflow:0 dags/ /opt/airflow/dags/
COPY --chown=airflow:0 include/ /opt/airflow/include/
COPY --chown=airflow:0 deploy/airflow/ /opt/airflow/deploy/airflow/

ENV MLOOPS_HOME=/opt/airflow/mloops \
    MLOOPS_DATA_ROOT=/opt/airflow/mloops/data \
    MLOOPS_MODELS_DIR=/opt/airflow/include/models \
    MLOOPS_EXPECTATIONS_DIR=/opt/airflow/include/expectations \
    MLFLOW_DISABLE_TELEMETRY=true \
    DO_NOT_TRACK=1
