"""Data store and tagging use cases over the in-memory adapters, with a controllable clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from openhi.blobs import keys
from openhi.blobs.memory import MemoryBlobStore
from openhi.datastores.lifecycle import DatastoreLifecycle
from openhi.datastores.model import DatastoreStatus, LosslessStorageFormat
from openhi.datastores.service import CreateDatastoreRequest, DatastoreService
from openhi.errors import ConflictError, NotFoundError, QuotaExceededError, ValidationError
from openhi.ids import datastore_arn, image_set_arn
from openhi.index.memory import MemoryImageSet, MemoryIndex
from openhi.search.tokens import TokenCodec
from openhi.tagging.service import TaggingService


class FakeClock:
    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


World = tuple[DatastoreService, DatastoreLifecycle, TaggingService, MemoryIndex, MemoryBlobStore, FakeClock]


@pytest.fixture
def world() -> World:
    index, blobs, clock = MemoryIndex(), MemoryBlobStore(), FakeClock()
    service = DatastoreService(index, clock, TokenCodec(b"s"), max_active=2)
    lifecycle = DatastoreLifecycle(index, blobs, clock, transition_seconds=1.0)
    tagging = TaggingService(index, "123456789012", "us-east-1")
    return service, lifecycle, tagging, index, blobs, clock


def test_create_then_lifecycle_to_active(world: World) -> None:
    service, lifecycle, _, _, blobs, clock = world
    created = service.create(CreateDatastoreRequest(client_token="t1", name="a"))
    assert created.status == DatastoreStatus.CREATING
    assert created.lossless_storage_format == LosslessStorageFormat.HTJ2K
    assert lifecycle.sweep() == 0  # not yet due: CREATING stays observable
    clock.advance(1.0)
    assert lifecycle.sweep() == 1
    assert service.get(created.datastore_id).status == DatastoreStatus.ACTIVE
    assert blobs.head(keys.datastore_descriptor(created.datastore_id)) is not None


def test_idempotent_client_token(world: World) -> None:
    service = world[0]
    first = service.create(CreateDatastoreRequest(client_token="same", name="a"))
    again = service.create(CreateDatastoreRequest(client_token="same", name="a"))
    assert again.datastore_id == first.datastore_id
    with pytest.raises(ConflictError, match="different parameters"):
        service.create(CreateDatastoreRequest(client_token="same", name="b"))


def test_unnamed_datastore_gets_a_name(world: World) -> None:
    created = world[0].create(CreateDatastoreRequest(client_token="t"))
    assert created.name == f"datastore-{created.datastore_id[:8]}"


def test_quota_counts_creating_active_deleting(world: World) -> None:
    service, lifecycle, _, _, _, clock = world
    first = service.create(CreateDatastoreRequest(client_token="1"))
    service.create(CreateDatastoreRequest(client_token="2"))
    with pytest.raises(QuotaExceededError):
        service.create(CreateDatastoreRequest(client_token="3"))
    clock.advance(1)
    lifecycle.sweep()
    service.delete(first.datastore_id)
    with pytest.raises(QuotaExceededError):  # DELETING still holds its slot
        service.create(CreateDatastoreRequest(client_token="3"))
    clock.advance(1)
    lifecycle.sweep()
    assert service.create(CreateDatastoreRequest(client_token="3")).status == DatastoreStatus.CREATING


def test_delete_lifecycle_purges_blobs_and_tags(world: World) -> None:
    service, lifecycle, tagging, _, blobs, clock = world
    created = service.create(CreateDatastoreRequest(client_token="t", tags={"env": "dev"}))
    ds_id = created.datastore_id
    with pytest.raises(ConflictError, match="still being created"):
        service.delete(ds_id)
    clock.advance(1)
    lifecycle.sweep()
    blobs.put(keys.datastore_prefix(ds_id) + "extra/object", b"x")
    assert service.delete(ds_id).status == DatastoreStatus.DELETING
    assert service.delete(ds_id).status == DatastoreStatus.DELETING  # idempotent
    clock.advance(1)
    lifecycle.sweep()
    assert service.get(ds_id).status == DatastoreStatus.DELETED
    assert list(blobs.iter_prefix(keys.datastore_prefix(ds_id))) == []
    with pytest.raises(NotFoundError):
        tagging.list(datastore_arn("us-east-1", "123456789012", ds_id))


def test_delete_refused_while_image_sets_exist(world: World) -> None:
    service, lifecycle, _, index, _, clock = world
    created = service.create(CreateDatastoreRequest(client_token="t"))
    clock.advance(1)
    lifecycle.sweep()
    index.state.image_sets[(created.datastore_id, "b" * 32)] = MemoryImageSet(
        created_at=clock.now, updated_at=clock.now
    )
    with pytest.raises(ConflictError, match="image sets"):
        service.delete(created.datastore_id)


def test_list_pages_newest_first(world: World) -> None:
    index, clock = world[3], world[5]
    service = DatastoreService(index, clock, TokenCodec(b"s"), max_active=100)
    made = []
    for n in range(5):
        made.append(service.create(CreateDatastoreRequest(client_token=f"t{n}")).datastore_id)
        clock.advance(0.001)
    seen, token = [], None
    while True:
        page = service.list(None, token, 2)
        seen += [d.datastore_id for d in page.datastores]
        token = page.next_token
        if token is None:
            break
    assert seen == list(reversed(made))
    assert service.list(DatastoreStatus.ACTIVE, None, None).datastores == []
    with pytest.raises(ValidationError):
        service.list(DatastoreStatus.ACTIVE, service.list(None, None, 1).next_token, 1)


def test_tags(world: World) -> None:
    service, _, tagging, index, _, clock = world
    ds_id = service.create(CreateDatastoreRequest(client_token="t", tags={"a": "1"})).datastore_id
    arn = datastore_arn("us-east-1", "123456789012", ds_id)
    tagging.tag(arn, {"b": "2", "a": "3"})
    assert tagging.list(arn) == {"a": "3", "b": "2"}
    tagging.untag(arn, ["a", "zzz"])
    assert tagging.list(arn) == {"b": "2"}
    with pytest.raises(ValidationError, match="maximum is 50"):
        tagging.tag(arn, {f"k{n}": "v" for n in range(50)})
    assert tagging.list(arn) == {"b": "2"}  # nothing changed
    with pytest.raises(NotFoundError):
        tagging.list(image_set_arn("us-east-1", "123456789012", ds_id, "d" * 32))
    with pytest.raises(NotFoundError):
        tagging.list(datastore_arn("us-east-1", "999999999999", ds_id))
    with pytest.raises(NotFoundError):
        tagging.list(datastore_arn("eu-west-1", "123456789012", ds_id))
    with pytest.raises(ValidationError):
        tagging.list("arn:aws:s3:::bucket")
    index.state.image_sets[(ds_id, "c" * 32)] = MemoryImageSet(created_at=clock.now, updated_at=clock.now)
    image_set = image_set_arn("us-east-1", "123456789012", ds_id, "c" * 32)
    tagging.tag(image_set, {"series": "x"})
    assert tagging.list(image_set) == {"series": "x"}
    assert tagging.list(arn) == {"b": "2"}  # data store and image set tags are apart
