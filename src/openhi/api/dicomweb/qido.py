"""QIDO-RS handlers (guide 2210-2664, PS3.18 §10.6): search studies, a study's series, a series' instances,
and a study's instances (the relational query PS3.18 §10.6.1.2.3, beyond the guide).

Answers are ``application/dicom+json`` arrays (PS3.18 F.2; ``application/json`` when only that is accepted);
any other Accept is 406. A search that matches nothing is 200 with ``[]`` (PS3.18 §10.6.3 also allows 204; an
empty array is what browser clients parse without a special case). The ``accept`` query parameter
(PS3.18 §8.3.3.1) is a media type, not a matching key.
"""

from __future__ import annotations

import json

from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from openhi.api.dicomweb.accept import requested_ranges
from openhi.api.dicomweb.request import DicomWebRequest
from openhi.dicomweb.qido.service import QidoSearch
from openhi.errors import NotAcceptableError

DICOM_JSON = "application/dicom+json"
JSON = "application/json"


def _media_type(request: DicomWebRequest) -> str:
    """The answer's media type: DICOM JSON, or plain JSON when that is all the client accepts; else 406."""
    ranges = requested_ranges(request.request)
    for wanted in ranges:
        if wanted.matches(DICOM_JSON):
            return DICOM_JSON
        if wanted.matches(JSON):
            return JSON
    raise NotAcceptableError("QIDO-RS results are available as application/dicom+json (or application/json) only")


def _pairs(request: DicomWebRequest) -> list[tuple[str, str]]:
    return [(key, value) for key, value in request.request.query_params.multi_items() if key.lower() != "accept"]


class QidoHandlers:
    """Search studies, series and instances."""

    def __init__(self, search: QidoSearch) -> None:
        self._search = search

    @staticmethod
    def _answer(media_type: str, results: list[dict[str, dict[str, object]]]) -> Response:
        body = json.dumps(results, separators=(",", ":"), allow_nan=False).encode()
        return Response(body, media_type=media_type)

    async def studies(self, request: DicomWebRequest) -> Response:
        """SearchDICOMStudies."""
        media_type = _media_type(request)
        results = await run_in_threadpool(
            self._search.studies, request.datastore_id, _pairs(request), request.datastore_url
        )
        return self._answer(media_type, results)

    async def series(self, request: DicomWebRequest) -> Response:
        """SearchDICOMSeries."""
        media_type = _media_type(request)
        results = await run_in_threadpool(
            self._search.series, request.datastore_id, request.params["study"], _pairs(request), request.datastore_url
        )
        return self._answer(media_type, results)

    async def instances(self, request: DicomWebRequest) -> Response:
        """SearchDICOMInstances (series given) and the study's instances (no series in the path)."""
        media_type = _media_type(request)
        results = await run_in_threadpool(
            self._search.instances,
            request.datastore_id,
            request.params["study"],
            request.params.get("series"),
            _pairs(request),
            request.datastore_url,
        )
        return self._answer(media_type, results)
