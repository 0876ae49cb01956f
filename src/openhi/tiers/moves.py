"""Moving one image set between the storage tiers (guide 23009-23052): its blobs, then its tier in the index.

An image set's bytes are its frames and the metadata documents of its versions (bulk values over 1 MB belong to
the data store, not to one image set, and stay in the hot location). A move:

1. lists the image set's frames and documents (index, read-only);
2. copies each blob from the source location to the destination (the bytes as stored: ciphertext stays
   ciphertext), checking the stored size;
3. in one unit of work, compare-and-sets the tier (``uow.tiers.archive`` / ``restore``: an access, a new version,
   a lock or a delete since step 1 makes it fail), moves the image set's bytes between the StorageBytes counters
   of the two tiers (``uow.counters.move_tier``, the resource metrics), tells the listeners, and asks which blobs
   another image set still in the source tier references (frames are shared after CopyImageSet, equal documents
   share a key: those must stay where they are);
4. deletes the other blobs from the source location.

A failed compare-and-set leaves the copies made in step 2 (deleting them could race with another move of a
shared blob); a crash between steps 3 and 4 leaves source copies. Both are extra bytes, never missing ones: a read
through ``TieredBlobStore`` finds a blob in either location, and the next move of the image set removes them.
Two moves in opposite directions of a shared blob cannot both delete it: each deletes only when no other image
set is in the tier it leaves, and their compare-and-sets are serialized by the index.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from openhi.blobs import keys
from openhi.blobs.port import BlobStore
from openhi.clock import Clock
from openhi.errors import UnavailableError
from openhi.imagesets.model import ImageSet, ImageSetState, StorageTier
from openhi.index.port import Index, UnitOfWork

log = logging.getLogger(__name__)

type _Switch = Callable[[UnitOfWork, datetime], bool]  # the compare-and-set of one move, at a time

ALL_VERSIONS = 1_000_000
COPY_IN_MEMORY_BYTES = 16 * 1024 * 1024  # larger blobs are copied through a temporary file, chunk by chunk
COPY_CHUNK_BYTES = 8 * 1024 * 1024


@dataclass(frozen=True)
class TierChange:
    """An image set whose tier a move just changed (told to listeners inside the move's unit of work)."""

    datastore_id: str
    image_set_id: str
    old_tier: StorageTier
    new_tier: StorageTier
    at: datetime
    frame_bytes: int  # the sum of the image set's frame sizes (index ``image_set_frames.size``)


class TierListener(Protocol):
    """Told of each tier change in the unit of work that made it (e.g. StorageBytes per tier counters)."""

    def tier_changed(self, uow: UnitOfWork, change: TierChange) -> None: ...


@dataclass(frozen=True)
class _Blobs:
    """What a move carries: the image set's frame ids, document keys and frame bytes."""

    image_set: ImageSet | None
    frame_ids: list[str]
    documents: list[str]
    frame_bytes: int

    def keys(self, datastore_id: str) -> list[str]:
        return [keys.frame(datastore_id, frame_id) for frame_id in self.frame_ids] + self.documents


def _listing(uow: UnitOfWork, datastore_id: str, image_set_id: str) -> _Blobs:
    frames = uow.image_sets.list_frames(datastore_id, image_set_id)
    versions = uow.image_sets.list_versions(datastore_id, image_set_id, None, ALL_VERSIONS)
    return _Blobs(
        uow.image_sets.get(datastore_id, image_set_id),
        [frame.frame_id for frame in frames],
        sorted({version.metadata_key for version in versions}),
        sum(frame.size for frame in frames),
    )


def copy_blob(source: BlobStore, destination: BlobStore, key: str) -> int | None:
    """Copy one blob as stored; its size, or None when the source does not hold it. Large blobs go through a
    temporary file so a move never holds a whole large frame in memory."""
    info = source.head(key)
    if info is None:
        return None
    if info.size <= COPY_IN_MEMORY_BYTES:
        stored = destination.put(key, source.get(key))
    else:
        with tempfile.TemporaryFile() as spool:
            for offset in range(0, info.size, COPY_CHUNK_BYTES):
                spool.write(source.get_range(key, offset, COPY_CHUNK_BYTES))
            spool.seek(0)
            stored = destination.put(key, spool)
    if stored.size != info.size:
        raise UnavailableError(f"copying blob {key!r} to the other tier stored {stored.size} of {info.size} bytes")
    return info.size


class TierMover:
    """Moves image sets between the hot location and the archive (``hot`` and ``archive`` of the tiered store)."""

    def __init__(
        self,
        index: Index,
        hot: BlobStore,
        archive: BlobStore,
        clock: Clock,
        listeners: Sequence[TierListener] = (),
    ) -> None:
        self._index = index
        self._stores = {StorageTier.FREQUENT_ACCESS: hot, StorageTier.ARCHIVE_INSTANT_ACCESS: archive}
        self._clock = clock
        self._listeners = list(listeners)

    def archive(self, image_set: ImageSet, cutoff: datetime) -> bool:
        """Move an idle image set to Archive Instant Access; False when it changed meanwhile (accessed, new
        version, locked, deleted) or is not in Frequent Access."""
        ds_id, is_id = image_set.datastore_id, image_set.image_set_id
        version = image_set.version_id

        def switch(uow: UnitOfWork, at: datetime) -> bool:
            return uow.tiers.archive(ds_id, is_id, version, cutoff, at)

        return self._move(ds_id, is_id, StorageTier.FREQUENT_ACCESS, StorageTier.ARCHIVE_INSTANT_ACCESS, switch)

    def restore(self, datastore_id: str, image_set_id: str) -> bool:
        """Move an archived image set back to Frequent Access; False when it is not archived (any more) or is
        deleted or being deleted."""

        def switch(uow: UnitOfWork, at: datetime) -> bool:
            return uow.tiers.restore(datastore_id, image_set_id, at)

        return self._move(
            datastore_id, image_set_id, StorageTier.ARCHIVE_INSTANT_ACCESS, StorageTier.FREQUENT_ACCESS, switch
        )

    def _move(
        self,
        ds_id: str,
        is_id: str,
        old: StorageTier,
        new: StorageTier,
        switch: _Switch,
    ) -> bool:
        blobs = self._index.run(lambda uow: _listing(uow, ds_id, is_id), readonly=True)
        if blobs.image_set is None or blobs.image_set.storage_tier != old:
            return False
        if blobs.image_set.state == ImageSetState.DELETED:
            return False
        source, destination = self._stores[old], self._stores[new]
        copied = sum(size or 0 for key in blobs.keys(ds_id) if (size := copy_blob(source, destination, key)))
        at = self._clock()

        def work(uow: UnitOfWork) -> set[str] | None:
            if not switch(uow, at):
                return None
            uow.counters.move_tier(ds_id, is_id, new.value)  # StorageBytes per tier (openhi.metrics), atomically
            change = TierChange(ds_id, is_id, old, new, at, blobs.frame_bytes)
            for listener in self._listeners:
                listener.tier_changed(uow, change)
            return uow.tiers.held_elsewhere(ds_id, is_id, old, blobs.frame_ids, blobs.documents)

        held = self._index.run(work)
        if held is None:
            log.info("tier move of image set %s to %s not done: it changed meanwhile", is_id, new.value)
            return False
        leaving = [keys.frame(ds_id, f) for f in blobs.frame_ids if f not in held]
        leaving += [key for key in blobs.documents if key not in held]
        for key in leaving:
            source.delete(key)
        log.info(
            "image set %s moved to %s (%d bytes copied, %d blobs left the source)",
            is_id,
            new.value,
            copied,
            len(leaving),
        )
        return True
