"""``TieredBlobStore``: the blob port over two locations, the hot one (Frequent Access) and the archive.

Guide 23014 promises millisecond access to archived data ("instant access"), so an archived blob is read where it
is, at once; a read never waits for a move. Writes go to the hot location; a move between locations
(``moves.py``) copies a blob, switches the image set's tier in the index, then deletes the source copy. Reads
therefore look hot, then archive, then hot again: a blob missed in the hot location because it was just archived
is in the archive (copied before the hot copy was deleted), and a blob missed in the archive because it was just
restored is hot again (copied before the archive copy was deleted). So a concurrent move never fails a read.

Deletes remove both copies; listings merge both locations (a data store's deletion sweeps its prefix in both).
The tier moves use ``hot`` and ``archive`` directly. Bytes are moved as they are stored: an encrypting wrapper
(``openhi.crypto``) sits outside this one, so ciphertext moves and is never decrypted by a move.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, BinaryIO, TypeVar

from openhi.blobs.port import BlobInfo, BlobStore
from openhi.errors import BlobNotFoundError

T = TypeVar("T")


class TieredBlobStore:
    """Reads from the hot location or the archive, writes to the hot location, deletes from both."""

    def __init__(self, hot: BlobStore, archive: BlobStore) -> None:
        self.hot = hot
        self.archive = archive

    def __repr__(self) -> str:
        return f"TieredBlobStore(hot={self.hot!r}, archive={self.archive!r})"

    def _read(self, read: Callable[[BlobStore], T]) -> T:
        """``read`` on the hot location, the archive, then the hot location again (see the module docstring)."""
        try:
            return read(self.hot)
        except BlobNotFoundError:
            pass
        try:
            return read(self.archive)
        except BlobNotFoundError:
            return read(self.hot)

    def put(self, key: str, data: bytes | BinaryIO) -> BlobInfo:
        return self.hot.put(key, data)

    def get(self, key: str) -> bytes:
        return self._read(lambda store: store.get(key))

    def get_range(self, key: str, offset: int, length: int) -> bytes:
        return self._read(lambda store: store.get_range(key, offset, length))

    def head(self, key: str) -> BlobInfo | None:
        for store in (self.hot, self.archive, self.hot):
            info = store.head(key)
            if info is not None:
                return info
        return None

    def delete(self, key: str) -> None:
        self.hot.delete(key)
        self.archive.delete(key)

    def iter_prefix(self, prefix: str) -> Iterator[str]:
        """Keys of both locations in lexicographic order, each once."""
        last: str | None = None
        for key in heapq.merge(self.hot.iter_prefix(prefix), self.archive.iter_prefix(prefix)):
            if key != last:
                yield key
                last = key

    def check(self) -> None:
        self.hot.check()
        self.archive.check()


if TYPE_CHECKING:  # mypy proves the wrapper satisfies the port

    def _conforms(store: TieredBlobStore) -> BlobStore:
        return store
