"""The native API endpoint: one ASGI handler for every operation of the model.

Order of work per request, each step answering in AWS JSON error format when it fails: read the body
(bounded by ``max_request_bytes``), verify SigV4, route on method + raw path, parse and validate the
parameters against the model, run the handler in a worker thread (services are synchronous) on behalf of the
authenticated caller (the services authorize it, ``access.guard``), serialize.
Every answer carries ``x-amzn-RequestId``.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from openhi.access.guard import RequestAccess, run_as
from openhi.api.authn import SigV4Authenticator
from openhi.api.aws.errors import EdgeError, error_response, to_wire
from openhi.api.aws.handlers import AwsHandlers
from openhi.api.aws.protocol import parse_request, serialize_response
from openhi.api.aws.routing import Router, UnknownOperationError
from openhi.api.aws.validation import validate_input
from openhi.api.observe import CallFacts, CallObserver, notify
from openhi.throttling.throttle import Throttle

log = logging.getLogger(__name__)


async def read_body(request: Request, limit: int) -> bytes:
    """The whole body, refusing more than ``limit`` bytes without reading past it."""
    declared = request.headers.get("content-length")
    too_large = EdgeError("RequestEntityTooLarge", f"Request body exceeds the maximum of {limit} bytes")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise too_large
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


class AwsEndpoint:
    """Serves the 18 operations of ``medical-imaging`` 2023-07-19."""

    def __init__(
        self,
        handlers: AwsHandlers,
        authenticator: SigV4Authenticator,
        max_request_bytes: int,
        *,
        throttle: Throttle | None = None,
        region: str = "us-east-1",
        observers: Sequence[CallObserver] = (),
    ) -> None:
        self._handlers = handlers
        self._observers = tuple(observers)  # audit trail, metrics (api/observe.py)
        self._region = region  # ARNs of the resources policies are evaluated against
        self._authenticator = authenticator
        self._limit = max_request_bytes
        self._router = Router()
        self._throttle = throttle or Throttle.off()  # guide 22777-22816: ThrottlingException (429)

    async def asgi(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The endpoint as a plain ASGI app (the router's fallback for every path but /health)."""
        response = await self.handle(Request(scope, receive))
        await response(scope, receive, send)

    async def handle(self, request: Request) -> Response:
        """Answer one request."""
        request_id = str(uuid.uuid4())
        facts = CallFacts(request, request_id, "native")
        try:
            body = await read_body(request, self._limit)
            caller = facts.caller = self._authenticator.authenticate(request, body)
            try:
                match = self._router.match(request.method, request.scope.get("raw_path", b"").decode("latin-1"))
            except UnknownOperationError as exc:
                raise EdgeError("UnknownOperationException", f"No operation matches {exc}") from exc
            operation = match.operation
            facts.operation = operation.name
            facts.datastore_id = match.labels.get("datastoreId")
            self._throttle.acquire(operation.name)
            params = parse_request(
                operation,
                match.labels,
                request.scope.get("query_string", b"").decode("latin-1"),
                {k.lower(): v for k, v in request.headers.items()},
                body,
            )
            params = facts.request_parameters = validate_input(operation.input_shape, params)
            access = RequestAccess(caller, self._region, operation.name)
            result: dict[str, Any] = await run_in_threadpool(
                run_as, access, self._handlers.table[operation.name], params
            )
            facts.response_elements = result
            headers, payload = serialize_response(operation, result)
        except ClientDisconnect:
            notify(self._observers, facts.record(400, "ClientDisconnect"))
            return Response(status_code=400)
        except Exception as exc:  # every failure becomes an AWS JSON error; see errors.to_wire
            status, code, message = to_wire(exc, request_id)
            log.info("%s %s -> %s %s", request.method, request.url.path, status, code)
            notify(self._observers, facts.record(status, code, message))
            return error_response(request_id, status, code, message)
        notify(self._observers, facts.record(200))
        return Response(payload, status_code=200, headers={"x-amzn-RequestId": request_id, **headers})
