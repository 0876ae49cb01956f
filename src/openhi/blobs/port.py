"""The blob store port: six verbs, nothing cloud-specific.

Learned from Orthanc's ``IStorageArea``: a store puts, gets (whole or a byte range), heads, deletes and
lists by prefix. Keys are built only in ``blobs/keys.py``. Writes are atomic: a reader sees the whole old
object or the whole new one, never a partial write. Adapters translate their vendor errors into
``openhi.errors`` (``BlobNotFoundError`` for a missing key, ``UnavailableError`` for an unreachable backend).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO, Protocol, runtime_checkable


@dataclass(frozen=True)
class BlobInfo:
    """What ``head`` knows about a stored object."""

    key: str
    size: int


@runtime_checkable
class BlobStore(Protocol):
    """An object store addressed by ``/``-separated keys."""

    def put(self, key: str, data: bytes | BinaryIO) -> BlobInfo:
        """Store ``data`` under ``key`` atomically, replacing any previous object."""
        ...

    def get(self, key: str) -> bytes:
        """The whole object; ``BlobNotFoundError`` when absent."""
        ...

    def get_range(self, key: str, offset: int, length: int) -> bytes:
        """``length`` bytes from ``offset`` (fewer at the end); ``BlobNotFoundError`` when absent."""
        ...

    def head(self, key: str) -> BlobInfo | None:
        """Size of the object, or None when absent."""
        ...

    def delete(self, key: str) -> None:
        """Remove the object; deleting an absent key is not an error (idempotent)."""
        ...

    def iter_prefix(self, prefix: str) -> Iterator[str]:
        """Every key starting with ``prefix``, in lexicographic order."""
        ...

    def check(self) -> None:
        """Raise ``UnavailableError`` when the backend cannot be reached (readiness probe)."""
        ...
