"""``StorageTiers``: the pieces of the storage tiers over one index and two blob locations, as one object.

The composition root builds it (``bootstrap``), hands ``blobs`` to every service as their blob store and
``tracker`` as their ``AccessRecorder``, and runs ``tracker.flush`` and ``sweep.run`` as background loops.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from openhi.blobs.port import BlobStore
from openhi.clock import Clock
from openhi.index.port import Index
from openhi.tiers.access import AccessTracker
from openhi.tiers.blob_store import TieredBlobStore
from openhi.tiers.moves import TierListener, TierMover
from openhi.tiers.policy import TierPolicy
from openhi.tiers.sweep import TierSweep


@dataclass(frozen=True)
class StorageTiers:
    """The tiered blob store, the access tracker, the mover and the sweep."""

    blobs: TieredBlobStore
    tracker: AccessTracker
    mover: TierMover
    sweep: TierSweep

    @classmethod
    def over(
        cls,
        index: Index,
        hot: BlobStore,
        archive: BlobStore,
        clock: Clock,
        policy: TierPolicy,
        listeners: Sequence[TierListener] = (),
    ) -> StorageTiers:
        """Wire the pieces: accesses restore through the mover, the sweep flushes the tracker first."""
        mover = TierMover(index, hot, archive, clock, listeners)
        tracker = AccessTracker(index, clock, mover.restore)
        return cls(TieredBlobStore(hot, archive), tracker, mover, TierSweep(index, mover, policy, clock, tracker))
