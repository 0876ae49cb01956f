"""The HTTP webhook sink: each event is POSTed as JSON; the cursor moves only on a 2xx answer.

Events are sent one at a time, in order (a later event is never posted before an earlier one was accepted). A
failure -- a connection error, a timeout, any status outside 2xx -- is retried with exponential backoff and
jitter ("equal jitter": half the capped exponential delay, plus a random part of the other half; AWS Architecture
Blog, *Exponential Backoff And Jitter*): ``backoff_seconds`` * 2^(n-1), capped at ``max_backoff_seconds``.
The backoff outlives a delivery pass: a pass started while the sink is backing off waits (at most until the
pass's deadline, so that the delivery lease never expires meanwhile), so a dead endpoint is probed at the
backoff's pace, not the poll's; a request's timeout is cut to the deadline too. Each request carries
``X-OpenHI-Event-Id`` and ``X-OpenHI-Event-Sequence`` (receivers deduplicate by the id: delivery is at least
once) and any configured headers (e.g. an ``Authorization``).
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Mapping

import httpx

from openhi.events.sinks.port import Outgoing

log = logging.getLogger(__name__)


class WebhookSink:
    """POSTs events to a URL."""

    def __init__(
        self,
        url: str,
        name: str | None = None,
        *,
        headers: Mapping[str, str] | None = None,
        timeout_seconds: float = 5.0,
        attempts_per_pass: int = 5,
        backoff_seconds: float = 0.5,
        max_backoff_seconds: float = 60.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._url = url
        self._name = name or f"webhook:{url}"
        self._headers = dict(headers or {})
        self._attempts = max(attempts_per_pass, 1)
        self._base = backoff_seconds
        self._cap = max_backoff_seconds
        self._timeout = timeout_seconds
        self._client = httpx.Client(timeout=timeout_seconds, transport=transport, follow_redirects=False)
        self._failures = 0  # consecutive failed attempts, across passes
        self._next_attempt = 0.0  # monotonic time before which no request is sent
        self._stopping = threading.Event()

    @property
    def name(self) -> str:
        return self._name

    @property
    def consecutive_failures(self) -> int:
        """Failed attempts since the last accepted event."""
        return self._failures

    def deliver(self, batch: list[Outgoing], deadline: float) -> int:
        for taken, item in enumerate(batch):
            if not self._post(item, deadline):
                return taken
        return len(batch)

    def _backed_off(self, deadline: float) -> bool:
        """Wait for the next attempt's time; False when it comes after ``deadline`` (waited until then) or on stop."""
        now = time.monotonic()
        if self._next_attempt <= now:
            return not self._stopping.is_set()
        if self._next_attempt > deadline:  # the backoff outlasts this pass: a later pass tries again
            self._stopping.wait(max(deadline - now, 0.0))
            return False
        return not self._stopping.wait(self._next_attempt - now)

    def _post(self, item: Outgoing, deadline: float) -> bool:
        headers = {
            **self._headers,
            "Content-Type": "application/json",
            "X-OpenHI-Event-Id": item.event_id,
            "X-OpenHI-Event-Sequence": str(item.sequence),
        }
        for _ in range(self._attempts):
            if not self._backed_off(deadline):
                return False
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            try:
                timeout = min(self._timeout, remaining)
                response = self._client.post(self._url, content=item.body(), headers=headers, timeout=timeout)
                if 200 <= response.status_code < 300:
                    self._failures, self._next_attempt = 0, 0.0
                    return True
                reason = f"HTTP {response.status_code}"
            except httpx.HTTPError as exc:
                reason = f"{type(exc).__name__}: {exc}"
            except RuntimeError:  # the client was closed by ``stop`` meanwhile
                if self._stopping.is_set():
                    return False
                raise
            self._failures += 1
            delay = self.backoff(self._failures)
            self._next_attempt = time.monotonic() + delay
            log.warning(
                "event sink %s: event %d refused (%s), attempt %d; next in %.2fs",
                self._name,
                item.sequence,
                reason,
                self._failures,
                delay,
            )
        return False

    def backoff(self, failures: int) -> float:
        """The wait after the ``failures``-th consecutive failure: capped exponential, equal jitter."""
        capped = min(self._cap, self._base * 2.0 ** max(failures - 1, 0))
        # Jitter spreads retries of many servers; not a security use of randomness.
        jitter: float = random.uniform(0, capped / 2)  # noqa: S311
        return capped / 2 + jitter

    def stop(self) -> None:
        self._stopping.set()
        self._client.close()
