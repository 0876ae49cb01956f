"""``DatastoreKeyRepository`` in memory: wrapped data store keys by (data store, version), as migration 0009
(a key belongs to a data store of the index, as the foreign key requires)."""

from __future__ import annotations

from dataclasses import dataclass, replace

from openhi.crypto.model import StoredDataKey, WrappingKind
from openhi.errors import ConflictError
from openhi.index.memory_state import MemoryState, utc


@dataclass(frozen=True)
class MemoryDatastoreKeyRepository:
    """``DatastoreKeyRepository`` over the state."""

    state: MemoryState

    def add(self, key: StoredDataKey) -> bool:
        if key.datastore_id not in self.state.datastores:
            raise ConflictError(f"Data store {key.datastore_id} is not in the index")
        slot = (key.datastore_id, key.version)
        if slot in self.state.datastore_keys:
            return False
        self.state.datastore_keys[slot] = replace(key, created_at=utc(key.created_at))
        return True

    def get(self, datastore_id: str, version: int) -> StoredDataKey | None:
        return self.state.datastore_keys.get((datastore_id, version))

    def current(self, datastore_id: str) -> StoredDataKey | None:
        versions = self.list_of(datastore_id)
        return versions[-1] if versions else None

    def list_of(self, datastore_id: str) -> list[StoredDataKey]:
        found = [key for (owner, _), key in self.state.datastore_keys.items() if owner == datastore_id]
        return sorted(found, key=lambda key: key.version)

    def list_wrapped(self, kind: WrappingKind, other_than: str, limit: int) -> list[StoredDataKey]:
        found = [
            key
            for _, key in sorted(self.state.datastore_keys.items())
            if key.kind == kind and key.wrapping_key_id != other_than
        ]
        return found[: max(limit, 0)]

    def rewrap(self, key: StoredDataKey, expected_wrapping_key_id: str) -> bool:
        slot = (key.datastore_id, key.version)
        stored = self.state.datastore_keys.get(slot)
        if stored is None or stored.wrapping_key_id != expected_wrapping_key_id:
            return False
        self.state.datastore_keys[slot] = stored.rewrapped(key.wrapped, key.wrapping_key_id)
        return True

    def remove_all_of_datastore(self, datastore_id: str) -> int:
        slots = [slot for slot in self.state.datastore_keys if slot[0] == datastore_id]
        for slot in slots:
            del self.state.datastore_keys[slot]
        return len(slots)
