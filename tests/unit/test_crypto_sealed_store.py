"""``SealedBlobStore`` and the sealed format: round trips, byte ranges across segment boundaries, plaintext sizes,
and every way a wrong key or an altered object must fail (``EncryptionKeyError``, never bytes)."""

from __future__ import annotations

import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from openhi.blobs import keys
from openhi.blobs.memory import MemoryBlobStore
from openhi.crypto import sealed
from openhi.crypto.blob_store import SealedBlobStore, SingleKey, datastore_of
from openhi.crypto.envelope import new_key
from openhi.crypto.model import DataKey
from openhi.errors import BlobNotFoundError, EncryptionKeyError
from openhi.ids import new_id

DS, OTHER = new_id(), new_id()
SEGMENT = 32  # tiny segments: every test crosses boundaries


class Keys:
    """A DataKeySource over a dict; ``current`` versions per data store."""

    def __init__(self, plaintext: frozenset[str] = frozenset()) -> None:
        self.keys: dict[tuple[str, int], DataKey] = {}
        self.current: dict[str, int] = {}
        self.plaintext = plaintext

    def add(self, datastore_id: str, version: int = 1) -> DataKey:
        key = DataKey(datastore_id, version, new_key())
        self.keys[(datastore_id, version)] = key
        self.current[datastore_id] = version
        return key

    def for_write(self, datastore_id: str) -> DataKey | None:
        version = self.current.get(datastore_id)
        return None if version is None else self.keys[(datastore_id, version)]

    def for_read(self, datastore_id: str, version: int) -> DataKey:
        if (datastore_id, version) not in self.keys:
            raise EncryptionKeyError("DecryptionFailureException", f"no key {version} of {datastore_id}")
        return self.keys[(datastore_id, version)]

    def plaintext_allowed(self, datastore_id: str) -> bool:
        return datastore_id in self.plaintext


@pytest.fixture
def source() -> Keys:
    made = Keys()
    made.add(DS)
    made.add(OTHER)
    return made


@pytest.fixture
def raw() -> MemoryBlobStore:
    return MemoryBlobStore()


@pytest.fixture
def store(raw: MemoryBlobStore, source: Keys) -> SealedBlobStore:
    return SealedBlobStore(raw, source, segment_size=SEGMENT)


def frame_key(datastore_id: str = DS) -> str:
    return keys.frame(datastore_id, new_id())


@settings(max_examples=60, deadline=None)
@given(data=st.binary(max_size=5 * SEGMENT + 7), streamed=st.booleans())
def test_round_trip_and_sizes(data: bytes, streamed: bool) -> None:
    source = Keys()
    source.add(DS)
    raw = MemoryBlobStore()
    store = SealedBlobStore(raw, source, segment_size=SEGMENT)
    key = frame_key()
    info = store.put(key, io.BytesIO(data) if streamed else data)
    assert info.size == len(data)
    assert store.get(key) == data
    head = store.head(key)
    assert head is not None
    assert head.size == len(data)
    stored = raw.get(key)
    assert len(stored) == sealed.sealed_size(len(data), SEGMENT)
    assert sealed.plain_size(len(stored), SEGMENT, key) == len(data)
    assert sealed.is_sealed(stored)


@settings(max_examples=150, deadline=None)
@given(
    data=st.binary(min_size=0, max_size=6 * SEGMENT + 5),
    offset=st.integers(min_value=0, max_value=7 * SEGMENT),
    length=st.integers(min_value=0, max_value=7 * SEGMENT),
)
def test_range_reads_across_segment_boundaries(data: bytes, offset: int, length: int) -> None:
    source = Keys()
    source.add(DS)
    store = SealedBlobStore(MemoryBlobStore(), source, segment_size=SEGMENT)
    key = frame_key()
    store.put(key, data)
    assert store.get_range(key, offset, length) == data[offset : offset + length]


def test_range_reads_decrypt_only_the_segments_they_touch(raw: MemoryBlobStore, source: Keys) -> None:
    calls: list[tuple[int, int]] = []

    class Counting(MemoryBlobStore):
        def get_range(self, key: str, offset: int, length: int) -> bytes:
            calls.append((offset, length))
            return super().get_range(key, offset, length)

    counting = Counting()
    store = SealedBlobStore(counting, source, segment_size=SEGMENT)
    key = frame_key()
    data = bytes(range(256)) * 4  # 32 segments
    store.put(key, data)
    assert store.get_range(key, 5 * SEGMENT + 3, SEGMENT) == data[5 * SEGMENT + 3 : 6 * SEGMENT + 3]
    step = SEGMENT + sealed.TAG_BYTES
    # the header once, then exactly segments 5 and 6 (+1 byte to learn that the object goes on)
    assert calls == [(0, sealed.HEADER_BYTES), (sealed.HEADER_BYTES + 5 * step, 2 * step + 1)]
    calls.clear()
    assert store.get_range(key, 0, 4) == data[:4]
    assert calls == [(sealed.HEADER_BYTES, step + 1)]  # the header is cached


def test_stored_bytes_hold_no_plaintext(raw: MemoryBlobStore, store: SealedBlobStore) -> None:
    secret = b"DOE^JANE" * 40
    key = keys.metadata_document(DS, new_id())
    store.put(key, secret)
    assert b"DOE^JANE" not in raw.get(key)


def test_another_datastores_key_cannot_decrypt(raw: MemoryBlobStore, source: Keys) -> None:
    key = frame_key()
    SealedBlobStore(raw, source, segment_size=SEGMENT).put(key, b"pixels" * 50)
    swapped = Keys()
    swapped.keys[(DS, 1)] = DataKey(DS, 1, source.keys[(OTHER, 1)].material)  # OTHER's key under DS's name
    reader = SealedBlobStore(raw, swapped, segment_size=SEGMENT)
    for read in (lambda: reader.get(key), lambda: reader.get_range(key, 10, 40), lambda: reader.head(key)):
        with pytest.raises(EncryptionKeyError) as caught:
            read()
        assert caught.value.code == "DecryptionFailureException"
        assert key in caught.value.message


def test_a_missing_key_version_fails_clearly(raw: MemoryBlobStore, source: Keys) -> None:
    key = frame_key()
    SealedBlobStore(raw, source, segment_size=SEGMENT).put(key, b"x" * 100)
    del source.keys[(DS, 1)]
    with pytest.raises(EncryptionKeyError):
        SealedBlobStore(raw, source, segment_size=SEGMENT).get(key)


def test_an_object_copied_under_another_key_does_not_open(raw: MemoryBlobStore, store: SealedBlobStore) -> None:
    key, moved = frame_key(), frame_key()
    store.put(key, b"frame" * 30)
    raw.put(moved, raw.get(key))
    with pytest.raises(EncryptionKeyError):
        store.get(moved)


@pytest.mark.parametrize("cut", [sealed.HEADER_BYTES + SEGMENT + sealed.TAG_BYTES, 60, -1])
def test_truncation_is_detected(raw: MemoryBlobStore, store: SealedBlobStore, cut: int) -> None:
    key = frame_key()
    store.put(key, bytes(3 * SEGMENT))  # three full segments: a cut at a boundary leaves whole segments
    raw.put(key, raw.get(key)[:cut])
    fresh = SealedBlobStore(raw, store._keys, segment_size=SEGMENT)
    with pytest.raises(EncryptionKeyError):
        fresh.get(key)
    if cut > sealed.HEADER_BYTES:
        with pytest.raises(EncryptionKeyError):
            fresh.get_range(key, 0, SEGMENT)  # segment 0 now looks final: it was sealed as not final


def test_reordered_segments_are_detected(raw: MemoryBlobStore, store: SealedBlobStore) -> None:
    key = frame_key()
    store.put(key, b"A" * SEGMENT + b"B" * SEGMENT + b"C" * 5)
    stored = raw.get(key)
    step = SEGMENT + sealed.TAG_BYTES
    head, s0, s1, rest = (
        stored[: sealed.HEADER_BYTES],
        stored[sealed.HEADER_BYTES : sealed.HEADER_BYTES + step],
        stored[sealed.HEADER_BYTES + step : sealed.HEADER_BYTES + 2 * step],
        stored[sealed.HEADER_BYTES + 2 * step :],
    )
    raw.put(key, head + s1 + s0 + rest)
    with pytest.raises(EncryptionKeyError):
        store.get(key)


def test_a_flipped_bit_is_detected(raw: MemoryBlobStore, store: SealedBlobStore) -> None:
    key = frame_key()
    store.put(key, b"z" * 70)
    stored = bytearray(raw.get(key))
    stored[sealed.HEADER_BYTES + 3] ^= 1
    raw.put(key, bytes(stored))
    with pytest.raises(EncryptionKeyError):
        store.get(key)


def test_plaintext_objects_only_where_allowed(raw: MemoryBlobStore) -> None:
    legacy = Keys(plaintext=frozenset({DS}))
    legacy.add(DS)
    legacy.add(OTHER)
    store = SealedBlobStore(raw, legacy, segment_size=SEGMENT)
    old, strict = frame_key(DS), frame_key(OTHER)
    raw.put(old, b"written before encryption")
    raw.put(strict, b"planted in the clear")
    assert store.get(old) == b"written before encryption"
    assert store.get_range(old, 8, 6) == b"before"
    assert store.head(old) == raw.head(old)
    for read in (lambda: store.get(strict), lambda: store.get_range(strict, 0, 4), lambda: store.head(strict)):
        with pytest.raises(EncryptionKeyError, match="not encrypted"):
            read()


def test_descriptor_and_keys_outside_datastores_stay_clear(raw: MemoryBlobStore, store: SealedBlobStore) -> None:
    descriptor = keys.datastore_descriptor(DS)
    store.put(descriptor, b'{"datastoreId": "x"}')
    store.put("outside/thing.json", b"{}")
    assert raw.get(descriptor) == b'{"datastoreId": "x"}'
    assert raw.get("outside/thing.json") == b"{}"
    assert datastore_of(descriptor) is None
    assert datastore_of(keys.bulk_value(DS, new_id())) == DS


def test_a_datastore_without_key_is_stored_in_the_clear(raw: MemoryBlobStore) -> None:
    source = Keys(plaintext=frozenset({DS}))
    store = SealedBlobStore(raw, source, segment_size=SEGMENT)
    key = frame_key()
    store.put(key, b"clear")
    assert raw.get(key) == b"clear"
    assert store.get(key) == b"clear"


def test_missing_objects(store: SealedBlobStore) -> None:
    key = frame_key()
    assert store.head(key) is None
    with pytest.raises(BlobNotFoundError):
        store.get(key)
    with pytest.raises(BlobNotFoundError):
        store.get_range(key, 0, 10)


def test_an_object_replaced_by_another_writer_is_read_afresh(raw: MemoryBlobStore, source: Keys) -> None:
    reader = SealedBlobStore(raw, source, segment_size=SEGMENT)
    writer = SealedBlobStore(raw, source, segment_size=SEGMENT)
    key = keys.datastore_prefix(DS) + "notes/n1"
    writer.put(key, b"first version of the object")
    assert reader.get_range(key, 0, 5) == b"first"  # caches the object's header
    writer.put(key, b"second version of the object")  # a new object key under the same blob key
    assert reader.get_range(key, 0, 6) == b"second"


def test_single_key_of_an_import_task(raw: MemoryBlobStore, source: Keys) -> None:
    task_key = source.keys[(DS, 1)]
    worker = SealedBlobStore(raw, SingleKey(task_key), segment_size=SEGMENT)
    key = frame_key()
    worker.put(key, b"frame from a worker")
    assert SealedBlobStore(raw, source, segment_size=SEGMENT).get(key) == b"frame from a worker"
    with pytest.raises(EncryptionKeyError):
        SingleKey(task_key).for_read(OTHER, 1)
    assert SingleKey(task_key).for_write(OTHER) is None
    assert repr(task_key).find(task_key.material.hex()) == -1  # key material never shows in a repr


class Trickle(io.RawIOBase):
    """A source that answers at most 7 bytes per read (as a socket may)."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        return self._data.read(min(7, size) if size >= 0 else 7)


@pytest.mark.parametrize("size", [0, SEGMENT - 1, SEGMENT, 4 * SEGMENT, 4 * SEGMENT + 3])
def test_short_reads_of_a_streamed_source(raw: MemoryBlobStore, store: SealedBlobStore, size: int) -> None:
    data = bytes(n % 251 for n in range(size))
    key = frame_key()
    assert store.put(key, Trickle(data)).size == size  # type: ignore[arg-type]
    assert store.get(key) == data
    assert len(raw.get(key)) == sealed.sealed_size(size, SEGMENT)
