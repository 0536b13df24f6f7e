"""An S3-compatible server on loopback for the object-storage tests: moto's standalone server.

It runs as its own process (as MinIO or a real bucket would be: another host as far as the code under
test knows), speaks the S3 REST API over HTTP, and keeps objects in memory, so every test starts
from empty buckets. mloops reaches it only through an Airflow connection of type ``aws`` whose extra
sets ``endpoint_url``: the same way a production deployment reaches MinIO, Ceph or S3 itself.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path

ACCESS_KEY = "mloops-test-access-key"
SECRET_KEY = "mloops-test-secret-key"  # noqa: S105 - a throwaway credential of the in-memory server
REGION = "us-east-1"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class S3Server:
    """``python -m moto.server`` on 127.0.0.1; :meth:`start` waits until it answers, :meth:`stop` ends it."""

    log_path: Path
    port: int = field(default_factory=_free_port)
    process: subprocess.Popen | None = None

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60) -> S3Server:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "AIRFLOW"))}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"the S3 server exited with {self.process.returncode}:\n"
                    f"{self.log_path.read_text()[-3000:]}"
                )
            try:
                with urllib.request.urlopen(f"{self.endpoint_url}/moto-api/", timeout=2):  # noqa: S310 - loopback
                    return self
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"the S3 server did not answer on {self.endpoint_url} within {timeout:.0f}s")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)

    def connection(self) -> dict:
        """The Airflow connection (JSON form, as in ``AIRFLOW_CONN_<ID>`` or the REST API) for this server."""
        return {
            "conn_type": "aws",
            "login": ACCESS_KEY,
            "password": SECRET_KEY,
            "extra": {"endpoint_url": self.endpoint_url, "region_name": REGION},
        }

    def client(self):
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            region_name=REGION,
        )

    def create_bucket(self, prefix: str = "mloops") -> str:
        name = f"{prefix}-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name)
        return name

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        paginator = self.client().get_paginator("list_objects_v2")
        return sorted(
            obj["Key"]
            for page in paginator.paginate(Bucket=bucket, Prefix=prefix)
            for obj in page.get("Contents", [])
        )

    def read(self, bucket: str, key: str) -> bytes:
        return self.client().get_object(Bucket=bucket, Key=key)["Body"].read()


def connection_env(conn_id: str, server: S3Server) -> dict[str, str]:
    """``AIRFLOW_CONN_<ID>`` for ``server``: how a single process (``dag.test()``, a worker) gets the
    connection."""
    return {f"AIRFLOW_CONN_{conn_id.upper()}": json.dumps(server.connection())}
