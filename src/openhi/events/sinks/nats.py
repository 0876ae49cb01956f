"""The NATS JetStream sink: each event is published to a subject captured by a stream, and counts as delivered
once JetStream has acknowledged it (stored, replicated as the stream is configured).

Why JetStream (docs/events.md): the stream is durable (events survive a broker restart and wait for consumers
that are down), consumers read it at their own pace with their own acknowledgements, messages of a subject keep
their order, and publishing with the header ``Nats-Msg-Id`` = the event's ``id`` makes the server drop a
duplicate within the stream's duplicate window -- so OpenHI's at-least-once redelivery after a crash becomes
effectively-once for JetStream consumers. Events are published one at a time, each ack awaited before the next,
so the stream holds them in feed order.

nats-py is asyncio-only; the sink runs its own event loop in a daemon thread and the delivery thread waits on it.
The stream is created when missing (``subjects``: the configured subject, ``duplicate_window``); an existing
stream is used as it is. A connection that fails is dropped and made again on the next pass.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time

import nats
from nats.aio.client import Client
from nats.js.client import JetStreamContext
from nats.js.errors import NotFoundError

from openhi.events.sinks.port import Outgoing

log = logging.getLogger(__name__)


class NatsSink:
    """Publishes events to a JetStream stream."""

    def __init__(
        self,
        url: str,
        stream: str,
        subject: str,
        name: str | None = None,
        *,
        connect_timeout_seconds: float = 2.0,
        ack_timeout_seconds: float = 5.0,
        duplicate_window_seconds: float = 120.0,
    ) -> None:
        self._url = url
        self._stream = stream
        self._subject = subject
        self._name = name or f"nats:{url}/{stream}/{subject}"
        self._connect_timeout = connect_timeout_seconds
        self._ack_timeout = ack_timeout_seconds
        self._window = duplicate_window_seconds
        self._client: Client | None = None
        self._jetstream: JetStreamContext | None = None
        self._stopped = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=f"events-{self._name}", daemon=True)
        self._thread.start()

    @property
    def name(self) -> str:
        return self._name

    def deliver(self, batch: list[Outgoing], deadline: float) -> int:
        if not batch or self._stopped.is_set():
            return 0
        taken = [0]
        future = asyncio.run_coroutine_threadsafe(self._publish(batch, taken), self._loop)
        try:
            future.result(timeout=max(deadline - time.monotonic(), 0.1))
        except Exception as exc:  # a broker down, an ack timeout, the deadline ...: the rest is offered again later
            future.cancel()
            log.warning(
                "event sink %s: publishing failed after %d of %d events: %r", self._name, taken[0], len(batch), exc
            )
            asyncio.run_coroutine_threadsafe(self._drop(), self._loop)
        return taken[0]

    async def _publish(self, batch: list[Outgoing], taken: list[int]) -> None:
        jetstream = await self._connected()
        for item in batch:
            await jetstream.publish(
                self._subject,
                item.body(),
                timeout=self._ack_timeout,
                stream=self._stream,
                headers={"Nats-Msg-Id": item.event_id, "X-OpenHI-Event-Sequence": str(item.sequence)},
            )
            taken[0] += 1

    async def _connected(self) -> JetStreamContext:
        if self._client is not None and self._client.is_connected and self._jetstream is not None:
            return self._jetstream
        await self._drop()
        client = await nats.connect(
            self._url,
            connect_timeout=self._connect_timeout,
            allow_reconnect=False,
            name="openhi-events",
            error_cb=self._on_error,
        )
        jetstream = client.jetstream(timeout=self._ack_timeout)
        try:
            await jetstream.stream_info(self._stream)
        except NotFoundError:
            await jetstream.add_stream(name=self._stream, subjects=[self._subject], duplicate_window=self._window)
        self._client, self._jetstream = client, jetstream
        return jetstream

    async def _on_error(self, exc: Exception) -> None:
        log.debug("event sink %s: NATS connection error: %r", self._name, exc)

    async def _drop(self) -> None:
        client, self._client, self._jetstream = self._client, None, None
        if client is not None and not client.is_closed:
            try:
                await client.close()
            except Exception as exc:  # closing a broken connection: nothing more to do
                log.debug("event sink %s: closing the NATS connection: %r", self._name, exc)

    def stop(self) -> None:
        if self._stopped.is_set():
            return
        self._stopped.set()
        try:
            asyncio.run_coroutine_threadsafe(self._drop(), self._loop).result(timeout=self._connect_timeout + 1)
        except Exception as exc:  # shutting down anyway
            log.debug("event sink %s: stopping: %r", self._name, exc)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        if not self._thread.is_alive():
            self._loop.close()
