"""Real backends for the tests: a fresh PostgreSQL database per use and an S3-compatible server on loopback.

PostgreSQL is the machine's server (127.0.0.1:5432, trust auth). S3 is moto in server mode, started on a
free loopback port. When a backend is absent the test skips locally, but with ``OPENHI_REQUIRE_BACKENDS=1``
(set by ``.ci/run``) it fails instead, so CI can never count a skipped backend as passed.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

POSTGRES_ADMIN_URL = os.environ.get("OPENHI_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


def backends_required() -> bool:
    """True in CI: a missing backend is a failure, not a skip."""
    return os.environ.get("OPENHI_REQUIRE_BACKENDS", "") == "1"


def unavailable(reason: str) -> None:
    """Skip locally, fail in CI."""
    if backends_required():
        pytest.fail(f"required backend unavailable: {reason}")
    pytest.skip(reason)


def free_port() -> int:
    """A TCP port that is free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def fresh_postgres_database() -> Iterator[str]:
    """Create an empty database, yield its ``postgresql://`` URL, drop it afterwards."""
    import psycopg

    name = f"openhi_test_{uuid.uuid4().hex[:12]}"
    try:
        admin = psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        unavailable(f"PostgreSQL not reachable at {POSTGRES_ADMIN_URL}: {exc}")
        raise  # unreachable: unavailable() always raises
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    base = POSTGRES_ADMIN_URL.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class S3Server:
    """moto's S3-compatible server on a loopback port, with helpers to make buckets."""

    def __init__(self) -> None:
        from moto.server import ThreadedMotoServer

        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)

    def start(self) -> None:
        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per S3 request otherwise
        self._server.start()

    def stop(self) -> None:
        self._server.stop()

    def env(self) -> dict[str, str]:
        """The standard AWS variables that point an S3 client (and ``openhi serve``) at this server."""
        return {
            "AWS_ENDPOINT_URL_S3": self.endpoint,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
        }

    def new_bucket(self) -> str:
        """Create a uniquely named bucket and return its name."""
        import boto3

        name = f"openhi-test-{uuid.uuid4().hex[:12]}"
        client = boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            region_name="us-east-1",
        )
        client.create_bucket(Bucket=name)
        return name
