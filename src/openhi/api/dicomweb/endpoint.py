"""The DICOMweb endpoint: ``/datastore/{datastoreId}/studies...`` on the same server as the native API.

Order of work per request, each step answering with a DICOMweb status and a JSON error body when it fails
(``errors.py``): route on the path (404 when no route matches, 405 with ``Allow`` for a wrong method), take
the body (a STOW-RS body is streamed to a temporary file and hashed on the way, never held in memory; any
other body is refused past 64 KiB), verify SigV4 against that hash (guide 1800-1830: the DICOMweb APIs are
signed like the native API, service ``medical-imaging``), then run the handler. Every answer carries
``x-amzn-RequestId``. The spooled body is deleted when the handler is done.
"""

from __future__ import annotations

import hashlib
import logging
import re
import uuid
from collections.abc import Sequence
from pathlib import Path

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from openhi.api.authn import SigV4Authenticator
from openhi.api.dicomweb.errors import DicomWebError, error_body, to_wire
from openhi.api.dicomweb.request import DicomWebRequest, SpooledBody, spool_body
from openhi.api.dicomweb.routes import DicomWebRoute, match

log = logging.getLogger(__name__)

PREFIX = re.compile(r"^/datastore/(?P<datastore>[^/]+)(?P<rest>/studies(?:/.*)?)$")
MAX_NON_STOW_BODY = 64 * 1024


def is_dicomweb_path(path: str) -> bool:
    """True for the paths this endpoint owns (the native API keeps every other ``/datastore`` path)."""
    return PREFIX.match(path) is not None


async def _small_body(request: Request) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_NON_STOW_BODY:
            raise DicomWebError("RequestEntityTooLarge", f"a {request.method} request takes no body")
        chunks.append(chunk)
    return b"".join(chunks)


class DicomWebEndpoint:
    """Serves every DICOMweb route of ``routes``."""

    def __init__(
        self,
        routes: Sequence[DicomWebRoute],
        authenticator: SigV4Authenticator,
        max_stow_bytes: int,
        spool_dir: Path | None = None,
    ) -> None:
        self._routes = routes
        self._authenticator = authenticator
        self._max_stow_bytes = max_stow_bytes
        self._spool_dir = spool_dir

    async def asgi(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The endpoint as a plain ASGI app."""
        response = await self.handle(Request(scope, receive))
        await response(scope, receive, send)

    async def handle(self, request: Request) -> Response:
        """Answer one request."""
        request_id = str(uuid.uuid4())
        body: SpooledBody | None = None
        try:
            prefix = PREFIX.match(request.url.path)
            if prefix is None:
                raise DicomWebError("ResourceNotFoundException", f"No DICOMweb resource at {request.url.path}")
            matches = match(self._routes, prefix.group("rest"))
            if not matches:
                raise DicomWebError("ResourceNotFoundException", f"No DICOMweb resource at {request.url.path}")
            chosen = next((m for m in matches if request.method in m.route.methods), None)
            if chosen is None:
                allowed = sorted({method for m in matches for method in m.route.methods})
                return self._error(
                    request,
                    request_id,
                    405,
                    "MethodNotAllowedException",
                    f"{request.method} is not allowed here",
                    {"Allow": ", ".join(allowed)},
                )
            if request.method == "POST":
                body = await spool_body(request, self._max_stow_bytes, self._spool_dir)
                identity = self._authenticator.authenticate_digest(request, body.sha256)
            else:
                identity = self._authenticator.authenticate_digest(
                    request, hashlib.sha256(await _small_body(request)).hexdigest()
                )
            routed = DicomWebRequest(
                request=request,
                request_id=request_id,
                datastore_id=prefix.group("datastore"),
                params=dict(chosen.params),
                identity=identity,
                body=body,
            )
            response = await chosen.route.handler(routed)
        except ClientDisconnect:
            return Response(status_code=400)
        except Exception as exc:  # every failure becomes a DICOMweb status with a JSON body
            status, code, message = to_wire(exc, request_id)
            return self._error(request, request_id, status, code, message)
        finally:
            if body is not None:
                body.discard()
        response.headers["x-amzn-RequestId"] = request_id
        return response

    @staticmethod
    def _error(
        request: Request,
        request_id: str,
        status: int,
        code: str,
        message: str,
        headers: dict[str, str] | None = None,
    ) -> Response:
        log.info("%s %s -> %s %s", request.method, request.url.path, status, code)
        return Response(
            error_body(code, message),
            status_code=status,
            media_type="application/json",
            headers={"x-amzn-RequestId": request_id, "x-amzn-ErrorType": code, **(headers or {})},
        )
