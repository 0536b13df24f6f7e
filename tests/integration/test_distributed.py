"""The production topology of docker-compose.yml, run natively: one nightly run end to end over the network.

PostgreSQL and Redis must run on 127.0.0.1 (CI provides them; locally the test skips without them).
The Airflow services (api-server, scheduler, dag-processor, triggerer, a Celery worker) and the MLflow
tracking server are started as separate processes with the commands and environment of the compose
file (see tests/integration/native_stack.py), on fresh databases. The run is triggered, watched and
checked only through the REST APIs, as an operator or another system would, so the test proves what
``dag.test()`` cannot: the shared JWT secret and Execution API URL, the Celery broker and result
backend, the registry pool made by airflow-init, MLflow's basic auth with the workers' login, the
proxied MLflow artifact store, configs reaching workers through MLOOPS_MODELS_DIR, and the data root
on object storage: an S3-compatible server on loopback (tests/s3_server.py) reached through an
Airflow connection created over the REST API, stored encrypted in the metadata DB and handed to the
worker by the Execution API.
"""

from __future__ import annotations

import contextlib
import json
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import require_service
from tests.deploy.compose_contract import service_environment
from tests.helpers import small_churn, write_models
from tests.integration.native_stack import (
    AIRFLOW_SERVICES,
    COMPOSE,
    SERVICES,
    VENV_BIN,
    AirflowApi,
    NativeStack,
    Postgres,
    StackError,
)
from tests.s3_server import S3Server

pytestmark = [pytest.mark.integration, pytest.mark.services]

DAG_ID = "mloops_train_churn"
MODEL_NAME = "mloops.churn"
#: The stages that must run and succeed; other tasks of the DAG may only succeed or be skipped.
STAGES = ("validate_batch", "train_model", "test_model", "register_model", "promote_model")
#: The nightly run of the partition 2026-01-03 (CronDataIntervalTimetable: logical date = interval start).
INTERVAL = ("2026-01-03T02:00:00Z", "2026-01-04T02:00:00Z")
RUN_TIMEOUT = 480
COMPOSE_HOSTS = {"postgres", "redis", "mlflow", "airflow-apiserver"}
#: The Airflow connection of the data root, created through the REST API like an operator would.
DATA_CONN_ID = "mloops_data"


def _new_stack(tmp_path: Path) -> NativeStack:
    models = write_models(tmp_path / "models", churn=small_churn())
    return NativeStack(state_dir=tmp_path / "state", models_dir=models)


@pytest.fixture
def s3(tmp_path: Path) -> Iterator[tuple[S3Server, str]]:
    """An S3-compatible server on loopback with an empty bucket for the stack's data root."""
    server = S3Server(log_path=tmp_path / "state" / "process-logs" / "s3.log").start()
    try:
        yield server, server.create_bucket()
    finally:
        server.stop()


@pytest.fixture
def stack(tmp_path: Path, s3: tuple[S3Server, str]) -> Iterator[NativeStack]:
    """The whole stack, up and healthy; stopped and its databases dropped afterwards, also on failure."""
    require_service("PostgreSQL", "127.0.0.1", 5432)
    require_service("Redis", "127.0.0.1", 6379)
    native = _new_stack(tmp_path)
    native.postgres = Postgres.discover()
    native.data_root = f"s3://{DATA_CONN_ID}@{s3[1]}/{native.stack_id}"
    started = time.monotonic()
    try:
        with native.logs_on_failure():
            native.up()
        print(f"stack healthy after {time.monotonic() - started:.0f}s")
        yield native
    finally:
        stopping = time.monotonic()
        killed = native.close()
        print(
            f"stack stopped (SIGKILL needed: {killed or 'none'}), "
            f"databases dropped: {time.monotonic() - stopping:.0f}s"
        )


def _names_a_container(value: str) -> bool:
    """True if ``value`` holds a compose service hostname or a container path (what natively must change)."""
    hosts = re.findall(r"://(?:[^@/\s]*@)?([A-Za-z0-9_.\-]+)", value)
    return any(host in COMPOSE_HOSTS for host in hosts) or value.startswith(("/opt/airflow/", "/mlflow/"))


def test_native_processes_get_the_compose_commands_and_environment(tmp_path: Path) -> None:
    """Only hostnames, paths, database names, ports and the documented native settings differ."""
    native = _new_stack(tmp_path)
    for name in (*SERVICES, "airflow-init"):
        compose_env = service_environment(COMPOSE, name, native.variables())
        native_env = native.service_settings(name)
        changed = {key for key, value in compose_env.items() if native_env[key] != value}
        assert all(_names_a_container(compose_env[key]) for key in changed), (name, changed)
        added = set(native_env) - set(compose_env)
        expected = (
            set(native.native_settings())
            if name in (*AIRFLOW_SERVICES, "airflow-init")
            else {"MLOOPS_NATIVE_STACK_ID"}
        )
        assert added == expected, name
        assert not any(_names_a_container(value) for value in native_env.values()), name
    env = native.service_settings("airflow-worker")
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == f"{native.api_url}/execution/"
    assert env["MLFLOW_TRACKING_URI"] == native.mlflow_url
    redis_pw = native.secrets["REDIS_PASSWORD"]
    assert env["AIRFLOW__CELERY__BROKER_URL"] == f"redis://:{redis_pw}@127.0.0.1:{native.redis_port}/0"
    assert env["MLFLOW_TRACKING_PASSWORD"] == native.secrets["MLFLOW_ADMIN_PASSWORD"]
    mlflow_argv = native.command("mlflow")
    assert mlflow_argv[mlflow_argv.index("--app-name") + 1] == "basic-auth", "compose's MLflow, auth on"
    assert native.working_dir("mlflow") == native.state_dir / "mlflow-auth"
    assert native.service_settings("mlflow")["MLFLOW_AUTH_CONFIG_PATH"].endswith(
        "deploy/mlflow/basic_auth.ini"
    )
    assert native.command("redis")[3:5] == ["redis-server", "--port"]
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].endswith(f"/{native.stack_id}_airflow")
    assert env["AIRFLOW__CELERY__RESULT_BACKEND"].endswith(f"/{native.stack_id}_airflow")
    assert env["MLOOPS_METRICS_DB_URI"].endswith(f"/{native.stack_id}_mloops")
    assert env["MLOOPS_MODELS_DIR"] == str(native.models_dir)
    assert env["AIRFLOW__CORE__DAGS_FOLDER"] == str(Path(__file__).resolve().parents[2] / "dags")
    assert env["AIRFLOW__API_AUTH__JWT_SECRET"] == native.secrets["AIRFLOW_JWT_SECRET"]
    assert native.command("airflow-worker") == [
        "python",
        "-m",
        "mloops.warm",
        "celery",
        "worker",
        "--concurrency",
        "2",
    ]
    mlflow = native.command("mlflow")
    assert mlflow[mlflow.index("--backend-store-uri") + 1].endswith(
        f"@127.0.0.1:5432/{native.stack_id}_mlflow"
    )
    assert mlflow[mlflow.index("--artifacts-destination") + 1] == str(native.state_dir / "mlflow-artifacts")


def _wait_for_run(api: AirflowApi, stack: NativeStack, run_id: str) -> dict:
    """Poll the run until it ends; a DAG import error (e.g. on the worker) fails at once, not at the
    timeout."""
    deadline = time.monotonic() + RUN_TIMEOUT

    def finished() -> dict | None:
        import_errors = api.get("/importErrors")
        assert import_errors["total_entries"] == 0, f"import errors during the run: {import_errors}"
        run = api.get(f"/dags/{DAG_ID}/dagRuns/{run_id}")
        return run if run["state"] in ("success", "failed") else None

    try:
        return stack.wait_for(f"dag run {run_id}", finished, deadline, interval=3)
    except (StackError, AssertionError) as exc:
        raise AssertionError(f"{exc}\ntask instances: {json.dumps(_states(api, run_id))}") from exc


def _states(api: AirflowApi, run_id: str) -> dict[str, str | None]:
    return {ti["task_id"]: ti["state"] for ti in _task_instances(api, run_id)}


def test_compose_topology_trains_registers_and_promotes(stack: NativeStack, s3: tuple[S3Server, str]) -> None:
    """Trigger one nightly run over REST; it must succeed on the Celery worker and promote version 1."""
    started = time.monotonic()
    with stack.logs_on_failure():
        api = AirflowApi(stack.api_url, "admin", stack.secrets["AIRFLOW_ADMIN_PASSWORD"])
        try:
            _create_data_connection(api, s3[0])
            run = _trigger_and_wait(api, stack)
            worker_runs = _check_airflow(api, run)
            _check_celery(stack, worker_runs)
        finally:
            api.close()
        _check_mlflow(stack, run["dag_run_id"])
        _check_shared_state(stack, *s3)
    print(f"trigger to verified: {time.monotonic() - started:.0f}s")


def _create_data_connection(api: AirflowApi, server: S3Server) -> None:
    """The data root's connection, as an operator adds it (Admin > Connections): stored encrypted with
    the Fernet key."""
    conn = server.connection()
    created = api.send(
        "POST",
        "/connections",
        {
            "connection_id": DATA_CONN_ID,
            "conn_type": conn["conn_type"],
            "login": conn["login"],
            "password": conn["password"],
            "extra": json.dumps(conn["extra"]),
        },
    )
    assert created["connection_id"] == DATA_CONN_ID and created["password"] != conn["password"], (
        "password is masked"
    )


def _trigger_and_wait(api: AirflowApi, stack: NativeStack) -> dict:
    deadline = time.monotonic() + 120
    dag = stack.wait_for(f"{DAG_ID} parsed", lambda: api.get(f"/dags/{DAG_ID}"), deadline)
    assert dag["is_paused"] is True, "compose sets DAGS_ARE_PAUSED_AT_CREATION=true"
    import_errors = api.get("/importErrors")
    assert import_errors["total_entries"] == 0, import_errors
    assert api.send("PATCH", f"/dags/{DAG_ID}", {"is_paused": False})["is_paused"] is False
    created = api.send(
        "POST",
        f"/dags/{DAG_ID}/dagRuns",
        {
            "dag_run_id": f"distributed__{stack.stack_id}",
            "logical_date": INTERVAL[0],
            "data_interval_start": INTERVAL[0],
            "data_interval_end": INTERVAL[1],
            "conf": {"reason": "distributed integration test"},
        },
    )
    assert created["data_interval_start"].startswith("2026-01-03T02:00:00")
    run = _wait_for_run(api, stack, created["dag_run_id"])
    assert run["state"] == "success", f"run {run['state']}: {json.dumps(_states(api, run['dag_run_id']))}"
    return run


def _task_instances(api: AirflowApi, run_id: str) -> list[dict]:
    return api.get(f"/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances")["task_instances"]


def _check_airflow(api: AirflowApi, run: dict) -> int:
    """Check the run and its task instances; return how many task instances a worker executed."""
    assert run["run_type"] == "manual" and run["triggering_user_name"] == "admin"
    assert run["conf"] == {"reason": "distributed integration test"}
    instances = {ti["task_id"]: ti for ti in _task_instances(api, run["dag_run_id"])}
    states = {task: ti["state"] for task, ti in instances.items()}
    assert {task: states.get(task) for task in STAGES} == dict.fromkeys(STAGES, "success"), states
    assert set(states.values()) <= {"success", "skipped"}, states
    assert {instances[t]["pool"] for t in ("register_model", "promote_model")} == {"mloops_registry"}
    assert all(instances[t]["queue"] == "default" and instances[t]["hostname"] for t in STAGES)
    pool = api.get("/pools/mloops_registry")
    assert pool["slots"] == 1, "airflow-init creates the registry pool with one slot"
    # The api-server serves the task log the worker wrote (one airflow-logs volume in compose).
    log = api.get(f"/dags/{DAG_ID}/dagRuns/{run['dag_run_id']}/taskInstances/train_model/logs/1")
    events = [str(entry.get("event", "")) for entry in log["content"] if isinstance(entry, dict)]
    assert any(event.startswith("Logged run ") for event in events), events[-20:]
    return sum(1 for ti in instances.values() if ti["hostname"])


def _check_celery(stack: NativeStack, worker_runs: int) -> None:
    """Every task went through this stack's Redis and left its result in its Postgres database."""
    broker = stack.redis()
    try:
        assert broker.exists("_kombu.binding.default"), sorted(broker.keys())
    finally:
        broker.close()

    def results() -> dict[str, int]:
        with contextlib.closing(stack.postgres.connect(stack.database_names["airflow"])) as conn:
            with conn.cursor() as cur:
                cur.execute("SELECT status, count(*) FROM celery_taskmeta GROUP BY status")
                return dict(cur.fetchall())

    # The worker stores a result after the task has reported its state to the api-server.
    deadline = time.monotonic() + 30
    stack.wait_for("celery results", lambda: results().get("SUCCESS") == worker_runs, deadline, interval=1)
    assert results() == {"SUCCESS": worker_runs}


def _check_mlflow(stack: NativeStack, run_id: str) -> None:
    with pytest.MonkeyPatch.context() as env:
        login = _mlflow_login(stack)
        for key, value in login.items():
            env.setenv(key, value)
        _check_registry(stack, run_id, login)


def _mlflow_login(stack: NativeStack) -> dict[str, str]:
    """The workers' MLflow login (compose gives them the admin account); the server refuses anyone else."""
    worker = stack.service_settings("airflow-worker")
    login = {key: worker[key] for key in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD")}
    search = f"{stack.mlflow_url}/api/2.0/mlflow/registered-models/search"
    assert httpx.get(search, timeout=30).status_code == 401, "MLflow runs with basic auth"
    auth = (login["MLFLOW_TRACKING_USERNAME"], login["MLFLOW_TRACKING_PASSWORD"])
    assert httpx.get(search, auth=auth, timeout=30).status_code == 200
    assert (stack.working_dir("mlflow") / "basic_auth.db").exists(), "the user DB is in the auth volume"
    return login


def _check_registry(stack: NativeStack, run_id: str, login: dict[str, str]) -> None:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=stack.mlflow_url, registry_uri=stack.mlflow_url)
    versions = client.search_model_versions(f"name='{MODEL_NAME}'")
    assert [str(mv.version) for mv in versions] == ["1"]
    champion = client.get_model_version_by_alias(MODEL_NAME, "champion")
    challenger = client.get_model_version_by_alias(MODEL_NAME, "challenger")
    assert str(champion.version) == str(challenger.version) == "1"
    assert champion.tags["mloops.test_status"] == "passed"
    assert champion.tags["airflow.dag_id"] == DAG_ID
    assert champion.tags["mloops.data_interval_start"] == "2026-01-03"
    assert set(champion.aliases) >= {"champion", "challenger"}

    mlflow_run = client.get_run(champion.run_id)
    assert mlflow_run.data.tags["airflow.run_id"] == run_id
    assert mlflow_run.data.tags["mloops.reason"] == "distributed integration test"
    # Proxied artifacts: the worker uploaded through the server, which wrote to --artifacts-destination.
    assert mlflow_run.info.artifact_uri.startswith("mlflow-artifacts:/"), mlflow_run.info.artifact_uri
    model_id = champion.source.removeprefix("models:/")
    assert client.get_logged_model(model_id).artifact_location.startswith("mlflow-artifacts:/")
    destination = stack.state_dir / "mlflow-artifacts"
    assert any(path.parent.name == "artifacts" for path in destination.rglob("MLmodel")), (
        "model not in the store"
    )
    assert {a.path for a in client.list_artifacts(champion.run_id, "model_tests")} == {
        "model_tests/model_tests.json",
        "model_tests/model_tests.md",
    }

    # A fresh client process with nothing but the tracking URI loads the champion through the server.
    loader = (
        "import mlflow.sklearn\n"
        f"model = mlflow.sklearn.load_model('models:/{MODEL_NAME}@champion')\n"
        "print(type(model).__name__, hasattr(model, 'predict_proba'))\n"
    )
    env = {**stack.environment("mlflow"), "MLFLOW_TRACKING_URI": stack.mlflow_url, **login}
    done = subprocess.run(
        [str(VENV_BIN / "python"), "-c", loader],
        env=env,
        cwd=stack.state_dir,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split()[-1] == "True", done.stdout


def _check_shared_state(stack: NativeStack, server: S3Server, bucket: str) -> None:
    """Workers wrote the partition and reports under the data root in the bucket; nothing local, no
    local MLflow store."""
    keys = server.keys(bucket, stack.stack_id)
    prefix = f"{stack.stack_id}/"
    expected = {
        "raw/churn/dt=2026-01-03/part.parquet",
        "staged/churn/dt=2026-01-03/data.parquet",
        "staged/churn/dt=2026-01-03/verdict.json",
        "runs/churn/dt=2026-01-03/holdout.parquet",
        "runs/churn/dt=2026-01-03/reference.parquet",
        "reports/churn/dt=2026-01-03/model_tests.json",
    }
    assert expected <= {key.removeprefix(prefix) for key in keys}, keys
    report = json.loads(server.read(bucket, f"{prefix}reports/churn/dt=2026-01-03/model_tests.json"))
    assert report["passed"] is True
    verdict = json.loads(server.read(bucket, f"{prefix}staged/churn/dt=2026-01-03/verdict.json"))
    assert verdict["uri"] == f"{stack.data_root}/staged/churn/dt=2026-01-03/data.parquet"
    home = stack.state_dir / "mloops"
    assert not (home / "data").exists(), "with the data root on object storage no task may write local data"
    assert not (home / "mlflow").exists(), "with a tracking server no task may fall back to a local store"
