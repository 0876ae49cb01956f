"""The pull API of events (an OpenHI extension, like Azure's change feed): ``GET /events?after=N&limit=M``.

Signed with SigV4 for the service ``medical-imaging`` exactly like the native API (the same authenticator) and
run on behalf of the caller (``access.guard``), so the operation ``ListEvents`` is authorized by IAM
(``medical-imaging:ListEvents`` on ``*``; the root key may do everything). ``after`` (default 0) is the last
sequence the consumer has seen, ``limit`` 1-1000 (default 100). The answer is JSON::

    {"events": [{"sequence": 12, "event": {"version": "0", "id": "...", "detail-type": "Image Set Created", ...}}],
     "nextSequence": 12}

Errors are AWS JSON errors (``__type`` + ``message``) with the native API's statuses; every answered call is
reported to the call observers (audit trail, metrics) as operation ``ListEvents``.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send

from openhi.access.guard import RequestAccess, run_as
from openhi.api.authn import SigV4Authenticator
from openhi.api.aws.errors import error_response, to_wire
from openhi.api.observe import CallFacts, CallObserver, notify
from openhi.events.outbox import DEFAULT_LIMIT, MAX_LIMIT, EventFeed, parse_position

EVENTS_PATH = "/events"
OPERATION = "ListEvents"


def is_events_request(scope: Scope) -> bool:
    """``GET /events`` (any other method on the path gets the native API's unknown-operation answer)."""
    return bool(scope["type"] == "http" and scope["method"] == "GET" and scope["path"] == EVENTS_PATH)


class EventsEndpoint:
    """Serves ``GET /events``."""

    def __init__(
        self,
        feed: EventFeed,
        authenticator: SigV4Authenticator,
        *,
        region: str,
        observers: Sequence[CallObserver] = (),
    ) -> None:
        self._feed = feed
        self._authenticator = authenticator
        self._region = region
        self._observers = tuple(observers)

    async def asgi(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The endpoint as a plain ASGI app."""
        response = await self.handle(Request(scope, receive))
        await response(scope, receive, send)

    async def handle(self, request: Request) -> Response:
        """Answer one request."""
        request_id = str(uuid.uuid4())
        facts = CallFacts(request, request_id, "native")
        facts.operation = OPERATION
        try:
            caller = facts.caller = self._authenticator.authenticate(request, b"")
            query = request.query_params
            after = parse_position("after", query.get("after"), 0, 0)
            limit = parse_position("limit", query.get("limit"), DEFAULT_LIMIT, 1, MAX_LIMIT)
            facts.request_parameters = {"after": after, "limit": limit}
            access = RequestAccess(caller, self._region, OPERATION)
            page = await run_in_threadpool(run_as, access, self._feed.page, after, limit)
        except Exception as exc:  # every failure becomes an AWS JSON error, as on the native API
            status, code, message = to_wire(exc, request_id)
            notify(self._observers, facts.record(status, code, message))
            return error_response(request_id, status, code, message)
        facts.response_elements = {"nextSequence": page.next_sequence, "eventCount": len(page.events)}
        notify(self._observers, facts.record(200))
        return JSONResponse(page.to_json(), headers={"x-amzn-RequestId": request_id})
