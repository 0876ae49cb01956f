"""DICOM import end to end with unmodified boto3: S3 in, image sets and frames out, on both backends.

Follows the guide's getting-started scenario (lines 18700-18960): import from S3, read the job outputs, then
for every frame GetImageFrame, decode it and check its CRC32 against the metadata and against the pixels
pydicom decodes from the original file.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pydicom
import pytest
from tests.e2e.conftest import ServerFactory
from tests.e2e.helpers import error_of, wait_for_status
from tests.e2e.import_helpers import check_frames, instances, metadata, read_outputs, run_job, upload
from tests.support.backends import S3Server
from tests.support.dicom_corpus import SeriesSpec, write_series
from tests.support.server import ServerProcess


@pytest.fixture(scope="module")
def importer(make_server: ServerFactory, s3_server: S3Server) -> ServerProcess:
    """A server that can read the S3 server (whatever its own backend)."""
    return make_server(env={**s3_server.env(), "OPENHI_IMPORT_WORKERS": "2"})


@pytest.fixture(scope="module")
def client(importer: ServerProcess) -> Any:
    return importer.client()


@pytest.fixture
def datastore(client: Any) -> str:
    datastore_id: str = client.create_datastore(datastoreName="imports")["datastoreId"]
    wait_for_status(client, datastore_id, "ACTIVE")
    return datastore_id


@pytest.fixture
def bucket(s3_server: S3Server) -> str:
    return s3_server.new_bucket()


def _originals(folder: Path) -> dict[str, Path]:
    return {pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID: p for p in folder.rglob("*.dcm")}


def test_import_from_s3_then_read_every_frame(
    client: Any, datastore: str, bucket: str, s3_server: S3Server, tmp_path: Path
) -> None:
    write_series(tmp_path / "in", SeriesSpec(slices=4, size=96))
    (tmp_path / "in" / "notes.txt").write_text("not a DICOM file")
    upload(s3_server, tmp_path / "in", bucket, "dicom")
    job = run_job(client, datastore, f"s3://{bucket}/dicom/", f"s3://{bucket}/out/")
    assert job["jobStatus"] == "COMPLETED", job
    outputs = read_outputs(s3_server, f"s3://{bucket}/out/", job)
    summary = outputs["manifest"]["jobSummary"]
    assert summary["numberOfScannedFiles"] == 5
    assert summary["numberOfImportedFiles"] == 4
    assert summary["numberOfFilesWithCustomerError"] == 1
    assert summary["numberOfFilesWithServerError"] == 0
    assert summary["numberOfGeneratedImageSets"] == 1
    [image_set] = summary["imageSetsSummary"]
    assert image_set["numberOfMatchedSOPInstances"] == 4
    assert {line["importResponse"]["imageSetId"] for line in outputs["success"]} == {image_set["imageSetId"]}
    assert all(line["importResponse"]["isPrimary"] is True for line in outputs["success"])
    [failed] = outputs["failure"]
    assert failed["inputFile"] == "dicom/notes.txt"
    assert failed["exception"]["exceptionType"] == "ValidationException"
    properties = client.get_image_set(datastoreId=datastore, imageSetId=image_set["imageSetId"])
    assert (properties["versionId"], properties["imageSetState"], properties["isPrimary"]) == (
        "1",
        "ACTIVE",
        True,
    )
    assert check_frames(client, datastore, image_set["imageSetId"], _originals(tmp_path / "in")) == 4


def test_series_split_across_jobs_reimport_and_conflict(
    client: Any, datastore: str, bucket: str, s3_server: S3Server, tmp_path: Path
) -> None:
    spec = SeriesSpec(study="split", slices=4, size=32)
    paths = write_series(tmp_path / "all", spec)
    for n, path in enumerate(paths):
        half = "a" if n < 2 else "b"
        (tmp_path / half).mkdir(exist_ok=True)
        path.rename(tmp_path / half / path.name)
    upload(s3_server, tmp_path / "a", bucket, "a")
    upload(s3_server, tmp_path / "b", bucket, "b")
    first = run_job(client, datastore, f"s3://{bucket}/a/", f"s3://{bucket}/out/")
    second = run_job(client, datastore, f"s3://{bucket}/b/", f"s3://{bucket}/out/")
    first_set = read_outputs(s3_server, f"s3://{bucket}/out/", first)["success"][0]["importResponse"]["imageSetId"]
    second_set = read_outputs(s3_server, f"s3://{bucket}/out/", second)["success"][0]["importResponse"]["imageSetId"]
    assert first_set == second_set  # one primary image set per series, across jobs
    assert client.get_image_set(datastoreId=datastore, imageSetId=first_set)["versionId"] == "2"
    assert len(instances(metadata(client, datastore, first_set))) == 4
    assert len(instances(metadata(client, datastore, first_set, "1"))) == 2  # older versions stay readable

    again = run_job(client, datastore, f"s3://{bucket}/a/", f"s3://{bucket}/out/")  # re-import two instances
    assert read_outputs(s3_server, f"s3://{bucket}/out/", again)["manifest"]["jobSummary"]["numberOfImportedFiles"] == 2
    assert client.get_image_set(datastoreId=datastore, imageSetId=first_set)["versionId"] == "3"
    assert len(instances(metadata(client, datastore, first_set))) == 4  # replaced, not duplicated

    conflicting = SeriesSpec(study="split", slices=1, size=32, patient_id="OTHER-PATIENT")
    write_series(tmp_path / "c", conflicting)
    for path in (tmp_path / "c").rglob("*.dcm"):
        path.rename(path.with_name("conflict.dcm"))
    upload(s3_server, tmp_path / "c", bucket, "c")
    job = run_job(client, datastore, f"s3://{bucket}/c/", f"s3://{bucket}/out/")
    response = read_outputs(s3_server, f"s3://{bucket}/out/", job)["success"][0]["importResponse"]
    assert response["isPrimary"] is False
    assert response["imageSetId"] != first_set
    assert client.get_image_set(datastoreId=datastore, imageSetId=response["imageSetId"])["isPrimary"] is False
    versions = client.list_image_set_versions(datastoreId=datastore, imageSetId=first_set, maxResults=2)
    assert [v["versionId"] for v in versions["imageSetPropertiesList"]] == ["3", "2"]
    assert versions["imageSetPropertiesList"][0]["ImageSetWorkflowStatus"] == "UPDATED"
    rest = client.list_image_set_versions(datastoreId=datastore, imageSetId=first_set, nextToken=versions["nextToken"])
    assert [v["versionId"] for v in rest["imageSetPropertiesList"]] == ["1"]
    assert "nextToken" not in rest


def test_import_from_a_local_folder(client: Any, datastore: str, tmp_path: Path) -> None:
    write_series(tmp_path / "in", SeriesSpec(study="local", slices=2, size=32))
    job = run_job(client, datastore, f"file://{tmp_path / 'in'}/", f"file://{tmp_path / 'out'}/")
    assert job["jobStatus"] == "COMPLETED"
    folder = tmp_path / "out" / f"{datastore}-DicomImport-{job['jobId']}"
    assert (folder / "job-output-manifest.json").exists()
    assert len((folder / "SUCCESS" / "success.ndjson").read_text().splitlines()) == 2


def test_job_listing_and_errors(client: Any, datastore: str, bucket: str) -> None:
    job = run_job(client, datastore, f"s3://{bucket}/nothing-here/", f"s3://{bucket}/out/")
    assert job["jobStatus"] == "COMPLETED"
    listed = client.list_dicom_import_jobs(datastoreId=datastore, jobStatus="COMPLETED")["jobSummaries"]
    assert job["jobId"] in {j["jobId"] for j in listed}
    missing = run_job(client, datastore, "s3://no-such-bucket-anywhere/x/", f"s3://{bucket}/out/")
    assert missing["jobStatus"] == "FAILED"
    assert "no-such-bucket-anywhere" in missing["message"]
    code, status, _ = error_of(client.get_dicom_import_job, datastoreId=datastore, jobId="f" * 32)
    assert (code, status) == ("ResourceNotFoundException", 404)
    code, status, _ = error_of(
        client.get_image_frame,
        datastoreId=datastore,
        imageSetId="e" * 32,
        imageFrameInformation={"imageFrameId": "d" * 32},
    )
    assert (code, status) == ("ResourceNotFoundException", 404)


def test_a_job_interrupted_by_a_crash_completes_after_restart(
    backend: str, s3_server: S3Server, bucket: str, tmp_path: Path
) -> None:
    """SIGKILL the server in the middle of a job; the restarted server finishes it, no loss, no duplicate."""
    from contextlib import ExitStack

    from tests.support.backends import fresh_postgres_database
    from tests.support.server import server_env

    write_series(tmp_path / "in", SeriesSpec(study="crash", slices=120, size=384))
    upload(s3_server, tmp_path / "in", bucket, "crash")
    with ExitStack() as stack:
        args: list[str] = []
        if backend == "scaleout":
            url = stack.enter_context(fresh_postgres_database())
            args = ["--index-url", url, "--blob-url", f"s3://{s3_server.new_bucket()}/openhi"]
        env = server_env({**s3_server.env(), "OPENHI_IMPORT_LEASE_SECONDS": "2", "OPENHI_IMPORT_WORKERS": "1"})
        first = ServerProcess(tmp_path / "data", env, args).start()
        stack.callback(first.stop)  # also when an assertion fails before the kill
        client = first.client()
        datastore_id = client.create_datastore(datastoreName="crash")["datastoreId"]
        wait_for_status(client, datastore_id, "ACTIVE")
        started = client.start_dicom_import_job(
            datastoreId=datastore_id,
            dataAccessRoleArn="arn:aws:iam::123456789012:role/ImportRole",
            inputS3Uri=f"s3://{bucket}/crash/",
            outputS3Uri=f"s3://{bucket}/out/",
        )
        deadline = time.monotonic() + 60
        while (
            client.get_dicom_import_job(datastoreId=datastore_id, jobId=started["jobId"])["jobProperties"]["jobStatus"]
            == "SUBMITTED"
        ):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        time.sleep(1.0)  # some files staged, not all
        assert first.process is not None
        status = client.get_dicom_import_job(datastoreId=datastore_id, jobId=started["jobId"])["jobProperties"]
        assert status["jobStatus"] == "IN_PROGRESS"  # the kill really lands in the middle of the job
        first.process.kill()
        first.process.wait(10)
        second = ServerProcess(tmp_path / "data", env, args).start()
        try:
            client = second.client()
            deadline = time.monotonic() + 180
            while True:
                job = client.get_dicom_import_job(datastoreId=datastore_id, jobId=started["jobId"])["jobProperties"]
                if job["jobStatus"] in ("COMPLETED", "FAILED"):
                    break
                assert time.monotonic() < deadline, job
                time.sleep(0.2)
            assert job["jobStatus"] == "COMPLETED", job
            summary = read_outputs(s3_server, f"s3://{bucket}/out/", job)["manifest"]["jobSummary"]
            assert summary["numberOfScannedFiles"] == 120
            assert summary["numberOfImportedFiles"] == 120
            [image_set] = summary["imageSetsSummary"]
            assert image_set["numberOfMatchedSOPInstances"] == 120
            document = metadata(client, datastore_id, image_set["imageSetId"])
            assert len(instances(document)) == 120
            assert (
                client.get_image_set(datastoreId=datastore_id, imageSetId=image_set["imageSetId"])["versionId"] == "1"
            )
        finally:
            assert second.stop() == 0


def test_image_set_arns_take_tags_after_import(client: Any, datastore: str, tmp_path: Path) -> None:
    write_series(tmp_path / "in", SeriesSpec(study="tagged", slices=1, size=16))
    job = run_job(client, datastore, f"file://{tmp_path / 'in'}/", f"file://{tmp_path / 'out'}/")
    folder = tmp_path / "out" / f"{datastore}-DicomImport-{job['jobId']}"
    image_set_id = (folder / "SUCCESS" / "success.ndjson").read_text().split('"imageSetId":"')[1][:32]
    arn = client.get_image_set(datastoreId=datastore, imageSetId=image_set_id)["imageSetArn"]
    assert arn.endswith(f":datastore/{datastore}/imageset/{image_set_id}")
    client.tag_resource(resourceArn=arn, tags={"series": "axial"})
    assert client.list_tags_for_resource(resourceArn=arn)["tags"] == {"series": "axial"}
    code, status, _ = error_of(client.delete_datastore, datastoreId=datastore)
    assert (code, status) == ("ConflictException", 409)  # image sets remain
