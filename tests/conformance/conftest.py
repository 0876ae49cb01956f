"""The conformance tier: the installed botocore model against ``openhi serve`` on the embedded backend.

Every test here is driven by ``botocore``'s ``medical-imaging`` model, so a model change (a new
operation, member, error shape or pattern) shows up as a failure instead of as silent drift.
Servers are real ``openhi serve`` subprocesses (SQLite + local files in a temporary data dir).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from tests.support.server import ServerPool, ServerProcess

ServerFactory = Callable[..., ServerProcess]


@pytest.fixture(scope="module")
def make_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerFactory]:
    """Start embedded-backend servers (extra ``OPENHI_*`` env allowed); all stopped at module end."""
    pool = ServerPool(tmp_path_factory, "conformance")
    yield lambda env=None: pool.start(env)
    pool.stop_all()


@pytest.fixture(scope="module")
def server(make_server: ServerFactory) -> ServerProcess:
    """The module's shared embedded server."""
    return make_server()


@pytest.fixture(scope="module")
def client(server: ServerProcess) -> Any:
    """Unmodified boto3 ``medical-imaging`` client (``inject_host_prefix=False``) for the shared server."""
    return server.client()
