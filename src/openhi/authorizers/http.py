"""An authorizer reached over HTTP: the guide's event is POSTed as JSON, the answer is the JSON response body.

This stands in for the Lambda ``Invoke`` call of guide 2820-2870 when the authorizer runs as a web service
(any language, any host). The request is ``POST <url>`` with ``Content-Type: application/json`` and the body
``{"datastoreId", "operation", "bearerToken"}``; a 2xx answer's body must be ``{"isTokenValid", "roleArn"}``.
Redirects are not followed (a 3xx is a failure), so the token is only ever sent to the configured URL.

Failures, by the guide's table (3000-3030):

* connection refused / reset, DNS failure, a non-2xx status: the authorizer failed -> ``AuthorizerFailureException``
  (424);
* the transport timed out: ``AuthorizerTimeoutException`` (408);
* a body that is not JSON, or larger than :data:`MAX_ANSWER_BYTES`: a malformed answer ->
  ``AuthorizerMisconfigurationException`` (424).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Mapping
from typing import Any

import httpx

from openhi.authorizers.port import (
    AUTHORIZER_FAILURE,
    AUTHORIZER_MISCONFIGURED,
    AUTHORIZER_TIMEOUT,
    AuthorizerEvent,
    as_mapping,
)
from openhi.errors import AuthorizerError

__all__ = ["MAX_ANSWER_BYTES", "HttpAuthorizer"]

log = logging.getLogger(__name__)

MAX_ANSWER_BYTES = 64 * 1024  # the answer is two members; anything near this is not an authorizer's answer


class HttpAuthorizer:
    """POSTs the event to ``url``; one pooled ``httpx.Client`` per authorizer, shared by all threads."""

    def __init__(self, arn: str, url: str, timeout_seconds: float = 2.0) -> None:
        self._arn = arn
        self._url = url
        self._timeout = timeout_seconds
        self._client: httpx.Client | None = None
        self._lock = threading.Lock()

    def _http(self) -> httpx.Client:
        with self._lock:
            if self._client is None:
                self._client = httpx.Client(timeout=self._timeout, follow_redirects=False, trust_env=False)
            return self._client

    def close(self) -> None:
        """Release the connection pool."""
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None

    def _read(self, response: httpx.Response) -> bytes:
        body = bytearray()
        for chunk in response.iter_bytes():
            body += chunk
            if len(body) > MAX_ANSWER_BYTES:
                raise AuthorizerError(
                    AUTHORIZER_MISCONFIGURED,
                    f"Authorizer misconfigured: its answer is larger than {MAX_ANSWER_BYTES} bytes",
                )
        return bytes(body)

    def __call__(self, event: AuthorizerEvent) -> Mapping[str, Any]:
        try:
            with self._http().stream("POST", self._url, json=event.to_payload()) as response:
                if not 200 <= response.status_code < 300:
                    log.warning("authorizer %s answered HTTP %s", self._arn, response.status_code)
                    raise AuthorizerError(
                        AUTHORIZER_FAILURE, f"Authorizer failure: it answered HTTP {response.status_code}"
                    )
                body = self._read(response)
        except httpx.TimeoutException as exc:
            log.warning("authorizer %s timed out: %s", self._arn, type(exc).__name__)
            raise AuthorizerError(AUTHORIZER_TIMEOUT, "Authorizer timeout: no answer in time") from exc
        except httpx.HTTPError as exc:
            log.warning("authorizer %s unreachable: %s", self._arn, exc)
            raise AuthorizerError(AUTHORIZER_FAILURE, "Authorizer failure: it could not be reached") from exc
        try:
            answer: object = json.loads(body)
        except (UnicodeDecodeError, ValueError) as exc:
            raise AuthorizerError(AUTHORIZER_MISCONFIGURED, "Authorizer misconfigured: its answer is not JSON") from exc
        return as_mapping(answer)
