"""The audit sanitizer (openhi.audit.sanitize): no bytes, no streams, no secrets, JSON-ready values."""

from __future__ import annotations

import io
import json
from datetime import UTC, date, datetime
from enum import Enum

import pytest

from openhi.audit.sanitize import MAX_DEPTH, MAX_STRING, is_secret_key, sanitize


class Color(Enum):
    RED = "red"


@pytest.mark.parametrize(
    "key",
    [
        "secretAccessKey",
        "SecretAccessKey",
        "sessionToken",
        "SessionToken",
        "Authorization",
        "authorization",
        "bearerToken",
        "x-amz-security-token",
        "X-Amz-Security-Token",
        "aws_secret_access_key",
        "password",
        "client_secret",
        "access_token",
    ],
)
def test_secret_keys(key: str) -> None:
    assert is_secret_key(key)


@pytest.mark.parametrize("key", ["accessKeyId", "clientToken", "nextToken", "datastoreId", "kmsKeyArn"])
def test_ordinary_keys(key: str) -> None:
    assert not is_secret_key(key)


def test_bytes_and_streams_become_markers() -> None:
    value = {
        "blob": b"\x00" * 10,
        "array": bytearray(3),
        "view": memoryview(b"abcd"),
        "stream": io.BytesIO(b"pixels"),
    }
    assert sanitize(value) == {"blob": "<10 bytes>", "array": "<3 bytes>", "view": "<4 bytes>", "stream": "<stream>"}


def test_secrets_removed_at_any_depth() -> None:
    value = {
        "Credentials": {"AccessKeyId": "ASIA1", "SecretAccessKey": "s3cr3t", "SessionToken": "t0k3n"},
        "items": [{"authorization": "AWS4-HMAC-SHA256 ...", "keep": 1}],
    }
    cleaned = sanitize(value)
    assert cleaned == {"Credentials": {"AccessKeyId": "ASIA1"}, "items": [{"keep": 1}]}
    assert "s3cr3t" not in json.dumps(cleaned)
    assert "t0k3n" not in json.dumps(cleaned)


def test_scalars_dates_enums_and_collections() -> None:
    moment = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    value = {"n": 1, "f": 1.5, "b": True, "none": None, "when": moment, "day": date(2024, 1, 2), "color": Color.RED}
    value["tuple"] = (1, "a")  # type: ignore[assignment]
    assert sanitize(value) == {
        "n": 1,
        "f": 1.5,
        "b": True,
        "none": None,
        "when": "2024-01-02T03:04:05+00:00",
        "day": "2024-01-02",
        "color": "red",
        "tuple": [1, "a"],
    }


def test_unknown_objects_are_named_not_printed() -> None:
    class Secretive:
        def __str__(self) -> str:
            return "hunter2"

    assert sanitize({"x": Secretive()}) == {"x": "<Secretive>"}


def test_long_strings_and_deep_nesting_are_cut() -> None:
    text = sanitize("x" * (MAX_STRING + 10))
    assert isinstance(text, str)
    assert text.endswith("<10 more chars>")
    assert len(text) < MAX_STRING + 40
    deep: object = "leaf"
    for _ in range(MAX_DEPTH + 5):
        deep = {"d": deep}
    assert "<nested too deep>" in json.dumps(sanitize(deep))


def test_non_string_keys_become_text() -> None:
    assert sanitize({1: "a"}) == {"1": "a"}
