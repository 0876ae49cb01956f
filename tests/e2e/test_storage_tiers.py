"""Storage tiers (guide 23009-23052) against ``openhi serve`` on both backends, with ``openhi tiers sweep --as-of``
as the clock: an image set accessed stays frequent, one idle beyond 30 days moves to the archive location
(GetImageSet says ARCHIVE_INSTANT_ACCESS and lastAccessedAt), GetImageFrame still answers the bit-exact frame
and moves it back up; GetImageSet, ListImageSetVersions, SearchImageSets, ListTagsForResource and QIDO-RS are
not accesses, WADO-RS is.

Times come from the server (``lastAccessedAt``), so the test needs no clock of its own: the sweep judges
idleness "as of" B's last access + 30 days + 1 s, and A was accessed more than 2 s after B.
"""

from __future__ import annotations

import gzip
import json
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pydicom
import pytest
from tests.e2e.helpers import wait_for_status
from tests.e2e.import_helpers import run_job
from tests.support.backends import S3Server
from tests.support.dicom_corpus import SeriesSpec, write_series
from tests.support.dicomweb import dicomweb_url, signed_session
from tests.support.server import BIN, ServerProcess

from openhi.blobs import keys
from openhi.blobs.factory import open_blob_store
from openhi.blobs.port import BlobStore
from openhi.config import Settings
from openhi.tiers.locations import archive_blob_url

FLUSH = {"OPENHI_TIER_ACCESS_FLUSH_SECONDS": "0.2"}  # accesses reach the index within 0.2 s
ServerFactory = Callable[..., ServerProcess]


@pytest.fixture(scope="module")
def server(make_server: ServerFactory) -> ServerProcess:
    return make_server(env=FLUSH)


@pytest.fixture(scope="module")
def stores(
    server: ServerProcess, backend: str, request: pytest.FixtureRequest
) -> Iterator[tuple[BlobStore, BlobStore]]:
    """The server's hot and archive locations, opened in this process to see where blobs are."""
    with ExitStack() as stack:
        if backend == "scaleout":
            s3: S3Server = request.getfixturevalue("s3_server")
            patch = stack.enter_context(pytest.MonkeyPatch.context())
            for name, value in s3.env().items():
                patch.setenv(name, value)
        settings = Settings(data_dir=server.data_dir, blob_url=server.blob_url)
        yield open_blob_store(server.blob_url), open_blob_store(archive_blob_url(settings))


@dataclass
class Study:
    datastore_id: str
    study_uid: str
    a: str  # image set of series A
    b: str  # image set of series B
    series_a: str


@pytest.fixture(scope="module")
def study(client: Any, tmp_path_factory: pytest.TempPathFactory) -> Study:
    folder = tmp_path_factory.mktemp("tiers-input")
    series = {}
    for name in ("a", "b"):
        path = write_series(folder, SeriesSpec(study="tiers", series=name, slices=2, size=32))[0]
        series[name] = path
    datastore_id = client.create_datastore(datastoreName=f"tiers-{uuid.uuid4().hex[:6]}")["datastoreId"]
    wait_for_status(client, datastore_id, "ACTIVE")
    output = tmp_path_factory.mktemp("tiers-output")
    job = run_job(client, datastore_id, f"file://{folder}/", f"file://{output}/")
    assert job["jobStatus"] == "COMPLETED", job
    uids = {name: pydicom.dcmread(path) for name, path in series.items()}
    by_series = {
        s["DICOMTags"]["DICOMSeriesInstanceUID"]: s["imageSetId"]
        for s in client.search_image_sets(datastoreId=datastore_id)["imageSetsMetadataSummaries"]
    }
    return Study(
        datastore_id,
        str(uids["a"].StudyInstanceUID),
        by_series[str(uids["a"].SeriesInstanceUID)],
        by_series[str(uids["b"].SeriesInstanceUID)],
        str(uids["a"].SeriesInstanceUID),
    )


def properties(client: Any, study: Study, image_set_id: str) -> dict[str, Any]:
    found: dict[str, Any] = client.get_image_set(datastoreId=study.datastore_id, imageSetId=image_set_id)
    return found


def wait_until(check: Callable[[], Any], what: str, timeout: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def last_access(client: Any, study: Study, image_set_id: str) -> datetime:
    """``lastAccessedAt`` once the accesses just made are written (the server flushes every 0.2 s)."""
    time.sleep(0.8)
    accessed: datetime = properties(client, study, image_set_id)["lastAccessedAt"]
    return accessed


def first_frame(client: Any, study: Study, image_set_id: str) -> tuple[str, bytes]:
    """GetImageSetMetadata + GetImageFrame (both accesses): the first frame's id and bytes."""
    blob = client.get_image_set_metadata(datastoreId=study.datastore_id, imageSetId=image_set_id)
    document = json.loads(gzip.decompress(blob["imageSetMetadataBlob"].read()))
    instances = next(iter(document["Study"]["Series"].values()))["Instances"]
    frame_id = next(iter(instances.values()))["ImageFrames"][0]["ID"]
    return frame_id, read_frame(client, study, image_set_id, frame_id)


def read_frame(client: Any, study: Study, image_set_id: str, frame_id: str) -> bytes:
    answer = client.get_image_frame(
        datastoreId=study.datastore_id, imageSetId=image_set_id, imageFrameInformation={"imageFrameId": frame_id}
    )
    data: bytes = answer["imageFrameBlob"].read()
    return data


def not_accesses(client: Any, server: ServerProcess, study: Study, image_set_id: str) -> None:
    """Calls the guide lists as no access (23034-23040)."""
    ds = study.datastore_id
    client.get_image_set(datastoreId=ds, imageSetId=image_set_id)
    client.list_image_set_versions(datastoreId=ds, imageSetId=image_set_id)
    client.search_image_sets(datastoreId=ds)
    arn = client.get_image_set(datastoreId=ds, imageSetId=image_set_id)["imageSetArn"]
    client.list_tags_for_resource(resourceArn=arn)
    qido = signed_session().get(f"{dicomweb_url(server, ds)}/studies", headers={"Accept": "application/dicom+json"})
    assert qido.status_code == 200, qido.text


def sweep(server: ServerProcess, as_of: datetime) -> dict[str, Any]:
    command = [str(BIN / "openhi"), "tiers", "sweep", "--as-of", as_of.isoformat(), "--data-dir", str(server.data_dir)]
    done = subprocess.run([*command, *server.args], env=server.env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def test_idle_image_sets_move_to_the_archive_and_come_back_on_access(
    server: ServerProcess, client: Any, study: Study, stores: tuple[BlobStore, BlobStore]
) -> None:
    hot, archive = stores
    ds = study.datastore_id
    assert properties(client, study, study.b)["storageTier"] == "FREQUENT_ACCESS"
    assert "lastAccessedAt" not in properties(client, study, study.b)  # never accessed yet

    frame_b, bytes_b = first_frame(client, study, study.b)
    accessed_b = last_access(client, study, study.b)
    time.sleep(2)
    first_frame(client, study, study.a)
    accessed_a = last_access(client, study, study.a)
    assert accessed_a - accessed_b > timedelta(seconds=2)

    not_accesses(client, server, study, study.b)
    time.sleep(0.8)  # several flushes
    assert properties(client, study, study.b)["lastAccessedAt"] == accessed_b

    frame_key = keys.frame(ds, frame_b)
    stored = hot.get(frame_key)  # as stored (ciphertext when encryption at rest is on): moves never change it

    # 30 days and 1 s after B's last access: B is idle, A (accessed > 2 s later) is not.
    moved = sweep(server, accessed_b + timedelta(days=30, seconds=1))
    assert moved["archived"] == [{"datastoreId": ds, "imageSetId": study.b}]
    archived = properties(client, study, study.b)
    assert archived["storageTier"] == "ARCHIVE_INSTANT_ACCESS"
    assert archived["lastAccessedAt"] == accessed_b
    assert properties(client, study, study.a)["storageTier"] == "FREQUENT_ACCESS"
    assert hot.head(frame_key) is None
    assert archive.get(frame_key) == stored

    not_accesses(client, server, study, study.b)
    time.sleep(0.8)
    still = properties(client, study, study.b)
    assert (still["storageTier"], still["lastAccessedAt"]) == ("ARCHIVE_INSTANT_ACCESS", accessed_b)

    assert read_frame(client, study, study.b, frame_b) == bytes_b  # served at once, from the archive
    back = wait_until(
        lambda: (p := properties(client, study, study.b))["storageTier"] == "FREQUENT_ACCESS" and p, "B back up"
    )
    assert back["lastAccessedAt"] > accessed_b
    assert hot.get(frame_key) == stored
    assert archive.head(frame_key) is None
    assert read_frame(client, study, study.b, frame_b) == bytes_b


def test_a_wado_retrieval_is_an_access(server: ServerProcess, client: Any, study: Study) -> None:
    before = properties(client, study, study.a).get("lastAccessedAt")
    time.sleep(0.01)
    url = f"{dicomweb_url(server, study.datastore_id)}/studies/{study.study_uid}/series/{study.series_a}/metadata"
    answer = signed_session().get(url, headers={"Accept": "application/dicom+json"})
    assert answer.status_code == 200, answer.text
    after = wait_until(
        lambda: (t := properties(client, study, study.a).get("lastAccessedAt")) and t != before and t, "WADO access"
    )
    assert before is None or after > before


def test_the_sweep_cli_refuses_a_time_without_zone(server: ServerProcess) -> None:
    command = [str(BIN / "openhi"), "tiers", "sweep", "--as-of", "2030-01-01T00:00:00", "--data-dir"]
    done = subprocess.run(
        [*command, str(server.data_dir), *server.args], env=server.env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2
    assert "time zone" in done.stderr
