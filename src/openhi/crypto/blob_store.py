"""``SealedBlobStore``: the blob port with every data store object encrypted at rest (envelope encryption).

Wraps any ``BlobStore`` (local files, S3, memory, a tiered store: it must be the outermost wrapper, so the stores
beneath it only ever see ciphertext). Objects under ``datastores/{id}/`` (frames, metadata documents, bulk data,
anything a data store holds) are written in the sealed format of ``crypto/sealed.py``: a fresh object key per object,
wrapped by the data store key (``DataKeySource.for_write``), AES-256-GCM in 256 KiB segments. Reads find the data
store key version in the object's header (``for_read``), so objects sealed under older versions stay readable after
a rotation. ``get_range`` reads and decrypts only the segments a range touches; ``head`` answers the plaintext size.

Not sealed: the data store's descriptor (``datastore.json``: id, name, storage format, creation time; no patient
data) and keys outside any data store. A data store without a key (created while encryption was off) holds
plaintext; an object without the sealed header in a data store whose every object is sealed is refused, as is any
object whose key is wrong, destroyed or missing: ``EncryptionKeyError``, never the stored bytes.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Iterator
from typing import BinaryIO, Protocol

from openhi.blobs.port import BlobInfo, BlobStore
from openhi.crypto import sealed
from openhi.crypto.model import DataKey
from openhi.errors import EncryptionKeyError

_DATASTORE_OBJECT = re.compile(r"datastores/([0-9a-z]{32})/(.+)")
DESCRIPTOR = "datastore.json"
CACHED_OPENERS = 4096


def datastore_of(key: str) -> str | None:
    """The data store whose sealed object ``key`` is, or None for objects stored in the clear."""
    match = _DATASTORE_OBJECT.fullmatch(key)
    if match is None or match.group(2) == DESCRIPTOR:
        return None
    return match.group(1)


class DataKeySource(Protocol):
    """Where the wrapper gets data store keys (the server's keyring, or the one key an import task carries)."""

    def for_write(self, datastore_id: str) -> DataKey | None:
        """The key new objects of the data store are sealed with; None when its objects are stored in the clear."""
        ...

    def for_read(self, datastore_id: str, version: int) -> DataKey:
        """Version ``version`` of the data store's key; ``EncryptionKeyError`` when it cannot be had."""
        ...

    def plaintext_allowed(self, datastore_id: str) -> bool:
        """Whether the data store may hold objects that are not sealed (created before encryption, or without)."""
        ...


class SingleKey:
    """The one data store key of an import task (``DataKeySource`` in a worker process)."""

    def __init__(self, key: DataKey) -> None:
        self._key = key

    def for_write(self, datastore_id: str) -> DataKey | None:
        return self._key if datastore_id == self._key.datastore_id else None

    def for_read(self, datastore_id: str, version: int) -> DataKey:
        if (datastore_id, version) != (self._key.datastore_id, self._key.version):
            raise EncryptionKeyError(
                "DecryptionFailureException", f"key version {version} of data store {datastore_id} is not held here"
            )
        return self._key

    def plaintext_allowed(self, datastore_id: str) -> bool:
        return False


class _SealingReader:
    """A file-like view of the sealed form of a plaintext stream, read in segments (memory: one segment)."""

    def __init__(self, sealer: sealed.Sealer, source: BinaryIO) -> None:
        self._parts = sealer.seal(self._chunks(source, sealer.segment_size))
        self._pending: list[bytes] = []
        self._pending_bytes = 0
        self.plain_bytes = 0

    def _chunks(self, source: BinaryIO, size: int) -> Iterator[bytes]:
        while True:
            chunk = bytearray()
            while len(chunk) < size:
                piece = source.read(size - len(chunk))
                if not piece:
                    break
                chunk += piece
            if not chunk:
                return
            self.plain_bytes += len(chunk)
            yield bytes(chunk)
            if len(chunk) < size:
                return

    def read(self, size: int = -1) -> bytes:
        while size < 0 or self._pending_bytes < size:
            part = next(self._parts, None)
            if part is None:
                break
            self._pending.append(part)
            self._pending_bytes += len(part)
        joined = b"".join(self._pending)
        out, rest = (joined, b"") if size < 0 else (joined[:size], joined[size:])
        self._pending, self._pending_bytes = ([rest] if rest else []), len(rest)
        return out

    def readable(self) -> bool:
        return True


class SealedBlobStore:
    """A ``BlobStore`` that seals data store objects on put and opens them on get / get_range / head."""

    def __init__(
        self, inner: BlobStore, keys: DataKeySource, *, segment_size: int = sealed.DEFAULT_SEGMENT_SIZE
    ) -> None:
        self.inner = inner
        self._keys = keys
        self._segment_size = segment_size
        self._openers: OrderedDict[str, sealed.Opener] = OrderedDict()
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"SealedBlobStore({self.inner!r})"

    # -- writes ------------------------------------------------------------------------------------------

    def put(self, key: str, data: bytes | BinaryIO) -> BlobInfo:
        datastore_id = datastore_of(key)
        data_key = self._keys.for_write(datastore_id) if datastore_id is not None else None
        self._forget(key)
        if data_key is None:
            return self.inner.put(key, data)
        sealer = sealed.Sealer(data_key, key, self._segment_size)
        if isinstance(data, bytes | bytearray | memoryview):
            self.inner.put(key, sealer.seal_bytes(data))
            return BlobInfo(key=key, size=len(data))
        reader = _SealingReader(sealer, data)
        self.inner.put(key, reader)  # type: ignore[arg-type]  # a read()-only file object is all put() uses
        return BlobInfo(key=key, size=reader.plain_bytes)

    def delete(self, key: str) -> None:
        self._forget(key)
        self.inner.delete(key)

    # -- reads -------------------------------------------------------------------------------------------

    def get(self, key: str) -> bytes:
        datastore_id = datastore_of(key)
        raw = self.inner.get(key)
        if datastore_id is None:
            return raw
        if not sealed.is_sealed(raw):
            return self._plaintext(datastore_id, key, raw)
        header = sealed.Header.decode(raw, key)
        data_key = self._keys.for_read(datastore_id, header.key_version)  # still valid? (the source's cache time)
        opener = self._openers.get(key)  # reads need no lock (one C call under the GIL); writes take it
        if opener is not None and opener.header == header and opener.data_key == data_key:
            return sealed.open_object(raw, opener)  # the object key is already unwrapped
        opener = sealed.Opener(header, data_key, key)
        plain = sealed.open_object(raw, opener)
        self._cache(key, opener)
        return plain

    def get_range(self, key: str, offset: int, length: int) -> bytes:
        if offset < 0 or length < 0:
            raise ValueError(f"offset and length must be >= 0 (got {offset}, {length})")
        datastore_id = datastore_of(key)
        if datastore_id is None:
            return self.inner.get_range(key, offset, length)
        opener = self._opener(datastore_id, key)
        if opener is None:
            return self._plaintext(datastore_id, key, self.inner.get_range(key, offset, length))
        if length == 0:
            return b""
        try:
            return self._read_range(opener, key, offset, length)
        except EncryptionKeyError:
            # The cached object key may be of an object since replaced under the same key: retry once afresh.
            if not self._forget(key):
                raise
            fresh = self._opener(datastore_id, key)
            if fresh is None:
                return self._plaintext(datastore_id, key, self.inner.get_range(key, offset, length))
            return self._read_range(fresh, key, offset, length)

    def head(self, key: str) -> BlobInfo | None:
        info = self.inner.head(key)
        datastore_id = datastore_of(key)
        if info is None or datastore_id is None:
            return info
        opener = self._opener(datastore_id, key)
        if opener is None:
            self._plaintext(datastore_id, key, b"")
            return info
        return BlobInfo(key=key, size=sealed.plain_size(info.size, opener.header.segment_size, key))

    def iter_prefix(self, prefix: str) -> Iterator[str]:
        return self.inner.iter_prefix(prefix)

    def check(self) -> None:
        self.inner.check()

    # -- helpers -----------------------------------------------------------------------------------------

    def _plaintext(self, datastore_id: str, key: str, raw: bytes) -> bytes:
        if not self._keys.plaintext_allowed(datastore_id):
            raise sealed.corrupt(key, f"it is not encrypted, yet every object of data store {datastore_id} is")
        return raw

    def _opener(self, datastore_id: str, key: str) -> sealed.Opener | None:
        """The object's opener (cached per key), or None when the object is stored in the clear."""
        cached = self._openers.get(key)
        # A cached object key is used only while its data store key is still what the source answers (a destroyed
        # or rotated-away key stops opening within the source's cache time, as everywhere else).
        if cached is not None and self._keys.for_read(datastore_id, cached.header.key_version) == cached.data_key:
            with self._lock:
                if key in self._openers:
                    self._openers.move_to_end(key)
            return cached
        prefix = self.inner.get_range(key, 0, sealed.HEADER_BYTES)  # BlobNotFoundError when absent
        if not sealed.is_sealed(prefix):
            return None
        header = sealed.Header.decode(prefix, key)
        opener = sealed.Opener(header, self._keys.for_read(datastore_id, header.key_version), key)
        self._cache(key, opener)
        return opener

    def _cache(self, key: str, opener: sealed.Opener) -> None:
        with self._lock:
            self._openers[key] = opener
            self._openers.move_to_end(key)
            while len(self._openers) > CACHED_OPENERS:
                self._openers.popitem(last=False)

    def _forget(self, key: str) -> bool:
        with self._lock:
            return self._openers.pop(key, None) is not None

    def _read_range(self, opener: sealed.Opener, key: str, offset: int, length: int) -> bytes:
        size = opener.header.segment_size
        step = size + sealed.TAG_BYTES
        first, last = offset // size, (offset + length - 1) // size
        start = sealed.HEADER_BYTES + first * step
        wanted = (last - first + 1) * step
        body = self.inner.get_range(key, start, wanted + 1)  # one byte more: tells whether the object goes on
        if not body:
            return b""  # the range starts at or past the end of the object
        ends_object = len(body) <= wanted
        plain = opener.open_segments(body[:wanted], first, ends_object)
        skip = offset - first * size
        return plain[skip : skip + length]
