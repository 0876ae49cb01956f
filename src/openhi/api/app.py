"""The ASGI application: ``GET /health``, DICOMweb and the native API, plus background loops in the lifespan.

Around every route sit two middlewares, outermost first: CORS (``cors.py``: answers preflights before any
authentication and adds the CORS headers to every answer, errors included) and selective gzip
(``compression.py``: JSON answers only, when the client accepts it).
Outside both, ``outer_middleware`` handed in by the composition root answers ``GET /metrics`` by itself.

``/health`` is unauthenticated (for load balancers and orchestrators) and answers 200 only when the
index and the blob store answer. Periodic work handed in by the composition root (the data store
lifecycle sweep) runs in worker threads while the app is up and stops cleanly on shutdown (SIGTERM
is handled by uvicorn: in-flight requests finish, then the lifespan ends).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from openhi.api.aws.endpoint import AwsEndpoint
from openhi.api.compression import SelectiveGZipMiddleware
from openhi.api.cors import cors_middleware
from openhi.api.dicomweb.endpoint import DicomWebEndpoint, is_dicomweb_path
from openhi.api.events import EventsEndpoint, is_events_request
from openhi.api.sts import StsEndpoint, is_sts_request

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Periodic:
    """A function run every ``interval`` seconds in a worker thread while the app is up."""

    name: str
    run: Callable[[], object]
    interval: float


async def _loop(task: Periodic) -> None:
    while True:
        try:
            await run_in_threadpool(task.run)
        except Exception:
            log.exception("background task %s failed; continuing", task.name)
        await asyncio.sleep(task.interval)


def create_app(
    aws: AwsEndpoint,
    dicomweb: DicomWebEndpoint,
    readiness_checks: Mapping[str, Callable[[], None]],
    periodic: Sequence[Periodic] = (),
    on_startup: Sequence[Callable[[], object]] = (),
    on_shutdown: Sequence[Callable[[], None]] = (),
    cors_origins: tuple[str, ...] = (),
    sts: StsEndpoint | None = None,
    events: EventsEndpoint | None = None,
    outer_middleware: Sequence[Middleware] = (),
) -> Starlette:
    """Assemble the routes, the middlewares and the lifespan.

    ``readiness_checks`` maps a backend's name ("index", "blobs") to a probe that raises when it is down. The
    unauthenticated answer names only the backend; the details (paths, hosts) go to the log.
    ``cors_origins`` is ``cors.parse_origins`` of the setting (empty: no CORS headers). ``sts`` serves the STS
    Query API (``POST /`` with a form body; the native API has no ``POST /``). ``events`` serves the pull API of
    events (``GET /events``, docs/events.md).
    """

    async def health(request: Request) -> JSONResponse:
        for name, check in readiness_checks.items():
            try:
                await run_in_threadpool(check)
            except Exception as exc:
                log.warning("readiness: %s unavailable: %s", name, exc)
                return JSONResponse({"status": "unavailable", "backend": name}, status_code=503)
        return JSONResponse({"status": "ok"})

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        for start in on_startup:
            await run_in_threadpool(start)
        tasks = [asyncio.create_task(_loop(task), name=task.name) for task in periodic]
        try:
            yield
        finally:
            for running in tasks:
                running.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for stop in on_shutdown:
                await run_in_threadpool(stop)

    async def dispatch(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and is_dicomweb_path(scope["path"]):
            await dicomweb.asgi(scope, receive, send)
        elif sts is not None and is_sts_request(scope):
            await sts.asgi(scope, receive, send)
        elif events is not None and is_events_request(scope):  # GET /events: the pull API of events
            await events.asgi(scope, receive, send)
        else:
            await aws.asgi(scope, receive, send)

    # ``outer_middleware`` (GET /metrics) sits outside CORS and gzip: its answers get neither (metrics/exporter.py).
    middleware = [*outer_middleware, *cors_middleware(cors_origins), Middleware(SelectiveGZipMiddleware)]
    app = Starlette(routes=[Route("/health", health, methods=["GET"])], middleware=middleware, lifespan=lifespan)
    # /datastore/{id}/studies... is DICOMweb; every other path and method (OPTIONS, PATCH ...) reaches the
    # native API and gets an AWS answer.
    app.router.default = dispatch
    app.router.redirect_slashes = False
    return app
