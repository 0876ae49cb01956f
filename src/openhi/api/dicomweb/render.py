"""Rendered and thumbnail resources (PS3.18 §10.4.1.1.3 and Thumbnail resources; beyond HealthImaging).

Content negotiation (PS3.18 §8.7.4 rendered media types; ``accept.py`` reads the ``Accept`` header or the
``accept`` query parameter): OpenHI renders ``image/jpeg`` (preferred) and ``image/png``. A request naming one
image answers with that image. A request naming several (a series, a frame list of several frames) answers
``multipart/related; type="image/jpeg"`` (or png), one part per image, when the client accepts multipart
(``multipart/related`` or ``*/*``); a multi-frame instance's ``/rendered`` answers its first frame to a
client that accepts a single image (``image/*``, ``*/*``) and all frames as multipart to a client that asks
for ``multipart/related``. Anything else is 406. Thumbnails are always one image.

Caching: rendered bytes depend on the image set version and the request, so the ETag hashes the image set id,
its version, the path, the query string and the chosen media type; ``If-None-Match`` answers 304 without
rendering. ``Cache-Control: private, no-cache`` (answers are for signed callers and revalidated, since an
update makes a new version), ``Vary: Accept``. ``Cross-Origin-Resource-Policy: cross-origin`` lets viewers on
other origins embed the images (OHIF, shared/notes/anchors-features.md §4).
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from openhi.api.dicomweb.accept import MULTIPART_RELATED, MediaRange, requested_ranges
from openhi.api.dicomweb.request import DicomWebRequest
from openhi.dicomweb.render import Renderer, RenderPlan, RenderTarget
from openhi.dicomweb.render_image import ImageType
from openhi.dicomweb.render_params import RenderOptions, parse_options
from openhi.dicomweb.transfer import media_type_matches
from openhi.errors import NotAcceptableError

_IMAGE_TYPES = (ImageType.JPEG, ImageType.PNG)


@dataclass(frozen=True)
class Choice:
    """The negotiated representation: one image, or a multipart body of images."""

    image_type: ImageType
    multipart: bool

    @property
    def label(self) -> str:
        """A stable name of the representation (part of the ETag)."""
        return f"{MULTIPART_RELATED};type={self.image_type}" if self.multipart else str(self.image_type)


def negotiate(ranges: Sequence[MediaRange], single_ok: bool, multipart_ok: bool) -> Choice:
    """The first representation the best acceptable media range allows (JPEG before PNG, single before multi)."""
    for media_range in ranges:
        if media_range.is_multipart:
            if multipart_ok:
                for image_type in _IMAGE_TYPES:
                    if media_range.matches(image_type):
                        return Choice(image_type, multipart=True)
            continue
        if single_ok:
            for image_type in _IMAGE_TYPES:
                if media_type_matches(media_range.media_type, image_type):
                    return Choice(image_type, multipart=False)
        if multipart_ok and media_type_matches(media_range.media_type, MULTIPART_RELATED):
            return Choice(ImageType.JPEG, multipart=True)
    offered = [str(t) for t in _IMAGE_TYPES] if single_ok else []
    if multipart_ok:
        offered += [f'{MULTIPART_RELATED}; type="{t}"' for t in _IMAGE_TYPES]
    raise NotAcceptableError(f"This resource can be rendered only as {', '.join(offered)}")


def etag_for(plan: RenderPlan, request: DicomWebRequest, choice: Choice) -> str:
    """A weak validator of the rendered answer (equal for equal image set versions and requests)."""
    facts = "\n".join((plan.version_tag, request.request.url.path, request.request.url.query, choice.label))
    return f'W/"{hashlib.sha256(facts.encode()).hexdigest()[:32]}"'


def not_modified(if_none_match: str | None, etag: str) -> bool:
    """RFC 9110 §13.1.2 with weak comparison: ``*`` or any listed tag equal to ``etag`` once ``W/`` is dropped."""
    if not if_none_match:
        return False
    wanted = etag.removeprefix("W/")
    for tag in if_none_match.split(","):
        tag = tag.strip()
        if tag == "*" or tag.removeprefix("W/") == wanted:
            return True
    return False


def multipart_body(parts: Sequence[bytes], content_type: str, boundary: str) -> bytes:
    """A multipart/related body (RFC 2387, PS3.18 §8.6.1.2) of ``parts`` of one content type."""
    chunks = []
    for part in parts:
        chunks.append(f"--{boundary}\r\nContent-Type: {content_type}\r\n\r\n".encode())
        chunks.append(part)
        chunks.append(b"\r\n")
    chunks.append(f"--{boundary}--\r\n".encode())
    return b"".join(chunks)


class RenderHandlers:
    """Consumer-format (JPEG/PNG) images of instances, frames and series."""

    def __init__(self, renderer: Renderer) -> None:
        self._renderer = renderer

    async def rendered(self, request: DicomWebRequest) -> Response:
        """``.../rendered`` of a series, an instance or a frame list."""
        return await self._serve(request, thumbnail=False)

    async def thumbnail(self, request: DicomWebRequest) -> Response:
        """``.../thumbnail`` of a series, an instance or a frame list."""
        return await self._serve(request, thumbnail=True)

    async def _serve(self, request: DicomWebRequest, thumbnail: bool) -> Response:
        options = parse_options(request.query)
        ranges = requested_ranges(request.request)
        params = request.params
        plan = await run_in_threadpool(
            self._renderer.plan,
            request.datastore_id,
            params["study"],
            params["series"],
            params.get("instance"),
            params.get("frames"),
            request.image_set_id,
            thumbnail,
        )
        several = len(plan.targets) > 1
        choice = negotiate(ranges, single_ok=not several or plan.first_frame_fallback, multipart_ok=not thumbnail)
        targets = plan.targets if choice.multipart else plan.targets[:1]
        etag = etag_for(plan, request, choice)
        headers = {
            "ETag": etag,
            "Cache-Control": "private, no-cache",
            "Vary": "Accept",
            "Cross-Origin-Resource-Policy": "cross-origin",
        }
        if not_modified(request.request.headers.get("if-none-match"), etag):
            return Response(status_code=304, headers=headers)
        images = await run_in_threadpool(self._render_all, targets, options, choice.image_type, thumbnail)
        if not choice.multipart:
            return Response(images[0], media_type=str(choice.image_type), headers=headers)
        boundary = uuid.uuid4().hex
        body = multipart_body(images, str(choice.image_type), boundary)
        content_type = f'{MULTIPART_RELATED}; type="{choice.image_type}"; boundary={boundary}'
        return Response(body, headers={**headers, "Content-Type": content_type})

    def _render_all(
        self, targets: Sequence[RenderTarget], options: RenderOptions, image_type: ImageType, thumbnail: bool
    ) -> list[bytes]:
        return [self._renderer.render(target, options, image_type, thumbnail) for target in targets]
