"""The ``event_sinks`` setting: a JSON list of sink specs -> the sinks (checked at start).

::

    [
      {"type": "ndjson", "path": "/var/log/openhi/events.ndjson"},
      {"type": "webhook", "url": "https://hooks.example.org/openhi", "headers": {"Authorization": "Bearer ..."},
       "backoff_seconds": 0.5, "max_backoff_seconds": 60, "attempts_per_pass": 5, "timeout_seconds": 5},
      {"type": "nats", "url": "nats://127.0.0.1:4222", "stream": "openhi", "subject": "openhi.events"}
    ]

Every spec may set ``name``: the key of its delivery cursor in the index. By default the name is derived from
the type and the destination, so the same sink after a restart resumes where it was; a new name starts at the
first retained event. Unknown types or keys, and missing ones, are a ``ValidationError`` naming ``event_sinks``.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from openhi.errors import ValidationError
from openhi.events.sinks.nats import NatsSink
from openhi.events.sinks.ndjson import NdjsonSink
from openhi.events.sinks.port import EventSink
from openhi.events.sinks.webhook import WebhookSink

MAX_NAME_LENGTH = 200  # event_cursors.sink
SUBJECT = r"[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*"


def _invalid(message: str) -> ValidationError:
    return ValidationError(f"setting 'event_sinks': {message}", field="event_sinks")


def _name(spec: Mapping[str, Any], default: str) -> str | None:
    name = spec.get("name")
    if name is not None:
        if not isinstance(name, str) or not 0 < len(name) <= MAX_NAME_LENGTH:
            raise _invalid(f"name must be a string of 1 to {MAX_NAME_LENGTH} characters, got {name!r}")
        return name
    if len(default) <= MAX_NAME_LENGTH:
        return default
    return f"{default[:100]}#{hashlib.sha256(default.encode()).hexdigest()[:32]}"


def _text(spec: Mapping[str, Any], key: str) -> str:
    value = spec.get(key)
    if not isinstance(value, str) or not value:
        raise _invalid(f"a {spec.get('type')} sink needs a non-empty string {key!r}")
    return value


def _number(spec: Mapping[str, Any], key: str, default: float) -> float:
    value = spec.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise _invalid(f"{key} must be a number >= 0, got {value!r}")
    return float(value)


def _ndjson(spec: Mapping[str, Any]) -> EventSink:
    path = Path(_text(spec, "path")).expanduser().resolve()
    return NdjsonSink(path, _name(spec, f"ndjson:{path}"))


def _webhook(spec: Mapping[str, Any]) -> EventSink:
    url = _text(spec, "url")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise _invalid(f"webhook url must be http:// or https://, got {url!r}")
    headers = spec.get("headers", {})
    if not isinstance(headers, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in headers.items()):
        raise _invalid("webhook headers must be an object of strings")
    return WebhookSink(
        url,
        _name(spec, f"webhook:{url}"),
        headers=headers,
        timeout_seconds=_number(spec, "timeout_seconds", 5.0),
        attempts_per_pass=int(_number(spec, "attempts_per_pass", 5)),
        backoff_seconds=_number(spec, "backoff_seconds", 0.5),
        max_backoff_seconds=_number(spec, "max_backoff_seconds", 60.0),
    )


def _nats(spec: Mapping[str, Any]) -> EventSink:
    url = _text(spec, "url")
    if urlsplit(url).scheme not in ("nats", "tls"):
        raise _invalid(f"nats url must be nats:// or tls://, got {url!r}")
    stream = _text(spec, "stream")
    subject = _text(spec, "subject")
    if not re.fullmatch(r"[A-Za-z0-9_-]+", stream):
        raise _invalid(f"nats stream names are letters, digits, '_' and '-', got {stream!r}")
    if not re.fullmatch(SUBJECT, subject):
        raise _invalid(f"nats subject must be dot-separated tokens without wildcards, got {subject!r}")
    return NatsSink(
        url,
        stream,
        subject,
        _name(spec, f"nats:{url}/{stream}/{subject}"),
        connect_timeout_seconds=_number(spec, "connect_timeout_seconds", 2.0),
        ack_timeout_seconds=_number(spec, "ack_timeout_seconds", 5.0),
        duplicate_window_seconds=_number(spec, "duplicate_window_seconds", 120.0),
    )


BUILDERS: dict[str, tuple[Callable[[Mapping[str, Any]], EventSink], frozenset[str]]] = {
    "ndjson": (_ndjson, frozenset({"path"})),
    "webhook": (
        _webhook,
        frozenset({"url", "headers", "timeout_seconds", "attempts_per_pass", "backoff_seconds", "max_backoff_seconds"}),
    ),
    "nats": (
        _nats,
        frozenset(
            {"url", "stream", "subject", "connect_timeout_seconds", "ack_timeout_seconds", "duplicate_window_seconds"}
        ),
    ),
}


def sinks_from_setting(text: str) -> list[EventSink]:
    """The sinks of the ``event_sinks`` setting (empty text: none). Raises ``ValidationError``."""
    if not text.strip():
        return []
    try:
        specs = json.loads(text)
    except json.JSONDecodeError as exc:
        raise _invalid(f"not JSON: {exc}") from exc
    if not isinstance(specs, list) or not all(isinstance(spec, dict) for spec in specs):
        raise _invalid("must be a JSON list of objects")
    sinks: list[EventSink] = []
    try:
        for spec in specs:
            kind = spec.get("type")
            if kind not in BUILDERS:
                raise _invalid(f"unknown sink type {kind!r} (one of {', '.join(BUILDERS)})")
            build, keys = BUILDERS[kind]
            unknown = set(spec) - keys - {"type", "name"}
            if unknown:
                raise _invalid(f"unknown keys for a {kind} sink: {', '.join(sorted(unknown))}")
            sinks.append(build(spec))
        names = [sink.name for sink in sinks]
        if len(set(names)) != len(names):
            raise _invalid(f"two sinks have the same name; give them distinct 'name's: {names}")
    except BaseException:
        for sink in sinks:
            sink.stop()
        raise
    return sinks
