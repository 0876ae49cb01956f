"""A small thread-safe LRU cache bounded by total size, for values derived from immutable documents.

Image set metadata documents are immutable per version and stored under content-addressed keys
(``imagesets.versions.store_document``), so anything computed from one document (the decoded document, the
DICOM JSON of a series) can be cached under the document's key forever; a new version has a new key. The
cache only bounds memory: the least recently used entries go first once ``max_bytes`` is exceeded.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any

from openhi.blobs.port import BlobStore
from openhi.imagesets import document as documents
from openhi.imagesets.model import ImageSetVersion


class LruCache[V]:
    """``get_or_make(key, make, size)``: the cached value, else ``make()`` stored with its ``size`` (bytes)."""

    def __init__(self, max_bytes: int) -> None:
        self._max_bytes = max_bytes
        self._entries: OrderedDict[Hashable, tuple[V, int]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> V | None:
        """The cached value (marking it recently used), or None."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            self._entries.move_to_end(key)
            return entry[0]

    def put(self, key: Hashable, value: V, size: int) -> None:
        """Store ``value``; values larger than the whole cache are not kept."""
        if size > self._max_bytes:
            return
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._bytes -= old[1]
            self._entries[key] = (value, size)
            self._bytes += size
            while self._bytes > self._max_bytes and self._entries:
                _, (_, dropped) = self._entries.popitem(last=False)
                self._bytes -= dropped

    def get_or_make(self, key: Hashable, make: Callable[[], V], size: Callable[[V], int]) -> V:
        """The cached value, else ``make()`` (computed outside the lock; concurrent misses may compute twice)."""
        found = self.get(key)
        if found is not None:
            return found
        value = make()
        self.put(key, value, size(value))
        return value

    @property
    def size(self) -> int:
        """Bytes currently accounted for."""
        return self._bytes


DOCUMENT_CACHE_BYTES = 256 * 1024 * 1024  # one cache per process, shared by WADO-RS and the rendered resources


class DocumentCache:
    """Decoded metadata documents by their content-addressed key (a ``locate.DocumentLoader``)."""

    def __init__(self, max_bytes: int) -> None:
        self._cache: LruCache[dict[str, Any]] = LruCache(max_bytes)

    def load(self, blobs: BlobStore, version: ImageSetVersion) -> dict[str, Any]:
        """The version's document, read and decoded once per key."""
        cached = self._cache.get(version.metadata_key)
        if cached is not None:
            return cached
        data = blobs.get(version.metadata_key)
        document = documents.decode(data)
        self._cache.put(version.metadata_key, document, len(data) * 12)  # gzip JSON inflates ~tenfold as objects
        return document
