"""The DICOMweb route table: method + path under ``/datastore/{datastoreId}`` -> handler.

Paths are the guide's (StoreDICOM 1800-1830, GetDICOMInstance 1900-1990, GetDICOMInstanceMetadata 1990-2040,
GetDICOMSeriesMetadata 2040-2080, GetDICOMInstanceFrames 2080-2140, GetDICOMBulkdata 2145-2210, QIDO-RS
2220-2664), plus what viewers need beyond HealthImaging (study-level WADO-RS, relational instance search in
a study, ``/rendered`` and ``/thumbnail``; PS3.18 §10.4 and §10.4.1.1.3). UIDs are matched as path
segments; the handler checks their syntax.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from openhi.api.dicomweb.qido import QidoHandlers
from openhi.api.dicomweb.render import RenderHandlers
from openhi.api.dicomweb.request import Handler
from openhi.api.dicomweb.stow import StowHandlers
from openhi.api.dicomweb.wado import WadoHandlers

_SEGMENT = r"[^/]+"


@dataclass(frozen=True)
class DicomWebRoute:
    """One route: the operation name (for logs and policies), methods, the compiled path and the handler."""

    operation: str
    methods: frozenset[str]
    pattern: re.Pattern[str]
    handler: Handler


def _compile(template: str) -> re.Pattern[str]:
    """``/studies/{study}/series`` -> a regex with one named group per parameter."""
    regex = re.sub(r"\{(\w+)\}", lambda m: f"(?P<{m.group(1)}>{_SEGMENT})", template)
    return re.compile(f"^{regex}$")


def build_routes(
    stow: StowHandlers, wado: WadoHandlers, qido: QidoHandlers, render: RenderHandlers
) -> list[DicomWebRoute]:
    """Every DICOMweb route, most specific first (the first match wins)."""
    instance = "/studies/{study}/series/{series}/instances/{instance}"
    table: Sequence[tuple[str, str, str, Handler]] = [
        ("StoreDICOM", "POST", "/studies", stow.store),
        ("StoreDICOMStudy", "POST", "/studies/{study}", stow.store),
        ("SearchDICOMStudies", "GET", "/studies", qido.studies),
        ("SearchDICOMSeries", "GET", "/studies/{study}/series", qido.series),
        ("SearchDICOMInstances", "GET", "/studies/{study}/series/{series}/instances", qido.instances),
        ("SearchDICOMStudyInstances", "GET", "/studies/{study}/instances", qido.instances),
        ("GetDICOMStudy", "GET", "/studies/{study}", wado.study),
        ("GetDICOMStudyMetadata", "GET", "/studies/{study}/metadata", wado.study_metadata),
        ("GetDICOMSeries", "GET", "/studies/{study}/series/{series}", wado.series),
        ("GetDICOMSeriesMetadata", "GET", "/studies/{study}/series/{series}/metadata", wado.series_metadata),
        ("GetDICOMSeriesRendered", "GET", "/studies/{study}/series/{series}/rendered", render.rendered),
        ("GetDICOMSeriesThumbnail", "GET", "/studies/{study}/series/{series}/thumbnail", render.thumbnail),
        ("GetDICOMInstance", "GET", instance, wado.instance),
        ("GetDICOMInstanceMetadata", "GET", f"{instance}/metadata", wado.instance_metadata),
        ("GetDICOMInstanceRendered", "GET", f"{instance}/rendered", render.rendered),
        ("GetDICOMInstanceThumbnail", "GET", f"{instance}/thumbnail", render.thumbnail),
        ("GetDICOMInstanceFrames", "GET", f"{instance}/frames/{{frames}}", wado.frames),
        ("GetDICOMFramesRendered", "GET", f"{instance}/frames/{{frames}}/rendered", render.rendered),
        ("GetDICOMFramesThumbnail", "GET", f"{instance}/frames/{{frames}}/thumbnail", render.thumbnail),
        ("GetDICOMBulkdata", "GET", f"{instance}/bulkdata/{{bulk}}", wado.bulkdata),
    ]
    routes = []
    for operation, method, template, handler in table:
        methods = frozenset({method, "HEAD"} if method == "GET" else {method})
        routes.append(DicomWebRoute(operation, methods, _compile(template), handler))
    return routes


@dataclass(frozen=True)
class RouteMatch:
    """A matched route with its path parameters."""

    route: DicomWebRoute
    params: Mapping[str, str]


def match(routes: Sequence[DicomWebRoute], path: str) -> list[RouteMatch]:
    """Every route whose path matches (callers pick by method; none matching -> 404, wrong method -> 405)."""
    found = []
    for route in routes:
        hit = route.pattern.match(path)
        if hit is not None:
            found.append(RouteMatch(route, hit.groupdict()))
    return found
