"""The webhook and NATS JetStream event sinks behind a real ``openhi serve``.

The webhook receiver refuses the first requests (503): the server retries with backoff and delivers every event
once accepted, in the order of the pull API. The NATS sink publishes into a JetStream stream of the local NATS
server (127.0.0.1:4222; skipped when it is absent, a failure with ``OPENHI_REQUIRE_BACKENDS=1``): the stream holds
the events in order with ``Nats-Msg-Id`` = the event id, and JetStream drops a redelivered duplicate. Sinks do not
depend on the index or blob backend: these servers run the embedded backend only.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from tests.e2e.helpers import wait_for_status
from tests.support.backends import unavailable
from tests.support.event_examples import check_against_guide
from tests.support.event_feed import about, feed, kinds
from tests.support.server import ServerPool
from tests.support.webhook_receiver import WebhookReceiver

NATS_URL = os.environ.get("OPENHI_TEST_NATS", "nats://127.0.0.1:4222")


@pytest.fixture(scope="module")
def pool(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerPool]:
    servers = ServerPool(tmp_path_factory, "event-sinks")
    try:
        yield servers
    finally:
        servers.stop_all()


def test_the_webhook_sink_retries_until_accepted_and_keeps_the_order(pool: ServerPool) -> None:
    with WebhookReceiver(fail_first=3) as receiver:
        sink = {"type": "webhook", "url": receiver.url, "backoff_seconds": 0.05, "headers": {"Authorization": "t"}}
        server = pool.start({"OPENHI_EVENT_SINKS": json.dumps([sink]), "OPENHI_EVENT_DELIVERY_SECONDS": "0.1"})
        client = server.client()
        datastore_id = client.create_datastore(datastoreName="hooked")["datastoreId"]
        wait_for_status(client, datastore_id, "ACTIVE")
        client.delete_datastore(datastoreId=datastore_id)
        wait_for_status(client, datastore_id, "DELETED")
        events = [event for _, event in feed(server)]
        assert kinds(about(events, "datastoreId", datastore_id)) == [
            "Data Store Creating",
            "Data Store Created",
            "Data Store Deleting",
            "Data Store Deleted",
        ]
        deadline = time.monotonic() + 30
        while len(receiver.accepted()) < len(events):
            assert time.monotonic() < deadline, len(receiver.accepted())
            time.sleep(0.1)
        refused, accepted = receiver.refused(), receiver.accepted()
        assert [item.event for item in refused] == [events[0]] * 3  # the first event, retried
        assert [item.event for item in accepted] == events  # then each once, in order
        assert [item.headers["x-openhi-event-sequence"] for item in accepted] == [
            str(n) for n in range(1, len(events) + 1)
        ]
        assert [item.headers["x-openhi-event-id"] for item in accepted] == [event["id"] for event in events]
        assert {item.headers["authorization"] for item in receiver.received} == {"t"}
        gaps = [later.at - earlier.at for earlier, later in zip(refused, [*refused[1:], accepted[0]], strict=True)]
        assert gaps[1] >= 0.05 and gaps[2] >= 0.1  # noqa: PT018 - equal jitter: at least half of 0.05 * 2^(n-1)
        for item in accepted:
            check_against_guide(item.event)


def nats_reachable() -> None:
    host, _, port = NATS_URL.removeprefix("nats://").partition(":")
    try:
        socket.create_connection((host, int(port or 4222)), timeout=2).close()
    except OSError as exc:
        unavailable(f"NATS not reachable at {NATS_URL}: {exc}")


async def stream_messages(stream: str, subject: str) -> list[Any]:
    import nats

    client = await nats.connect(NATS_URL)
    try:
        jetstream = client.jetstream()
        info = await jetstream.stream_info(stream)
        return [await jetstream.get_msg(stream, seq) for seq in range(info.state.first_seq, info.state.last_seq + 1)]
    finally:
        await client.close()


async def republish(stream: str, subject: str, data: bytes, msg_id: str) -> tuple[bool, int]:
    import nats

    client = await nats.connect(NATS_URL)
    try:
        jetstream = client.jetstream()
        ack = await jetstream.publish(subject, data, stream=stream, headers={"Nats-Msg-Id": msg_id})
        return bool(ack.duplicate), (await jetstream.stream_info(stream)).state.messages
    finally:
        await client.close()


async def delete_stream(stream: str) -> None:
    import nats

    client = await nats.connect(NATS_URL)
    try:
        await client.jetstream().delete_stream(stream)
    finally:
        await client.close()


@pytest.mark.nats
def test_the_nats_jetstream_sink_end_to_end(pool: ServerPool) -> None:
    nats_reachable()
    suffix = uuid.uuid4().hex[:10]
    stream, subject = f"openhi_test_{suffix}", f"openhi.test.{suffix}.events"
    sink = {"type": "nats", "url": NATS_URL, "stream": stream, "subject": subject}
    server = pool.start({"OPENHI_EVENT_SINKS": json.dumps([sink]), "OPENHI_EVENT_DELIVERY_SECONDS": "0.1"})
    try:
        client = server.client()
        datastore_id = client.create_datastore(datastoreName="brokered")["datastoreId"]
        wait_for_status(client, datastore_id, "ACTIVE")
        events = [event for _, event in feed(server)]
        assert len(events) >= 2
        deadline = time.monotonic() + 30
        while True:
            try:
                messages = asyncio.run(stream_messages(stream, subject))
            except Exception:  # the stream is created on the first delivery
                messages = []
            if len(messages) >= len(events):
                break
            assert time.monotonic() < deadline, len(messages)
            time.sleep(0.2)
        assert [json.loads(message.data) for message in messages] == events  # in the feed's order, once each
        assert [message.subject for message in messages] == [subject] * len(events)
        assert [message.headers["Nats-Msg-Id"] for message in messages] == [event["id"] for event in events]
        for message in messages:
            check_against_guide(json.loads(message.data))
        # OpenHI redelivering an event after a crash: JetStream recognizes the id and keeps one copy
        duplicate, count = asyncio.run(republish(stream, subject, messages[0].data, events[0]["id"]))
        assert duplicate is True
        assert count == len(events)
    finally:
        asyncio.run(delete_stream(stream))
