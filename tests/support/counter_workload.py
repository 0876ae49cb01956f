"""Index writes as the services make them, for the counter tests (contract suite and migration backfill).

``commit`` is what ``imports.commit`` does for one image set (``imagesets.versions.write_version``, which also
writes the QIDO-RS catalog, then ``add_frames``), ``copy_frames`` the last step of ``ImageSetCopies._finish``,
``delete`` the final unit of work of ``ImageSetDeletes.release``; ``random_workload`` mixes them (and tier moves)
from a seed.
"""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from openhi.dicom.normalize import GroupingKey
from openhi.ids import new_id
from openhi.imagesets.model import FrameRef, ImageSetState, ImageSetWorkflowStatus
from openhi.imagesets.versions import NewVersion, write_version
from openhi.index.port import Index, UnitOfWork
from openhi.metrics.usage import ARCHIVE_INSTANT_ACCESS, FREQUENT_ACCESS, SMALL_IMAGE_SET_BYTES, DatastoreUsage
from tests.support.catalog_docs import document, instance, series

T0 = datetime(2024, 5, 1, 12, 30, 0, 123456, tzinfo=UTC)
STUDY = "1.2.826.0.1.3680043.8.498.7"


def usage(index: Index, datastore_id: str) -> DatastoreUsage:
    found = {u.datastore_id: u for u in index.run(lambda uow: uow.counters.totals(), readonly=True)}
    return found.get(datastore_id, DatastoreUsage(datastore_id))


def summary(found: DatastoreUsage) -> dict[str, Any]:
    """The counters as one comparable value."""
    return {
        "status": found.status,
        "image_sets": found.image_sets,
        "primary": found.primary_image_sets,
        "small": found.small_image_sets,
        "bytes": dict(found.storage_bytes),
        "studies": found.studies,
        "series": found.series,
        "instances": found.instances,
    }


def grouping(series_uid: str, study_uid: str = STUDY) -> GroupingKey:
    return GroupingKey(
        study_date=None,
        accession_number=None,
        patient_id="P1",
        study_instance_uid=study_uid,
        study_id=None,
        series_instance_uid=series_uid,
        series_number=None,
    )


def doc(series_uid: str, count: int, study_uid: str = STUDY) -> dict[str, Any]:
    instances = [instance(f"{series_uid}.{n}", n) for n in range(1, count + 1)]
    return document(study_uid, [series(series_uid, instances)], patient={"PatientID": "P1"})


def commit(
    uow: UnitOfWork,
    datastore_id: str,
    image_set_id: str,
    series_uid: str,
    *,
    instances: int,
    frame_sizes: list[int],
    version_id: int = 1,
    primary: bool = True,
    study_uid: str = STUDY,
) -> list[FrameRef]:
    """What ``imports.commit`` does for one image set: write the version (catalog included), add its frames."""
    write_version(
        uow,
        NewVersion.of(
            doc(series_uid, instances, study_uid),
            datastore_id=datastore_id,
            image_set_id=image_set_id,
            version_id=version_id,
            metadata_key=f"datastores/{datastore_id}/metadata/{image_set_id}-{version_id}.json.gz",
            workflow_status=ImageSetWorkflowStatus.CREATED,
            is_primary=primary,
            grouping=grouping(series_uid, study_uid),
            created_at=T0,
        ),
        T0 + timedelta(seconds=version_id),
    )
    frames = [
        FrameRef(
            datastore_id, image_set_id, f"{image_set_id[:8]}{version_id:04d}{n:020d}", "1.2.840.10008.1.2.4.201", size
        )
        for n, size in enumerate(frame_sizes)
    ]
    uow.image_sets.add_frames(frames)
    return frames


def delete(uow: UnitOfWork, datastore_id: str, image_set_id: str) -> None:
    """The final unit of work of ``ImageSetDeletes.release``."""
    uow.image_sets.delete_frames(datastore_id, image_set_id)
    uow.catalog.remove_image_set(datastore_id, image_set_id)
    row = uow.image_sets.get(datastore_id, image_set_id)
    assert row is not None
    uow.image_sets.update(
        replace(row, state=ImageSetState.DELETED, workflow_status=ImageSetWorkflowStatus.DELETED, deleted_at=T0)
    )


def copy_frames(uow: UnitOfWork, datastore_id: str, source: str, destination: str) -> None:
    """``ImageSetCopies._finish``: the destination references the source's frames (blobs shared)."""
    uow.image_sets.add_frames(
        [replace(f, image_set_id=destination) for f in uow.image_sets.list_frames(datastore_id, source)]
    )


def random_workload(index: Index, datastore_id: str, seed: int, steps: int = 25) -> None:
    """Imports, new versions, copies, deletes and tier moves, drawn from ``seed``."""
    rng = random.Random(seed)  # noqa: S311 - test data
    live: list[tuple[str, str, int, bool]] = []  # image set id, series uid, version, primary
    for step in range(steps):
        action = rng.choice(["import", "import", "version", "copy", "delete", "tier"]) if live else "import"
        if action == "import":
            image_set_id, series_uid, primary = new_id(), f"1.2.{rng.randrange(3)}.{step}", rng.random() < 0.7
            sizes = [rng.randrange(1, 3 * SMALL_IMAGE_SET_BYTES // 2) for _ in range(rng.randrange(0, 3))]
            work = partial(
                commit,
                datastore_id=datastore_id,
                image_set_id=image_set_id,
                series_uid=series_uid,
                instances=rng.randrange(1, 4),
                frame_sizes=sizes,
                primary=primary,
                study_uid=f"1.2.{rng.randrange(3)}",
            )
            index.run(work)
            live.append((image_set_id, series_uid, 1, primary))
        elif action == "version":
            position = rng.randrange(len(live))
            image_set_id, series_uid, version, primary = live[position]
            work = partial(
                commit,
                datastore_id=datastore_id,
                image_set_id=image_set_id,
                series_uid=series_uid,
                instances=rng.randrange(1, 5),
                frame_sizes=[3],
                version_id=version + 1,
                primary=primary,
            )
            index.run(work)
            live[position] = (image_set_id, series_uid, version + 1, primary)
        elif action == "copy":
            source, series_uid, _, _ = rng.choice(live)
            destination = new_id()
            index.run(
                partial(_copy, datastore_id=datastore_id, source=source, destination=destination, series=series_uid)
            )
            live.append((destination, series_uid, 1, False))
        elif action == "delete":
            image_set_id = live.pop(rng.randrange(len(live)))[0]
            index.run(partial(delete, datastore_id=datastore_id, image_set_id=image_set_id))
        else:
            image_set_id = rng.choice(live)[0]
            tier = rng.choice([FREQUENT_ACCESS, ARCHIVE_INSTANT_ACCESS])
            index.run(partial(_move, datastore_id=datastore_id, image_set_id=image_set_id, tier=tier))


def _copy(uow: UnitOfWork, *, datastore_id: str, source: str, destination: str, series: str) -> None:
    """A copy to a new image set: its first version (not primary), then the source's frames."""
    commit(uow, datastore_id, destination, series, instances=1, frame_sizes=[], primary=False)
    copy_frames(uow, datastore_id, source, destination)


def _move(uow: UnitOfWork, *, datastore_id: str, image_set_id: str, tier: str) -> bool:
    return uow.counters.move_tier(datastore_id, image_set_id, tier)
