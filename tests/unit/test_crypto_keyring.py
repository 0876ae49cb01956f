"""``DatastoreKeys`` over the memory index: provisioning (owned and customer keys), rotation of data store keys and of
the master key without rewriting objects, destruction with the data store, legacy plaintext data stores."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from openhi.blobs import keys
from openhi.blobs.memory import MemoryBlobStore
from openhi.crypto import master, sealed
from openhi.crypto.blob_store import SealedBlobStore
from openhi.crypto.envelope import new_key
from openhi.crypto.keyring import DatastoreKeys
from openhi.crypto.master import MasterKeyring
from openhi.crypto.model import WrappingKind
from openhi.crypto.providers import KeyProvider, LocalKeyProvider, NoKeyProvider
from openhi.datastores.lifecycle import DatastoreLifecycle
from openhi.datastores.model import Datastore, DatastoreStatus, LosslessStorageFormat
from openhi.errors import ConflictError, EncryptionKeyError
from openhi.ids import new_id
from openhi.index.memory import MemoryIndex

T0 = datetime(2027, 1, 10, 12, 0, tzinfo=UTC)
KEY_ARN = "arn:aws:kms:us-east-1:123456789012:key/11111111-2222-3333-4444-555555555555"
ALIAS_ARN = "arn:aws:kms:us-east-1:123456789012:alias/radiology"
UNKNOWN_ARN = "arn:aws:kms:us-east-1:123456789012:key/99999999-2222-3333-4444-555555555555"


class FakeClock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


class World:
    """A memory index and blob store with the keyring and lifecycle of one process."""

    def __init__(self, tmp: Path, *, encrypt_new: bool = True, customer: KeyProvider | None = None) -> None:
        self.tmp = tmp
        self.index = MemoryIndex()
        self.raw = MemoryBlobStore()
        self.clock = FakeClock()
        self.customer = customer or NoKeyProvider()
        self.keys = self.keyring(encrypt_new=encrypt_new)
        self.blobs = SealedBlobStore(self.raw, self.keys)
        self.lifecycle = DatastoreLifecycle(self.index, self.blobs, self.clock, 0.0, self.keys)

    def keyring(self, *, encrypt_new: bool = True, master_file: str = "master-keys.json") -> DatastoreKeys:
        ring = MasterKeyring(self.tmp / master_file)
        return DatastoreKeys(self.index, ring, self.customer, self.clock, encrypt_new=encrypt_new, cache_seconds=60)

    def datastore(self, kms_key_arn: str | None = None, status: DatastoreStatus = DatastoreStatus.CREATING) -> str:
        datastore = Datastore(
            new_id(), "store", status, LosslessStorageFormat.HTJ2K, T0, T0, new_id(), kms_key_arn=kms_key_arn
        )
        self.index.run(lambda uow: uow.datastores.add(datastore))
        if status is DatastoreStatus.CREATING:
            self.lifecycle.sweep()
        return datastore.datastore_id

    def status(self, datastore_id: str) -> DatastoreStatus:
        found = self.index.run(lambda uow: uow.datastores.get(datastore_id))
        assert found is not None
        return found.status

    def versions(self, datastore_id: str) -> list[int]:
        return [key.version for key in self.keys.versions(datastore_id)]

    def fresh_store(self, **options: object) -> SealedBlobStore:
        """The blob store of another process (nothing cached)."""
        return SealedBlobStore(self.raw, self.keyring(**options))  # type: ignore[arg-type]


def header_version(raw: bytes, key: str) -> int:
    return sealed.Header.decode(raw, key).key_version


@pytest.fixture
def world(tmp_path: Path) -> World:
    return World(tmp_path)


def test_provisioning_gives_each_datastore_its_own_master_wrapped_key(world: World) -> None:
    a, b = world.datastore(), world.datastore()
    assert world.status(a) == world.status(b) == DatastoreStatus.ACTIVE
    (key_a,), (key_b,) = world.keys.versions(a), world.keys.versions(b)
    assert key_a.kind is WrappingKind.MASTER
    assert key_a.wrapping_key_id == world.keys.master.current_id
    assert not key_a.legacy_plaintext
    assert world.keys.unwrap(key_a).material != world.keys.unwrap(key_b).material
    world.lifecycle.sweep()  # idempotent: nothing more
    assert world.versions(a) == [1]


def test_master_key_file_is_private_and_reused(world: World, tmp_path: Path) -> None:
    path = tmp_path / "master-keys.json"
    assert path.stat().st_mode & 0o777 == 0o600
    assert MasterKeyring(path).current_id == world.keys.master.current_id
    assert not MasterKeyring(path).generated


def test_objects_round_trip_and_are_sealed(world: World) -> None:
    ds = world.datastore()
    key = keys.frame(ds, new_id())
    world.blobs.put(key, b"\x01\x02" * 40_000)
    assert sealed.is_sealed(world.raw.get(key))
    assert world.fresh_store().get(key) == b"\x01\x02" * 40_000


def test_datastore_key_rotation_keeps_old_objects_readable(world: World) -> None:
    ds = world.datastore()
    old, new = keys.frame(ds, new_id()), keys.frame(ds, new_id())
    world.blobs.put(old, b"before rotation")
    rotated = world.keys.rotate(ds)
    assert rotated.version == 2
    world.blobs.put(new, b"after rotation")
    assert header_version(world.raw.get(old), old) == 1
    assert header_version(world.raw.get(new), new) == 2
    reader = world.fresh_store()
    assert reader.get(old) == b"before rotation"
    assert reader.get(new) == b"after rotation"
    assert world.versions(ds) == [1, 2]


def test_master_key_rotation_rewraps_every_key_and_old_master_can_go(world: World, tmp_path: Path) -> None:
    stores = [world.datastore() for _ in range(3)]
    world.keys.rotate(stores[0])
    objects = {keys.frame(ds, new_id()): new_id().encode() * 100 for ds in stores}
    for key, data in objects.items():
        world.blobs.put(key, data)
    before = {key: world.raw.get(key) for key in objects}
    old_id = world.keys.master.current_id

    rotated = master.rotate(tmp_path / "master-keys.json")
    assert world.keys.rewrap_master() == 4  # 3 data stores, one of them with 2 versions
    assert world.keys.rewrap_master() == 0
    assert {k.wrapping_key_id for k in world.keys.all_versions()} == {rotated.current}
    assert master.prune(tmp_path / "master-keys.json", world.keys.master_keys_in_use()) == [old_id]

    assert {key: world.raw.get(key) for key in objects} == before  # no object was rewritten
    reader = world.fresh_store()  # a process that only ever held the new master key
    assert world.keys.master.ids() == [rotated.current]
    for key, data in objects.items():
        assert reader.get(key) == data


def test_a_master_key_this_process_lacks_fails_clearly(world: World) -> None:
    ds = world.datastore()
    key = keys.frame(ds, new_id())
    world.blobs.put(key, b"pixels")
    other = world.fresh_store(master_file="other-master-keys.json")  # another host's master key file
    with pytest.raises(EncryptionKeyError) as caught:
        other.get(key)
    assert caught.value.code == "DecryptionFailureException"
    assert world.keys.master.current_id in caught.value.message
    assert "master_key_file" in caught.value.message


def test_deleting_a_datastore_destroys_its_key(world: World) -> None:
    ds = world.datastore()
    key = keys.frame(ds, new_id())
    world.blobs.put(key, b"patient pixels")
    kept = world.raw.get(key)
    world.index.run(lambda uow: uow.datastores.transition(ds, DatastoreStatus.ACTIVE, DatastoreStatus.DELETING, T0))
    world.lifecycle.sweep()
    assert world.status(ds) == DatastoreStatus.DELETED
    assert world.keys.versions(ds) == []
    assert world.raw.head(key) is None
    world.raw.put(key, kept)  # a copy of the object kept somewhere: it cannot be opened any more
    for reader in (world.blobs, world.fresh_store()):
        with pytest.raises(EncryptionKeyError, match="does not exist"):
            reader.get(key)
    with pytest.raises(ConflictError):  # nothing may be stored in it, and no key is made again
        world.blobs.put(keys.frame(ds, new_id()), b"late write")
    assert world.keys.versions(ds) == []


def test_a_destroyed_key_stops_working_in_other_processes_after_the_cache_time(world: World) -> None:
    ds = world.datastore()
    key = keys.frame(ds, new_id())
    world.blobs.put(key, b"x" * 10)
    other = world.fresh_store()
    assert other.get(key) == b"x" * 10
    assert other.get_range(key, 2, 3) == b"xxx"  # object keys cached too
    world.index.run(lambda uow: uow.datastore_keys.remove_all_of_datastore(ds))
    assert other.get(key) == b"x" * 10  # cached for data_key_cache_seconds
    world.clock.now += timedelta(seconds=61)
    with pytest.raises(EncryptionKeyError):
        other.get(key)
    with pytest.raises(EncryptionKeyError):
        other.get_range(key, 2, 3)
    with pytest.raises(EncryptionKeyError):
        other.head(key)


def test_encryption_off_stores_new_datastores_in_the_clear(tmp_path: Path) -> None:
    world = World(tmp_path, encrypt_new=False)
    ds = world.datastore()
    assert world.keys.versions(ds) == []
    key = keys.frame(ds, new_id())
    world.blobs.put(key, b"clear")
    assert world.raw.get(key) == b"clear"
    assert world.blobs.get(key) == b"clear"


def test_a_datastore_from_before_encryption_is_adopted_on_its_next_write(tmp_path: Path) -> None:
    world = World(tmp_path)
    ds = world.datastore(status=DatastoreStatus.ACTIVE)  # provisioned before encryption at rest
    old = keys.frame(ds, new_id())
    world.raw.put(old, b"written in the clear long ago")
    new = keys.frame(ds, new_id())
    world.blobs.put(new, b"written now")
    (key,) = world.keys.versions(ds)
    assert key.legacy_plaintext
    assert sealed.is_sealed(world.raw.get(new))
    reader = world.fresh_store()
    assert reader.get(old) == b"written in the clear long ago"
    assert reader.get(new) == b"written now"


def test_a_planted_plaintext_object_is_refused_where_everything_is_sealed(world: World) -> None:
    ds = world.datastore()
    key = keys.frame(ds, new_id())
    world.raw.put(key, b"not written by openhi")
    with pytest.raises(EncryptionKeyError, match="not encrypted"):
        world.fresh_store().get(key)


def _local_keys(tmp_path: Path, as_json: bool) -> LocalKeyProvider:
    material, alias = new_key(), new_key()
    if as_json:
        path = tmp_path / "keyring.json"
        encoded = {KEY_ARN: base64.b64encode(material).decode(), ALIAS_ARN: base64.b64encode(alias).decode()}
        path.write_text(json.dumps(encoded))
        return LocalKeyProvider(path)
    (tmp_path / "kms" / "key").mkdir(parents=True)
    (tmp_path / "kms" / "alias").mkdir()
    (tmp_path / "kms" / "key" / KEY_ARN.rsplit("/", 1)[1]).write_bytes(material)
    (tmp_path / "kms" / "alias" / "radiology").write_bytes(alias)
    return LocalKeyProvider(tmp_path / "kms")


@pytest.mark.parametrize("as_json", [False, True], ids=["directory", "json"])
def test_customer_key_from_the_local_provider(tmp_path: Path, as_json: bool) -> None:
    provider = _local_keys(tmp_path, as_json)
    world = World(tmp_path, customer=provider, encrypt_new=False)  # a customer key is used whatever the setting
    for arn in (KEY_ARN, ALIAS_ARN):
        ds = world.datastore(kms_key_arn=arn)
        assert world.status(ds) == DatastoreStatus.ACTIVE
        (stored,) = world.keys.versions(ds)
        assert (stored.kind, stored.wrapping_key_id) == (WrappingKind.CUSTOMER, arn)
        key = keys.bulk_value(ds, new_id())
        world.blobs.put(key, b"bulk" * 1000)
        assert world.fresh_store().get(key) == b"bulk" * 1000
        assert world.keys.rotate(ds).kind is WrappingKind.CUSTOMER


def test_an_unusable_customer_key_makes_the_datastore_create_failed(tmp_path: Path) -> None:
    world = World(tmp_path, customer=_local_keys(tmp_path, as_json=True))
    ds = world.datastore(kms_key_arn=UNKNOWN_ARN)
    assert world.status(ds) == DatastoreStatus.CREATE_FAILED
    assert world.keys.versions(ds) == []
    unconfigured = World(tmp_path / "none")
    assert unconfigured.status(unconfigured.datastore(kms_key_arn=KEY_ARN)) == DatastoreStatus.CREATE_FAILED


def test_a_removed_customer_key_makes_reads_fail_clearly(tmp_path: Path) -> None:
    provider = _local_keys(tmp_path, as_json=False)
    world = World(tmp_path, customer=provider)
    ds = world.datastore(kms_key_arn=KEY_ARN)
    key = keys.frame(ds, new_id())
    world.blobs.put(key, b"frame")
    (tmp_path / "kms" / "key" / KEY_ARN.rsplit("/", 1)[1]).unlink()  # the customer disables the key
    with pytest.raises(EncryptionKeyError) as caught:
        world.fresh_store().get(key)
    assert caught.value.code == "KMSAccessDeniedException"
    assert KEY_ARN in caught.value.message


def test_a_customer_wrapped_key_does_not_open_for_another_datastore(tmp_path: Path) -> None:
    world = World(tmp_path, customer=_local_keys(tmp_path, as_json=True))
    a, b = world.datastore(kms_key_arn=KEY_ARN), world.datastore(kms_key_arn=KEY_ARN)
    (stored_a,) = world.keys.versions(a)
    moved = type(stored_a)(b, 1, stored_a.wrapped, stored_a.kind, stored_a.wrapping_key_id, T0)
    with pytest.raises(EncryptionKeyError):  # bound to data store a by the encryption context
        world.keys.unwrap(moved)
