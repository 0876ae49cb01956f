"""The audit trail end to end (issue 7 part 3; guide 20019-20108): CloudTrail records written by ``openhi serve``.

Real clients (boto3, STS, SigV4-signed DICOMweb requests) call a server whose users come from an IAM file; the
test then reads the NDJSON files under ``{data_dir}/audit`` and finds each call's record by the
``x-amzn-RequestId`` the client received. Covered: the identity of the root, of IAM users and of an assumed-role
session; an allowed and a denied call (AccessDeniedException) on both surfaces; a call whose signature is wrong;
GetImageFrame and DICOMweb frame retrieval as data events, absent when data events are off; no pixel bytes and
no secret anywhere in the files; rotation by size with retention. The audit trail does not depend on the index
or blob backend, so these servers run the embedded backend only.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from pydicom.dataset import Dataset
from tests.e2e.conftest import ServerFactory
from tests.e2e.helpers import settled, wait_for_status
from tests.e2e.import_helpers import instances, metadata
from tests.support.dicom_corpus import SeriesSpec, ct_dataset
from tests.support.dicomweb import dicomweb_client, dicomweb_url, signed_session
from tests.support.server import ACCESS_KEY_ID, SECRET_ACCESS_KEY, ServerProcess

ACCOUNT = "123456789012"
READER = ("AKIAAUDITREADER00001", "audit-reader-secret-0123456789abcdefghij")
NOBODY = ("AKIAAUDITNOBODY00001", "audit-nobody-secret-0123456789abcdefghij")
DEV = ("AKIAAUDITDEV00000001", "audit-dev-secret-0123456789abcdefghijklm")
ROLE = f"arn:aws:iam::{ACCOUNT}:role/audit-readers"
SIZE = 16
PATTERN = b"AUDIT-PIXEL-PATTERN-0123456789ab"  # 32 bytes; 16 x 16 int16 pixels = 16 repetitions
FRAMES_ELE = 'multipart/related; type="application/octet-stream"; transfer-syntax=1.2.840.10008.1.2.1'
NO_RETRIES = Config(retries={"max_attempts": 1, "mode": "standard"}, inject_host_prefix=False)


@pytest.fixture(scope="module")
def backend() -> str:
    """Embedded only (see the module docstring)."""
    return "embedded"


def _iam_file(folder: Path) -> Path:
    assume = json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": ROLE}]}
    )
    trust = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:user/dev"},
                    "Action": "sts:AssumeRole",
                }
            ],
        }
    )
    path = folder / "iam.toml"
    path.write_text(
        f"""
[[users]]
name = "reader"
access_key_id = "{READER[0]}"
secret_access_key = "{READER[1]}"
managed_policies = ["AWSHealthImagingReadOnlyAccess"]

[[users]]
name = "nobody"
access_key_id = "{NOBODY[0]}"
secret_access_key = "{NOBODY[1]}"

[[users]]
name = "dev"
access_key_id = "{DEV[0]}"
secret_access_key = "{DEV[1]}"
policies = {{ assume = '{assume}' }}

[[roles]]
name = "audit-readers"
trust_policy = '{trust}'
managed_policies = ["AWSHealthImagingReadOnlyAccess"]
"""
    )
    return path


def _datasets() -> list[Dataset]:
    spec = SeriesSpec(study="audit", series="audit", patient_id="AUDIT-1", slices=2, size=SIZE)
    datasets = []
    for index in range(spec.slices):
        ds = ct_dataset(spec, index)
        ds.PixelData = PATTERN * (SIZE * SIZE * 2 // len(PATTERN))
        datasets.append(ds)
    return datasets


def _records(server: ServerProcess) -> list[dict[str, Any]]:
    folder = server.data_dir / "audit"
    return [
        json.loads(line)
        for path in sorted(folder.glob("audit-*.ndjson"))
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]


def _wait_for(server: ServerProcess, *request_ids: str, timeout: float = 15.0) -> dict[str, dict[str, Any]]:
    """The records of ``request_ids`` (by requestID), once the writer thread has written them all."""
    deadline = time.monotonic() + timeout
    while True:
        found = {r["requestID"]: r for r in _records(server) if r.get("requestID") in request_ids}
        if len(found) == len(request_ids) or time.monotonic() > deadline:
            assert set(found) == set(request_ids), f"missing audit records: {set(request_ids) - set(found)}"
            return found
        time.sleep(0.05)


def _request_id(answer: dict[str, Any]) -> str:
    request_id: str = answer["ResponseMetadata"]["RequestId"]
    return request_id


def _failed(call: Any, **kwargs: Any) -> tuple[str, str]:
    """(error code, request id) of a call that must fail."""
    with pytest.raises(ClientError) as caught:
        call(**kwargs)
    response: dict[str, Any] = dict(caught.value.response)
    return response["Error"]["Code"], _request_id(response)


class World:
    """A server with IAM users, one data store holding one STOWed series, and the ids a test needs."""

    def __init__(self, server: ServerProcess) -> None:
        self.server = server
        root = server.client()
        self.datastore: str = root.create_datastore(datastoreName="audit")["datastoreId"]
        wait_for_status(root, self.datastore, "ACTIVE")
        self.datasets = _datasets()
        dicomweb_client(server, self.datastore).store_instances(datasets=self.datasets)
        summaries = root.search_image_sets(datastoreId=self.datastore)["imageSetsMetadataSummaries"]
        self.image_set: str = summaries[0]["imageSetId"]
        entry = next(iter(instances(metadata(root, self.datastore, self.image_set)).values()))
        self.frame_id: str = entry["ImageFrames"][0]["ID"]

    def frame_url(self, index: int = 0) -> str:
        ds = self.datasets[index]
        return (
            f"{dicomweb_url(self.server, self.datastore)}/studies/{ds.StudyInstanceUID}/series/"
            f"{ds.SeriesInstanceUID}/instances/{ds.SOPInstanceUID}/frames/1"
        )


@pytest.fixture(scope="module")
def world(make_server: ServerFactory, tmp_path_factory: pytest.TempPathFactory) -> World:
    return World(make_server(env={"OPENHI_IAM_FILE": str(_iam_file(tmp_path_factory.mktemp("iam")))}))


@pytest.fixture(scope="module")
def quiet_world(make_server: ServerFactory) -> World:
    """Data events switched off."""
    return World(make_server(env={"OPENHI_AUDIT_DATA_EVENTS": "false"}))


def test_root_call_recorded_with_cloudtrail_fields(world: World) -> None:
    root = world.server.client()
    answer = root.create_datastore(datastoreName="audited")
    record = _wait_for(world.server, _request_id(answer))[_request_id(answer)]
    assert record["eventVersion"] == "1.08"
    assert record["userIdentity"] == {
        "type": "Root",
        "principalId": ACCOUNT,
        "arn": f"arn:aws:iam::{ACCOUNT}:root",
        "accountId": ACCOUNT,
        "accessKeyId": ACCESS_KEY_ID,
    }
    assert record["eventSource"] == "medical-imaging.amazonaws.com"
    assert record["eventName"] == "CreateDatastore"
    assert record["awsRegion"] == "us-east-1"
    assert record["sourceIPAddress"] == "127.0.0.1"
    assert record["userAgent"].startswith("Boto3/")
    assert record["requestParameters"]["datastoreName"] == "audited"
    assert record["responseElements"] == {"datastoreId": answer["datastoreId"], "datastoreStatus": "CREATING"}
    assert "errorCode" not in record
    assert uuid.UUID(record["eventID"]).version == 4
    assert (record["readOnly"], record["eventType"], record["managementEvent"]) == (False, "AwsApiCall", True)
    assert (record["eventCategory"], record["recipientAccountId"]) == ("Management", ACCOUNT)
    assert time.strptime(record["eventTime"], "%Y-%m-%dT%H:%M:%SZ")


def test_allowed_and_denied_calls_of_an_iam_user(world: World) -> None:
    reader = world.server.client(aws_access_key_id=READER[0], aws_secret_access_key=READER[1])
    nobody = world.server.client(aws_access_key_id=NOBODY[0], aws_secret_access_key=NOBODY[1])
    allowed = _request_id(reader.get_datastore(datastoreId=world.datastore))
    code, denied = _failed(nobody.get_datastore, datastoreId=world.datastore)
    assert code == "AccessDeniedException"
    records = _wait_for(world.server, allowed, denied)

    ok = records[allowed]
    assert ok["userIdentity"]["type"] == "IAMUser"
    assert ok["userIdentity"]["arn"] == f"arn:aws:iam::{ACCOUNT}:user/reader"
    assert ok["userIdentity"]["accessKeyId"] == READER[0]
    assert ok["userIdentity"]["userName"] == "reader"
    assert ok["userIdentity"]["principalId"].startswith("AIDA")
    assert (ok["eventName"], ok["readOnly"], ok["responseElements"]) == ("GetDatastore", True, None)
    assert ok["requestParameters"] == {"datastoreId": world.datastore}
    assert ok["resources"][0]["ARN"] == f"arn:aws:medical-imaging:us-east-1:{ACCOUNT}:datastore/{world.datastore}"

    no = records[denied]
    assert no["userIdentity"]["arn"] == f"arn:aws:iam::{ACCOUNT}:user/nobody"
    assert no["userIdentity"]["accessKeyId"] == NOBODY[0]
    assert no["errorCode"] == "AccessDeniedException"
    assert "user/nobody" in no["errorMessage"]
    assert no["responseElements"] is None
    assert no["additionalEventData"]["httpStatusCode"] == 403


def test_assumed_role_session_identity(world: World) -> None:
    sts = boto3.client(
        "sts",
        endpoint_url=world.server.endpoint,
        region_name="us-east-1",
        aws_access_key_id=DEV[0],
        aws_secret_access_key=DEV[1],
        config=NO_RETRIES,
    )
    credentials = sts.assume_role(RoleArn=ROLE, RoleSessionName="audit-session")["Credentials"]
    session = world.server.client(
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
    )
    caller = sts.get_caller_identity()  # the dev user; the session's own principal id is checked below
    assert caller["Arn"].endswith(":user/dev")
    listed = _request_id(session.list_datastores())
    code, denied = _failed(session.create_datastore, datastoreName="by-session")
    assert code == "AccessDeniedException"
    records = _wait_for(world.server, listed, denied)
    identity = records[listed]["userIdentity"]
    assert identity["type"] == "AssumedRole"
    assert identity["arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/audit-readers/audit-session"
    assert identity["accessKeyId"] == credentials["AccessKeyId"]
    assert identity["accountId"] == ACCOUNT
    issuer = identity["sessionContext"]["sessionIssuer"]
    assert issuer == {
        "type": "Role",
        "principalId": identity["principalId"].split(":")[0],
        "arn": ROLE,
        "accountId": ACCOUNT,
        "userName": "audit-readers",
    }
    assert identity["principalId"].startswith("AROA")
    assert identity["principalId"].endswith(":audit-session")
    as_session = boto3.client(
        "sts",
        endpoint_url=world.server.endpoint,
        region_name="us-east-1",
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
        config=NO_RETRIES,
    )
    assert as_session.get_caller_identity()["UserId"] == identity["principalId"]  # what STS reports
    assert records[denied]["errorCode"] == "AccessDeniedException"
    assert records[denied]["userIdentity"]["type"] == "AssumedRole"
    _no_secret_in_files(world.server, credentials["SecretAccessKey"], credentials["SessionToken"])


def test_wrong_signature_recorded_without_identity(world: World) -> None:
    forged = world.server.client(aws_access_key_id=READER[0], aws_secret_access_key="not-the-secret")
    code, request_id = _failed(forged.list_datastores)
    record = _wait_for(world.server, request_id)[request_id]
    assert record["userIdentity"] == {"type": "Unknown"}
    assert record["errorCode"] == code
    assert record["eventName"] == "Unknown"  # the native edge authenticates before it routes


def test_get_image_frame_is_a_data_event(world: World) -> None:
    root = world.server.client()
    answer = root.get_image_frame(
        datastoreId=world.datastore, imageSetId=world.image_set, imageFrameInformation={"imageFrameId": world.frame_id}
    )
    payload = answer["imageFrameBlob"].read()
    record = _wait_for(world.server, _request_id(answer))[_request_id(answer)]
    assert record["eventName"] == "GetImageFrame"
    assert (record["managementEvent"], record["eventCategory"], record["readOnly"]) == (False, "Data", True)
    assert record["responseElements"] is None
    assert record["requestParameters"] == {
        "datastoreId": world.datastore,
        "imageSetId": world.image_set,
        "imageFrameInformation": {"imageFrameId": world.frame_id},
    }
    assert [r["type"] for r in record["resources"]] == [
        "AWS::MedicalImaging::Datastore",
        "AWS::MedicalImaging::ImageSet",
    ]
    _no_bytes_in_files(world.server, payload)


def test_dicomweb_frames_are_data_events_and_denials_are_recorded(world: World) -> None:
    allowed = signed_session().get(world.frame_url(), headers={"Accept": FRAMES_ELE})
    assert allowed.status_code == 200
    assert PATTERN in allowed.content  # the pixels went out ...
    denied = signed_session(access_key_id=NOBODY[0], secret=NOBODY[1]).get(
        world.frame_url(), headers={"Accept": FRAMES_ELE}
    )
    assert denied.status_code == 403
    ok_id, denied_id = allowed.headers["x-amzn-RequestId"], denied.headers["x-amzn-RequestId"]
    records = _wait_for(world.server, ok_id, denied_id)
    ok = records[ok_id]
    ds = world.datasets[0]
    assert ok["eventName"] == "GetDICOMInstanceFrames"
    assert (ok["managementEvent"], ok["eventCategory"], ok["readOnly"]) == (False, "Data", True)
    assert ok["requestParameters"] == {
        "datastoreId": world.datastore,
        "studyInstanceUID": ds.StudyInstanceUID,
        "seriesInstanceUID": ds.SeriesInstanceUID,
        "sopInstanceUID": ds.SOPInstanceUID,
        "frameList": "1",
    }
    assert ok["userIdentity"]["type"] == "Root"
    assert ok["additionalEventData"]["surface"] == "dicomweb"
    assert records[denied_id]["errorCode"] == "AccessDeniedException"
    assert records[denied_id]["userIdentity"]["userName"] == "nobody"
    _no_bytes_in_files(world.server, allowed.content[-256:])  # ... and never into the trail


def test_qido_and_stow_are_management_events(world: World) -> None:
    answer = signed_session().get(
        f"{dicomweb_url(world.server, world.datastore)}/studies",
        params={"PatientID": "AUDIT-1", "includefield": "all"},
        headers={"Accept": "application/dicom+json"},
    )
    assert answer.status_code == 200
    record = _wait_for(world.server, answer.headers["x-amzn-RequestId"])[answer.headers["x-amzn-RequestId"]]
    assert (record["eventName"], record["eventCategory"], record["readOnly"]) == (
        "SearchDICOMStudies",
        "Management",
        True,
    )
    assert record["requestParameters"] == {
        "datastoreId": world.datastore,
        "query": {"PatientID": "AUDIT-1", "includefield": "all"},
    }
    stores = [r for r in _records(world.server) if r["eventName"] == "StoreDICOM"]
    assert stores
    assert (stores[0]["eventCategory"], stores[0]["readOnly"]) == ("Management", False)


def test_metadata_blobs_never_enter_the_trail(world: World) -> None:
    root = world.server.client()
    read = root.get_image_set_metadata(datastoreId=world.datastore, imageSetId=world.image_set)
    blob = read["imageSetMetadataBlob"].read()
    latest = root.get_image_set(datastoreId=world.datastore, imageSetId=world.image_set)["versionId"]
    patch = json.dumps({"SchemaVersion": 1.1, "Patient": {"DICOM": {"PatientName": "AUDIT^PATCH"}}})
    updated = root.update_image_set_metadata(
        datastoreId=world.datastore,
        imageSetId=world.image_set,
        latestVersionId=latest,
        updateImageSetMetadataUpdates={"DICOMUpdates": {"updatableAttributes": patch}},
    )
    settled(root, world.datastore, world.image_set)
    records = _wait_for(world.server, _request_id(read), _request_id(updated))
    assert records[_request_id(read)]["responseElements"] is None
    update = records[_request_id(updated)]
    attributes = update["requestParameters"]["updateImageSetMetadataUpdates"]["DICOMUpdates"]["updatableAttributes"]
    assert attributes == f"<{len(patch)} bytes>"
    assert update["responseElements"]["imageSetId"] == world.image_set
    _no_bytes_in_files(world.server, blob[:64])
    assert "AUDIT^PATCH" not in _all_text(world.server)


def test_no_pixels_and_no_secret_anywhere(world: World) -> None:
    _no_secret_in_files(world.server, SECRET_ACCESS_KEY, READER[1], NOBODY[1], DEV[1])
    text = _all_text(world.server)
    assert PATTERN.decode() not in text
    assert base64.b64encode(PATTERN * 3).decode()[:40] not in text
    assert "Authorization" not in text
    assert "AWS4-HMAC-SHA256" not in text


def test_one_file_per_process_named_with_its_pid(world: World) -> None:
    assert world.server.process is not None
    names = [p.name for p in (world.server.data_dir / "audit").glob("audit-*.ndjson")]
    assert names
    assert all(f"-{world.server.process.pid}-" in name for name in names)


def test_data_events_switched_off(quiet_world: World) -> None:
    root = quiet_world.server.client()
    frame = root.get_image_frame(
        datastoreId=quiet_world.datastore,
        imageSetId=quiet_world.image_set,
        imageFrameInformation={"imageFrameId": quiet_world.frame_id},
    )
    web = signed_session().get(quiet_world.frame_url(), headers={"Accept": FRAMES_ELE})
    assert web.status_code == 200
    later = _request_id(root.get_image_set(datastoreId=quiet_world.datastore, imageSetId=quiet_world.image_set))
    _wait_for(quiet_world.server, later)  # one writer, in order: what came before is written too
    ids = {r.get("requestID") for r in _records(quiet_world.server)}
    assert _request_id(frame) not in ids
    assert web.headers["x-amzn-RequestId"] not in ids
    names = {r["eventName"] for r in _records(quiet_world.server)}
    assert {"StoreDICOM", "SearchImageSets", "GetImageSet"} <= names
    assert not names & {"GetImageFrame", "GetDICOMInstanceFrames"}


def _parent_of(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def test_each_worker_process_writes_its_own_files(make_server: ServerFactory) -> None:
    server = make_server(args=["--workers", "2"])
    assert server.process is not None

    def calls(_: int) -> list[str]:
        client = server.client()
        return [_request_id(client.list_datastores()) for _ in range(10)]

    with ThreadPoolExecutor(4) as pool:
        ids = [request_id for batch in pool.map(calls, range(4)) for request_id in batch]
    _wait_for(server, *ids)
    assert sorted(r["requestID"] for r in _records(server)) == sorted(ids)  # each call once, every line whole
    writers = {int(p.name.split("-")[2]) for p in (server.data_dir / "audit").glob("audit-*.ndjson")}
    assert server.process.pid not in writers  # the supervisor serves nothing and writes nothing
    assert all(_parent_of(pid) == server.process.pid for pid in writers)  # worker processes, each its own files


@pytest.fixture(scope="module")
def small_files(make_server: ServerFactory) -> ServerProcess:
    return make_server(env={"OPENHI_AUDIT_MAX_BYTES": "4000", "OPENHI_AUDIT_KEEP_FILES": "3"})


def test_rotation_by_size_keeps_the_newest_files(small_files: ServerProcess) -> None:
    client = small_files.client()
    ids = [_request_id(client.list_datastores()) for _ in range(40)]
    _wait_for(small_files, ids[-1])
    files = sorted((small_files.data_dir / "audit").glob("audit-*.ndjson"))
    assert len(files) == 3
    for path in files:
        lines = path.read_bytes().splitlines()
        assert path.stat().st_size <= 4000
        assert all(json.loads(line)["eventName"] == "ListDatastores" for line in lines)
    kept = {r["requestID"] for r in _records(small_files)}
    assert ids[-1] in kept
    assert ids[0] not in kept  # in a deleted file


def _all_text(server: ServerProcess) -> str:
    return "".join(p.read_text(encoding="utf-8") for p in (server.data_dir / "audit").glob("audit-*.ndjson"))


def _all_bytes(server: ServerProcess) -> bytes:
    return b"".join(p.read_bytes() for p in (server.data_dir / "audit").glob("audit-*.ndjson"))


def _no_secret_in_files(server: ServerProcess, *secrets: str) -> None:
    data = _all_bytes(server)
    assert data
    for secret in secrets:
        assert secret.encode() not in data


def _no_bytes_in_files(server: ServerProcess, payload: bytes) -> None:
    data = _all_bytes(server)
    chunk = payload[:48]
    assert len(chunk) >= 16
    assert chunk not in data
    assert base64.b64encode(chunk)[:32] not in data
    assert chunk.hex().encode()[:32] not in data
