"""Encryption at rest end to end (guide 20934-21100) on both backends: what an import job and STOW-RS leave in the
blob store (local files, S3) holds no plaintext patient name or frame bytes; frames come back bit-exact after a data
store key rotation and a master key rotation (with a restart on the new master key alone); a customer key of the
local key provider; a data store's key is destroyed with it; a customer key that is gone fails reads clearly."""

from __future__ import annotations

import os
import time
import uuid
import zlib
from pathlib import Path
from typing import Any

import pytest
import requests
from botocore.exceptions import ClientError
from tests.e2e.conftest import ServerFactory
from tests.e2e.helpers import wait_for_status
from tests.e2e.import_helpers import run_job, upload
from tests.support.at_rest import (
    all_frames,
    frame_windows,
    keys_cli,
    keys_json,
    plaintext_found,
    raw_object,
    stored_objects,
)
from tests.support.backends import S3Server
from tests.support.dicom_corpus import SeriesSpec, ct_dataset, write_series
from tests.support.dicomweb import dicomweb_client, dicomweb_url, signed_session
from tests.support.server import ServerProcess

from openhi.crypto import sealed

IMPORTED_NAME, STOWED_NAME = "ZEBRAFINCH^OPHELIA", "QUOKKA^PERPETUA"
CACHE_SECONDS = 0.5
TEST_KMS_ARN = "arn:aws:kms:us-east-1:123456789012:key/11111111-2222-3333-4444-555555555555"  # tests/data/kms


@pytest.fixture(scope="module")
def server(make_server: ServerFactory, s3_server: S3Server) -> ServerProcess:
    return make_server(env={**s3_server.env(), "OPENHI_IMPORT_WORKERS": "1"})


def s3_of(server: ServerProcess, s3_server: S3Server) -> S3Server | None:
    return s3_server if server.blob_url.startswith("s3://") else None


def new_datastore(client: Any, kms_key_arn: str | None = None) -> str:
    extra = {"kmsKeyArn": kms_key_arn} if kms_key_arn else {}
    datastore_id: str = client.create_datastore(datastoreName=f"enc-{uuid.uuid4().hex[:8]}", **extra)["datastoreId"]
    wait_for_status(client, datastore_id, "ACTIVE")
    return datastore_id


def import_series(client: Any, s3_server: S3Server, datastore_id: str, folder: Path, spec: SeriesSpec) -> None:
    """An import job of ``spec`` from its own S3 bucket (inputs and outputs never share the archive's bucket)."""
    write_series(folder, spec)
    bucket = s3_server.new_bucket()
    upload(s3_server, folder, bucket, "in")
    job = run_job(client, datastore_id, f"s3://{bucket}/in/", f"s3://{bucket}/out/")
    assert job["jobStatus"] == "COMPLETED", job


def stow_series(server: ServerProcess, datastore_id: str, spec: SeriesSpec) -> None:
    datasets = [ct_dataset(spec, index) for index in range(spec.slices)]
    result = dicomweb_client(server, datastore_id).store_instances(datasets)
    assert "00081198" not in result, result  # no FailedSOPSequence


def fill(server: ServerProcess, s3_server: S3Server, tmp_path: Path) -> tuple[dict[str, bytes], list[str]]:
    """A data store with the owned key filled by an import job, one with a customer key filled by STOW-RS; their
    frames (GetImageFrame: the stored bytes) and the two data store ids."""
    client = server.client()
    owned, customer = new_datastore(client), new_datastore(client, TEST_KMS_ARN)
    import_series(client, s3_server, owned, tmp_path / "in", SeriesSpec(patient_name=IMPORTED_NAME, slices=2, size=96))
    stow_series(server, customer, SeriesSpec(study="stowed", patient_name=STOWED_NAME, slices=2, size=96))
    frames = {**all_frames(client, owned), **all_frames(client, customer)}
    assert len(frames) == 4
    return frames, [owned, customer]


def needles(frames: dict[str, bytes]) -> list[bytes]:
    names = [IMPORTED_NAME.encode(), STOWED_NAME.encode(), b"ZEBRAFINCH", b"QUOKKA"]
    return names + [window for frame in frames.values() for window in frame_windows(frame)]


def test_no_plaintext_in_any_stored_object(server: ServerProcess, s3_server: S3Server, tmp_path: Path) -> None:
    frames, datastores = fill(server, s3_server, tmp_path)
    objects = stored_objects(server, s3_of(server, s3_server))
    assert plaintext_found(objects, needles(frames)) == {}
    for datastore_id in datastores:
        held = {k: v for k, v in objects.items() if f"datastores/{datastore_id}/" in k}
        sealed_objects = {k: v for k, v in held.items() if not k.endswith("/datastore.json")}
        assert len(sealed_objects) >= 3, held.keys()  # two frames and at least one metadata document
        assert all(sealed.is_sealed(data) for data in sealed_objects.values())
    keys = keys_json(server, "list")["DatastoreKeys"]
    kinds = {key["DatastoreId"]: (key["WrappedBy"], key["WrappingKeyId"]) for key in keys}
    assert kinds[datastores[1]] == ("CUSTOMER", TEST_KMS_ARN)
    assert kinds[datastores[0]][0] == "MASTER"


def test_the_scan_finds_plaintext_when_encryption_is_off(
    make_server: ServerFactory, s3_server: S3Server, tmp_path: Path
) -> None:
    """The control: the same data stored with encryption off is found by the same scan."""
    clear = make_server(env={**s3_server.env(), "OPENHI_IMPORT_WORKERS": "1", "OPENHI_ENCRYPTION": "false"})
    client = clear.client()
    datastore_id = new_datastore(client)
    import_series(client, s3_server, datastore_id, tmp_path / "in", SeriesSpec(patient_name=IMPORTED_NAME, slices=2))
    frames = all_frames(client, datastore_id)
    found = plaintext_found(stored_objects(clear, s3_of(clear, s3_server)), needles(frames))
    assert IMPORTED_NAME.encode() in found
    assert all(any(window in found for window in frame_windows(frame)) for frame in frames.values())
    assert keys_json(clear, "list", "--datastore-id", datastore_id)["DatastoreKeys"] == []


def header_version(server: ServerProcess, s3: S3Server | None, datastore_id: str, frame_id: str) -> int:
    key = f"datastores/{datastore_id}/frames/{frame_id}"
    return sealed.Header.decode(raw_object(server, s3, key), key).key_version


def test_frames_bit_exact_after_datastore_key_and_master_key_rotation(
    make_server: ServerFactory, s3_server: S3Server
) -> None:
    server = make_server(env={"OPENHI_IMPORT_WORKERS": "1", "OPENHI_DATA_KEY_CACHE_SECONDS": str(CACHE_SECONDS)})
    s3 = s3_of(server, s3_server)
    client = server.client()
    datastore_id = new_datastore(client)
    stow_series(server, datastore_id, SeriesSpec(study="rotation", series="before", slices=2, size=80))
    before = all_frames(client, datastore_id)

    rotated = keys_json(server, "rotate", "--datastore-id", datastore_id)
    assert (rotated["DatastoreId"], rotated["Version"]) == (datastore_id, 2)
    time.sleep(CACHE_SECONDS + 0.2)  # the running server sees the new version within data_key_cache_seconds
    stow_series(server, datastore_id, SeriesSpec(study="rotation", series="after", slices=2, size=80, series_number=2))
    everything = all_frames(client, datastore_id)
    after = {frame_id: data for frame_id, data in everything.items() if frame_id not in before}
    assert len(after) == 2
    assert {header_version(server, s3, datastore_id, f) for f in before} == {1}
    assert {header_version(server, s3, datastore_id, f) for f in after} == {2}

    old_master = keys_json(server, "list")["MasterKeys"]
    master = keys_json(server, "rotate-master")
    assert master["Rewrapped"] >= 2  # at least this data store's two versions
    assert master["MasterKeyId"] not in [m["KeyId"] for m in old_master]
    assert keys_json(server, "prune-master")["Removed"] == [m["KeyId"] for m in old_master]
    listed = keys_json(server, "list")
    assert [m["KeyId"] for m in listed["MasterKeys"]] == [master["MasterKeyId"]]
    assert {k["WrappingKeyId"] for k in listed["DatastoreKeys"] if k["WrappedBy"] == "MASTER"} == {
        master["MasterKeyId"]
    }

    assert server.stop() == 0  # a new process that holds the new master key only
    server.start()
    client = server.client()
    again = all_frames(client, datastore_id)
    assert again == everything
    assert {zlib.crc32(frame) for frame in again.values()} == {zlib.crc32(frame) for frame in everything.values()}
    study = ct_dataset(SeriesSpec(study="rotation", series="before"), 0)
    wado = dicomweb_client(server, datastore_id).retrieve_instance_frames(
        study.StudyInstanceUID, study.SeriesInstanceUID, study.SOPInstanceUID, [1], media_types=(("*/*", "*"),)
    )
    assert wado[0] in before.values()


def test_deleting_a_datastore_destroys_its_key(server: ServerProcess) -> None:
    client = server.client()
    datastore_id = new_datastore(client)
    [key] = keys_json(server, "list", "--datastore-id", datastore_id)["DatastoreKeys"]
    assert (key["Version"], key["WrappedBy"], key["LegacyPlaintext"]) == (1, "MASTER", False)
    client.delete_datastore(datastoreId=datastore_id)
    wait_for_status(client, datastore_id, "DELETED")
    assert keys_json(server, "list", "--datastore-id", datastore_id)["DatastoreKeys"] == []


def test_keys_cli_errors_are_one_line(server: ServerProcess) -> None:
    missing = keys_cli(server, "rotate", "--datastore-id", "0" * 32)
    assert missing.returncode == 2
    assert missing.stderr.strip() == f"openhi: Datastore {'0' * 32} does not exist"
    malformed = keys_cli(server, "list", "--datastore-id", "nope")
    assert malformed.returncode == 2
    assert "Traceback" not in malformed.stderr


def test_an_unknown_customer_key_fails_the_creation(server: ServerProcess) -> None:
    client = server.client()
    arn = "arn:aws:kms:us-east-1:123456789012:key/99999999-8888-7777-6666-555555555555"  # not in the keyring
    datastore_id = client.create_datastore(datastoreName="no-key", kmsKeyArn=arn)["datastoreId"]
    wait_for_status(client, datastore_id, "CREATE_FAILED")


def test_a_customer_key_that_is_gone_fails_reads_clearly(make_server: ServerFactory, tmp_path: Path) -> None:
    kms = tmp_path / "kms"
    (kms / "key").mkdir(parents=True)
    key_file = kms / "key" / TEST_KMS_ARN.rsplit("/", 1)[1]
    key_file.write_bytes(os.urandom(32))
    server = make_server(
        env={"OPENHI_LOCAL_KMS_PATH": str(kms), "OPENHI_DATA_KEY_CACHE_SECONDS": "0.3", "OPENHI_IMPORT_WORKERS": "1"}
    )
    client = server.client()
    datastore_id = new_datastore(client, TEST_KMS_ARN)
    spec = SeriesSpec(study="revoked", slices=1, size=64)
    stow_series(server, datastore_id, spec)
    [(frame_id, frame)] = all_frames(client, datastore_id).items()
    assert frame

    key_file.unlink()  # the customer disables (removes) the key
    time.sleep(0.6)
    image_set_id = client.search_image_sets(datastoreId=datastore_id, searchCriteria={})["imageSetsMetadataSummaries"][
        0
    ]["imageSetId"]
    with pytest.raises(ClientError) as caught:
        client.get_image_frame(
            datastoreId=datastore_id, imageSetId=image_set_id, imageFrameInformation={"imageFrameId": frame_id}
        )
    error = caught.value.response
    assert error["Error"]["Code"] == "KMSAccessDeniedException"
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert TEST_KMS_ARN in error["Error"]["Message"]

    ds = ct_dataset(spec, 0)
    path = f"/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}/instances/{ds.SOPInstanceUID}/frames/1"
    response: requests.Response = signed_session().get(
        dicomweb_url(server, datastore_id) + path, headers={"Accept": "multipart/related; type=*/*; transfer-syntax=*"}
    )
    assert response.status_code == 400, response.text
    assert response.json()["__type"] == "KMSAccessDeniedException"
