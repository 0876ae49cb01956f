"""The tier sweep (guide 23024): idle image sets down to the archive, accessed archived ones back up.

Every ``tier_sweep_seconds`` each server process (or ``openhi tiers sweep``) runs ``TierSweep.run``:

1. flushes the process's noted accesses (``access.py``), so they count before anything is judged idle;
2. restores archived image sets accessed since their move (accesses another process recorded but did not
   restore, e.g. it stopped during the move);
3. archives, page by page in (data store, image set) order, every ACTIVE, Frequent Access image set not accessed
   since before ``now - archive_after_days`` (``policy.py``).

Moves are compare-and-set (``moves.py``), so processes sweeping at once do not conflict; an image set that
cannot be moved now (locked, accessed meanwhile) is left for the next sweep. ``now`` may be given (the CLI's
``--as-of``) to judge idleness at another moment than the clock's.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial

from openhi.clock import Clock
from openhi.errors import UnavailableError
from openhi.imagesets.model import ImageSet
from openhi.index.port import Index, UnitOfWork
from openhi.tiers.access import AccessTracker
from openhi.tiers.moves import TierMover
from openhi.tiers.policy import TierPolicy

log = logging.getLogger(__name__)

SWEEP_PAGE = 100

type _Move = Callable[[], bool]


@dataclass
class SweepResult:
    """What one sweep moved: (data store id, image set id) pairs, and how many moves failed."""

    archived: list[tuple[str, str]] = field(default_factory=list)
    restored: list[tuple[str, str]] = field(default_factory=list)
    failed: int = 0


class TierSweep:
    """One pass of the tier rules over every data store."""

    def __init__(
        self,
        index: Index,
        mover: TierMover,
        policy: TierPolicy,
        clock: Clock,
        tracker: AccessTracker | None = None,
        page: int = SWEEP_PAGE,
    ) -> None:
        self._index = index
        self._mover = mover
        self._policy = policy
        self._clock = clock
        self._tracker = tracker
        self._page = page

    def run(self, now: datetime | None = None) -> SweepResult:
        """Restore accessed archived image sets, then archive the idle ones (idle as of ``now``, default the
        clock's time)."""
        if self._tracker is not None:
            self._tracker.flush(restore=False)
        result = SweepResult()
        self._restore_accessed(result)
        cutoff = self._policy.cutoff(now or self._clock())
        after: tuple[str, str] | None = None
        while True:
            page = self._idle_page(cutoff, after)
            for image_set in page:
                if self._try(partial(self._mover.archive, image_set, cutoff), image_set, result):
                    result.archived.append((image_set.datastore_id, image_set.image_set_id))
            if len(page) < self._page:
                break
            after = (page[-1].datastore_id, page[-1].image_set_id)
        if result.archived or result.restored or result.failed:
            log.info(
                "tier sweep: %d archived, %d restored, %d failed",
                len(result.archived),
                len(result.restored),
                result.failed,
            )
        return result

    def _idle_page(self, cutoff: datetime, after: tuple[str, str] | None) -> list[ImageSet]:
        def work(uow: UnitOfWork) -> list[ImageSet]:
            return uow.tiers.idle(cutoff, after, self._page)

        return self._index.run(work, readonly=True)

    def _restore_accessed(self, result: SweepResult) -> None:
        """One page of archived image sets accessed since their move (the next sweep takes the rest)."""

        def work(uow: UnitOfWork) -> list[ImageSet]:
            return uow.tiers.accessed_while_archived(self._page)

        for image_set in self._index.run(work, readonly=True):
            ds_id, is_id = image_set.datastore_id, image_set.image_set_id
            if self._try(partial(self._mover.restore, ds_id, is_id), image_set, result):
                result.restored.append((ds_id, is_id))

    @staticmethod
    def _try(move: _Move, image_set: ImageSet, result: SweepResult) -> bool:
        """Run one move; a failure of that image set alone is logged and counted, an unreachable backend stops
        the sweep."""
        try:
            return move()
        except UnavailableError:
            raise
        except Exception:
            log.exception("tier move of image set %s failed; the next sweep tries again", image_set.image_set_id)
            result.failed += 1
            return False
