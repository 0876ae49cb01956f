"""The selective gzip middleware at the ASGI level: which answers it compresses and how it streams them."""

from __future__ import annotations

import asyncio
import gzip
import json
from collections.abc import Sequence
from typing import Any

import pytest
from starlette.types import Message, Receive, Scope, Send

from openhi.api.compression import SelectiveGZipMiddleware, accepts_gzip

BIG_JSON = json.dumps([{"00100010": {"vr": "PN", "Value": [{"Alphabetic": f"DOE^{i}"}]}} for i in range(200)]).encode()


def app_sending(
    headers: Sequence[tuple[str, str]], chunks: Sequence[bytes], status: int = 200, extra: Sequence[Message] = ()
) -> Any:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        raw = [(k.lower().encode(), v.encode()) for k, v in headers]
        await send({"type": "http.response.start", "status": status, "headers": raw})
        for index, chunk in enumerate(chunks):
            await send({"type": "http.response.body", "body": chunk, "more_body": index < len(chunks) - 1})
        for message in extra:
            await send(message)

    return app


def run(app: Any, accept_encoding: str | None = "gzip", method: str = "GET") -> list[Message]:
    headers = [(b"accept-encoding", accept_encoding.encode())] if accept_encoding is not None else []
    scope = {"type": "http", "method": method, "path": "/", "headers": headers}
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    asyncio.run(SelectiveGZipMiddleware(app)(scope, receive, send))
    return sent


def headers_of(messages: list[Message]) -> dict[str, str]:
    start = messages[0]
    assert start["type"] == "http.response.start"
    return {k.decode(): v.decode() for k, v in start["headers"]}


def body_of(messages: list[Message]) -> bytes:
    return b"".join(m.get("body", b"") for m in messages if m["type"] == "http.response.body")


JSON_HEADERS = [("Content-Type", "application/dicom+json"), ("Content-Length", str(len(BIG_JSON)))]


def test_large_json_is_compressed() -> None:
    messages = run(app_sending([*JSON_HEADERS, ("ETag", '"abc"')], [BIG_JSON]))
    headers = headers_of(messages)
    assert headers["content-encoding"] == "gzip"
    assert headers["vary"] == "Accept-Encoding"
    assert headers["etag"] == 'W/"abc"'
    assert int(headers["content-length"]) == len(body_of(messages)) < len(BIG_JSON)
    assert gzip.decompress(body_of(messages)) == BIG_JSON


def test_streamed_json_stays_streamed() -> None:
    chunks = [BIG_JSON[i : i + 700] for i in range(0, len(BIG_JSON), 700)]
    messages = run(app_sending([("Content-Type", "application/json")], chunks))
    headers = headers_of(messages)
    assert headers["content-encoding"] == "gzip"
    assert "content-length" not in headers
    bodies = [m for m in messages if m["type"] == "http.response.body"]
    assert len(bodies) > 1
    assert bodies[-1]["more_body"] is False
    assert all(m["more_body"] for m in bodies[:-1])
    assert gzip.decompress(body_of(messages)) == BIG_JSON


@pytest.mark.parametrize(
    ("headers", "accept", "method", "status"),
    [
        ([("Content-Type", "application/octet-stream")], "gzip", "GET", 200),
        ([("Content-Type", 'multipart/related; type="application/dicom+json"; boundary=x')], "gzip", "GET", 200),
        ([("Content-Type", "image/jpeg")], "gzip", "GET", 200),
        ([("Content-Type", "application/dicom")], "gzip", "GET", 200),
        ([*JSON_HEADERS, ("Content-Encoding", "gzip")], "gzip", "GET", 200),
        ([*JSON_HEADERS, ("Content-Range", "bytes 0-9/100")], "gzip", "GET", 206),
        (JSON_HEADERS, "identity", "GET", 200),
        (JSON_HEADERS, None, "GET", 200),
        (JSON_HEADERS, "gzip;q=0, *", "GET", 200),
        (JSON_HEADERS, "gzip", "HEAD", 200),
    ],
)
def test_left_alone(headers: list[tuple[str, str]], accept: str | None, method: str, status: int) -> None:
    messages = run(app_sending(headers, [BIG_JSON], status=status), accept, method)
    assert body_of(messages) == BIG_JSON
    assert headers_of(messages).get("content-encoding") == {k.lower(): v for k, v in headers}.get("content-encoding")


def test_vary_only_on_json() -> None:
    assert "vary" not in headers_of(run(app_sending([("Content-Type", "image/jpeg")], [b"x" * 4096])))
    assert headers_of(run(app_sending(JSON_HEADERS, [BIG_JSON]), "identity"))["vary"] == "Accept-Encoding"


def test_small_json_is_not_compressed_even_in_pieces() -> None:
    messages = run(app_sending([("Content-Type", "application/json")], [b'{"a":', b" 1}"]))
    assert "content-encoding" not in headers_of(messages)
    assert body_of(messages) == b'{"a": 1}'
    assert headers_of(messages)["vary"] == "Accept-Encoding"


def test_other_messages_release_the_held_start() -> None:
    pathsend = {"type": "http.response.pathsend", "path": "/tmp/x.json"}
    app = app_sending([("Content-Type", "application/json")], [], extra=[pathsend])
    messages = run(app)
    assert [m["type"] for m in messages] == ["http.response.start", "http.response.pathsend"]


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("gzip", True),
        ("GZIP", True),
        ("deflate, gzip;q=0.5", True),
        ("br, *", True),
        ("x-gzip", True),
        ("gzip;q=0", False),
        ("gzip; q=0.000", False),
        ("*;q=0", False),
        ("identity", False),
        ("", False),
        ("gzip;q=bogus", False),
    ],
)
def test_accepts_gzip(header: str, expected: bool) -> None:
    assert accepts_gzip(header) is expected
