"""StowService in process (memory index, local blobs, the real import pipeline in a thread pool): what happens
to a series whose primary image set stays LOCKED, and to parts refused before the pipeline."""

from __future__ import annotations

import io
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import pydicom
import pytest
from tests.support.dicom_corpus import SeriesSpec, ct_dataset

from openhi.blobs.local import LocalBlobStore
from openhi.datastores.model import Datastore, DatastoreStatus, LosslessStorageFormat
from openhi.dicomweb.stow import StowService
from openhi.dicomweb.stow_multipart import BodyType
from openhi.dicomweb.stow_parts import CANNOT_UNDERSTAND, DUPLICATE_SOP_INSTANCE, OUT_OF_RESOURCES, PROCESSING_FAILURE
from openhi.errors import ConflictError, NotFoundError
from openhi.imagesets.model import ImageSetState, ImageSetWorkflowStatus
from openhi.imports.workers import run_tasks
from openhi.index.memory import MemoryIndex

DS = "d" * 32
T0 = datetime(2026, 1, 1, tzinfo=UTC)
BOUNDARY = b"unit-boundary"


def encoded(spec: SeriesSpec, index: int) -> bytes:
    out = io.BytesIO()
    pydicom.dcmwrite(out, ct_dataset(spec, index), enforce_file_format=True)
    return out.getvalue()


def multipart(parts: list[bytes]) -> bytes:
    body = b"".join(b"\r\n--" + BOUNDARY + b"\r\nContent-Type: application/dicom\r\n\r\n" + p for p in parts)
    return body + b"\r\n--" + BOUNDARY + b"--"


@pytest.fixture
def index() -> MemoryIndex:
    return MemoryIndex()


@pytest.fixture
def service(tmp_path: Path, index: MemoryIndex) -> StowService:
    datastore = Datastore(DS, "s", DatastoreStatus.ACTIVE, LosslessStorageFormat.HTJ2K, T0, T0, "token")
    index.run(lambda uow: uow.datastores.add(datastore))
    (tmp_path / "blobs").mkdir()
    pool = ThreadPoolExecutor(2)
    return StowService(
        index,
        LocalBlobStore(tmp_path / "blobs"),
        (tmp_path / "blobs").as_uri(),
        lambda: pool,
        run_tasks,
        lambda: T0,
        spool_root=tmp_path / "spool",
        lock_wait_seconds=0.3,
    )


def test_parts_refused_before_the_pipeline(service: StowService, tmp_path: Path) -> None:
    spec, other = SeriesSpec(study="a", slices=2, size=16), SeriesSpec(study="b", slices=1, size=16)
    first = encoded(spec, 0)
    study = str(ct_dataset(spec, 0).StudyInstanceUID)
    body = tmp_path / "body"
    body.write_bytes(multipart([first, b"not dicom", first, encoded(other, 0), encoded(spec, 1)]))
    result = service.store(DS, study, body, BodyType(True, BOUNDARY))
    assert [s.number for s in result.stored] == [1, 5]
    assert [(f.number, f.reason) for f in result.failed] == [
        (2, CANNOT_UNDERSTAND),
        (3, DUPLICATE_SOP_INSTANCE),
        (4, PROCESSING_FAILURE),
    ]
    assert result.status == 202
    assert not any((tmp_path / "spool").iterdir())  # the per-request spool directory is gone


def test_a_primary_that_stays_locked_fails_its_series_with_0xa700(
    service: StowService, index: MemoryIndex, tmp_path: Path
) -> None:
    spec = SeriesSpec(study="locked", slices=3, size=16)
    body = tmp_path / "body"
    body.write_bytes(multipart([encoded(spec, 0)]))
    [stored] = service.store(DS, None, body, BodyType(True, BOUNDARY)).stored
    index.run(
        lambda uow: uow.image_sets.set_state(
            DS,
            stored.image_set_id,
            1,
            [ImageSetState.ACTIVE],
            ImageSetState.LOCKED,
            ImageSetWorkflowStatus.COPYING,
            None,
            T0,
        )
    )
    other = SeriesSpec(study="locked", series="other", slices=1, size=16)
    body.write_bytes(multipart([encoded(spec, 1), encoded(other, 0), encoded(spec, 2)]))
    result = service.store(DS, None, body, BodyType(True, BOUNDARY))
    assert [s.number for s in result.stored] == [2]  # the other series is not held up
    assert [(f.number, f.reason) for f in result.failed] == [(1, OUT_OF_RESOURCES), (3, OUT_OF_RESOURCES)]
    assert "locked (COPYING)" in result.failed[0].message
    assert result.failed[0].sop_instance_uid == str(ct_dataset(spec, 1).SOPInstanceUID)


def test_the_data_store_must_exist_and_be_active(service: StowService, index: MemoryIndex) -> None:
    with pytest.raises(NotFoundError):
        service.target_format("0" * 32)
    index.run(lambda uow: uow.datastores.transition(DS, DatastoreStatus.ACTIVE, DatastoreStatus.DELETING, T0))
    with pytest.raises(ConflictError, match="DELETING"):
        service.target_format(DS)


def test_what_dead_processes_left_in_the_spool_is_swept(service: StowService) -> None:
    """A crash mid-request leaves a spooled body and a part folder; the next start removes them."""
    import os
    import subprocess
    import sys

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)
    root = service.spool_root
    root.mkdir(parents=True, exist_ok=True)
    (root / f"stow-{dead_pid}-abc").mkdir()
    (root / f"stow-{dead_pid}-abc" / "part-0001.dcm").write_bytes(b"x")
    (root / f"openhi-stow-{dead_pid}-xyz.body").write_bytes(b"x")
    (root / f"stow-{os.getpid()}-mine").mkdir()  # a live process's request in flight
    (root / "unrelated").mkdir()
    assert service.sweep_stale() == 2
    assert sorted(p.name for p in root.iterdir()) == sorted([f"stow-{os.getpid()}-mine", "unrelated"])
