"""QIDO-RS handlers (guide 2220-2664, PS3.18 §10.6)."""

from __future__ import annotations

from starlette.responses import Response

from openhi.api.dicomweb.request import DicomWebRequest
from openhi.errors import NotImplementedYetError


class QidoHandlers:
    """Search studies, series and instances."""

    async def _todo(self, request: DicomWebRequest) -> Response:
        raise NotImplementedYetError("this QIDO-RS query is not implemented yet")

    studies = series = instances = _todo
