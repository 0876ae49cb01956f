"""STOW-RS end to end (guide 1780-1880, PS3.18 §10.5) against ``openhi serve`` on both backends.

Instances go in through dicomweb-client's ``store_instances`` and raw SigV4-signed requests (httpx + botocore);
what was stored is read back through the native API with boto3 (SearchImageSets, GetImageSetMetadata,
GetImageFrame) and every frame is compared bit for bit with pydicom's decoding of the original.
"""

from __future__ import annotations

import hashlib
import io
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pydicom
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from pydicom.dataset import Dataset
from tests.e2e.conftest import ServerFactory
from tests.e2e.helpers import wait_for_status
from tests.e2e.import_helpers import check_frames, instances, metadata
from tests.support.dicom_corpus import SeriesSpec, ct_dataset, uid
from tests.support.dicomweb import dicomweb_client, dicomweb_url
from tests.support.server import ACCESS_KEY_ID, SECRET_ACCESS_KEY, ServerProcess
from tests.support.signing import send, signed

BOUNDARY = "b0f3cf5c-70e0-41ef-baef-c6f9f65ec3e1"
MULTIPART = f'multipart/related; type="application/dicom"; boundary="{BOUNDARY}"'
FAILED, REFERENCED, FAILURE_REASON = "00081198", "00081199", "00081197"


@pytest.fixture(scope="module")
def server(make_server: ServerFactory) -> ServerProcess:
    return make_server(env={"OPENHI_IMPORT_WORKERS": "2"})


@pytest.fixture
def datastore(client: Any) -> str:
    datastore_id: str = client.create_datastore(datastoreName=f"stow-{uuid.uuid4().hex[:8]}")["datastoreId"]
    wait_for_status(client, datastore_id, "ACTIVE")
    return datastore_id


# -- helpers ------------------------------------------------------------------------------------------------


def encoded(ds: Dataset) -> bytes:
    out = io.BytesIO()
    pydicom.dcmwrite(out, ds, enforce_file_format=True)
    return out.getvalue()


def series(spec: SeriesSpec) -> list[Dataset]:
    return [ct_dataset(spec, i) for i in range(spec.slices)]


def multipart(parts: list[bytes], content_types: list[str] | None = None) -> bytes:
    """The guide's multipart payload (1860-1880): CRLF before every delimiter but the first, no final CRLF."""
    out = []
    for n, part in enumerate(parts):
        kind = content_types[n] if content_types else "application/dicom"
        out.append(f"{'\r\n' if n else ''}--{BOUNDARY}\r\nContent-Type: {kind}\r\n\r\n".encode() + part)
    out.append(f"\r\n--{BOUNDARY}--".encode())
    return b"".join(out)


def stow(
    server: ServerProcess,
    datastore_id: str,
    body: bytes,
    content_type: str = MULTIPART,
    study: str | None = None,
    accept: str | None = "application/dicom+json",
) -> httpx.Response:
    url = f"{dicomweb_url(server, datastore_id)}/studies" + (f"/{study}" if study else "")
    headers = {"Content-Type": content_type}
    if accept is not None:
        headers["Accept"] = accept
    return send(signed("POST", url, body, headers))


def seq(body: dict[str, Any], tag: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = body.get(tag, {}).get("Value", [])
    return items


def value(item: dict[str, Any], tag: str) -> Any:
    return item[tag]["Value"][0]


def failures(body: dict[str, Any]) -> list[tuple[str | None, int]]:
    """(SOP Instance UID or None, Failure Reason) of every failed part."""
    return [
        (item["00081155"]["Value"][0] if "00081155" in item else None, value(item, FAILURE_REASON))
        for item in seq(body, FAILED)
    ]


def stored_uids(body: dict[str, Any]) -> list[str]:
    return [value(item, "00081155") for item in seq(body, REFERENCED)]


def image_sets(client: Any, datastore_id: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = client.search_image_sets(datastoreId=datastore_id, searchCriteria={})[
        "imageSetsMetadataSummaries"
    ]
    return found


def write_originals(folder: Path, datasets: list[Dataset]) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for ds in datasets:
        path = folder / f"{ds.SOPInstanceUID}.dcm"
        path.write_bytes(encoded(ds))
        paths[str(ds.SOPInstanceUID)] = path
    return paths


# -- storing ------------------------------------------------------------------------------------------------


def test_single_part_application_dicom(server: ServerProcess, client: Any, datastore: str, tmp_path: Path) -> None:
    spec = SeriesSpec(study="single", slices=1, size=64)
    [ds] = series(spec)
    response = stow(server, datastore, encoded(ds), "application/dicom")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/dicom+json"
    assert response.headers["x-amzn-requestid"]
    body = response.json()
    base = dicomweb_url(server, datastore)
    assert body["00081190"] == {"vr": "UR", "Value": [f"{base}/studies/{ds.StudyInstanceUID}"]}
    [item] = seq(body, REFERENCED)
    assert value(item, "00081150") == ds.SOPClassUID
    assert value(item, "00081155") == ds.SOPInstanceUID
    assert value(item, "00081190") == (
        f"{base}/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}/instances/{ds.SOPInstanceUID}"
    )
    assert "00081196" not in item
    assert FAILED not in body
    [summary] = image_sets(client, datastore)
    assert summary["isPrimary"] is True
    assert check_frames(client, datastore, summary["imageSetId"], write_originals(tmp_path, [ds])) == 1


def test_dicomweb_client_stores_many_parts_into_one_primary_image_set(
    server: ServerProcess, client: Any, datastore: str, tmp_path: Path
) -> None:
    datasets = series(SeriesSpec(study="many", slices=12, size=96))
    result = dicomweb_client(server, datastore).store_instances(datasets)
    referenced = result.ReferencedSOPSequence
    assert [item.ReferencedSOPInstanceUID for item in referenced] == [ds.SOPInstanceUID for ds in datasets]
    assert "FailedSOPSequence" not in result
    [summary] = image_sets(client, datastore)
    assert (summary["isPrimary"], summary["version"]) == (True, 1)
    assert check_frames(client, datastore, summary["imageSetId"], write_originals(tmp_path, datasets)) == 12
    # A second request with more instances of the series joins the primary image set (a new version).
    more = series(SeriesSpec(study="many", slices=3, size=96, first_instance=12))
    dicomweb_client(server, datastore).store_instances(more)
    [summary] = image_sets(client, datastore)
    assert summary["version"] == 2
    assert len(instances(metadata(client, datastore, summary["imageSetId"]))) == 15


def test_store_study_refuses_instances_of_another_study(server: ServerProcess, client: Any, datastore: str) -> None:
    good = series(SeriesSpec(study="target", slices=2))
    stranger = series(SeriesSpec(study="stranger", slices=1))[0]
    study = str(good[0].StudyInstanceUID)
    result = dicomweb_client(server, datastore).store_instances([*good, stranger], study_instance_uid=study)
    assert [item.ReferencedSOPInstanceUID for item in result.ReferencedSOPSequence] == [
        ds.SOPInstanceUID for ds in good
    ]
    [failed] = result.FailedSOPSequence
    assert (failed.ReferencedSOPInstanceUID, failed.FailureReason) == (stranger.SOPInstanceUID, 272)
    assert failed.ReferencedSOPClassUID == stranger.SOPClassUID
    response = stow(server, datastore, multipart([encoded(stranger)]), study=study)
    assert response.status_code == 409
    assert failures(response.json()) == [(stranger.SOPInstanceUID, 272)]
    assert response.json()["00081190"]["Value"] == [f"{dicomweb_url(server, datastore)}/studies/{study}"]
    assert len(image_sets(client, datastore)) == 1


def test_bad_parts_fail_alone_and_good_parts_are_stored_bit_exact(
    server: ServerProcess, client: Any, datastore: str, tmp_path: Path
) -> None:
    good = series(SeriesSpec(study="mixed", slices=3, size=80))
    truncated = encoded(series(SeriesSpec(study="mixed", slices=4, size=80))[3])
    truncated = truncated[: len(truncated) // 2]
    not_dicom = b"this is not a DICOM file\n" * 40
    parts = [encoded(good[0]), not_dicom, encoded(good[1]), truncated, encoded(good[2]), encoded(good[0]), b"{}"]
    kinds = ["application/dicom"] * 6 + ["application/json"]
    response = stow(server, datastore, multipart(parts, kinds))
    assert response.status_code == 202, response.text
    body = response.json()
    assert stored_uids(body) == [ds.SOPInstanceUID for ds in good]
    assert failures(body) == [
        (None, 0xC000),  # not DICOM
        (uid("mixed", "series-1", 3), 0xC000),  # truncated: its header is readable, its pixel data is cut
        (good[0].SOPInstanceUID, 0x0111),  # the same SOP Instance twice in one request: the first is kept
        (None, 0xC000),  # not application/dicom
    ]
    [summary] = image_sets(client, datastore)
    assert check_frames(client, datastore, summary["imageSetId"], write_originals(tmp_path, good)) == 3


def test_nothing_stored_is_409(server: ServerProcess, client: Any, datastore: str) -> None:
    response = stow(server, datastore, multipart([b"garbage", b"\x00" * 200]))
    assert response.status_code == 409
    body = response.json()
    assert failures(body) == [(None, 0xC000), (None, 0xC000)]
    assert body["00081190"] == {"vr": "UR"}
    assert REFERENCED not in body
    response = stow(server, datastore, b"\x00" * 300, "application/dicom")
    assert (response.status_code, failures(response.json())) == (409, [(None, 0xC000)])
    assert image_sets(client, datastore) == []


def test_a_data_set_that_does_not_match_its_sop_class_is_0xa900(server: ServerProcess, datastore: str) -> None:
    ds = series(SeriesSpec(study="nosop", slices=1))[0]
    del ds.SOPInstanceUID
    response = stow(server, datastore, multipart([encoded(ds)]))
    assert response.status_code == 409
    [(_, reason)] = failures(response.json())
    assert reason == 0xA900


@pytest.mark.filterwarnings("ignore:The value length")
def test_an_import_warning_is_the_warning_reason_and_202(server: ServerProcess, client: Any, datastore: str) -> None:
    ds = series(SeriesSpec(study="warned", slices=1))[0]
    ds.StudyDescription = "x" * 100  # LO holds 64 characters: stored with warning 0xB202 (45571, guide 22881-22912)
    response = stow(server, datastore, encoded(ds), "application/dicom")
    assert response.status_code == 202, response.text
    [item] = seq(response.json(), REFERENCED)
    assert value(item, "00081196") == 45571
    assert FAILED not in response.json()
    [summary] = image_sets(client, datastore)
    [entry] = instances(metadata(client, datastore, summary["imageSetId"])).values()
    assert entry["DICOM"]["WarningReason"] == [45571]


def test_conflicting_metadata_goes_to_a_non_primary_image_set(
    server: ServerProcess, client: Any, datastore: str, tmp_path: Path
) -> None:
    spec = SeriesSpec(study="conflict", slices=2, size=64)
    assert stow(server, datastore, multipart([encoded(ds) for ds in series(spec)])).status_code == 200
    odd = ct_dataset(replace(spec, patient_id="SOMEONE-ELSE"), 2)
    response = stow(server, datastore, encoded(odd), "application/dicom")
    assert response.status_code == 200
    [item] = seq(response.json(), REFERENCED)
    url = value(item, "00081190")
    assert "?imageSetId=" in url
    image_set_id = url.rsplit("=", 1)[1]
    properties = client.get_image_set(datastoreId=datastore, imageSetId=image_set_id)
    assert properties["isPrimary"] is False
    assert check_frames(client, datastore, image_set_id, write_originals(tmp_path, [odd])) == 1
    primaries = [s for s in image_sets(client, datastore) if s["isPrimary"]]
    assert len(primaries) == 1
    assert primaries[0]["imageSetId"] != image_set_id


def test_restoring_an_instance_replaces_it_in_the_primary_image_set(
    server: ServerProcess, client: Any, datastore: str
) -> None:
    ds = series(SeriesSpec(study="again", slices=1))[0]
    for _ in range(2):
        assert stow(server, datastore, encoded(ds), "application/dicom").status_code == 200
    [summary] = image_sets(client, datastore)
    assert summary["version"] == 2
    assert list(instances(metadata(client, datastore, summary["imageSetId"]))) == [ds.SOPInstanceUID]


def test_store_waits_while_the_primary_image_set_is_locked(server: ServerProcess, client: Any, datastore: str) -> None:
    spec = SeriesSpec(study="locked", slices=2)
    assert stow(server, datastore, encoded(series(spec)[0]), "application/dicom").status_code == 200
    [summary] = image_sets(client, datastore)
    updated = client.update_image_set_metadata(
        datastoreId=datastore,
        imageSetId=summary["imageSetId"],
        latestVersionId="1",
        updateImageSetMetadataUpdates={
            "DICOMUpdates": {
                "updatableAttributes": b'{"SchemaVersion": 1.1, "Study": {"DICOM": {"StudyDescription": "updated"}}}'
            }
        },
    )
    assert updated["imageSetState"] == "LOCKED"
    response = stow(server, datastore, encoded(series(spec)[1]), "application/dicom")
    assert response.status_code == 200, response.text
    properties = client.get_image_set(datastoreId=datastore, imageSetId=summary["imageSetId"])
    assert properties["versionId"] == "3"  # the update's version 2, then the STOW's version 3
    assert metadata(client, datastore, summary["imageSetId"], "2")["Study"]["DICOM"]["StudyDescription"] == "updated"
    assert len(instances(metadata(client, datastore, summary["imageSetId"]))) == 2


def test_concurrent_stows_of_one_series_lose_nothing(server: ServerProcess, client: Any, datastore: str) -> None:
    spec = SeriesSpec(study="race", slices=16, size=32)
    datasets = series(spec)
    statuses: list[int] = []

    def send_share(share: list[Dataset]) -> None:
        for ds in share:
            statuses.append(stow(server, datastore, encoded(ds), "application/dicom").status_code)

    threads = [threading.Thread(target=send_share, args=(datasets[n::4],)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [200] * 16
    [summary] = image_sets(client, datastore)
    assert summary["isPrimary"] is True
    stored = instances(metadata(client, datastore, summary["imageSetId"]))
    assert sorted(stored) == sorted(str(ds.SOPInstanceUID) for ds in datasets)


def test_concurrent_stows_from_two_server_processes_lose_nothing(
    server: ServerProcess, client: Any, datastore: str
) -> None:
    """A second ``openhi serve`` on the same index and blob store (another data dir for its own files)."""
    shared_master_key = {"OPENHI_MASTER_KEY_FILE": str(server.data_dir / "master-keys.json")}  # docs/encryption.md
    twin = ServerProcess(
        server.data_dir.parent / "twin",
        {**server.env, **shared_master_key},
        [*server.args, "--index-url", server.index_url],
    )
    if "--blob-url" not in server.args:
        twin.args += ["--blob-url", server.blob_url]
    twin.start()
    try:
        datasets = series(SeriesSpec(study="twins", slices=12, size=32))
        statuses: list[int] = []

        def send_share(target: ServerProcess, share: list[Dataset]) -> None:
            for ds in share:
                statuses.append(stow(target, datastore, encoded(ds), "application/dicom").status_code)

        threads = [
            threading.Thread(target=send_share, args=(target, datasets[n::4]))
            for n, target in enumerate([server, twin, server, twin])
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        assert twin.stop() == 0
    assert statuses == [200] * 12
    [summary] = image_sets(client, datastore)
    stored = instances(metadata(client, datastore, summary["imageSetId"]))
    assert sorted(stored) == sorted(str(ds.SOPInstanceUID) for ds in datasets)


# -- refusals -----------------------------------------------------------------------------------------------


def test_request_errors(server: ServerProcess, client: Any, datastore: str) -> None:
    ds = encoded(series(SeriesSpec(study="errors", slices=1))[0])
    cases = [
        (stow(server, datastore, ds, "application/json"), 415, "UnsupportedMediaTypeException"),
        (stow(server, datastore, ds, 'multipart/related; type="application/dicom+xml"; boundary=x'), 415, None),
        (stow(server, datastore, multipart([ds]), 'multipart/related; type="application/dicom"'), 400, None),
        (stow(server, datastore, b"--nope\r\n\r\nA", MULTIPART), 400, "ValidationException"),
        (stow(server, datastore, multipart([ds])[:-10]), 400, None),  # no closing delimiter
        (stow(server, datastore, b"", "application/dicom"), 400, None),
        (stow(server, datastore, multipart([ds]), accept="application/dicom+xml"), 406, "NotAcceptableException"),
        (stow(server, datastore, multipart([ds]), study="not-a-uid"), 400, None),
        (stow(server, "0" * 32, multipart([ds])), 404, "ResourceNotFoundException"),
    ]
    for response, status, code in cases:
        assert response.status_code == status, (status, response.text)
        assert response.headers["content-type"] == "application/json"
        assert response.headers["x-amzn-requestid"]
        if code is not None:
            assert response.json()["__type"] == code
    accepted = stow(server, datastore, multipart([ds]), accept="application/json")
    assert (accepted.status_code, accepted.headers["content-type"]) == (200, "application/json")
    assert len(image_sets(client, datastore)) == 1


def test_a_data_store_that_is_not_active_is_409_and_a_deleted_one_404(server: ServerProcess, client: Any) -> None:
    datastore_id = client.create_datastore(datastoreName="creating")["datastoreId"]
    ds = encoded(series(SeriesSpec(study="inactive", slices=1))[0])
    response = stow(server, datastore_id, ds, "application/dicom")  # CREATING for a second (transition time)
    assert (response.status_code, response.json()["__type"]) == (409, "ConflictException")
    wait_for_status(client, datastore_id, "ACTIVE")
    client.delete_datastore(datastoreId=datastore_id)
    wait_for_status(client, datastore_id, "DELETED")
    response = stow(server, datastore_id, ds, "application/dicom")
    assert (response.status_code, response.json()["__type"]) == (404, "ResourceNotFoundException")


# -- a large streamed body ----------------------------------------------------------------------------------


def _vm_hwm_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


def _raw_data_instance(n: int, size: int) -> bytes:
    """A non-image instance carrying ``size`` bytes in an OB element (stored apart as bulk data)."""
    ds = ct_dataset(SeriesSpec(study="large", series="raw", slices=1, size=16), n)
    del ds.PixelData
    ds.add_new(0x00091010, "LO", "OPENHI TEST")
    ds.add_new(0x00091011, "OB", bytes(range(256)) * (size // 256))
    return encoded(ds)


def _write_large_body(path: Path, parts: int, part_bytes: int) -> tuple[int, str]:
    digest = hashlib.sha256()
    size = 0
    with path.open("wb") as out:
        for n in range(parts):
            head = f"{'\r\n' if n else ''}--{BOUNDARY}\r\nContent-Type: application/dicom\r\n\r\n".encode()
            for chunk in (head, _raw_data_instance(n, part_bytes)):
                out.write(chunk)
                digest.update(chunk)
                size += len(chunk)
        tail = f"\r\n--{BOUNDARY}--".encode()
        out.write(tail)
        digest.update(tail)
    return size + len(tail), digest.hexdigest()


def _streamed(path: Path) -> Iterator[bytes]:
    with path.open("rb") as source:
        while chunk := source.read(1024 * 1024):
            yield chunk


def test_a_300_mb_request_is_streamed_not_held_in_memory(
    server: ServerProcess, client: Any, datastore: str, tmp_path: Path
) -> None:
    assert server.process is not None
    path = tmp_path / "large.multipart"
    size, sha256 = _write_large_body(path, parts=30, part_bytes=10 * 1024 * 1024)
    assert size > 300 * 1024 * 1024
    url = f"{dicomweb_url(server, datastore)}/studies"
    headers = {"Content-Type": MULTIPART, "Accept": "application/dicom+json", "X-Amz-Content-SHA256": sha256}
    aws = AWSRequest(method="POST", url=url, data=b"", headers=headers)
    SigV4Auth(Credentials(ACCESS_KEY_ID, SECRET_ACCESS_KEY), "medical-imaging", "us-east-1").add_auth(aws)
    before = _vm_hwm_kib(server.process.pid)
    started = time.monotonic()
    with httpx.Client(timeout=600) as http:
        response = http.post(
            url, content=_streamed(path), headers={**dict(aws.headers.items()), "Content-Length": str(size)}
        )
    elapsed = time.monotonic() - started
    assert response.status_code == 200, response.text[:2000]
    assert len(stored_uids(response.json())) == 30
    peak_growth_mib = (_vm_hwm_kib(server.process.pid) - before) / 1024
    print(f"300 MB STOW: {elapsed:.1f} s, server peak RSS growth {peak_growth_mib:.0f} MiB")
    assert peak_growth_mib < 100, peak_growth_mib  # a third of the body at most, whatever the body's size
    [summary] = image_sets(client, datastore)
    assert len(instances(metadata(client, datastore, summary["imageSetId"]))) == 30
