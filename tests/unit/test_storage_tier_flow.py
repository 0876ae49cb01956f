"""Storage tiers in process with a fake clock: the real services (STOW-RS to create image sets, the readers, WADO-RS,
rendering, updates, copies, search) over a memory index and two local blob locations.

Guide 23009-23052: idle image sets move to the archive after 30 days, accesses (and only accesses) keep them
frequent or bring them back, reads are served from either location at once, shared frames are never lost.
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pydicom
import pytest
from tests.support.dicom_corpus import SeriesSpec, ct_dataset

from openhi.blobs import keys
from openhi.blobs.local import LocalBlobStore
from openhi.datastores.model import Datastore, DatastoreStatus, LosslessStorageFormat
from openhi.dicomweb.render import Renderer
from openhi.dicomweb.retrieve import WadoService
from openhi.dicomweb.stow import StowService
from openhi.dicomweb.stow_multipart import BodyType
from openhi.imagesets.copies import CopyRequest, ImageSetCopies
from openhi.imagesets.locks import Locks
from openhi.imagesets.model import ImageSet, ImageSetState, StorageTier
from openhi.imagesets.search import ImageSetSearch
from openhi.imagesets.service import ImageSetReader
from openhi.imagesets.updates import ImageSetUpdates, UpdateRequest
from openhi.imports.workers import run_tasks
from openhi.index.memory import MemoryIndex
from openhi.index.port import ImageSetAccess
from openhi.search.tokens import TokenCodec
from openhi.tiers.moves import TierChange
from openhi.tiers.policy import ACCESS_OPERATIONS, NATIVE_ACCESS_OPERATIONS, TierPolicy
from openhi.tiers.service import StorageTiers

DS = "d" * 32
T0 = datetime(2026, 1, 1, tzinfo=UTC)
DAY = timedelta(days=1)
BOUNDARY = b"tier-boundary"
FREQUENT, ARCHIVE = StorageTier.FREQUENT_ACCESS, StorageTier.ARCHIVE_INSTANT_ACCESS


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


class Changes:
    """A TierListener that records what it is told (metrics would adjust counters here)."""

    def __init__(self) -> None:
        self.seen: list[TierChange] = []

    def tier_changed(self, uow: object, change: TierChange) -> None:
        self.seen.append(change)


@dataclass
class World:
    index: MemoryIndex
    hot: LocalBlobStore
    archive: LocalBlobStore
    clock: Clock
    tiers: StorageTiers
    reader: ImageSetReader
    wado: WadoService
    renderer: Renderer
    search: ImageSetSearch
    updates: ImageSetUpdates
    copies: ImageSetCopies
    changes: Changes
    study_uid: str
    series: dict[str, str]  # image set id -> series uid

    @property
    def a(self) -> str:
        return next(iter(self.series))

    @property
    def b(self) -> str:
        return list(self.series)[1]

    def image_set(self, image_set_id: str) -> ImageSet:
        found = self.index.run(lambda uow: uow.image_sets.get(DS, image_set_id))
        assert found is not None
        return found

    def frame_ids(self, image_set_id: str) -> list[str]:
        return [f.frame_id for f in self.index.run(lambda uow: uow.image_sets.list_frames(DS, image_set_id))]

    def blob_keys(self, image_set_id: str) -> list[str]:
        versions = self.index.run(lambda uow: uow.image_sets.list_versions(DS, image_set_id, None, 100))
        return [keys.frame(DS, f) for f in self.frame_ids(image_set_id)] + sorted({v.metadata_key for v in versions})

    def where(self, image_set_id: str) -> set[str]:
        """Where the image set's blobs are: {"hot"}, {"archive"}, both, or "missing" for a lost one."""
        found = set()
        for key in self.blob_keys(image_set_id):
            places = {name for name, store in (("hot", self.hot), ("archive", self.archive)) if store.head(key)}
            found |= places or {"missing"}
        return found

    def frame_bytes(self, image_set_id: str) -> int:
        return sum(f.size for f in self.index.run(lambda uow: uow.image_sets.list_frames(DS, image_set_id)))

    def storage_bytes(self) -> dict[str, int]:
        """The data store's StorageBytes counters by tier (what the resource metrics show)."""
        [usage] = self.index.run(lambda uow: uow.counters.totals(), readonly=True)
        return dict(usage.storage_bytes)

    def wait_unlocked(self, *image_set_ids: str) -> None:
        deadline = time.monotonic() + 20
        while any(self.image_set(i).state == ImageSetState.LOCKED for i in image_set_ids):
            assert time.monotonic() < deadline, "a background write did not finish"
            time.sleep(0.02)


def encoded(spec: SeriesSpec, number: int) -> bytes:
    out = io.BytesIO()
    pydicom.dcmwrite(out, ct_dataset(spec, number), enforce_file_format=True)
    return out.getvalue()


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    index, clock = MemoryIndex(), Clock()
    index.run(
        lambda uow: uow.datastores.add(
            Datastore(DS, "s", DatastoreStatus.ACTIVE, LosslessStorageFormat.HTJ2K, T0, T0, "token")
        )
    )
    for name in ("hot", "archive"):
        (tmp_path / name).mkdir()
    hot, archive = LocalBlobStore(tmp_path / "hot"), LocalBlobStore(tmp_path / "archive")
    changes = Changes()
    tiers = StorageTiers.over(index, hot, archive, clock, TierPolicy(), [changes])
    pool = ThreadPoolExecutor(2)
    stow = StowService(
        index, tiers.blobs, (tmp_path / "hot").as_uri(), lambda: pool, run_tasks, clock, spool_root=tmp_path / "spool"
    )
    specs = [SeriesSpec(study="tiers", series=f"s{n}", series_number=n, slices=2, size=16) for n in (1, 2)]
    parts = [encoded(spec, number) for spec in specs for number in range(2)]
    body = b"".join(b"\r\n--" + BOUNDARY + b"\r\nContent-Type: application/dicom\r\n\r\n" + p for p in parts)
    (tmp_path / "body").write_bytes(body + b"\r\n--" + BOUNDARY + b"--")
    stored = stow.store(DS, None, tmp_path / "body", BodyType(True, BOUNDARY)).stored
    series = {s.image_set_id: s.series_instance_uid for s in sorted(stored, key=lambda s: s.series_instance_uid)}
    assert len(series) == 2
    tokens = TokenCodec(b"tier tests")
    writes = ThreadPoolExecutor(2)
    locks = Locks(index, clock, writes)
    blobs, tracker = tiers.blobs, tiers.tracker
    yield World(
        index=index,
        hot=hot,
        archive=archive,
        clock=clock,
        tiers=tiers,
        reader=ImageSetReader(index, blobs, tokens, tracker),
        wado=WadoService(index, blobs, access=tracker),
        renderer=Renderer(index, blobs, None, tracker),
        search=ImageSetSearch(index, tokens),
        updates=ImageSetUpdates(index, blobs, locks, access=tracker),
        copies=ImageSetCopies(index, blobs, locks, access=tracker),
        changes=changes,
        study_uid=stored[0].study_instance_uid,
        series=series,
    )
    pool.shutdown()
    writes.shutdown()


def test_idle_image_sets_move_down_and_an_access_brings_them_back(world: World) -> None:
    a, b = world.a, world.b
    frame_b = world.frame_ids(b)[0]
    stored_frame = world.hot.get(keys.frame(DS, frame_b))
    world.clock.advance(10 * DAY)
    world.reader.frame(DS, a, world.frame_ids(a)[0])  # A accessed on day 10
    world.tiers.tracker.flush()
    world.clock.advance(25 * DAY)  # day 35: B idle for 35 days, A for 25

    result = world.tiers.sweep.run()

    assert result.archived == [(DS, b)]
    assert result.failed == 0
    assert world.where(b) == {"archive"}
    assert world.where(a) == {"hot"}
    moved = world.reader.get(DS, b).image_set  # GetImageSet: not an access
    assert (moved.storage_tier, moved.last_accessed_at) == (ARCHIVE, None)
    assert world.image_set(a).storage_tier == FREQUENT
    assert [(c.image_set_id, c.old_tier, c.new_tier) for c in world.changes.seen] == [(b, FREQUENT, ARCHIVE)]
    bytes_b = sum(len(world.archive.get(k)) for k in world.blob_keys(b)[:2])
    assert world.changes.seen[0].frame_bytes == bytes_b
    assert world.storage_bytes() == {FREQUENT: world.frame_bytes(a), ARCHIVE: bytes_b}  # StorageBytes per tier

    world.clock.advance(DAY)
    frame = world.reader.frame(DS, b, frame_b)  # served at once from the archive
    assert frame.data == stored_frame
    assert world.image_set(b).storage_tier == ARCHIVE  # the move back happens in the background ...
    assert world.tiers.tracker.flush() == [(DS, b)]  # ... when the access is written
    back = world.image_set(b)
    assert (back.storage_tier, back.last_accessed_at) == (FREQUENT, T0 + 36 * DAY)
    assert world.where(b) == {"hot"}
    assert world.reader.frame(DS, b, frame_b).data == stored_frame
    assert world.storage_bytes() == {FREQUENT: world.frame_bytes(a) + bytes_b, ARCHIVE: 0}


def test_search_listing_and_properties_are_not_accesses(world: World) -> None:
    a = world.a
    world.clock.advance(31 * DAY)
    world.reader.get(DS, a)
    world.reader.versions(DS, a, None, None)
    hits = world.search.search(DS, None, None, None).hits
    assert {hit.image_set.image_set_id for hit in hits} == set(world.series)
    world.tiers.tracker.flush()
    assert world.image_set(a).last_accessed_at is None
    assert sorted(world.tiers.sweep.run().archived) == sorted((DS, i) for i in world.series)
    assert all(hit.image_set.storage_tier == ARCHIVE for hit in world.search.search(DS, None, None, None).hits)


def _update(world: World, image_set_id: str) -> None:
    patch = {"SchemaVersion": "1.1", "Study": {"DICOM": {"StudyDescription": "tiered"}}}
    updates = {"DICOMUpdates": {"updatableAttributes": json.dumps(patch).encode()}}
    world.updates.update(UpdateRequest(DS, image_set_id, world.image_set(image_set_id).version_id, updates))
    world.wait_unlocked(image_set_id)


def _copy(world: World, image_set_id: str) -> None:
    accepted = world.copies.copy(CopyRequest(DS, image_set_id, world.image_set(image_set_id).version_id))
    world.wait_unlocked(image_set_id, accepted.destination.image_set_id)


def _drivers(world: World) -> dict[str, Callable[[], object]]:
    a, study = world.a, world.study_uid
    series, frame = world.series[a], world.frame_ids(a)[0]

    def by_study() -> object:
        return world.wado.study(DS, study, None)

    def by_series() -> object:  # instance, frame, metadata and bulk data retrievals locate their series
        return world.wado.series(DS, study, series, None)

    def rendered() -> object:
        return world.renderer.plan(DS, study, series, None, None, None, False)

    def wado_driver(name: str) -> Callable[[], object]:
        if "Study" in name:
            return by_study
        return rendered if "Rendered" in name or "Thumbnail" in name else by_series

    native: dict[str, Callable[[], object]] = {
        "GetImageSetMetadata": lambda: world.reader.metadata(DS, a),
        "GetImageFrame": lambda: world.reader.frame(DS, a, frame),
        "UpdateImageSetMetadata": lambda: _update(world, a),
        "CopyImageSet": lambda: _copy(world, a),
    }
    wado = {name: wado_driver(name) for name in ACCESS_OPERATIONS - NATIVE_ACCESS_OPERATIONS}
    return native | wado


@pytest.mark.parametrize("operation", sorted(ACCESS_OPERATIONS))
def test_every_access_operation_records_an_access(world: World, operation: str) -> None:
    drivers = _drivers(world)
    assert set(drivers) == ACCESS_OPERATIONS
    world.clock.advance(3 * DAY)
    drivers[operation]()
    world.tiers.tracker.flush()
    assert world.image_set(world.a).last_accessed_at == T0 + 3 * DAY
    world.clock.advance(29 * DAY)  # 32 days after creation, 29 after the access
    archived = world.tiers.sweep.run().archived
    assert (DS, world.a) not in archived
    if "Study" not in operation:  # a study retrieval reads both series
        assert (DS, world.b) in archived


def test_an_access_to_an_archived_image_set_by_update_or_copy_brings_it_back(world: World) -> None:
    a, b = world.a, world.b
    world.clock.advance(31 * DAY)
    world.tiers.sweep.run()
    assert world.where(a) == {"archive"}
    assert world.where(b) == {"archive"}
    _update(world, a)  # reads the archived document, writes the new one hot
    _copy(world, b)
    assert sorted(world.tiers.tracker.flush()) == sorted([(DS, a), (DS, b)])
    assert world.where(a) == {"hot"}
    assert world.where(b) == {"hot"}
    assert world.image_set(a).version_id == 2


def test_frames_shared_after_a_copy_are_never_lost(world: World) -> None:
    a = world.a
    accepted = world.copies.copy(CopyRequest(DS, a, 1))
    copy = accepted.destination.image_set_id
    world.wait_unlocked(a, copy)
    shared = world.frame_ids(a)
    assert world.frame_ids(copy) == shared
    world.tiers.tracker.flush()  # the copy accessed A on day 0
    world.clock.advance(20 * DAY)
    world.reader.frame(DS, copy, shared[0])  # the copy stays in use
    world.tiers.tracker.flush()
    world.clock.advance(15 * DAY)  # A idle 35 days, the copy 15

    assert (DS, a) in world.tiers.sweep.run().archived
    shared_keys = [keys.frame(DS, f) for f in shared]
    assert all(world.hot.head(k) and world.archive.head(k) for k in shared_keys)  # the copy keeps them hot
    assert world.where(a) >= {"archive"}
    assert "missing" not in world.where(a)
    assert world.hot.head(world.blob_keys(a)[-1]) is None  # A's own document left the hot location

    world.clock.advance(31 * DAY)  # now the copy is idle too: the shared frames go (the archive has them)
    assert (DS, copy) in world.tiers.sweep.run().archived
    assert all(world.hot.head(k) is None and world.archive.head(k) for k in shared_keys)

    world.reader.frame(DS, a, shared[1])  # A is accessed: back up; the archived copy still needs the frames
    world.tiers.tracker.flush()
    assert world.image_set(a).storage_tier == FREQUENT
    assert all(world.hot.head(k) and world.archive.head(k) for k in shared_keys)
    for image_set_id in (a, copy):
        assert "missing" not in world.where(image_set_id)
        for frame_id in shared:
            assert world.reader.frame(DS, image_set_id, frame_id).data == world.hot.get(keys.frame(DS, frame_id))


def test_a_move_loses_to_an_access_recorded_meanwhile(world: World) -> None:
    b = world.b
    world.clock.advance(31 * DAY)
    stale = world.image_set(b)
    cutoff = TierPolicy().cutoff(world.clock())
    # Another process records an access between the sweep's choice and the move's compare-and-set.
    world.index.run(lambda uow: uow.tiers.record_access([ImageSetAccess(DS, b, world.clock())]))
    assert not world.tiers.mover.archive(stale, cutoff)
    assert world.image_set(b).storage_tier == FREQUENT
    assert "hot" in world.where(b)
    assert "missing" not in world.where(b)


def test_the_sweep_restores_what_another_process_accessed(world: World) -> None:
    b = world.b
    world.clock.advance(31 * DAY)
    world.tiers.sweep.run()
    world.clock.advance(DAY)
    # A process that recorded the access but stopped before moving the image set back.
    assert world.index.run(lambda uow: uow.tiers.record_access([ImageSetAccess(DS, b, world.clock())])) == [(DS, b)]
    result = world.tiers.sweep.run()
    assert result.restored == [(DS, b)]
    assert world.where(b) == {"hot"}
    assert world.image_set(world.a).storage_tier == ARCHIVE


def test_the_sweep_can_judge_idleness_as_of_another_time(world: World) -> None:
    assert world.tiers.sweep.run().archived == []
    later = world.tiers.sweep.run(now=T0 + 30 * DAY + timedelta(seconds=1)).archived
    assert sorted(later) == sorted((DS, i) for i in world.series)
