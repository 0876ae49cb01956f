"""STOW-RS handlers (StoreDICOM, StoreDICOMStudy; guide 1780-1880, PS3.18 §10.5).

The edge of the Store transaction: the Accept header (the response is DICOM JSON, ``application/dicom+json``,
or ``application/json`` when only that is asked; anything else is 406, PS3.18 §8.7.3), the target study's UID
syntax (400), the request's Content-Type (``dicomweb.stow_multipart``: 415 / 400), then the service
(``dicomweb.stow.StowService``, run in a worker thread: it blocks on the worker processes and the index)
and the Store Instances Response Module with the status PS3.18 Table 10.5.3-1 gives (200 / 202 / 409).
The endpoint adds ``x-amzn-RequestId`` and deletes the spooled body afterwards.
"""

from __future__ import annotations

import json

from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from openhi.api.dicomweb.request import DicomWebRequest
from openhi.dicom.uids import looks_like_uid
from openhi.dicomweb.stow import StowService
from openhi.dicomweb.stow_multipart import body_type
from openhi.dicomweb.stow_response import response_body
from openhi.errors import NotAcceptableError, ValidationError

DICOM_JSON = "application/dicom+json"
JSON = "application/json"
_ACCEPTABLE = {DICOM_JSON, JSON, "application/*", "*/*"}


def response_media_type(accept: str | None) -> str:
    """The media type of the response for this Accept header (406 when it admits neither JSON form)."""
    if not accept or not accept.strip():
        return DICOM_JSON
    ranges = []
    for item in accept.split(","):
        media, *params = (piece.strip().lower() for piece in item.split(";"))
        if any(p.replace(" ", "") in ("q=0", "q=0.0", "q=0.00", "q=0.000") for p in params):
            continue
        ranges.append(media)
    if DICOM_JSON in ranges or "application/*" in ranges or "*/*" in ranges:
        return DICOM_JSON
    if JSON in ranges:
        return JSON
    raise NotAcceptableError(f"Accept {accept!r} admits no media type a Store response has: use {DICOM_JSON} or {JSON}")


class StowHandlers:
    """Store instances sent as ``application/dicom`` or ``multipart/related; type="application/dicom"``."""

    def __init__(self, service: StowService) -> None:
        self._service = service

    async def store(self, request: DicomWebRequest) -> Response:
        """StoreDICOM / StoreDICOMStudy."""
        media_type = response_media_type(request.request.headers.get("accept"))
        study = request.params.get("study")
        if study is not None and not looks_like_uid(study):
            raise ValidationError(f"{study!r} is not a valid Study Instance UID", field="StudyInstanceUID")
        body = request.body
        if body is None or body.size == 0:
            raise ValidationError("The Store request has no body", field="body")
        kind = body_type(body.content_type)
        result = await run_in_threadpool(self._service.store, request.datastore_id, study, body.path, kind)
        payload = json.dumps(response_body(result, request.datastore_url), separators=(",", ":")).encode()
        return Response(payload, status_code=result.status, media_type=media_type)
