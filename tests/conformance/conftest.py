"""The conformance tier: the installed botocore model against ``openhi serve`` on the embedded backend.

Every test here is driven by ``botocore``'s ``medical-imaging`` model, so a model change (a new
operation, member, error shape or pattern) shows up as a failure instead of as silent drift.
Servers are real ``openhi serve`` subprocesses (SQLite + local files in a temporary data dir).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from tests.support.server import ServerProcess, server_env

ServerFactory = Callable[..., ServerProcess]


@pytest.fixture(scope="module")
def make_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerFactory]:
    """Start embedded-backend servers (extra ``OPENHI_*`` env allowed); all stopped at module end."""
    started: list[ServerProcess] = []

    def factory(env: Mapping[str, str] | None = None) -> ServerProcess:
        data_dir = Path(tmp_path_factory.mktemp("openhi-conformance")) / "data"
        server = ServerProcess(data_dir, server_env(env)).start()
        started.append(server)
        return server

    yield factory
    for server in started:
        server.stop()


@pytest.fixture(scope="module")
def server(make_server: ServerFactory) -> ServerProcess:
    """The module's shared embedded server."""
    return make_server()


@pytest.fixture(scope="module")
def client(server: ServerProcess) -> Any:
    """Unmodified boto3 ``medical-imaging`` client (``inject_host_prefix=False``) for the shared server."""
    return server.client()
