"""The in-memory blob store: the reference implementation of the port and the fake for unit tests.

This module owns ``MemoryBlobStore`` (a dict behind a lock) and the key rules every adapter enforces
(``check_key`` / ``check_prefix``). The ARCHITECTURE-GUIDE "Ports and adapters" asks every port to ship an
in-memory adapter in ``src/`` that is both the unit-test fake and the reference for the contract suite
(learned from Orthanc's ``MemoryStorageArea``); the contract suite in ``tests/contract/test_blob_store.py``
holds the file and S3 adapters to exactly this behaviour. Because the fake is what unit tests run against,
it rejects every key the strictest adapter (the local filesystem) would reject, so a bad key fails in a unit
test rather than on the first deployment that stores blobs on disk.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import BinaryIO

from openhi.blobs.port import BlobInfo
from openhi.errors import BlobNotFoundError

#: Chunk size used when a file object is copied into a store.
COPY_CHUNK = 1024 * 1024

#: Segments starting with this marker are reserved for an adapter's in-flight writes (the file adapter's
#: temp files), so no stored key may contain one.
RESERVED_SEGMENT_PREFIX = ".openhi-tmp-"


def _check_segments(text: str, segments: list[str], what: str) -> None:
    if "\x00" in text:
        raise ValueError(f"{what} must not contain NUL: {text!r}")
    if "\\" in text:
        raise ValueError(f"{what} must not contain a backslash: {text!r}")
    if text.startswith("/"):
        raise ValueError(f"{what} must be relative (no leading '/'): {text!r}")
    for segment in segments:
        if segment in ("", ".", ".."):
            raise ValueError(f"{what} must not contain empty, '.' or '..' segments: {text!r}")
        if segment.startswith(RESERVED_SEGMENT_PREFIX):
            raise ValueError(f"{what} uses the reserved segment prefix {RESERVED_SEGMENT_PREFIX!r}: {text!r}")


def check_key(key: str) -> str:
    """Return ``key`` if every adapter can store it, else raise ``ValueError``.

    A key is a non-empty, relative, ``/``-separated path: no empty, ``.`` or ``..`` segments (so no leading,
    trailing or doubled ``/``), no backslash, no NUL. These are the rules that make a key a safe file path
    under the local store's root; the other adapters enforce them too so that adapters stay interchangeable.
    """
    if not isinstance(key, str) or not key:
        raise ValueError(f"blob key must be a non-empty string: {key!r}")
    _check_segments(key, key.split("/"), "blob key")
    return key


def check_prefix(prefix: str) -> str:
    """Return ``prefix`` if it can start a valid key (``""`` lists everything), else raise ``ValueError``.

    Every complete segment (before the last ``/``) follows the key rules; the trailing partial segment may be
    anything a key segment may start with.
    """
    if not isinstance(prefix, str):
        raise ValueError(f"blob prefix must be a string: {prefix!r}")
    if not prefix:
        return prefix
    complete = prefix.split("/")[:-1]
    _check_segments(prefix, complete, "blob prefix")
    return prefix


def read_all(data: bytes | BinaryIO) -> bytes:
    """The bytes of ``data``: copied if already bytes-like, read in chunks from a file object."""
    if isinstance(data, bytes | bytearray | memoryview):
        return bytes(data)
    parts: list[bytes] = []
    while chunk := data.read(COPY_CHUNK):
        parts.append(chunk)
    return b"".join(parts)


class MemoryBlobStore:
    """A thread-safe in-process blob store; contents vanish with the process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._objects: dict[str, bytes] = {}

    def __repr__(self) -> str:
        return f"MemoryBlobStore({len(self._objects)} objects)"

    def put(self, key: str, data: bytes | BinaryIO) -> BlobInfo:
        check_key(key)
        content = read_all(data)  # read outside the lock: the swap below is the atomic step
        with self._lock:
            self._objects[key] = content
        return BlobInfo(key=key, size=len(content))

    def get(self, key: str) -> bytes:
        check_key(key)
        with self._lock:
            content = self._objects.get(key)
        if content is None:
            raise BlobNotFoundError(f"blob {key!r} not found")
        return content

    def get_range(self, key: str, offset: int, length: int) -> bytes:
        if offset < 0 or length < 0:
            raise ValueError(f"offset and length must be >= 0 (got {offset}, {length})")
        content = self.get(key)
        return content[offset : offset + length]

    def head(self, key: str) -> BlobInfo | None:
        check_key(key)
        with self._lock:
            content = self._objects.get(key)
        return None if content is None else BlobInfo(key=key, size=len(content))

    def delete(self, key: str) -> None:
        check_key(key)
        with self._lock:
            self._objects.pop(key, None)

    def iter_prefix(self, prefix: str) -> Iterator[str]:
        check_prefix(prefix)
        with self._lock:  # snapshot: later writes do not disturb an iteration in progress
            keys = sorted(k for k in self._objects if k.startswith(prefix))
        return iter(keys)

    def check(self) -> None:
        """Always ready."""
