"""The data store lifecycle sweep: CREATING -> ACTIVE and DELETING -> DELETED.

Both transitions are finished off the request path, after ``transition_seconds`` so that clients can
observe the intermediate status as they would on AWS. Each step is idempotent and every move is a
compare-and-set in the index, so any number of server processes may sweep at once and a sweep cut short
by a crash is simply finished by the next one (learned from dicom-server's re-runnable cleanup).
Provisioning writes the data store's descriptor blob; deletion purges every blob under the data store's
prefix and its tags before marking it DELETED. With encryption at rest, provisioning first gives the data store
its key (a customer key that cannot be used makes it CREATE_FAILED) and deletion destroys the key.
"""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from typing import TYPE_CHECKING

from openhi.blobs import keys
from openhi.blobs.port import BlobStore
from openhi.clock import Clock
from openhi.datastores.model import Datastore, DatastoreStatus
from openhi.errors import EncryptionKeyError
from openhi.events import emit
from openhi.index.port import Index, UnitOfWork

if TYPE_CHECKING:
    from openhi.crypto.keyring import DatastoreKeys

log = logging.getLogger(__name__)


def descriptor(datastore: Datastore) -> bytes:
    """The JSON written at ``keys.datastore_descriptor``: enough to identify the prefix's owner."""
    return json.dumps(
        {
            "datastoreId": datastore.datastore_id,
            "datastoreName": datastore.name,
            "losslessStorageFormat": datastore.lossless_storage_format.value,
            "createdAt": datastore.created_at.isoformat(),
        },
        indent=2,
    ).encode()


class DatastoreLifecycle:
    """Finishes pending data store transitions."""

    def __init__(
        self,
        index: Index,
        blobs: BlobStore,
        clock: Clock,
        transition_seconds: float,
        keys: DatastoreKeys | None = None,  # encryption at rest (docs/encryption.md)
    ) -> None:
        self._index = index
        self._keys = keys
        self._blobs = blobs
        self._clock = clock
        self._delay = timedelta(seconds=transition_seconds)

    def _due(self, status: DatastoreStatus) -> list[Datastore]:
        cutoff = self._clock() - self._delay

        def work(uow: UnitOfWork) -> list[Datastore]:
            found = (uow.datastores.get(i) for i in uow.datastores.ids_in(status))
            return [d for d in found if d is not None and d.updated_at <= cutoff]

        return self._index.run(work, readonly=True)

    def _provision(self, datastore: Datastore) -> None:
        self._blobs.put(keys.datastore_descriptor(datastore.datastore_id), descriptor(datastore))
        if self._keys is not None:  # encryption at rest: the data store's key exists before it is ACTIVE
            try:
                self._keys.provision(datastore)
            except EncryptionKeyError as exc:  # its customer key (kmsKeyArn) cannot be used: CREATE_FAILED
                log.warning("datastore %s cannot be created: %s", datastore.datastore_id, exc.message)
                failed = DatastoreStatus.CREATE_FAILED
                at = self._clock()
                self._index.run(
                    lambda uow: emit.transition_datastore(uow, datastore, DatastoreStatus.CREATING, failed, at)
                )
                return
        self._index.run(
            lambda uow: emit.transition_datastore(
                uow, datastore, DatastoreStatus.CREATING, DatastoreStatus.ACTIVE, self._clock()
            )
        )

    def _purge(self, datastore: Datastore) -> None:
        for key in list(self._blobs.iter_prefix(keys.datastore_prefix(datastore.datastore_id))):
            self._blobs.delete(key)

        def work(uow: UnitOfWork) -> None:
            uow.tags.remove_all_of_datastore(datastore.datastore_id)
            uow.datastore_keys.remove_all_of_datastore(datastore.datastore_id)  # its key is destroyed with it
            emit.transition_datastore(uow, datastore, DatastoreStatus.DELETING, DatastoreStatus.DELETED, self._clock())

        self._index.run(work)
        if self._keys is not None:
            self._keys.forget(datastore.datastore_id)

    def sweep(self) -> int:
        """Finish every due transition and return how many moved; failures are logged and retried later."""
        moved = 0
        for status, step in (
            (DatastoreStatus.CREATING, self._provision),
            (DatastoreStatus.DELETING, self._purge),
        ):
            for datastore in self._due(status):
                try:
                    step(datastore)
                    moved += 1
                except Exception:
                    log.exception("lifecycle step for datastore %s failed; will retry", datastore.datastore_id)
        return moved
