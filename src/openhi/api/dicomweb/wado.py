"""WADO-RS handlers (guide 1880-2210, PS3.18 §10.4)."""

from __future__ import annotations

from starlette.responses import Response

from openhi.api.dicomweb.request import DicomWebRequest
from openhi.errors import NotImplementedYetError


class WadoHandlers:
    """Retrieve studies, series, instances, metadata, frames and bulk data."""

    async def _todo(self, request: DicomWebRequest) -> Response:
        raise NotImplementedYetError("this WADO-RS resource is not implemented yet")

    study = study_metadata = series = series_metadata = _todo
    instance = instance_metadata = frames = bulkdata = _todo
