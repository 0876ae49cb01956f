"""Reading the event pull API (``GET /events``) of a test server, SigV4-signed with the root key by default."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests

from tests.support.dicomweb import SigV4RequestsAuth
from tests.support.server import ServerProcess


def pull(server: ServerProcess, after: int | str | None = 0, limit: int | str | None = 1000, **auth: Any) -> Any:
    """One ``GET /events`` answer (status checked by the caller)."""
    params = {key: str(value) for key, value in (("after", after), ("limit", limit)) if value is not None}
    return requests.get(f"{server.endpoint}/events", params=params, auth=SigV4RequestsAuth(**auth), timeout=30)


def feed(server: ServerProcess) -> list[tuple[int, dict[str, Any]]]:
    """Every published event, ``(sequence, event)``, following ``nextSequence`` page by page."""
    found: list[tuple[int, dict[str, Any]]] = []
    after = 0
    while True:
        answer = pull(server, after, 1000)
        assert answer.status_code == 200, answer.text
        page = answer.json()
        found += [(item["sequence"], item["event"]) for item in page["events"]]
        if not page["events"]:
            return found
        after = page["nextSequence"]


def wait_for_feed(
    server: ServerProcess, done: Callable[[list[dict[str, Any]]], bool], timeout: float = 60
) -> list[dict[str, Any]]:
    """Poll the feed until ``done(events)``; the events."""
    deadline = time.monotonic() + timeout
    while True:
        events = [event for _, event in feed(server)]
        if done(events):
            return events
        assert time.monotonic() < deadline, [event["detail-type"] for event in events]
        time.sleep(0.2)


def ndjson_events(path: Path) -> list[dict[str, Any]]:
    """The events an NDJSON sink wrote (none when the file does not exist yet)."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def about(events: list[dict[str, Any]], key: str, value: str) -> list[dict[str, Any]]:
    """The events whose detail has ``key`` = ``value`` (a data store, a job, an image set)."""
    return [event for event in events if event["detail"].get(key) == value]


def kinds(events: list[dict[str, Any]]) -> list[str]:
    """The detail types, in order."""
    return [event["detail-type"] for event in events]
