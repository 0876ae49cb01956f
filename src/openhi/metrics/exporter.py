"""``GET /metrics``: the registry of one server process, or of all ``--workers``, in Prometheus text format.

``open_metrics`` assembles the registry: the API metrics (``calls.CallMetrics``, an observer of both edges) and
the resource metrics (``resources.ResourceCollector``, read from the index at scrape time). With
``openhi serve --workers N`` each request is answered by one of N processes, so a counter kept in process memory
would show one process's share. There, the supervisor calls ``prepare_multiprocess`` before it starts the workers:
it empties ``{data_dir}/prometheus-multiproc`` and names it in ``PROMETHEUS_MULTIPROC_DIR``, which the workers
inherit; prometheus_client then keeps every counter and histogram of each process in a memory-mapped file there,
and a scrape answered by any worker sums the files of all of them (prometheus_client's multiprocess mode), dead
workers included, so counters never go back when uvicorn replaces a worker. The resource metrics are not in the
files: any process reads the same index. (A shared store such as Redis for the counters would cost a network
round trip per request; the files cost a memory write.)

``MetricsRoute`` serves the path from outside every other middleware (added first, it is the outermost): the
answer gets no CORS headers, so a web page of an allowed origin cannot read the metrics of an operator's
browser, and no JSON gzip rules; the exporter compresses by itself when the scraper accepts gzip. It needs no
SigV4 and is not counted as a call, as with most exporters: keep it on loopback or behind a firewall, or turn it
off with ``metrics_enabled = false`` (docs/metrics.md).
"""

from __future__ import annotations

import gzip
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from prometheus_client import CollectorRegistry, values
from prometheus_client.exposition import choose_encoder
from prometheus_client.multiprocess import MultiProcessCollector
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from openhi.api.compression import accepts_gzip
from openhi.clock import Clock, utc_now
from openhi.index.port import Index
from openhi.metrics.calls import CallMetrics
from openhi.metrics.resources import ResourceCollector, UsageReader

log = logging.getLogger(__name__)

METRICS_PATH = "/metrics"
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
MULTIPROC_DIRNAME = "prometheus-multiproc"


def prepare_multiprocess(data_dir: Path) -> Path:
    """For the supervisor of ``--workers N``, before the workers start: an empty directory for their metric files,
    named in the environment they inherit. Files of an earlier run are removed (their processes are gone)."""
    path = (data_dir / MULTIPROC_DIRNAME).resolve()
    path.mkdir(parents=True, exist_ok=True)
    for stale in path.glob("*.db"):
        stale.unlink()
    os.environ[MULTIPROC_ENV] = str(path)
    return path


def multiprocess_mode() -> bool:
    """True when this process writes its metrics to the shared directory (the environment named one when
    prometheus_client was first imported)."""
    named = bool(os.environ.get(MULTIPROC_ENV))
    active = bool(getattr(values.ValueClass, "_multiprocess", False))
    if named and not active:
        log.warning("%s was set after prometheus_client was imported: metrics stay in this process", MULTIPROC_ENV)
    return named and active


class MetricsEndpoint:
    """ASGI app: the registry in the format the scraper accepts (text 0.0.4 or OpenMetrics), gzip if accepted."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._registry = registry

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        response: Response
        if request.method not in ("GET", "HEAD"):
            response = PlainTextResponse("Method Not Allowed", status_code=405, headers={"Allow": "GET, HEAD"})
        else:
            encoder, content_type = choose_encoder(request.headers.get("accept", ""))
            body: bytes = await run_in_threadpool(encoder, self._registry)  # the index read may block
            headers = {"Content-Type": content_type, "Cache-Control": "no-store", "Vary": "Accept-Encoding"}
            if accepts_gzip(request.headers.get("accept-encoding", "")):
                body = gzip.compress(body, compresslevel=6)
                headers["Content-Encoding"] = "gzip"
            response = Response(body, headers=headers)
        await response(scope, receive, send)


class MetricsRoute:
    """ASGI middleware: ``path`` goes to ``endpoint``, everything else to the app (see the module docstring)."""

    def __init__(self, app: ASGIApp, endpoint: ASGIApp, path: str = METRICS_PATH) -> None:
        self._app = app
        self._endpoint = endpoint
        self._path = path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == self._path:
            await self._endpoint(scope, receive, send)
        else:
            await self._app(scope, receive, send)


@dataclass(frozen=True)
class Metrics:
    """The metrics of one server process."""

    registry: CollectorRegistry
    calls: CallMetrics  # a CallObserver for both edges
    endpoint: MetricsEndpoint

    @property
    def middleware(self) -> list[Middleware]:
        """The outermost middleware that serves ``/metrics`` (for ``create_app``)."""
        return [Middleware(MetricsRoute, endpoint=self.endpoint)]


def open_metrics(index: Index, account_id: str, clock: Clock = utc_now) -> Metrics:
    """The registry: API metrics (this process's, or every worker's in multiprocess mode) and resource metrics."""
    registry = CollectorRegistry()
    if multiprocess_mode():
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]  # prometheus_client leaves it untyped
        calls = CallMetrics(None)  # written to this process's files, read back by the collector above
    else:
        calls = CallMetrics(registry)
    registry.register(ResourceCollector(UsageReader(index, clock), account_id))
    return Metrics(registry, calls, MetricsEndpoint(registry))
