"""Helpers for the import e2e tests: upload a folder to S3, run a job through boto3, read its outputs."""

from __future__ import annotations

import gzip
import json
import time
import uuid
import zlib
from pathlib import Path
from typing import Any

import boto3
import imagecodecs
import numpy as np
import pydicom
from tests.support.backends import S3Server

ROLE = "arn:aws:iam::123456789012:role/ImportRole"


def s3_client(s3: S3Server) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=s3.endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    )


def upload(s3: S3Server, folder: Path, bucket: str, prefix: str) -> list[str]:
    """Upload every file under ``folder`` to ``s3://bucket/prefix/``; return the keys."""
    client = s3_client(s3)
    keys = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        key = f"{prefix}/{path.relative_to(folder)}"
        client.upload_file(str(path), bucket, key)
        keys.append(key)
    return keys


def run_job(client: Any, datastore_id: str, input_uri: str, output_uri: str, timeout: float = 180) -> dict[str, Any]:
    """StartDICOMImportJob, then poll GetDICOMImportJob until the job ends; return its properties."""
    started = client.start_dicom_import_job(
        datastoreId=datastore_id,
        jobName="e2e-import",
        dataAccessRoleArn=ROLE,
        clientToken=uuid.uuid4().hex,
        inputS3Uri=input_uri,
        outputS3Uri=output_uri,
    )
    assert started["jobStatus"] == "SUBMITTED"
    deadline = time.monotonic() + timeout
    while True:
        job: dict[str, Any] = client.get_dicom_import_job(datastoreId=datastore_id, jobId=started["jobId"])[
            "jobProperties"
        ]
        if job["jobStatus"] in ("COMPLETED", "FAILED"):
            return job
        assert time.monotonic() < deadline, job
        time.sleep(0.2)


def read_outputs(s3: S3Server, output_uri: str, job: dict[str, Any]) -> dict[str, Any]:
    """The manifest and the three ndjson files of a job, read back from S3."""
    bucket, _, prefix = output_uri.removeprefix("s3://").partition("/")
    folder = f"{prefix.rstrip('/')}/{job['datastoreId']}-DicomImport-{job['jobId']}/".lstrip("/")
    client = s3_client(s3)

    def read(key: str) -> bytes:
        body: bytes = client.get_object(Bucket=bucket, Key=folder + key)["Body"].read()
        return body

    def lines(key: str) -> list[dict[str, Any]]:
        return [json.loads(line) for line in read(key).decode().splitlines() if line.strip()]

    return {
        "manifest": json.loads(read("job-output-manifest.json")),
        "success": lines("SUCCESS/success.ndjson"),
        "failure": lines("FAILURE/failure.ndjson"),
        "warning": lines("WARNING/warning.ndjson"),
    }


def metadata(client: Any, datastore_id: str, image_set_id: str, version: str | None = None) -> dict[str, Any]:
    """GetImageSetMetadata, gunzipped (the service answers gzip JSON with Content-Encoding gzip)."""
    kwargs = {"versionId": version} if version else {}
    response = client.get_image_set_metadata(datastoreId=datastore_id, imageSetId=image_set_id, **kwargs)
    assert response["contentEncoding"] == "gzip"
    document: dict[str, Any] = json.loads(gzip.decompress(response["imageSetMetadataBlob"].read()))
    return document


def instances(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """SOP Instance UID -> instance entry, across the document's series."""
    return {sop: entry for series in document["Study"]["Series"].values() for sop, entry in series["Instances"].items()}


def check_frames(client: Any, datastore_id: str, image_set_id: str, originals: dict[str, Path]) -> int:
    """GetImageFrame every frame, decode it, compare its CRC32 with the metadata and with pydicom's pixels."""
    checked = 0
    for sop, entry in instances(metadata(client, datastore_id, image_set_id)).items():
        original = pydicom.dcmread(originals[sop])
        pixels = original.pixel_array
        frames = pixels if int(getattr(original, "NumberOfFrames", 1) or 1) > 1 else pixels[np.newaxis]
        assert entry["StoredTransferSyntaxUID"] == "1.2.840.10008.1.2.4.202"
        for frame_entry, expected in zip(entry["ImageFrames"], frames, strict=True):
            response = client.get_image_frame(
                datastoreId=datastore_id,
                imageSetId=image_set_id,
                imageFrameInformation={"imageFrameId": frame_entry["ID"]},
            )
            assert response["contentType"] == "image/jph"
            decoded = imagecodecs.htj2k_decode(response["imageFrameBlob"].read())
            full = frame_entry["PixelDataChecksumFromBaseToFullResolution"][-1]
            assert (full["Width"], full["Height"]) == (original.Columns, original.Rows)
            assert zlib.crc32(decoded.astype(expected.dtype).tobytes()) == full["Checksum"]
            assert zlib.crc32(np.ascontiguousarray(expected).tobytes()) == full["Checksum"]
            assert np.array_equal(decoded, expected)
            checked += 1
    return checked
