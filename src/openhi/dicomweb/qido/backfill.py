"""Catalog backfill: image sets written before the catalog existed get their QIDO-RS rows.

Migration 0004 cannot read metadata documents (they are blobs), so a periodic step of every server process
(``bootstrap``) asks the index for primary, not deleted image sets whose catalog rows are missing or older than
their latest version, reads each one's latest document and writes its rows — in a unit of work that first
checks the image set is still primary, not deleted and at that version, so a concurrent write always wins.
Idempotent; any process may run it.
"""

from __future__ import annotations

import logging
import time

from openhi.blobs.port import BlobStore
from openhi.catalog.derive import catalog_of
from openhi.errors import OpenHIError
from openhi.imagesets.model import ImageSetState
from openhi.imagesets.versions import load_document
from openhi.index.port import Index, UnitOfWork

log = logging.getLogger(__name__)

BATCH = 50
STEP_SECONDS = 1.0  # one periodic step works at most about this long


class CatalogBackfill:
    """Fills the catalog in for image sets that lack it."""

    def __init__(self, index: Index, blobs: BlobStore, batch: int = BATCH) -> None:
        self._index = index
        self._blobs = blobs
        self._batch = batch
        self._done = False

    def step(self) -> None:
        """The periodic step: batches until none is left or the step's time is up; after a pass that found
        nothing it does nothing more (every later write catalogs itself in ``write_version``)."""
        if self._done:
            return
        deadline = time.monotonic() + STEP_SECONDS
        while time.monotonic() < deadline:
            pending = self._pending()
            if not pending:
                self._done = True
                return
            if self._write(pending) == 0:  # nothing could be written (unreadable documents): retry next step
                return

    def _pending(self) -> list[tuple[str, str, int]]:
        return self._index.run(lambda uow: uow.catalog.uncataloged(self._batch), readonly=True)

    def run_once(self) -> int:
        """Catalog up to one batch of image sets; the number written."""
        return self._write(self._pending())

    def _write(self, pending: list[tuple[str, str, int]]) -> int:
        written = 0
        for datastore_id, image_set_id, version_id in pending:
            try:
                written += self._one(datastore_id, image_set_id, version_id)
            except OpenHIError as exc:  # e.g. a missing document blob: log, keep going with the others
                log.warning("catalog backfill of image set %s failed: %s", image_set_id, exc)
        return written

    def _one(self, datastore_id: str, image_set_id: str, version_id: int) -> int:
        version = self._index.run(
            lambda uow: uow.image_sets.get_version(datastore_id, image_set_id, version_id), readonly=True
        )
        if version is None:
            return 0
        catalog = catalog_of(load_document(self._blobs, version))

        def work(uow: UnitOfWork) -> int:
            image_set = uow.image_sets.get(datastore_id, image_set_id)
            if (
                image_set is None
                or image_set.version_id != version_id
                or not image_set.is_primary
                or image_set.state == ImageSetState.DELETED
            ):
                return 0  # changed meanwhile: its own write keeps the catalog
            uow.catalog.put_image_set(datastore_id, image_set_id, version_id, catalog, image_set.updated_at)
            return 1

        return self._index.run(work)
