"""WADO-RS handlers (guide 1880-2210, PS3.18 §10.4): instances, series, studies, metadata, frames, bulk data.

Representations (PS3.18 §8.7, negotiation rules in ``openhi.dicomweb.transfer``):

- Instances, series, studies: ``multipart/related; type="application/dicom"`` (PS3.18 default; one part per
  instance, streamed instance by instance and frame by frame). An instance asked as a bare
  ``application/dicom`` (the guide's curl example) is answered as a single part. Each part names its
  ``transfer-syntax``. When some instances of a series or study cannot be produced in the asked syntax, the
  others are sent with 206 and a ``Warning`` header (PS3.18 §10.4.3); when none can, 406.
- Metadata: ``application/dicom+json`` with a strong ``ETag``; ``If-None-Match`` -> 304.
- Frames: ``multipart/related`` of one part per frame, ``Content-Type`` with ``transfer-syntax`` and a
  ``Content-Location`` per part. A single frame asked with a bare media type (``application/octet-stream``,
  ``image/jphc``) is a single part.
- HTTP Range (RFC 9110 §14) on a single frame and on bulk data: the range selects bytes of the payload in the
  chosen syntax (for ``transfer-syntax=*`` the stored bytes, e.g. the first resolution levels of an HTJ2K RPCL
  frame), answered 206 as a single part with ``Content-Range: bytes a-b/total`` — what progressive viewers
  (Cornerstone's range requests) append and decode. Multi-frame requests ignore Range (200, whole answer).
- ``imageSetId`` (guide 1990-2010) reaches non-primary image sets on every route.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from functools import partial

from starlette.concurrency import run_in_threadpool
from starlette.responses import Response, StreamingResponse

from openhi.api.dicomweb.accept import MediaRange, requested_ranges
from openhi.api.dicomweb.multipart_response import MultipartResponse, Part, buffered, coalesced, part_type
from openhi.api.dicomweb.request import DicomWebRequest
from openhi.dicomweb.frames import frame_ids, parse_frame_list
from openhi.dicomweb.locate import SeriesView
from openhi.dicomweb.metadata import etag
from openhi.dicomweb.retrieve import Instance, WadoService, prepare
from openhi.dicomweb.transfer import (
    DICOM,
    OCTET_STREAM,
    Output,
    StoredPixels,
    Transcode,
    frame_output,
    instance_output,
    media_type_matches,
    negotiate,
)
from openhi.errors import NotAcceptableError

DICOM_JSON = "application/dicom+json"
_JSON_TYPES = (DICOM_JSON, "application/json")
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
_BULK_CHUNK = 1024 * 1024


def _instance_choice(stored: StoredPixels, wanted: MediaRange) -> Output | None:
    return instance_output(stored, wanted)


def _asked_syntax(ranges: Sequence[MediaRange]) -> str | None:
    return ranges[0].transfer_syntax if ranges else None


def _single_part(wanted: MediaRange, media_type: str) -> bool:
    """A bare (non-multipart, non-wildcard) media range asks for the content itself, without multipart."""
    bare = not wanted.is_multipart and "*" not in wanted.media_type
    return bare and media_type_matches(wanted.media_type, media_type)


def _not_modified(request: DicomWebRequest, tag: str) -> bool:
    header = request.request.headers.get("if-none-match")
    if not header:
        return False
    if header.strip() == "*":
        return True
    wanted = tag.removeprefix("W/")
    return any(item.strip().removeprefix("W/") == wanted for item in header.split(","))


class RangeNotSatisfiableError(Exception):
    """The Range header selects no byte of the representation (416)."""


def _byte_range(header: str | None, total: int) -> tuple[int, int] | None:
    """(offset, length) of a single ``bytes=`` range; None when there is none to honour (RFC 9110 §14.2)."""
    if not header:
        return None
    found = _RANGE.match(header.strip().replace(" ", ""))
    if found is None:
        return None  # multiple ranges or another unit: ignored, the whole representation is sent
    first, last = found.groups()
    if not first and not last:
        return None
    if not first:
        length = min(int(last), total)
        if length == 0:
            raise RangeNotSatisfiableError
        return total - length, length
    start = int(first)
    end = min(int(last), total - 1) if last else total - 1
    if start >= total or end < start:
        raise RangeNotSatisfiableError
    return start, end - start + 1


def _partial(data: bytes, offset: int, total: int, content_type: str) -> Response:
    return Response(
        data,
        status_code=206,
        media_type=content_type,
        headers={"Content-Range": f"bytes {offset}-{offset + len(data) - 1}/{total}", "Accept-Ranges": "bytes"},
    )


def _unsatisfiable(total: int) -> Response:
    return Response(
        b'{"__type":"RequestedRangeNotSatisfiableError","message":"the range selects no byte of the content"}',
        status_code=416,
        media_type="application/json",
        headers={"Content-Range": f"bytes */{total}", "x-amzn-ErrorType": "RequestedRangeNotSatisfiableError"},
    )


class WadoHandlers:
    """Retrieve studies, series, instances, metadata, frames and bulk data."""

    def __init__(self, service: WadoService) -> None:
        self._service = service

    # -- handlers (each runs its blocking work in one thread-pool call) ---

    async def instance(self, request: DicomWebRequest) -> Response:
        """GetDICOMInstance."""
        return await run_in_threadpool(self._instance_answer, request)

    async def series(self, request: DicomWebRequest) -> Response:
        """Retrieve a series: every instance's P10 (beyond HealthImaging, PS3.18 §10.4.1.1.2)."""
        return await run_in_threadpool(self._series_answer, request)

    async def study(self, request: DicomWebRequest) -> Response:
        """Retrieve a study: every instance of every (primary) series."""
        return await run_in_threadpool(self._study_answer, request)

    async def instance_metadata(self, request: DicomWebRequest) -> Response:
        """GetDICOMInstanceMetadata."""
        return await run_in_threadpool(self._instance_metadata_answer, request)

    async def series_metadata(self, request: DicomWebRequest) -> Response:
        """GetDICOMSeriesMetadata."""
        return await run_in_threadpool(self._series_metadata_answer, request)

    async def study_metadata(self, request: DicomWebRequest) -> Response:
        """Study metadata (beyond HealthImaging; viewers load a study's metadata at once)."""
        return await run_in_threadpool(self._study_metadata_answer, request)

    async def frames(self, request: DicomWebRequest) -> Response:
        """GetDICOMInstanceFrames."""
        return await run_in_threadpool(self._frames_answer, request)

    async def bulkdata(self, request: DicomWebRequest) -> Response:
        """GetDICOMBulkdata (guide 2145-2210)."""
        return await run_in_threadpool(self._bulkdata_answer, request)

    # -- locating -------------------------------------------------------------------------------------------

    def _series(self, request: DicomWebRequest) -> SeriesView:
        params = request.params
        return self._service.series(request.datastore_id, params["study"], params["series"], request.image_set_id)

    def _instance(self, request: DicomWebRequest) -> Instance:
        return self._service.instance(self._series(request), request.params["instance"])

    @staticmethod
    def _base(request: DicomWebRequest) -> tuple[str, str]:
        """URL of the study (absolute, from the request's host) and the ``?imageSetId=`` suffix or ``""``."""
        base = f"{request.datastore_url}/studies/{request.params['study']}"
        return base, (f"?imageSetId={request.image_set_id}" if request.image_set_id else "")

    def _instance_url(self, request: DicomWebRequest, series_uid: str, sop_uid: str) -> str:
        base, query = self._base(request)
        return f"{base}/series/{series_uid}/instances/{sop_uid}{query}"

    # -- instances, series, studies -----------------------------------------------------------------------

    def _instance_answer(self, request: DicomWebRequest) -> Response:
        ranges = requested_ranges(request.request)
        found = self._instance(request)
        chosen = negotiate(ranges, lambda wanted: instance_output(found.stored, wanted))
        if chosen is None:
            raise NotAcceptableError(found.stored.refusal(_asked_syntax(ranges)))
        wanted, output = chosen
        self._check_decodable(found, output)
        writer = self._service.p10(request.datastore_id)
        chunks = writer.chunks(found.source, output, found.fmt)
        if _single_part(wanted, DICOM):
            return StreamingResponse(coalesced(chunks), media_type=part_type(DICOM, output.syntax))
        url = self._instance_url(request, found.view.series.series_uid, found.view.sop_uid)
        part = Part(part_type(DICOM, output.syntax), chunks, location=url)
        return MultipartResponse([part], DICOM, transfer_syntax=output.syntax)

    def _series_answer(self, request: DicomWebRequest) -> Response:
        view = self._series(request)
        return self._many(request, [view])

    def _study_answer(self, request: DicomWebRequest) -> Response:
        p = request.params
        views = self._service.study(request.datastore_id, p["study"], request.image_set_id)
        return self._many(request, views)

    def _many(self, request: DicomWebRequest, views: Sequence[SeriesView]) -> Response:
        ranges = requested_ranges(request.request)
        plan: list[tuple[Instance, Output]] = []
        refused: list[str] = []
        for view in views:
            for instance_view in view.instances():
                found = prepare(instance_view)
                chosen = negotiate(ranges, partial(_instance_choice, found.stored))
                if chosen is None or not self._decodable(found, chosen[1]):
                    refused.append(f"{found.view.sop_uid}: {found.stored.refusal(_asked_syntax(ranges))}")
                else:
                    plan.append((found, chosen[1]))
        if not plan:
            raise NotAcceptableError("no instance can be produced: " + "; ".join(refused[:5]))
        writer = self._service.p10(request.datastore_id)

        def parts() -> Iterator[Part]:
            for found, output in plan:
                url = self._instance_url(request, found.view.series.series_uid, found.view.sop_uid)
                yield Part(part_type(DICOM, output.syntax), writer.chunks(found.source, output, found.fmt), url)

        headers = {}
        if refused:
            headers["Warning"] = f'299 openhi "{len(refused)} instance(s) left out: transfer syntax not available"'
        return MultipartResponse(parts(), DICOM, status_code=206 if refused else 200, headers=headers)

    @staticmethod
    def _decodable(found: Instance, output: Output) -> bool:
        return found.fmt is not None or output.transcode is Transcode.NONE

    def _check_decodable(self, found: Instance, output: Output) -> None:
        if not self._decodable(found, output):
            raise NotAcceptableError(
                f"instance {found.view.sop_uid} lacks a valid Image Pixel description; retry with transfer-syntax=*"
            )

    # -- metadata -------------------------------------------------------------------------------------------

    @staticmethod
    def _check_json_accepted(request: DicomWebRequest) -> None:
        ranges = requested_ranges(request.request)
        if not any(wanted.matches(kind) for wanted in ranges for kind in _JSON_TYPES):
            raise NotAcceptableError("metadata is available as application/dicom+json only")

    def _json(self, request: DicomWebRequest, tag: str, body: bytes) -> Response:
        return Response(body, media_type=DICOM_JSON, headers={"ETag": tag, "Cache-Control": "private, no-cache"})

    def _instance_metadata_answer(self, request: DicomWebRequest) -> Response:
        self._check_json_accepted(request)
        view = self._series(request)
        sop_uid = request.params["instance"]
        view.instance(sop_uid)  # 404 for an instance the series does not hold
        base, query = self._base(request)
        tag = etag("instance", [view], base, query, sop_uid)
        if _not_modified(request, tag):
            return Response(status_code=304, headers={"ETag": tag})
        body = self._service.metadata.instance(view, sop_uid, base, query)
        return self._json(request, tag, body)

    def _series_metadata_answer(self, request: DicomWebRequest) -> Response:
        self._check_json_accepted(request)
        view = self._series(request)
        base, query = self._base(request)
        tag = etag("series", [view], base, query)
        if _not_modified(request, tag):
            return Response(status_code=304, headers={"ETag": tag})
        body = self._service.metadata.series(view, base, query)
        return self._json(request, tag, body)

    def _study_metadata_answer(self, request: DicomWebRequest) -> Response:
        self._check_json_accepted(request)
        p = request.params
        views = self._service.study(request.datastore_id, p["study"], request.image_set_id)
        base, query = self._base(request)
        tag = etag("study", views, base, query)
        if _not_modified(request, tag):
            return Response(status_code=304, headers={"ETag": tag})
        body = self._service.metadata.study(views, base, query)
        return self._json(request, tag, body)

    # -- frames ---------------------------------------------------------------------------------------------

    def _frames_answer(self, request: DicomWebRequest) -> Response:
        numbers = parse_frame_list(request.params["frames"])
        ranges = requested_ranges(request.request)
        found = self._instance(request)
        ids = frame_ids(found.view.entry, numbers, found.view.sop_uid)
        stored = found.stored
        chosen = None if stored.undelimited else negotiate(ranges, lambda wanted: frame_output(stored, wanted))
        if chosen is None:
            raise NotAcceptableError(stored.refusal(_asked_syntax(ranges)))
        wanted, output = chosen
        self._check_decodable(found, output)
        reader = self._service.frames(request.datastore_id)
        content_type = part_type(output.media_type, output.syntax)
        fmt = found.fmt
        if len(ids) == 1 and request.request.headers.get("range"):
            return self._frame_range(request, found, ids[0], output, content_type)
        if len(ids) == 1 and _single_part(wanted, output.media_type):
            data = reader.frame(ids[0], stored, output, fmt)
            return Response(data, media_type=content_type, headers={"Accept-Ranges": "bytes"})
        url = self._instance_url(request, found.view.series.series_uid, found.view.sop_uid)
        base, _, query = url.partition("?")
        suffix = f"?{query}" if query else ""

        def parts() -> Iterator[Part]:
            for number, frame_id in zip(numbers, ids, strict=True):
                data = reader.frame(frame_id, stored, output, fmt)
                yield Part(content_type, data, location=f"{base}/frames/{number}{suffix}")

        if len(ids) == 1:
            return buffered(parts(), output.media_type, output.syntax)
        return MultipartResponse(parts(), output.media_type, transfer_syntax=output.syntax)

    def _frame_range(
        self, request: DicomWebRequest, found: Instance, frame_id: str, output: Output, content_type: str
    ) -> Response:
        reader = self._service.frames(request.datastore_id)
        header = request.request.headers.get("range")
        if output.transcode is Transcode.NONE:
            total = reader.stored_size(frame_id)
            try:
                selected = _byte_range(header, total)
            except RangeNotSatisfiableError:
                return _unsatisfiable(total)
            if selected is None:
                return Response(reader.stored(frame_id), media_type=content_type, headers={"Accept-Ranges": "bytes"})
            return _partial(reader.stored_range(frame_id, *selected), selected[0], total, content_type)
        data = reader.frame(frame_id, found.stored, output, found.fmt)
        try:
            selected = _byte_range(header, len(data))
        except RangeNotSatisfiableError:
            return _unsatisfiable(len(data))
        if selected is None:
            return Response(data, media_type=content_type, headers={"Accept-Ranges": "bytes"})
        offset, length = selected
        return _partial(data[offset : offset + length], offset, len(data), content_type)

    # -- bulk data ------------------------------------------------------------------------------------------

    def _bulkdata_answer(self, request: DicomWebRequest) -> Response:
        ranges = requested_ranges(request.request)
        wanted = next((item for item in ranges if item.matches(OCTET_STREAM)), None)
        if wanted is None or wanted.transfer_syntax not in (None, "*", "1.2.840.10008.1.2.1"):
            raise NotAcceptableError("bulk data is available as application/octet-stream only")
        found = self._instance(request)
        key = self._service.bulk_key(request.datastore_id, found, request.params["bulk"])
        total = self._service.bulk_size(key)
        header = request.request.headers.get("range")
        if header:
            try:
                selected = _byte_range(header, total)
            except RangeNotSatisfiableError:
                return _unsatisfiable(total)
            if selected is not None:
                data = self._service.bulk_range(key, *selected)
                return _partial(data, selected[0], total, OCTET_STREAM)

        def chunks() -> Iterator[bytes]:
            for offset in range(0, total, _BULK_CHUNK):
                yield self._service.bulk_range(key, offset, min(_BULK_CHUNK, total - offset))

        if _single_part(wanted, OCTET_STREAM):
            return StreamingResponse(
                chunks(), media_type=OCTET_STREAM, headers={"Content-Length": str(total), "Accept-Ranges": "bytes"}
            )
        url = self._instance_url(request, found.view.series.series_uid, found.view.sop_uid)
        base, _, query = url.partition("?")
        location = f"{base}/bulkdata/{request.params['bulk']}" + (f"?{query}" if query else "")
        return MultipartResponse([Part(OCTET_STREAM, chunks(), location=location)], OCTET_STREAM)
