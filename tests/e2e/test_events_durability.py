"""Events survive the death of the process that committed them, and each sink has one deliverer at a time.

A server is killed with SIGKILL right after its API calls answered (so their changes, and the events written in the
same transactions, are committed) and before any event was delivered; a new server on the same data dir / index
delivers every one of them to the NDJSON sink, in the order of the pull API's sequence numbers. Two servers sharing
one index and one sink deliver each event once, in order. Both backends: SQLite + files, PostgreSQL + S3.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from tests.e2e.conftest import ServerFactory
from tests.e2e.helpers import wait_for_status
from tests.support.event_examples import check_against_guide
from tests.support.event_feed import about, feed, kinds, ndjson_events
from tests.support.server import ServerProcess

SLOW = {"OPENHI_EVENT_DELIVERY_SECONDS": "600"}  # this server never gets to deliver (nor publish) before it dies
FAST = {"OPENHI_EVENT_DELIVERY_SECONDS": "0.2"}


def sink_env(path: Path, **extra: str) -> dict[str, str]:
    return {
        "OPENHI_EVENT_SINKS": json.dumps([{"type": "ndjson", "path": str(path), "name": "durable"}]),
        "OPENHI_EVENT_LEASE_SECONDS": "2",
        **extra,
    }


@pytest.fixture
def sibling() -> Iterator[list[ServerProcess]]:
    """Servers a test starts on another server's stores; stopped (gracefully) at the end."""
    started: list[ServerProcess] = []
    yield started
    assert [server.stop() for server in started] == [0] * len(started)


def on_same_stores(server: ServerProcess, env: dict[str, str]) -> ServerProcess:
    return ServerProcess(server.data_dir, {**server.env, **env}, list(server.args)).start()


def wait_for_sink(path: Path, count: int, timeout: float = 60) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while len(written := ndjson_events(path)) < count:
        assert time.monotonic() < deadline, (len(written), count)
        time.sleep(0.2)
    return written


def first_of_each(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    seen: set[str] = set()
    kept = []
    for event in events:
        if event["id"] not in seen:
            seen.add(event["id"])
            kept.append(event)
    return kept


def test_a_killed_server_loses_no_committed_event(make_server: ServerFactory, tmp_path: Path) -> None:
    path = tmp_path / "events.ndjson"
    doomed = make_server(env=sink_env(path, **SLOW))
    client = doomed.client()
    with ThreadPoolExecutor(8) as pool:  # concurrent transactions: their events interleave in the outbox
        created = list(pool.map(lambda n: client.create_datastore(datastoreName=f"k{n}")["datastoreId"], range(16)))
    wait_for_status(client, created[0], "ACTIVE")  # the lifecycle loop commits more changes (and events)
    client.delete_datastore(datastoreId=created[0])
    assert doomed.process is not None
    doomed.process.kill()  # SIGKILL: no shutdown, no finally
    doomed.process.wait(10)
    assert ndjson_events(path) == []  # nothing was delivered before the kill

    doomed.env.update(sink_env(path, **FAST))
    revived = doomed.start()  # a new process on the same data dir, index and blob store
    for datastore_id in created:  # the revived server's lifecycle finishes what the dead one left
        wait_for_status(revived.client(), datastore_id, "ACTIVE" if datastore_id != created[0] else "DELETED")
    listed = feed(revived)
    events = [event for _, event in listed]
    assert [sequence for sequence, _ in listed] == list(range(1, len(listed) + 1))
    for datastore_id in created[1:]:
        assert kinds(about(events, "datastoreId", datastore_id)) == ["Data Store Creating", "Data Store Created"]
    assert kinds(about(events, "datastoreId", created[0])) == [
        "Data Store Creating",
        "Data Store Created",
        "Data Store Deleting",
        "Data Store Deleted",
    ]
    written = wait_for_sink(path, len(events))
    assert first_of_each(written)[: len(events)] == events  # every committed event, in the feed's order
    for event in written:
        check_against_guide(event)


def test_two_servers_deliver_each_event_once_in_order(
    make_server: ServerFactory, tmp_path: Path, sibling: list[ServerProcess]
) -> None:
    path = tmp_path / "shared.ndjson"
    first = make_server(env=sink_env(path, **FAST))
    second = on_same_stores(first, sink_env(path, **FAST))
    sibling.append(second)
    clients = [first.client(), second.client()]
    with ThreadPoolExecutor(8) as pool:
        created = list(
            pool.map(lambda n: clients[n % 2].create_datastore(datastoreName=f"t{n}")["datastoreId"], range(12))
        )
    for datastore_id in created:
        wait_for_status(clients[0], datastore_id, "ACTIVE")
    events = [event for _, event in feed(first)]
    assert len(events) >= 24
    assert [event for _, event in feed(second)] == events  # one feed, whichever server answers
    written = wait_for_sink(path, len(events))
    time.sleep(1)  # a second deliverer, if there were one, would have written again by now
    assert ndjson_events(path) == written
    assert written[: len(events)] == events
    assert len({event["id"] for event in written}) == len(written)  # each once: one deliverer at a time
