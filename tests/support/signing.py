"""Raw HTTP requests signed by botocore's own SigV4 signer, for tests that must shape the wire themselves."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from unittest import mock

import httpx
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from tests.support.server import ACCESS_KEY_ID, SECRET_ACCESS_KEY


@contextmanager
def signing_time(moment: dt.datetime) -> Iterator[None]:
    """Make botocore's signer believe it is ``moment`` (to produce expired or future signatures)."""

    class Frozen(dt.datetime):
        @classmethod
        def utcnow(cls) -> Frozen:  # type: ignore[override]
            return cls.fromtimestamp(moment.timestamp(), dt.UTC).replace(tzinfo=None)

        @classmethod
        def now(cls, tz: dt.tzinfo | None = None) -> Frozen:  # type: ignore[override]
            return cls.fromtimestamp(moment.timestamp(), tz)

    with mock.patch("botocore.auth.datetime.datetime", Frozen):
        yield


def signed(
    method: str,
    url: str,
    body: bytes = b"",
    headers: Mapping[str, str] | None = None,
    access_key_id: str = ACCESS_KEY_ID,
    secret: str = SECRET_ACCESS_KEY,
    region: str = "us-east-1",
    service: str = "medical-imaging",
    token: str | None = None,
) -> httpx.Request:
    """An httpx request carrying the exact headers botocore's SigV4Auth computed."""
    request = AWSRequest(method=method, url=url, data=body, headers=dict(headers or {}))
    SigV4Auth(Credentials(access_key_id, secret, token), service, region).add_auth(request)
    return httpx.Request(method, url, content=body, headers=dict(request.headers.items()))


def send(request: httpx.Request) -> httpx.Response:
    """Send one request without any client-side rewriting."""
    with httpx.Client(timeout=30) as client:
        return client.send(request)
