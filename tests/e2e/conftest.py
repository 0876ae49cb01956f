"""The e2e tier: every test runs against ``openhi serve`` on both backends.

``embedded``: SQLite index + local files under a temporary data dir (the default a user gets).
``scaleout``: a fresh PostgreSQL database + an S3 bucket on the moto server, selected with
``--index-url`` / ``--blob-url`` and the standard AWS variables, as a deployment would.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.support.backends import S3Server, fresh_postgres_database
from tests.support.server import ServerProcess, server_env

ServerFactory = Callable[..., ServerProcess]


@pytest.fixture(scope="module", params=["embedded", "scaleout"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def make_server(
    backend: str, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[ServerFactory]:
    """Start servers on the module's backend; every one is stopped (SIGTERM) at the end."""
    started: list[ServerProcess] = []
    databases: list[Any] = []

    def factory(env: dict[str, str] | None = None, args: list[str] | None = None) -> ServerProcess:
        data_dir = Path(tmp_path_factory.mktemp(f"openhi-{backend}")) / "data"
        extra = dict(env or {})
        cli_args = list(args or [])
        if backend == "scaleout":
            s3: S3Server = request.getfixturevalue("s3_server")
            database = fresh_postgres_database()
            url = database.__enter__()
            databases.append(database)
            extra |= s3.env()
            cli_args += ["--index-url", url, "--blob-url", f"s3://{s3.new_bucket()}/openhi"]
        server = ServerProcess(data_dir, server_env(extra), cli_args).start()
        started.append(server)
        return server

    yield factory
    exit_codes = [server.stop() for server in started]
    for database in databases:
        database.__exit__(None, None, None)
    assert exit_codes == [0] * len(started), "openhi serve did not shut down gracefully on SIGTERM"


@pytest.fixture(scope="module")
def server(make_server: ServerFactory) -> ServerProcess:
    """The module's shared server."""
    return make_server()


@pytest.fixture(scope="module")
def client(server: ServerProcess) -> Any:
    """boto3 ``medical-imaging`` client for the shared server."""
    return server.client()
