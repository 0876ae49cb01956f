"""STOW-RS handlers (StoreDICOM, StoreDICOMStudy; guide 1780-1880, PS3.18 §10.5)."""

from __future__ import annotations

from starlette.responses import Response

from openhi.api.dicomweb.request import DicomWebRequest
from openhi.errors import NotImplementedYetError


class StowHandlers:
    """Store instances sent as ``application/dicom`` or ``multipart/related; type="application/dicom"``."""

    async def store(self, request: DicomWebRequest) -> Response:
        """StoreDICOM / StoreDICOMStudy."""
        raise NotImplementedYetError("StoreDICOM is not implemented yet")
