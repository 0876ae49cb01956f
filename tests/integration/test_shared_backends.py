"""Two ``openhi serve`` processes sharing one PostgreSQL + S3: one archive, one quota, one lifecycle."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from tests.e2e.helpers import wait_for_status
from tests.support.backends import S3Server
from tests.support.server import ServerProcess, server_env

pytestmark = [pytest.mark.postgres, pytest.mark.s3]


@pytest.fixture
def pair(postgres_url: str, s3_server: S3Server, tmp_path: Path) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    bucket = s3_server.new_bucket()
    args = ["--index-url", postgres_url, "--blob-url", f"s3://{bucket}/shared"]
    env = server_env({**s3_server.env(), "OPENHI_MAX_ACTIVE_DATASTORES": "3"})
    servers = [ServerProcess(tmp_path / name, env, args) for name in ("a", "b")]
    with ThreadPoolExecutor(2) as pool:  # start both at once: migrations must not collide
        started = list(pool.map(lambda s: s.start(), servers))
    yield started[0], started[1]
    assert [server.stop() for server in started] == [0, 0]


def test_one_archive_seen_from_both(pair: tuple[ServerProcess, ServerProcess]) -> None:
    a, b = (server.client() for server in pair)
    created = a.create_datastore(datastoreName="shared", tags={"env": "dev"})["datastoreId"]
    properties = wait_for_status(b, created, "ACTIVE")
    assert properties["datastoreName"] == "shared"
    assert b.list_tags_for_resource(resourceArn=properties["datastoreArn"])["tags"] == {"env": "dev"}
    token = a.list_datastores(maxResults=1)
    assert token["datastoreSummaries"][0]["datastoreId"] == created
    b.delete_datastore(datastoreId=created)
    wait_for_status(a, created, "DELETED")


def test_quota_holds_across_processes(pair: tuple[ServerProcess, ServerProcess]) -> None:
    clients = [server.client() for server in pair]

    def create(n: int) -> str:
        try:
            clients[n % 2].create_datastore(datastoreName=f"race-{n}")
            return "created"
        except ClientError as exc:
            return str(exc.response["Error"]["Code"])

    with ThreadPoolExecutor(8) as pool:
        outcomes = list(pool.map(create, range(8)))
    assert outcomes.count("created") == 3
    assert outcomes.count("ServiceQuotaExceededException") == 5


def test_pagination_tokens_work_on_either_process(pair: tuple[ServerProcess, ServerProcess]) -> None:
    a, b = (server.client() for server in pair)
    made = {a.create_datastore(datastoreName=f"p{n}")["datastoreId"] for n in range(3)}
    first: dict[str, Any] = a.list_datastores(maxResults=2)
    rest: dict[str, Any] = b.list_datastores(maxResults=2, nextToken=first["nextToken"])
    listed = [s["datastoreId"] for page in (first, rest) for s in page["datastoreSummaries"]]
    assert set(listed) == made
