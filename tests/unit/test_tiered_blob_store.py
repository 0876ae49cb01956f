"""TieredBlobStore: reads find a blob in either location, even while a tier move runs; writes go to the hot one."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from openhi.blobs.memory import MemoryBlobStore
from openhi.blobs.port import BlobInfo
from openhi.errors import BlobNotFoundError
from openhi.tiers.blob_store import TieredBlobStore

KEY = "datastores/" + "d" * 32 + "/frames/" + "f" * 32


class Racing(MemoryBlobStore):
    """A store that runs ``race`` right after its first miss: another process's move step, between two reads."""

    def __init__(self) -> None:
        super().__init__()
        self.race: Callable[[], None] | None = None

    def get(self, key: str) -> bytes:
        try:
            return super().get(key)
        except BlobNotFoundError:
            self._run_race()
            raise

    def head(self, key: str) -> BlobInfo | None:
        found = super().head(key)
        if found is None:
            self._run_race()
        return found

    def _run_race(self) -> None:
        race, self.race = self.race, None
        if race is not None:
            race()


def test_reads_fall_back_to_the_archive_and_writes_go_hot() -> None:
    hot, archive = MemoryBlobStore(), MemoryBlobStore()
    tiered = TieredBlobStore(hot, archive)
    archive.put(KEY, b"archived bytes")
    assert tiered.get(KEY) == b"archived bytes"
    assert tiered.get_range(KEY, 9, 100) == b"bytes"
    assert tiered.head(KEY) == BlobInfo(KEY, 14)
    tiered.put(KEY + "0", b"new")
    assert hot.get(KEY + "0") == b"new"
    assert archive.head(KEY + "0") is None
    with pytest.raises(BlobNotFoundError):
        tiered.get(KEY + "1")
    assert tiered.head(KEY + "1") is None


def test_a_read_during_a_restore_finds_the_new_hot_copy() -> None:
    """Miss in hot; the restore copies to hot and deletes the archive copy; the read then looks in hot again."""
    hot, archive = Racing(), MemoryBlobStore()
    archive.put(KEY, b"frame")

    def restore() -> None:
        hot.put(KEY, archive.get(KEY))
        archive.delete(KEY)

    hot.race = restore
    assert TieredBlobStore(hot, archive).get(KEY) == b"frame"
    hot.race = None


def test_a_head_during_a_restore_finds_the_new_hot_copy() -> None:
    hot, archive = Racing(), MemoryBlobStore()
    archive.put(KEY, b"frame")

    def restore() -> None:
        hot.put(KEY, archive.get(KEY))
        archive.delete(KEY)

    hot.race = restore
    assert TieredBlobStore(hot, archive).head(KEY) == BlobInfo(KEY, 5)


def test_a_read_during_an_archive_move_finds_the_archive_copy() -> None:
    hot, archive = Racing(), MemoryBlobStore()
    hot.put(KEY, b"frame")
    tiered = TieredBlobStore(hot, archive)
    archive.put(KEY, hot.get(KEY))  # the move copied first ...
    hot.delete(KEY)  # ... and deleted the hot copy after switching the tier
    assert tiered.get(KEY) == b"frame"


def test_deletes_remove_both_copies_and_listings_merge_both_locations() -> None:
    hot, archive = MemoryBlobStore(), MemoryBlobStore()
    tiered = TieredBlobStore(hot, archive)
    prefix = "datastores/" + "d" * 32 + "/"
    for key in ("a", "c", "d"):
        hot.put(prefix + key, b"h")
    for key in ("b", "c", "e"):
        archive.put(prefix + key, b"a")
    archive.put("datastores/" + "e" * 32 + "/x", b"other data store")
    assert list(tiered.iter_prefix(prefix)) == [prefix + k for k in "abcde"]
    tiered.delete(prefix + "c")
    assert hot.head(prefix + "c") is None
    assert archive.head(prefix + "c") is None
    tiered.delete(prefix + "zz")  # absent everywhere: not an error
    tiered.check()
