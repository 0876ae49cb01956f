"""Fixtures shared by every tier: real PostgreSQL databases and an S3-compatible server on loopback."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.backends import S3Server, fresh_postgres_database, unavailable


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database (dropped after the test)."""
    with fresh_postgres_database() as url:
        yield url


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """One moto S3 server for the session."""
    try:
        server = S3Server()
        server.start()
    except Exception as exc:  # moto missing or port trouble: skip locally, fail in CI
        unavailable(f"S3-compatible server could not start: {exc}")
        raise
    yield server
    server.stop()


@pytest.fixture
def s3_bucket(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh bucket; the standard AWS variables point S3 clients of this process at the server."""
    for key, value in s3_server.env().items():
        monkeypatch.setenv(key, value)
    return s3_server.new_bucket()
