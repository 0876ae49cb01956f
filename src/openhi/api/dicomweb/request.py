"""What a DICOMweb handler receives: the request, its path parameters, the caller and the spooled body."""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from starlette.requests import Request
from starlette.responses import Response

from openhi.api.dicomweb.errors import DicomWebError
from openhi.iam.principals import Caller

EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


@dataclass(frozen=True)
class SpooledBody:
    """A request body written to a local temporary file while it arrived (never held in memory whole)."""

    path: Path
    size: int
    sha256: str
    content_type: str

    def discard(self) -> None:
        """Remove the temporary file."""
        self.path.unlink(missing_ok=True)


async def spool_body(request: Request, limit: int, directory: Path | None = None) -> SpooledBody:
    """Stream the body to a temporary file, hashing it on the way; 413 past ``limit`` bytes."""
    declared = request.headers.get("content-length")
    too_large = DicomWebError("RequestEntityTooLarge", f"Request body exceeds the maximum of {limit} bytes")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise too_large
    if directory is not None:
        directory.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(prefix=f"openhi-stow-{os.getpid()}-", suffix=".body", dir=directory)
    digest = hashlib.sha256()
    size = 0
    try:
        with os.fdopen(handle, "wb") as out:
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise too_large
                digest.update(chunk)
                out.write(chunk)
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise
    return SpooledBody(Path(name), size, digest.hexdigest(), request.headers.get("content-type", ""))


@dataclass(frozen=True)
class DicomWebRequest:
    """One authenticated DICOMweb request, routed.

    ``params`` holds the path parameters by name: ``study``, ``series``, ``instance``, ``frames``, ``bulk``
    (whichever the route has). ``body`` is set for POST (STOW-RS) only; the endpoint deletes it afterwards.
    """

    request: Request
    request_id: str
    datastore_id: str
    params: dict[str, str]
    identity: Caller
    body: SpooledBody | None = None
    extra_headers: dict[str, str] = field(default_factory=dict)

    def query(self, name: str) -> str | None:
        """One query parameter's value (the last one when repeated)."""
        return self.request.query_params.get(name)

    @property
    def origin(self) -> str:
        """``scheme://host[:port]`` the client reached, for absolute URLs in answers (RetrieveURL, BulkDataURI,
        Content-Location).

        Taken from the Host header (RFC 9110 §7.2). Some clients (dicomweb-client) send the host without its
        port; when that host is the very address the connection arrived on, the connection's port is the one
        they used.
        """
        url = self.request.url
        server = self.request.scope.get("server")
        if url.port is None and server is not None and url.hostname == server[0]:
            default = {"http": 80, "https": 443}.get(url.scheme)
            if server[1] != default:
                return f"{url.scheme}://{url.netloc}:{server[1]}"
        return f"{url.scheme}://{url.netloc}"

    @property
    def datastore_url(self) -> str:
        """``{origin}/datastore/{id}``: the DICOMweb service root of the data store, absolute."""
        return f"{self.origin}/datastore/{self.datastore_id}"

    @property
    def image_set_id(self) -> str | None:
        """The optional ``imageSetId`` query parameter (non-primary image sets, guide 1990-2010)."""
        return self.request.query_params.get("imageSetId") or None


Handler = Callable[[DicomWebRequest], Awaitable[Response]]
