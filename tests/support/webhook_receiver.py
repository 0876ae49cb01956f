"""A webhook receiver on a loopback port for the event tests: records every POST and refuses the first N with 503."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Received:
    """One POST as the receiver saw it."""

    at: float  # time.monotonic()
    status: int
    headers: dict[str, str]
    event: dict[str, Any]


@dataclass
class WebhookReceiver:
    """``with WebhookReceiver(fail_first=3) as receiver: ... receiver.url ... receiver.accepted()``."""

    fail_first: int = 0
    fail_status: int = 503
    received: list[Received] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with receiver._lock:
                    refused = len(receiver.received) < receiver.fail_first
                    status = receiver.fail_status if refused else 200
                    headers = {key.lower(): value for key, value in self.headers.items()}
                    receiver.received.append(Received(time.monotonic(), status, headers, json.loads(body)))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/hook"

    def __enter__(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def accepted(self) -> list[Received]:
        """The POSTs answered 200, in arrival order."""
        with self._lock:
            return [item for item in self.received if item.status == 200]

    def refused(self) -> list[Received]:
        """The POSTs answered with the failure status."""
        with self._lock:
            return [item for item in self.received if item.status != 200]
