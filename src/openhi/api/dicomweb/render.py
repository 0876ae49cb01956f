"""Rendered and thumbnail resources (PS3.18 §10.4.1.1.3 and §10.7; beyond HealthImaging, for viewers)."""

from __future__ import annotations

from starlette.responses import Response

from openhi.api.dicomweb.request import DicomWebRequest
from openhi.errors import NotImplementedYetError


class RenderHandlers:
    """Consumer-format (JPEG/PNG) images of instances, frames and series."""

    async def _todo(self, request: DicomWebRequest) -> Response:
        raise NotImplementedYetError("rendered images are not implemented yet")

    rendered = thumbnail = _todo
