"""Raw responses of the implemented operations, checked against the botocore model's output shapes.

boto3 silently drops JSON fields its model does not declare and passes wrong types through, so a
client-level test would not notice them. Here the requests are signed with botocore's ``SigV4Auth``
and sent with httpx, and the raw JSON body is checked: every required member present, no undeclared
member (recursively), enums within the model's enum, timestamps JSON numbers, strings matching the
model's patterns and lengths. A scenario drives every implemented operation, including the optional
members (kmsKeyArn, lambdaAuthorizerArn, nextToken ...), and every member the model declares must show
up in some response, so a model that grows a member shows up here. The few members OpenHI cannot emit
yet are named in ``NOT_YET_EMITTED``, with the reason for each.

The import part of the scenario imports a synthetic series from a local folder (``file:///`` input and
output URIs, an OpenHI extension: the embedded server has no S3), twice, so its image set has two
versions. GetImageFrame and GetImageSetMetadata answer a streaming blob payload, not a JSON body: their
header members and payload are checked separately (``STREAMING``). The image set then goes through the
asynchronous writes, each awaited (GetImageSet until it is no longer LOCKED) before the next one on the same
image set: UpdateImageSetMetadata (a DICOMUpdates patch with the force / includeStudyImageSets flags, then
revertToVersionId), CopyImageSet (whole to a new image set; one instance to a new image set; another instance
into that one, a consistent destination), DeleteImageSet (GetImageSet then answers DELETED with deletedAt).
SearchImageSets finally runs without criteria, with EQUAL DICOMPatientId, BETWEEN DICOMStudyDateAndTime and
BETWEEN createdAt with sorts, and one image set per page with nextToken, next to another patient's image set.
"""

from __future__ import annotations

import gzip
import io
import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest, HeadersDict
from botocore.credentials import Credentials
from botocore.model import Shape, StructureShape
from botocore.parsers import create_parser
from botocore.response import StreamingBody
from botocore.serialize import create_serializer
from botocore.utils import percent_encode_sequence
from tests.conformance.conftest import ServerFactory
from tests.conformance.model_support import (
    REGION,
    SERVICE_NAME,
    operation,
    operation_names,
    output_shape,
    shape_violations,
)
from tests.support.dicom_corpus import SeriesSpec, uid, write_series
from tests.support.server import ACCESS_KEY_ID, SECRET_ACCESS_KEY, ServerProcess

from openhi.api.aws.handlers import PLANNED

IMPLEMENTED = sorted(set(operation_names()) - set(PLANNED))
# GetImageFrame and GetImageSetMetadata answer a streaming blob payload (the frame; the gzip JSON document)
# with their other members in headers. They have no JSON body, so the JSON-body checks skip them and
# test_streaming_* check their header members and payloads instead.
STREAMING = {"GetImageFrame", "GetImageSetMetadata"}
JSON_BODY = [name for name in IMPLEMENTED if name not in STREAMING]
# An OpenHI extension (docs/compatibility.md): import jobs also read and write local folders, and echo the
# file:/// URIs they were given. Only the import job operations get it; the scenario's s3:// job shows
# that its URIs still meet the model's own S3Uri pattern.
IMPORT_JOB_OPERATIONS = {"StartDICOMImportJob", "GetDICOMImportJob", "ListDICOMImportJobs"}
FILE_URIS = {"S3Uri": r"file:///.*"}

# Members the model declares that OpenHI cannot emit yet, by operation: member path -> why. Every other
# declared member must show up in the scenario; a member listed here that shows up fails too (remove it from
# the list then).
_OVERRIDES = "force overrides are not recorded per version yet"
_FAILED = (
    "only a failed background write (UPDATE_FAILED / COPY_FAILED) sets a message, and no API input makes the "
    "background work fail"
)
NOT_YET_EMITTED: dict[str, dict[str, str]] = {
    "GetImageSet": {
        ".overrides": _OVERRIDES,
        ".overrides.forced": _OVERRIDES,
        ".message": _FAILED,
    },
    "ListImageSetVersions": {
        ".imageSetPropertiesList[].overrides": _OVERRIDES,
        ".imageSetPropertiesList[].overrides.forced": _OVERRIDES,
        ".imageSetPropertiesList[].deletedAt": (
            "a deleted image set answers ResourceNotFoundException to ListImageSetVersions (only GetImageSet "
            "keeps answering for it), so no listed version belongs to a deleted image set"
        ),
        ".imageSetPropertiesList[].message": (
            "a failed background write leaves no version behind and the message goes on the image set "
            "(GetImageSet), never on a version row; " + _FAILED
        ),
    },
    "UpdateImageSetMetadata": {
        ".message": "the answer comes before the background work; a failure's message is read with GetImageSet"
    },
}

KMS_KEY_ARN = "arn:aws:kms:us-east-1:123456789012:key/11111111-2222-3333-4444-555555555555"
LAMBDA_ARN = "arn:aws:lambda:us-east-1:123456789012:function:openhi-authorizer"
ROLE_ARN = "arn:aws:iam::123456789012:role/ImportRole"
IMPORT_CONFIGURATION = {
    "dicomJsonMetadataImportConfiguration": {
        "dicomMetadataMappings": [
            {"studyInstanceUID": "1.2.3", "seriesInstanceUID": "1.2.3.4", "metadataFilePath": "meta/1.json"}
        ]
    }
}
HTJ2K_MEDIA_TYPE = "image/jph"
IMPORTED = SeriesSpec(slices=2, size=32)  # two instances with distinct SOP Instance UIDs
OTHER_PATIENT = SeriesSpec(study="study-2", series="series-9", patient_id="PAT-2", slices=1, size=16)
PATIENT_NAME_PATCH = json.dumps({"SchemaVersion": 1.1, "Patient": {"DICOM": {"PatientName": "X^Y"}}}).encode()


@dataclass(frozen=True)
class RawResponse:
    """One response as it came off the wire: the body is not decoded, even with Content-Encoding: gzip."""

    status_code: int
    headers: httpx.Headers
    content: bytes

    @property
    def text(self) -> str:
        return self.content.decode(errors="replace")

    def json(self) -> Any:
        return json.loads(self.content)


class RawClient:
    """Builds requests with botocore's serializer, signs them with SigV4Auth, sends them with httpx."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        self.http = httpx.Client(timeout=30.0)
        self.credentials = Credentials(ACCESS_KEY_ID, SECRET_ACCESS_KEY)
        self.serializer = create_serializer("rest-json", include_validation=True)
        self.recorded: dict[str, list[RawResponse]] = {}

    def send(self, name: str, **params: Any) -> RawResponse:
        """Send one request; record the raw response (200 required) and return it."""
        request = self.serializer.serialize_to_request(params, operation(name))
        url = self.endpoint + request["url_path"]
        if request["query_string"]:
            url += "?" + percent_encode_sequence(request["query_string"])
        body = request["body"] or b""
        if isinstance(body, str):
            body = body.encode()
        signed = AWSRequest(method=request["method"], url=url, data=body, headers=dict(request["headers"]))
        SigV4Auth(self.credentials, SERVICE_NAME, REGION).add_auth(signed)
        # Accept-Encoding: identity is what botocore sends (http.client's default); httpx would ask for gzip.
        headers = {**dict(signed.headers.items()), "Accept-Encoding": "identity"}
        with self.http.stream(request["method"], url, headers=headers, content=body) as streamed:
            # iter_raw: the bytes botocore would see (httpx would otherwise gunzip Content-Encoding: gzip).
            response = RawResponse(streamed.status_code, streamed.headers, b"".join(streamed.iter_raw()))
        assert response.status_code == 200, f"{name}: {response.status_code} {response.text}"
        self.recorded.setdefault(name, []).append(response)
        return response

    def call(self, name: str, **params: Any) -> dict[str, Any]:
        """Send one request; record the raw response; return its JSON body (200 required)."""
        document: dict[str, Any] = self.send(name, **params).json()
        return document

    def close(self) -> None:
        self.http.close()


def _wait_until(raw: RawClient, datastore_id: str, status: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        current = raw.call("GetDatastore", datastoreId=datastore_id)["datastoreProperties"]["datastoreStatus"]
        if current == status:
            return
        assert time.monotonic() < deadline, f"datastore {datastore_id} stuck in {current}"
        time.sleep(0.1)


def _import(raw: RawClient, datastore_id: str, input_uri: str, output_uri: str, **optional: Any) -> dict[str, Any]:
    """StartDICOMImportJob, then GetDICOMImportJob until the job ends; the job's properties."""
    started = raw.call(
        "StartDICOMImportJob",
        datastoreId=datastore_id,
        clientToken=uuid.uuid4().hex,
        dataAccessRoleArn=ROLE_ARN,
        inputS3Uri=input_uri,
        outputS3Uri=output_uri,
        **optional,
    )
    assert (started["datastoreId"], started["jobStatus"]) == (datastore_id, "SUBMITTED"), started
    deadline = time.monotonic() + 120.0
    while True:
        job: dict[str, Any] = raw.call("GetDICOMImportJob", datastoreId=datastore_id, jobId=started["jobId"])[
            "jobProperties"
        ]
        if job["jobStatus"] in ("COMPLETED", "FAILED"):
            return job
        assert time.monotonic() < deadline, f"import job stuck: {job}"
        time.sleep(0.1)


def _drive_imports(raw: RawClient, folder: Path) -> tuple[str, str]:
    """Import jobs (two complete, two fail), then every read of the image set they made (2 versions).

    Returns the data store id and the image set's id.
    """
    series = folder / "input"
    write_series(series, IMPORTED)
    output = folder / "output"
    output.mkdir()
    input_uri, output_uri = f"{series.as_uri()}/", f"{output.as_uri()}/"
    datastore_id = raw.call("CreateDatastore", clientToken=uuid.uuid4().hex, datastoreName="conformance-imports")[
        "datastoreId"
    ]
    _wait_until(raw, datastore_id, "ACTIVE")

    first = _import(
        raw,
        datastore_id,
        input_uri,
        output_uri,
        jobName="conformance-first",
        inputOwnerAccountId="123456789012",
    )
    assert first["jobStatus"] == "COMPLETED", first
    assert (first["jobName"], first["inputS3Uri"], first["outputS3Uri"]) == (
        "conformance-first",
        input_uri,
        output_uri,
    )
    success = output / f"{datastore_id}-DicomImport-{first['jobId']}" / "SUCCESS" / "success.ndjson"
    lines = [json.loads(line) for line in success.read_text().splitlines() if line.strip()]
    image_set_ids = {line["importResponse"]["imageSetId"] for line in lines}
    assert len(lines) == 2, lines
    assert len(image_set_ids) == 1, lines
    (image_set_id,) = image_set_ids
    again = _import(raw, datastore_id, input_uri, output_uri)  # the same series: the image set's version 2
    assert again["jobStatus"] == "COMPLETED", again

    missing = _import(
        raw, datastore_id, "file:///does/not/exist/", output_uri, importConfiguration=IMPORT_CONFIGURATION
    )
    assert missing["jobStatus"] == "FAILED", missing
    assert missing.get("message"), missing
    assert missing["importConfiguration"] == IMPORT_CONFIGURATION
    # A bucket the embedded server cannot reach: the job fails, and its URIs meet the model's S3Uri pattern.
    unreachable = _import(raw, datastore_id, "s3://bucket-in/prefix/", "s3://bucket-out/prefix/")
    assert unreachable["jobStatus"] == "FAILED", unreachable
    assert unreachable.get("message"), unreachable

    page = raw.call("ListDICOMImportJobs", datastoreId=datastore_id, maxResults=1)
    assert len(page["jobSummaries"]) == 1, page
    assert "nextToken" in page, "four jobs, one per page: the first page must carry nextToken"
    raw.call("ListDICOMImportJobs", datastoreId=datastore_id, maxResults=1, nextToken=page["nextToken"])
    failed = raw.call("ListDICOMImportJobs", datastoreId=datastore_id, jobStatus="FAILED")["jobSummaries"]
    assert {job["jobId"] for job in failed} == {missing["jobId"], unreachable["jobId"]}
    assert all(job.get("message") for job in failed), failed
    raw.call("ListDICOMImportJobs", datastoreId=datastore_id, jobStatus="COMPLETED")
    assert len(raw.call("ListDICOMImportJobs", datastoreId=datastore_id)["jobSummaries"]) == 4

    ids = {"datastoreId": datastore_id, "imageSetId": image_set_id}
    assert raw.call("GetImageSet", **ids)["versionId"] == "2"
    assert raw.call("GetImageSet", **ids, versionId="1")["versionId"] == "1"
    versions = raw.call("ListImageSetVersions", **ids, maxResults=1)
    assert len(versions["imageSetPropertiesList"]) == 1, versions
    assert "nextToken" in versions, "two versions, one per page: the first page must carry nextToken"
    rest = raw.call("ListImageSetVersions", **ids, maxResults=1, nextToken=versions["nextToken"])
    listed = versions["imageSetPropertiesList"] + rest["imageSetPropertiesList"]
    assert sorted(version["versionId"] for version in listed) == ["1", "2"]
    raw.call("ListImageSetVersions", **ids)

    document = json.loads(gzip.decompress(raw.send("GetImageSetMetadata", **ids).content))
    raw.send("GetImageSetMetadata", **ids, versionId="1")
    frame_ids = [
        instance["ImageFrames"][0]["ID"]
        for series_entry in document["Study"]["Series"].values()
        for instance in series_entry["Instances"].values()
    ]
    assert len(frame_ids) == 2, document
    for frame_id in frame_ids:
        raw.send("GetImageFrame", **ids, imageFrameInformation={"imageFrameId": frame_id})
    deadline = time.monotonic() + 10.0  # storage tiers: the server writes accesses every 0.1 s (fixture server)
    while "lastAccessedAt" not in raw.call("GetImageSet", **ids):
        assert time.monotonic() < deadline, "GetImageFrame did not set lastAccessedAt"
        time.sleep(0.1)
    return datastore_id, image_set_id


def _settled(raw: RawClient, datastore_id: str, image_set_id: str, timeout: float = 60.0) -> dict[str, Any]:
    """GetImageSet until the image set's background write is over (no longer LOCKED); its properties."""
    deadline = time.monotonic() + timeout
    while True:
        properties = raw.call("GetImageSet", datastoreId=datastore_id, imageSetId=image_set_id)
        if properties["imageSetState"] != "LOCKED":
            return properties
        assert time.monotonic() < deadline, f"image set {image_set_id} stuck: {properties}"
        time.sleep(0.05)


def _instances(raw: RawClient, datastore_id: str, image_set_id: str) -> dict[str, Any]:
    """SOP Instance UID -> instance entry of the image set's latest metadata document."""
    document = json.loads(
        gzip.decompress(raw.send("GetImageSetMetadata", datastoreId=datastore_id, imageSetId=image_set_id).content)
    )
    return {sop: entry for series in document["Study"]["Series"].values() for sop, entry in series["Instances"].items()}


def _selecting(*indexes: int) -> str:
    """copiableAttributes selecting instances of the imported series, by index."""
    instances: dict[str, dict[str, Any]] = {uid(IMPORTED.study, IMPORTED.series, index): {} for index in indexes}
    series = {uid(IMPORTED.study, IMPORTED.series): {"Instances": instances}}
    return json.dumps({"SchemaVersion": "1.1", "Study": {"Series": series}})


def _drive_writes(raw: RawClient, datastore_id: str, image_set_id: str) -> dict[str, str]:
    """UpdateImageSetMetadata (patch, revert), CopyImageSet (new, subset, merge), DeleteImageSet, each awaited.

    The imported image set (versions 1, 2) ends at version 4 with its original metadata; returns the ids of
    the copies: ``whole`` (deleted at the end), ``merged`` (instance 0, then instance 1 copied into it).
    """
    ids = {"datastoreId": datastore_id, "imageSetId": image_set_id}
    updated = raw.call(
        "UpdateImageSetMetadata",
        **ids,
        latestVersionId="2",
        force=True,
        includeStudyImageSets=True,
        updateImageSetMetadataUpdates={"DICOMUpdates": {"updatableAttributes": PATIENT_NAME_PATCH}},
    )
    assert (updated["latestVersionId"], updated["imageSetState"], updated["imageSetWorkflowStatus"]) == (
        "3",
        "LOCKED",
        "UPDATING",
    ), updated
    done = _settled(raw, datastore_id, image_set_id)
    assert (done["versionId"], done["imageSetState"], done["imageSetWorkflowStatus"]) == ("3", "ACTIVE", "UPDATED")
    document = json.loads(gzip.decompress(raw.send("GetImageSetMetadata", **ids).content))
    assert document["Patient"]["DICOM"]["PatientName"] == "X^Y"

    reverted = raw.call(
        "UpdateImageSetMetadata", **ids, latestVersionId="3", updateImageSetMetadataUpdates={"revertToVersionId": "1"}
    )
    assert (reverted["latestVersionId"], reverted["imageSetWorkflowStatus"]) == ("4", "UPDATING"), reverted
    assert _settled(raw, datastore_id, image_set_id)["versionId"] == "4"
    document = json.loads(gzip.decompress(raw.send("GetImageSetMetadata", **ids).content))
    assert document["Patient"]["DICOM"]["PatientName"] == IMPORTED.patient_name
    raw.call("GetImageSet", **ids, versionId="3")
    assert len(raw.call("ListImageSetVersions", **ids)["imageSetPropertiesList"]) == 4

    def copy(**information: Any) -> dict[str, Any]:
        answer = raw.call(
            "CopyImageSet",
            datastoreId=datastore_id,
            sourceImageSetId=image_set_id,
            copyImageSetInformation={"sourceImageSet": {"latestVersionId": "4"}, **information},
        )
        source, destination = answer["sourceImageSetProperties"], answer["destinationImageSetProperties"]
        assert (source["imageSetState"], source["imageSetWorkflowStatus"]) == (
            "LOCKED",
            "COPYING_WITH_READ_ONLY_ACCESS",
        ), answer
        assert (destination["imageSetState"], destination["imageSetWorkflowStatus"]) == ("LOCKED", "COPYING"), answer
        assert _settled(raw, datastore_id, image_set_id)["imageSetWorkflowStatus"] == "COPIED"
        copied = _settled(raw, datastore_id, destination["imageSetId"])
        assert (copied["versionId"], copied["imageSetWorkflowStatus"]) == (destination["latestVersionId"], "COPIED")
        return answer

    whole = copy()["destinationImageSetProperties"]["imageSetId"]
    assert _instances(raw, datastore_id, whole).keys() == _instances(raw, datastore_id, image_set_id).keys()
    subset = {"sourceImageSet": {"latestVersionId": "4", "DICOMCopies": {"copiableAttributes": _selecting(0)}}}
    merged = copy(**subset)["destinationImageSetProperties"]
    assert merged["latestVersionId"] == "1"
    assert set(_instances(raw, datastore_id, merged["imageSetId"])) == {uid(IMPORTED.study, IMPORTED.series, 0)}
    # Into an existing, consistent destination (same patient / study / series, no force): a distinct instance.
    into = copy(
        sourceImageSet={"latestVersionId": "4", "DICOMCopies": {"copiableAttributes": _selecting(1)}},
        destinationImageSet={"imageSetId": merged["imageSetId"], "latestVersionId": "1"},
    )["destinationImageSetProperties"]
    assert (into["imageSetId"], into["latestVersionId"]) == (merged["imageSetId"], "2")
    assert set(_instances(raw, datastore_id, merged["imageSetId"])) == {
        uid(IMPORTED.study, IMPORTED.series, index) for index in (0, 1)
    }

    deleting = raw.call("DeleteImageSet", datastoreId=datastore_id, imageSetId=whole)
    assert (deleting["imageSetId"], deleting["imageSetState"], deleting["imageSetWorkflowStatus"]) == (
        whole,
        "LOCKED",
        "DELETING",
    ), deleting
    deleted = _settled(raw, datastore_id, whole)
    assert (deleted["imageSetState"], deleted["imageSetWorkflowStatus"]) == ("DELETED", "DELETED"), deleted
    assert deleted["deletedAt"] >= deleted["createdAt"], deleted
    return {"whole": whole, "merged": merged["imageSetId"]}


def _search(raw: RawClient, datastore_id: str, criteria: dict[str, Any] | None = None, **page: Any) -> dict[str, Any]:
    params: dict[str, Any] = {"datastoreId": datastore_id, **page}
    if criteria is not None:
        params["searchCriteria"] = criteria
    return raw.call("SearchImageSets", **params)


def _found(answer: dict[str, Any]) -> list[str]:
    return [summary["imageSetId"] for summary in answer["imageSetsMetadataSummaries"]]


def _drive_search(raw: RawClient, folder: Path, datastore_id: str, image_set_id: str, merged: str) -> None:
    """SearchImageSets: no criteria, EQUAL, both BETWEENs, sorts, pages; another patient's image set to skip."""
    other_input = folder / "other"
    write_series(other_input, OTHER_PATIENT)
    output = folder / "other-output"
    output.mkdir()
    job = _import(raw, datastore_id, f"{other_input.as_uri()}/", f"{output.as_uri()}/")
    assert job["jobStatus"] == "COMPLETED", job

    everything = _search(raw, datastore_id)
    assert len(_found(everything)) == 3, everything  # the imported, the merged copy, the other patient's
    assert {image_set_id, merged} < set(_found(everything))
    assert everything["sort"] == {"sortField": "updatedAt", "sortOrder": "DESC"}
    assert "nextToken" not in everything
    summary = next(s for s in everything["imageSetsMetadataSummaries"] if s["imageSetId"] == image_set_id)
    assert (summary["version"], summary["isPrimary"]) == (4, True), summary
    assert summary["DICOMTags"]["DICOMSeriesBodyPart"] == "CHEST", summary

    patient = {"filters": [{"operator": "EQUAL", "values": [{"DICOMPatientId": IMPORTED.patient_id}]}]}
    assert set(_found(_search(raw, datastore_id, patient))) == {image_set_id, merged}

    first = _search(raw, datastore_id, patient, maxResults=1)
    assert len(_found(first)) == 1, first
    assert "nextToken" in first, "two image sets, one per page: the first page must carry nextToken"
    second = _search(raw, datastore_id, patient, maxResults=1, nextToken=first["nextToken"])
    assert set(_found(first) + _found(second)) == {image_set_id, merged}

    study_day = [
        {"DICOMStudyDateAndTime": {"DICOMStudyDate": "20240501", "DICOMStudyTime": "000000"}},
        {"DICOMStudyDateAndTime": {"DICOMStudyDate": "20240501", "DICOMStudyTime": "235959.999999"}},
    ]
    by_study = _search(
        raw,
        datastore_id,
        {
            "filters": [{"operator": "BETWEEN", "values": study_day}, patient["filters"][0]],
            "sort": {"sortField": "DICOMStudyDateAndTime", "sortOrder": "ASC"},
        },
    )
    assert set(_found(by_study)) == {image_set_id, merged}
    assert by_study["sort"] == {"sortField": "DICOMStudyDateAndTime", "sortOrder": "ASC"}

    created = [raw.call("GetImageSet", datastoreId=datastore_id, imageSetId=i)["createdAt"] for i in _found(everything)]
    window = [
        {"createdAt": datetime.fromtimestamp(min(created) - 1, UTC)},
        {"createdAt": datetime.fromtimestamp(max(created) + 1, UTC)},
    ]
    by_creation = _search(
        raw,
        datastore_id,
        {
            "filters": [{"operator": "BETWEEN", "values": window}],
            "sort": {"sortField": "createdAt", "sortOrder": "ASC"},
        },
    )
    assert set(_found(by_creation)) == set(_found(everything))
    assert by_creation["sort"] == {"sortField": "createdAt", "sortOrder": "ASC"}
    ascending = [summary["createdAt"] for summary in by_creation["imageSetsMetadataSummaries"]]
    assert ascending == sorted(ascending), by_creation


@pytest.fixture(scope="module")
def server(make_server: ServerFactory) -> ServerProcess:
    """The module's server, writing accesses every 0.1 s (storage tiers) so that lastAccessedAt shows up."""
    return make_server({"OPENHI_TIER_ACCESS_FLUSH_SECONDS": "0.1"})


@pytest.fixture(scope="module")
def recorded(server: ServerProcess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, list[RawResponse]]]:
    """Drive every implemented operation, with and without its optional members; raw responses by op."""
    raw = RawClient(server.endpoint)
    full = raw.call(
        "CreateDatastore",
        clientToken=uuid.uuid4().hex,
        datastoreName="conformance-full",
        tags={"env": "dev"},
        kmsKeyArn=KMS_KEY_ARN,
        lambdaAuthorizerArn=LAMBDA_ARN,
        losslessStorageFormat="JPEG_2000_LOSSLESS",
    )["datastoreId"]
    bare = raw.call("CreateDatastore", clientToken=uuid.uuid4().hex)["datastoreId"]
    for datastore_id in (full, bare):
        _wait_until(raw, datastore_id, "ACTIVE")
    arn = raw.call("GetDatastore", datastoreId=full)["datastoreProperties"]["datastoreArn"]
    bare_arn = raw.call("GetDatastore", datastoreId=bare)["datastoreProperties"]["datastoreArn"]

    first = raw.call("ListDatastores", maxResults=1)
    assert "nextToken" in first, "two data stores, one per page: the first page must carry nextToken"
    raw.call("ListDatastores", maxResults=1, nextToken=first["nextToken"])
    raw.call("ListDatastores", datastoreStatus="ACTIVE")
    raw.call("ListDatastores")

    raw.call("TagResource", resourceArn=arn, tags={"team": "rad", "cost-center": "42"})
    raw.call("ListTagsForResource", resourceArn=arn)
    raw.call("UntagResource", resourceArn=arn, tagKeys=["team", "not-set"])
    raw.call("ListTagsForResource", resourceArn=arn)
    raw.call("UntagResource", resourceArn=bare_arn, tagKeys=["env"])
    assert raw.call("ListTagsForResource", resourceArn=bare_arn) == {"tags": {}}

    for datastore_id in (full, bare):
        raw.call("DeleteDatastore", datastoreId=datastore_id)
        raw.call("GetDatastore", datastoreId=datastore_id)
    raw.call("ListDatastores", datastoreStatus="DELETING")

    folder = tmp_path_factory.mktemp("conformance-import")
    datastore_id, image_set_id = _drive_imports(raw, folder)
    copies = _drive_writes(raw, datastore_id, image_set_id)
    _drive_search(raw, folder, datastore_id, image_set_id, copies["merged"])
    yield raw.recorded
    raw.close()


def _declared_paths(shape: Shape, prefix: str = "", depth: int = 0) -> set[str]:
    """Every member path a body of ``shape`` may hold (lists as ``[]``; map keys are data, not paths)."""
    if depth > 8:
        return set()
    paths: set[str] = set()
    if isinstance(shape, StructureShape):
        for name, member in shape.members.items():
            if depth == 0 and member.serialization.get("location"):
                continue
            paths.add(f"{prefix}.{name}")
            paths |= _declared_paths(member, f"{prefix}.{name}", depth + 1)
    elif shape.type_name == "list":
        paths |= _declared_paths(shape.member, f"{prefix}[]", depth + 1)  # type: ignore[attr-defined]
    return paths


def _seen_paths(shape: Shape, value: Any, prefix: str = "") -> set[str]:
    paths: set[str] = set()
    if isinstance(shape, StructureShape) and isinstance(value, dict):
        for name, item in value.items():
            if name in shape.members:
                paths.add(f"{prefix}.{name}")
                paths |= _seen_paths(shape.members[name], item, f"{prefix}.{name}")
    elif shape.type_name == "list" and isinstance(value, list):
        for item in value:
            paths |= _seen_paths(shape.member, item, f"{prefix}[]")  # type: ignore[attr-defined]
    return paths


def _key_tree(value: Any) -> Any:
    """The keys of a JSON document, recursively (values replaced by their key trees or None)."""
    if isinstance(value, dict):
        return {key: _key_tree(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_key_tree(item) for item in value]
    return None


def _streaming_payload(shape: StructureShape) -> str | None:
    """The output's payload member if it is a streaming blob (no JSON body then), else None."""
    payload = shape.serialization.get("payload")
    if payload and shape.members[payload].serialization.get("streaming"):
        return str(payload)
    return None


def _header_members(shape: StructureShape) -> dict[str, str]:
    """Output member -> the response header that carries it."""
    return {
        name: member.serialization.get("name", name)
        for name, member in shape.members.items()
        if member.serialization.get("location") == "header"
    }


def _parse(name: str, response: RawResponse) -> dict[str, Any]:
    """botocore's rest-json parser on the raw response (a streaming payload as botocore hands it over)."""
    shape = output_shape(name)
    body: Any = response.content
    if _streaming_payload(shape):
        body = StreamingBody(io.BytesIO(response.content), len(response.content))
    parsed: dict[str, Any] = create_parser("rest-json").parse(
        {"status_code": 200, "headers": HeadersDict(response.headers.items()), "body": body}, shape
    )
    parsed.pop("ResponseMetadata")
    return parsed


def test_the_scenario_drives_every_implemented_operation(recorded: dict[str, list[RawResponse]]) -> None:
    assert set(recorded) == set(IMPLEMENTED)


def test_streaming_is_exactly_the_models_streaming_outputs() -> None:
    """STREAMING is pinned: a model that streams another output (or stops streaming one) fails here."""
    assert {name for name in operation_names() if _streaming_payload(output_shape(name))} == STREAMING


@pytest.mark.parametrize("name", JSON_BODY)
def test_raw_responses_conform_to_the_output_shape(name: str, recorded: dict[str, list[RawResponse]]) -> None:
    shape = output_shape(name)
    extensions = FILE_URIS if name in IMPORT_JOB_OPERATIONS else None
    for response in recorded[name]:
        assert response.headers["content-type"].startswith("application/json")
        assert response.headers.get("x-amzn-requestid")
        document = json.loads(response.content)
        assert isinstance(document, dict)
        assert shape_violations(shape, document, body=True, extra_patterns=extensions) == [], response.text


def test_s3_uris_of_import_jobs_meet_the_models_own_pattern(recorded: dict[str, list[RawResponse]]) -> None:
    """The file:/// extension aside, GetDICOMImportJob answers conform with no extension at all."""
    shape = output_shape("GetDICOMImportJob")
    documents = [response.json() for response in recorded["GetDICOMImportJob"]]
    s3_jobs = [d for d in documents if d["jobProperties"]["inputS3Uri"].startswith("s3://")]
    assert s3_jobs, "the scenario must run a job with s3:// URIs"
    for document in s3_jobs:
        assert shape_violations(shape, document, body=True) == [], document


@pytest.mark.parametrize("name", sorted(STREAMING))
def test_streaming_responses_carry_the_models_header_members(name: str, recorded: dict[str, list[RawResponse]]) -> None:
    shape = output_shape(name)
    for response in recorded[name]:
        assert response.headers.get("x-amzn-requestid")
        for member, header in _header_members(shape).items():
            assert response.headers.get(header), f"{name}: header {header} ({member}) missing"
        assert response.content, f"{name}: empty payload"


def test_image_set_metadata_is_gzip_json(recorded: dict[str, list[RawResponse]]) -> None:
    for response in recorded["GetImageSetMetadata"]:
        assert response.headers["content-type"] == "application/json"
        assert response.headers["content-encoding"] == "gzip"
        document = json.loads(gzip.decompress(response.content))
        assert document["SchemaVersion"] == "1.1"
        assert set(document) >= {"DatastoreID", "ImageSetID", "Patient", "Study"}


def test_image_frames_are_htj2k(recorded: dict[str, list[RawResponse]]) -> None:
    """The scenario's data store has the default lossless format, HTJ2K: frames are ``image/jph``."""
    for response in recorded["GetImageFrame"]:
        assert response.headers["content-type"] == HTJ2K_MEDIA_TYPE
        assert "content-encoding" not in response.headers


@pytest.mark.parametrize("name", IMPLEMENTED)
def test_every_declared_member_is_emitted_somewhere(name: str, recorded: dict[str, list[RawResponse]]) -> None:
    """The scenario covers every member of the output shape: a member the model adds shows up here.

    Streaming outputs: every member (payload and headers) must come out of botocore's parser.
    """
    shape = output_shape(name)
    seen: set[str] = set()
    if name in STREAMING:
        declared = {f".{member}" for member in shape.members}
        for response in recorded[name]:
            seen |= {f".{member}" for member in _parse(name, response)}
    else:
        declared = _declared_paths(shape)
        for response in recorded[name]:
            seen |= _seen_paths(shape, json.loads(response.content))
    not_yet = set(NOT_YET_EMITTED.get(name, {}))
    assert declared - seen - not_yet == set(), "declared, never emitted, not in NOT_YET_EMITTED"
    assert not_yet - declared == set(), "NOT_YET_EMITTED names members the model does not declare"
    assert not_yet & seen == set(), "emitted now: remove these from NOT_YET_EMITTED"


def test_not_yet_emitted_names_only_implemented_operations() -> None:
    assert set(NOT_YET_EMITTED) <= set(IMPLEMENTED)


@pytest.mark.parametrize("name", IMPLEMENTED)
def test_boto3_keeps_every_field(name: str, recorded: dict[str, list[RawResponse]]) -> None:
    """botocore's own parser yields exactly the raw document's keys: nothing dropped, nothing added.

    Streaming outputs: the payload comes through byte for byte, each header member as its header says.
    """
    shape = output_shape(name)
    payload = _streaming_payload(shape)
    for response in recorded[name]:
        parsed = _parse(name, response)
        if payload is None:
            assert _key_tree(parsed) == _key_tree(json.loads(response.content))
            continue
        assert parsed.pop(payload).read() == response.content
        headers = {member: response.headers[header] for member, header in _header_members(shape).items()}
        assert parsed == headers


# --- the checker itself: it must catch what it claims to ------------------------------------------


def test_the_checker_refuses_what_boto3_would_drop_or_misread() -> None:
    shape = output_shape("GetDatastore")
    good = {
        "datastoreProperties": {
            "datastoreId": "a" * 32,
            "datastoreName": "n",
            "datastoreStatus": "ACTIVE",
            "createdAt": 1704067200.5,
            "updatedAt": 1704067200,
        }
    }
    assert shape_violations(shape, good, body=True) == []
    props = good["datastoreProperties"]
    bad_cases: list[dict[str, Any]] = [
        {"datastoreProperties": {**props, "extra": 1}},
        {"datastoreProperties": {k: v for k, v in props.items() if k != "datastoreName"}},
        {"datastoreProperties": {**props, "datastoreStatus": "READY"}},
        {"datastoreProperties": {**props, "createdAt": "2024-01-01T00:00:00Z"}},
        {"datastoreProperties": {**props, "createdAt": True}},
        {"datastoreProperties": {**props, "datastoreId": "A" * 32}},
        {"datastoreProperties": {**props, "kmsKeyArn": None}},
        {"datastoreProperties": {**props, "datastoreName": ""}},
        {**good, "ResponseMetadata": {}},
    ]
    for bad in bad_cases:
        assert shape_violations(shape, bad, body=True), bad
    tags = output_shape("ListTagsForResource")
    assert shape_violations(tags, {"tags": {"aws:reserved": "x"}}, body=True)
    assert shape_violations(tags, {}, body=True)


def test_the_file_uri_extension_widens_only_the_s3_uri_pattern() -> None:
    shape = output_shape("GetDICOMImportJob")
    job = {
        "jobId": "e" * 32,
        "jobName": "n",
        "jobStatus": "COMPLETED",
        "datastoreId": "a" * 32,
        "dataAccessRoleArn": ROLE_ARN,
        "inputS3Uri": "s3://bucket-in/prefix/",
        "outputS3Uri": "s3://bucket-out/prefix/",
    }
    assert shape_violations(shape, {"jobProperties": job}, body=True) == []
    local = {**job, "inputS3Uri": "file:///data/in/"}
    assert shape_violations(shape, {"jobProperties": local}, body=True)
    assert shape_violations(shape, {"jobProperties": local}, body=True, extra_patterns=FILE_URIS) == []
    for bad in ({"inputS3Uri": "file://host/in/"}, {"inputS3Uri": "http://bucket/in/"}, {"jobId": "E"}):
        document = {"jobProperties": {**job, **bad}}
        assert shape_violations(shape, document, body=True, extra_patterns=FILE_URIS), bad
