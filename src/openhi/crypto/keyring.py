"""``DatastoreKeys``: each data store's own key, wrapped in the index, unwrapped on demand (envelope encryption).

Guide 20934-21100: a data store's data is encrypted with a key the service owns (here: the master key of
``crypto/master.py``) or with the customer managed key named by ``kmsKeyArn`` (``crypto/providers.py``). Lifecycle:

- **Created when the data store is provisioned** (``provision``, called by ``DatastoreLifecycle`` before CREATING ->
  ACTIVE): version 1 is generated (by the customer key provider for a kmsKeyArn data store, else randomly and wrapped
  by the current master key) and inserted if absent, so concurrent sweeps end with one key. A customer key that
  cannot be used makes the data store CREATE_FAILED. Data stores that already existed without a key (provisioned
  before encryption at rest, or while the ``encryption`` setting was off) get one on their next write
  (``for_write``), marked ``legacy_plaintext``: their older objects stay readable in the clear.
- **Used** through ``DataKeySource`` by ``SealedBlobStore``: ``for_write`` gives the current version, ``for_read``
  the version an object names; unwrapped keys are cached for ``cache_seconds`` (so a rotation made elsewhere is
  seen within that time, and a destroyed key stops working within it in every process).
- **Rotated** without rewriting any object: ``rotate`` adds version n+1 (new objects use it, objects sealed under
  older versions name theirs); ``rewrap_master`` re-wraps every master-wrapped version with the current master key.
- **Destroyed** with the data store: the lifecycle sweep deletes the rows (``uow.datastore_keys``) and calls
  ``forget``; what was sealed under them cannot be opened any more.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from openhi.clock import Clock
from openhi.crypto import envelope
from openhi.crypto.master import MasterKeyring
from openhi.crypto.model import DataKey, StoredDataKey, WrappingKind
from openhi.crypto.providers import KeyProvider, encryption_context
from openhi.datastores.model import Datastore, DatastoreStatus
from openhi.errors import ConflictError, EncryptionKeyError, NotFoundError
from openhi.index.port import Index, UnitOfWork

log = logging.getLogger(__name__)
REWRAP_BATCH = 100
WRITABLE = (DatastoreStatus.CREATING, DatastoreStatus.ACTIVE)


@dataclass(frozen=True)
class _State:
    """What writes to one data store need: its current key (None: stored in the clear) and its plaintext rule."""

    current: DataKey | None
    plaintext_allowed: bool
    until: datetime


def _aad(datastore_id: str, version: int) -> bytes:
    return f"openhi data store key|{datastore_id}|{version}".encode()


class DatastoreKeys:
    """The data store keys of one process (``DataKeySource`` of the server's ``SealedBlobStore``)."""

    def __init__(
        self,
        index: Index,
        master: MasterKeyring,
        customer: KeyProvider,
        clock: Clock,
        *,
        encrypt_new: bool = True,
        cache_seconds: float = 60.0,
    ) -> None:
        self._index = index
        self.master = master
        self._customer = customer
        self._clock = clock
        self._encrypt_new = encrypt_new
        self._ttl = timedelta(seconds=cache_seconds)
        self._lock = threading.Lock()
        self._states: dict[str, _State] = {}
        self._keys: dict[tuple[str, int], tuple[DataKey, datetime]] = {}

    # -- creating and unwrapping --------------------------------------------------------------------------

    def _generate(
        self, datastore_id: str, kms_key_arn: str | None, version: int, legacy: bool
    ) -> tuple[StoredDataKey, DataKey]:
        """A new key version, wrapped and in the clear (the customer key provider or the master key is called here,
        outside any transaction; the caller stores it, then remembers it)."""
        if kms_key_arn:
            material, wrapped = self._customer.generate(kms_key_arn, encryption_context(kms_key_arn, datastore_id))
            kind, wrapping_key_id = WrappingKind.CUSTOMER, kms_key_arn
        else:
            material = envelope.new_key()
            wrapped, wrapping_key_id = self.master.wrap(material, _aad(datastore_id, version))
            kind = WrappingKind.MASTER
        stored = StoredDataKey(datastore_id, version, wrapped, kind, wrapping_key_id, self._clock(), legacy)
        return stored, DataKey(datastore_id, version, material)

    def unwrap(self, stored: StoredDataKey) -> DataKey:
        """The plaintext of a stored key version (the customer key provider is asked for CUSTOMER keys)."""
        what = f"key version {stored.version} of data store {stored.datastore_id}"
        if stored.kind is WrappingKind.CUSTOMER:
            context = encryption_context(stored.wrapping_key_id, stored.datastore_id)
            material = self._customer.unwrap(stored.wrapping_key_id, stored.wrapped, context)
        else:
            aad = _aad(stored.datastore_id, stored.version)
            material = self.master.unwrap(stored.wrapped, stored.wrapping_key_id, aad, what)
        return DataKey(stored.datastore_id, stored.version, envelope.check_key(material, what))

    def _remember(self, key: DataKey) -> None:
        with self._lock:
            self._keys[(key.datastore_id, key.version)] = (key, self._clock() + self._ttl)

    # -- provisioning -------------------------------------------------------------------------------------

    def provision(self, datastore: Datastore) -> None:
        """Give a data store being provisioned its first key (idempotent; nothing when encryption is off and the
        data store names no customer key). ``EncryptionKeyError`` when its customer key cannot be used."""
        if not (self._encrypt_new or datastore.kms_key_arn):
            return
        datastore_id = datastore.datastore_id
        if self._index.run(lambda uow: uow.datastore_keys.current(datastore_id), readonly=True) is not None:
            return
        stored, key = self._generate(datastore_id, datastore.kms_key_arn, 1, legacy=False)
        if self._index.run(lambda uow: uow.datastore_keys.add(stored)):
            self._remember(key)  # else another process provisioned it first: the key it stored is the one

    # -- DataKeySource ------------------------------------------------------------------------------------

    def for_write(self, datastore_id: str) -> DataKey | None:
        return self._state(datastore_id).current

    def for_read(self, datastore_id: str, version: int) -> DataKey:
        cached = self._keys.get((datastore_id, version))  # reads need no lock (one C call under the GIL)
        if cached is not None and cached[1] > self._clock():
            return cached[0]
        stored = self._index.run(lambda uow: uow.datastore_keys.get(datastore_id, version), readonly=True)
        if stored is None:
            raise EncryptionKeyError(
                envelope.DECRYPTION_FAILURE,
                f"key version {version} of data store {datastore_id} does not exist "
                "(destroyed with the data store, or the object does not belong to this archive)",
            )
        key = self.unwrap(stored)
        self._remember(key)
        return key

    def plaintext_allowed(self, datastore_id: str) -> bool:
        return self._state(datastore_id).plaintext_allowed

    def _state(self, datastore_id: str) -> _State:
        now = self._clock()
        cached = self._states.get(datastore_id)
        if cached is not None and cached.until > now:
            return cached
        found = self._index.run(lambda uow: _load(uow, datastore_id), readonly=True)
        datastore, current, first = found
        if current is None and datastore.kms_key_arn is None and not self._encrypt_new:
            state = _State(None, True, now + self._ttl)
        else:
            if current is None:
                current = self._adopt(datastore)
                first = current
            key = self.for_read(datastore_id, current.version)
            state = _State(key, first is not None and first.legacy_plaintext, now + self._ttl)
        with self._lock:
            self._states[datastore_id] = state
        return state

    def _adopt(self, datastore: Datastore) -> StoredDataKey:
        """A first key for a data store that has none yet (it may hold objects stored in the clear)."""
        if datastore.status not in WRITABLE:
            raise ConflictError(f"Datastore {datastore.datastore_id} is {datastore.status}: nothing may be stored")
        legacy = datastore.status is DatastoreStatus.ACTIVE
        stored, key = self._generate(datastore.datastore_id, datastore.kms_key_arn, 1, legacy=legacy)
        if self._index.run(lambda uow: uow.datastore_keys.add(stored)):
            self._remember(key)
            log.info("data store %s got its first key (version 1, %s)", datastore.datastore_id, stored.kind.value)
            return stored
        winner = self._index.run(lambda uow: uow.datastore_keys.get(datastore.datastore_id, 1), readonly=True)
        if winner is None:  # added and destroyed in between: the data store is being deleted
            raise ConflictError(f"Datastore {datastore.datastore_id} is being deleted")
        return winner

    # -- rotation and destruction ---------------------------------------------------------------------------

    def rotate(self, datastore_id: str) -> StoredDataKey:
        """Add the next version of the data store's key; new objects are sealed with it, older ones keep theirs."""
        datastore, current, _ = self._index.run(lambda uow: _load(uow, datastore_id), readonly=True)
        if datastore.status not in WRITABLE:
            raise ConflictError(f"Datastore {datastore_id} is {datastore.status}: its key cannot be rotated")
        version = (current.version if current else 0) + 1
        stored, key = self._generate(datastore_id, datastore.kms_key_arn, version, legacy=False)
        if not self._index.run(lambda uow: uow.datastore_keys.add(stored)):
            raise ConflictError(f"The key of datastore {datastore_id} was rotated concurrently; retry")
        self.forget(datastore_id)
        self._remember(key)
        return stored

    def rewrap_master(self, progress: Callable[[StoredDataKey], None] | None = None) -> int:
        """Re-wrap every master-wrapped key version with the current master key; how many were re-wrapped."""
        done = 0
        while batch := self._index.run(self._wrapped_by_old_master_keys, readonly=True):
            for stored in batch:
                key = self.unwrap(stored)
                wrapped, key_id = self.master.wrap(key.material, _aad(stored.datastore_id, stored.version))
                if self._rewrap(stored.rewrapped(wrapped, key_id), stored.wrapping_key_id):
                    done += 1
                    if progress is not None:
                        progress(stored)
        return done

    def _wrapped_by_old_master_keys(self, uow: UnitOfWork) -> list[StoredDataKey]:
        return uow.datastore_keys.list_wrapped(WrappingKind.MASTER, self.master.current_id, REWRAP_BATCH)

    def _rewrap(self, renewed: StoredDataKey, expected: str) -> bool:
        return self._index.run(lambda uow: uow.datastore_keys.rewrap(renewed, expected))

    def master_keys_in_use(self) -> set[str]:
        """Ids of the master keys that wrap at least one stored key version."""
        rows = self._index.run(
            lambda uow: uow.datastore_keys.list_wrapped(WrappingKind.MASTER, "", 1 << 31), readonly=True
        )
        return {row.wrapping_key_id for row in rows}

    def all_versions(self) -> list[StoredDataKey]:
        """Every stored key version of every data store, by data store and version (wrapped: nothing secret)."""
        everything = self._index.run(_every_version, readonly=True)
        return sorted(everything, key=lambda key: (key.datastore_id, key.version))

    def versions(self, datastore_id: str) -> list[StoredDataKey]:
        """Every version of the data store's key, oldest first (wrapped: nothing secret)."""
        return self._index.run(lambda uow: uow.datastore_keys.list_of(datastore_id), readonly=True)

    def forget(self, datastore_id: str) -> None:
        """Drop what this process holds of the data store's keys (after a rotation or the destruction)."""
        with self._lock:
            self._states.pop(datastore_id, None)
            for slot in [slot for slot in self._keys if slot[0] == datastore_id]:
                del self._keys[slot]


def _every_version(uow: UnitOfWork) -> list[StoredDataKey]:
    return [key for kind in WrappingKind for key in uow.datastore_keys.list_wrapped(kind, "", 1 << 31)]


def _load(uow: UnitOfWork, datastore_id: str) -> tuple[Datastore, StoredDataKey | None, StoredDataKey | None]:
    """The data store, its current key version and its version 1 (NotFoundError when there is no such data store)."""
    datastore = uow.datastores.get(datastore_id)
    if datastore is None:
        raise NotFoundError(f"Datastore {datastore_id} does not exist")
    return datastore, uow.datastore_keys.current(datastore_id), uow.datastore_keys.get(datastore_id, 1)
