"""The sealed object format: a stored object encrypted with its own key, in independently readable segments.

Layout (version 1, big-endian integers)::

    offset  size  field
    0       4     magic b"\\x89OHE"
    4       1     format version (1)
    5       1     flags (0)
    6       4     segment size S (plaintext bytes per segment; 256 KiB by default)
    10      4     version of the data store key that wraps the object key
    14      8     nonce prefix (random per object)
    22      60    the object key (AES-256), wrapped by the data store key (envelope.wrap), bound to bytes 0-21 and
                  to the object's blob key (``datastores/{id}/frames/{frameId}`` ...)
    82      ...   segments: segment i is AES-256-GCM(object key, nonce = prefix || i (4 bytes), aad = final flag)
                  of plaintext bytes [i*S, (i+1)*S): S + 16 bytes each, the last one shorter (an empty object has
                  one empty final segment of 16 bytes)

This is the STREAM construction (Hoang, Reyhanitabar, Rogaway, Vizar, "Online Authenticated-Encryption and its
Nonce-Reuse Misuse-Resistance", CRYPTO 2015) over AES-GCM: the counter in the nonce makes a moved or reordered
segment fail, and the final flag makes a cut at a segment boundary fail, so a segment decrypts only at its own
place in its own object. Any segment can be read alone, which keeps byte-range reads of frames and bulk data
cheap (only the segments the range touches are read and decrypted). Sizes follow from the stored size alone:
``stored = 82 + n + 16 * max(1, ceil(n / S))``.
"""

from __future__ import annotations

import secrets
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from openhi.crypto import envelope
from openhi.crypto.model import DataKey
from openhi.errors import EncryptionKeyError

MAGIC = b"\x89OHE"
FORMAT_VERSION = 1
DEFAULT_SEGMENT_SIZE = 256 * 1024  # 64 KiB cost 45 µs more per 90 KiB frame (two decrypts + a join)
MAX_SEGMENT_SIZE = 16 * 1024 * 1024
_FIXED = struct.Struct(">4sBBII8s")
FIXED_BYTES = _FIXED.size  # 22
HEADER_BYTES = FIXED_BYTES + envelope.WRAPPED_BYTES  # 82
TAG_BYTES = envelope.TAG_BYTES
_FINAL, _NOT_FINAL = b"\x01", b"\x00"


def corrupt(key: str, reason: str) -> EncryptionKeyError:
    """The error of an object that cannot be opened."""
    return EncryptionKeyError(envelope.DECRYPTION_FAILURE, f"stored object {key} cannot be decrypted: {reason}")


def is_sealed(prefix: bytes) -> bool:
    """True when an object starting with ``prefix`` is in this format (else it is a plaintext object)."""
    return prefix[: len(MAGIC)] == MAGIC


@dataclass(frozen=True)
class Header:
    """The fixed-size header of a sealed object."""

    segment_size: int
    key_version: int
    nonce_prefix: bytes
    wrapped_object_key: bytes = field(repr=False)

    def fixed(self) -> bytes:
        """Bytes 0-21 (what the wrapped object key is bound to)."""
        return _FIXED.pack(MAGIC, FORMAT_VERSION, 0, self.segment_size, self.key_version, self.nonce_prefix)

    def encode(self) -> bytes:
        """The 82 header bytes."""
        return self.fixed() + self.wrapped_object_key

    @classmethod
    def decode(cls, raw: bytes, key: str) -> Header:
        """Parse the first ``HEADER_BYTES`` of a sealed object."""
        if len(raw) < HEADER_BYTES:
            raise corrupt(key, "it is shorter than its header (truncated)")
        magic, version, flags, segment_size, key_version, prefix = _FIXED.unpack_from(raw)
        if magic != MAGIC:
            raise corrupt(key, "it is not in the sealed format")
        if version != FORMAT_VERSION or flags != 0:
            raise corrupt(key, f"unknown sealed format version {version} (flags {flags})")
        if not 0 < segment_size <= MAX_SEGMENT_SIZE:
            raise corrupt(key, f"invalid segment size {segment_size}")
        return cls(segment_size, key_version, prefix, bytes(raw[FIXED_BYTES:HEADER_BYTES]))


def _binding(fixed: bytes, key: str) -> bytes:
    return fixed + b"\0" + key.encode()


def _nonce(prefix: bytes, index: int) -> bytes:
    return prefix + index.to_bytes(4, "big")


def segment_count(plain_size: int, segment_size: int) -> int:
    """Segments of an object of ``plain_size`` bytes (at least one)."""
    return max(1, -(-plain_size // segment_size))


def sealed_size(plain_size: int, segment_size: int) -> int:
    """Stored size of an object of ``plain_size`` bytes."""
    return HEADER_BYTES + plain_size + TAG_BYTES * segment_count(plain_size, segment_size)


def plain_size(stored_size: int, segment_size: int, key: str) -> int:
    """Plaintext size of a sealed object of ``stored_size`` bytes (``EncryptionKeyError`` if no size maps to it)."""
    body = stored_size - HEADER_BYTES
    full, rest = divmod(body, segment_size + TAG_BYTES)
    if body < TAG_BYTES or (rest and rest < TAG_BYTES):
        raise corrupt(key, "its size matches no sealed object (truncated)")
    return full * segment_size + (rest - TAG_BYTES if rest else 0)


class Sealer:
    """Seals one object: a fresh object key, wrapped by the data store key, and its segments."""

    def __init__(self, data_key: DataKey, key: str, segment_size: int = DEFAULT_SEGMENT_SIZE) -> None:
        object_key = envelope.new_key()
        prefix = secrets.token_bytes(8)
        fixed = _FIXED.pack(MAGIC, FORMAT_VERSION, 0, segment_size, data_key.version, prefix)
        wrapped = envelope.wrap(data_key.material, object_key, _binding(fixed, key))
        self.header = Header(segment_size, data_key.version, prefix, wrapped)
        self._aead = AESGCM(object_key)

    @property
    def segment_size(self) -> int:
        """Plaintext bytes per segment."""
        return self.header.segment_size

    def segment(self, index: int, chunk: bytes, final: bool) -> bytes:
        """Segment ``index`` of the object (``final`` for the last one)."""
        return self._aead.encrypt(_nonce(self.header.nonce_prefix, index), chunk, _FINAL if final else _NOT_FINAL)

    def seal(self, chunks: Iterable[bytes]) -> Iterator[bytes]:
        """The header, then the segments of the plaintext given as ``chunks`` of exactly ``segment_size`` bytes
        (the last one may be shorter or empty); reads one chunk ahead to know which segment is the last."""
        yield self.header.encode()
        iterator = iter(chunks)
        current = next(iterator, b"")
        index = 0
        for following in iterator:
            yield self.segment(index, current, final=False)
            current, index = following, index + 1
        yield self.segment(index, current, final=True)

    def seal_bytes(self, data: bytes | bytearray | memoryview) -> bytes:
        """The whole sealed object of ``data``."""
        view = memoryview(data)
        size = self.segment_size
        return b"".join(self.seal(bytes(view[i : i + size]) for i in range(0, len(view), size)))


class Opener:
    """Opens the segments of one sealed object (its object key unwrapped once)."""

    def __init__(self, header: Header, data_key: DataKey, key: str) -> None:
        if data_key.version != header.key_version:
            raise corrupt(key, f"it names data store key version {header.key_version}, not {data_key.version}")
        self.header = header
        self.data_key = data_key
        self._key = key
        what = f"stored object {key}"
        object_key = envelope.unwrap(data_key.material, header.wrapped_object_key, _binding(header.fixed(), key), what)
        self._aead = AESGCM(object_key)

    def segment(self, index: int, sealed: bytes | memoryview, final: bool) -> bytes:
        """The plaintext of segment ``index``; ``EncryptionKeyError`` if it is not that segment of this object."""
        try:
            return self._aead.decrypt(_nonce(self.header.nonce_prefix, index), sealed, _FINAL if final else _NOT_FINAL)
        except InvalidTag:
            raise corrupt(self._key, f"segment {index} fails authentication (altered, moved or truncated)") from None

    def open_segments(self, body: bytes | memoryview, first: int, ends_object: bool) -> bytes:
        """Plaintext of consecutive segments starting at segment ``first``; ``body`` holds them back to back and,
        when ``ends_object``, reaches the end of the object (its last segment is the final one)."""
        step = self.header.segment_size + TAG_BYTES
        view = memoryview(body)
        count = -(-len(view) // step)
        if ends_object and (count == 0 or len(view) - (count - 1) * step < TAG_BYTES):
            raise corrupt(self._key, "it ends inside a segment (truncated)")
        if not ends_object and len(view) % step:
            raise corrupt(self._key, "a segment is cut short (truncated)")
        parts = []
        for n in range(count):
            final = ends_object and n == count - 1
            parts.append(self.segment(first + n, view[n * step : (n + 1) * step], final))
        return b"".join(parts)


def open_object(raw: bytes, opener: Opener) -> bytes:
    """The plaintext of a whole sealed object ``raw`` (header included)."""
    return opener.open_segments(memoryview(raw)[HEADER_BYTES:], 0, ends_object=True)
