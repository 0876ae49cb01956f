"""The DICOMweb endpoint: ``/datastore/{datastoreId}/studies...`` on the same server as the native API.

Order of work per request, each step answering with a DICOMweb status and a JSON error body when it fails
(``errors.py``): route on the path (404 when no route matches, 405 with ``Allow`` for a wrong method), take
the body (a STOW-RS body is streamed to a temporary file and hashed on the way, never held in memory; any
other body is refused past 64 KiB), authenticate -- SigV4 against that hash (guide 1800-1830: the DICOMweb APIs
are signed like the native API, service ``medical-imaging``), or an OIDC bearer token through the data store's
authorizer (guide 2665-3216) -- then run the handler on behalf of that caller (the services authorize it,
``access.guard``). Every answer carries
``x-amzn-RequestId``. The spooled body is deleted when the handler is done.
"""

from __future__ import annotations

import hashlib
import logging
import re
import uuid
from collections.abc import Sequence
from pathlib import Path

from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from openhi.access.bearer_auth import BearerAuthentication
from openhi.access.guard import RequestAccess, acting_as
from openhi.api.authn import SigV4Authenticator
from openhi.api.dicomweb.errors import DicomWebError, error_response, to_wire
from openhi.api.dicomweb.request import DicomWebRequest, SpooledBody, spool_body
from openhi.api.dicomweb.routes import DicomWebRoute, match
from openhi.api.observe import CallFacts, CallObserver, notify
from openhi.auth.bearer import INVALID_TOKEN, bearer_token
from openhi.errors import AuthenticationError
from openhi.iam.principals import Caller
from openhi.throttling.throttle import Throttle

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
        *,
        throttle: Throttle | None = None,
        region: str = "us-east-1",
        bearer: BearerAuthentication | None = None,
        observers: Sequence[CallObserver] = (),
    ) -> None:
        self._routes = routes
        self._observers = tuple(observers)  # audit trail, metrics (api/observe.py)
        self._region = region  # ARNs of the resources policies are evaluated against
        self._bearer = bearer  # OIDC (guide 2665-3216); None: bearer tokens are refused
        self._authenticator = authenticator
        self._max_stow_bytes = max_stow_bytes
        self._spool_dir = spool_dir
        self._throttle = throttle or Throttle.off()  # guide 22777-22816: ThrottlingException (429)

    async def asgi(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The endpoint as a plain ASGI app."""
        response = await self.handle(Request(scope, receive))
        await response(scope, receive, send)

    async def handle(self, request: Request) -> Response:
        """Answer one request."""
        request_id = str(uuid.uuid4())
        facts = CallFacts(request, request_id, "dicomweb")
        response = await self._serve(request, request_id, facts)
        code = response.headers.get("x-amzn-ErrorType")
        notify(self._observers, facts.record(response.status_code, code, None))
        return response

    async def _serve(self, request: Request, request_id: str, facts: CallFacts) -> Response:
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
            operation = facts.operation = chosen.route.operation
            datastore_id = facts.datastore_id = prefix.group("datastore")
            facts.request_parameters = {
                **chosen.params,
                **({"query": request.url.query} if request.url.query else {}),
            }
            token = bearer_token(request.headers.get("authorization", ""))
            if request.method == "POST":
                body = await spool_body(request, self._max_stow_bytes, self._spool_dir)
                digest = body.sha256
            else:
                digest = hashlib.sha256(await _small_body(request)).hexdigest()
            if token is None:
                identity = self._authenticator.authenticate_digest(request, digest)
            else:
                identity = await self._authenticate_bearer(datastore_id, operation, token)
            facts.caller = identity
            self._throttle.acquire(operation)
            routed = DicomWebRequest(
                request=request,
                request_id=request_id,
                datastore_id=datastore_id,
                params=dict(chosen.params),
                identity=identity,
                body=body,
            )
            with acting_as(RequestAccess(identity, self._region, operation)):
                response = await chosen.route.handler(routed)
        except ClientDisconnect:
            return Response(status_code=400)
        except Exception as exc:  # every failure becomes a DICOMweb status with a JSON body
            status, code, message = to_wire(exc, request_id)
            facts.error_message = message
            return self._error(request, request_id, status, code, message)
        finally:
            if body is not None:
                body.discard()
        response.headers["x-amzn-RequestId"] = request_id
        return response

    async def _authenticate_bearer(self, datastore_id: str, operation: str, token: str) -> Caller:
        """The OIDC flow, in a worker thread: it reads the index and waits up to 1 s for the authorizer."""
        if self._bearer is None:
            raise AuthenticationError(INVALID_TOKEN, "Invalid or expired token: bearer tokens are not enabled")
        return await run_in_threadpool(self._bearer.authenticate, datastore_id, operation, token)

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
        return error_response(request_id, status, code, message, headers)
