"""The e2e tier: every test runs against ``openhi serve`` on both backends.

``embedded``: SQLite index + local files under a temporary data dir (the default a user gets).
``scaleout``: a fresh PostgreSQL database + an S3 bucket on the moto server, selected with
``--index-url`` / ``--blob-url`` and the standard AWS variables, as a deployment would.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any

import pytest
from tests.support.backends import S3Server, fresh_postgres_database
from tests.support.server import ServerPool, ServerProcess

ServerFactory = Callable[..., ServerProcess]


@pytest.fixture(scope="module", params=["embedded", "scaleout"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def make_server(
    backend: str, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[ServerFactory]:
    """Start servers on the module's backend; each scale-out server gets its own database and bucket."""
    pool = ServerPool(tmp_path_factory, backend)
    with ExitStack() as databases:

        def factory(env: dict[str, str] | None = None, args: list[str] | None = None) -> ServerProcess:
            extra, cli_args = dict(env or {}), list(args or [])
            if backend == "scaleout":
                s3: S3Server = request.getfixturevalue("s3_server")
                url = databases.enter_context(fresh_postgres_database())
                extra |= s3.env()
                cli_args += ["--index-url", url, "--blob-url", f"s3://{s3.new_bucket()}/openhi"]
            return pool.start(extra, cli_args)

        try:
            yield factory
        finally:
            pool.stop_all()


@pytest.fixture(scope="module")
def server(make_server: ServerFactory) -> ServerProcess:
    """The module's shared server."""
    return make_server()


@pytest.fixture(scope="module")
def client(server: ServerProcess) -> Any:
    """boto3 ``medical-imaging`` client for the shared server."""
    return server.client()
