"""Choosing the blob store adapter from the ``blob_url`` setting.

This module owns the one table from URL scheme to adapter (ARCHITECTURE-GUIDE "Ports and adapters": backends
are chosen by URL, as pypi/warehouse's ``config.py`` does): ``file:///abs/path`` or a plain path is the local
filesystem store (temp file + ``os.replace``, after Orthanc's ``FilesystemStorage``), ``s3://bucket/prefix``
is the S3 store (endpoint and credentials from the standard AWS variables), ``memory://`` a fresh in-memory
store. The adapters are imported lazily so that choosing ``file://`` never imports boto3.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlsplit

from openhi.blobs.port import BlobStore

SUPPORTED = "file:///absolute/path (or a plain path), s3://bucket/prefix, memory://"


def open_blob_store(url: str) -> BlobStore:
    """The adapter for ``url``; ``ValueError`` naming the supported forms for anything else.

    Nothing is contacted here: call ``check()`` on the result to probe the backend.
    """
    if not url or not url.strip():
        raise ValueError(f"empty blob store URL (expected {SUPPORTED})")
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if not scheme:  # a plain path (relative paths are taken from the working directory)
        from openhi.blobs.local import LocalBlobStore

        return LocalBlobStore(Path(url).expanduser())
    if scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise ValueError(f"file URL names a remote host {parts.netloc!r}: {url!r} (expected file:///abs/path)")
        if parts.query or parts.fragment:
            raise ValueError(f"file URL must not have a query or fragment: {url!r}")
        path = unquote(parts.path)
        if not path.startswith("/"):
            raise ValueError(f"file URL needs an absolute path: {url!r} (expected file:///abs/path)")
        from openhi.blobs.local import LocalBlobStore

        return LocalBlobStore(Path(path))
    if scheme == "s3":
        from openhi.blobs.s3 import from_url

        return from_url(url)
    if scheme == "memory":
        if parts.netloc or parts.path or parts.query or parts.fragment:
            raise ValueError(f"memory URL takes no location: {url!r} (expected memory://)")
        from openhi.blobs.memory import MemoryBlobStore

        return MemoryBlobStore()
    raise ValueError(f"unsupported blob store URL {url!r}: expected {SUPPORTED}")
