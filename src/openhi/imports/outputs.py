"""The job's output files under ``outputS3Uri`` (guide 3270-3335, field names and shapes exactly as there).

``{datastoreId}-DicomImport-{jobId}/job-output-manifest.json`` holds ``jobSummary`` (counts and
``imageSetsSummary``); ``SUCCESS/success.ndjson``, ``FAILURE/failure.ndjson`` and ``WARNING/warning.ndjson``
hold one JSON line per input file. All four are written even when empty, so a reader never has to guess.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from openhi.blobs.port import BlobStore
from openhi.imagesets.staged import StagedInstance
from openhi.imports.commit import Assignment
from openhi.imports.model import FileStatus, ImportFile, ImportJob

CUSTOMER_ERROR = "ValidationException"


def job_folder(job: ImportJob) -> str:
    """The folder name the guide gives the job's outputs."""
    return f"{job.datastore_id}-DicomImport-{job.job_id}/"


def _under(uri: str, folder: str) -> tuple[str, str]:
    return uri if uri.endswith("/") else uri + "/", folder


def _input_path(job: ImportJob, key: str) -> str:
    """``inputFile`` as the guide shows it: the object's path inside the bucket (prefix included)."""
    after_scheme = job.input_s3_uri.split("://", 1)[1]
    prefix = after_scheme.split("/", 1)[1] if "/" in after_scheme else ""
    if job.input_s3_uri.startswith("file://"):
        prefix = after_scheme
    return f"{prefix.rstrip('/')}/{key}".lstrip("/") if prefix.strip("/") else key


def _ndjson(lines: Iterable[Mapping[str, Any]]) -> bytes:
    return b"".join(json.dumps(line, separators=(",", ":")).encode() + b"\n" for line in lines)


def summary(job: ImportJob, files: list[ImportFile], assigned: Mapping[str, Assignment]) -> dict[str, Any]:
    """The ``jobSummary`` object."""
    base, folder = _under(job.output_s3_uri, job_folder(job))
    failed = [f for f in files if f.status == FileStatus.FAILED]
    per_set = Counter(a.image_set_id for a in assigned.values())
    return {
        "jobSummary": {
            "jobId": job.job_id,
            "datastoreId": job.datastore_id,
            "inputS3Uri": job.input_s3_uri,
            "outputS3Uri": f"{base}{folder}",
            "successOutputS3Uri": f"{base}{folder}SUCCESS/",
            "failureOutputS3Uri": f"{base}{folder}FAILURE/",
            "warningsOutputS3Uri": f"{base}{folder}WARNING/",
            "numberOfScannedFiles": len(files),
            "numberOfImportedFiles": sum(1 for f in files if f.input_key in assigned),
            "numberOfFilesWithCustomerError": sum(1 for f in failed if f.error_type == CUSTOMER_ERROR),
            "numberOfFilesWithServerError": sum(1 for f in failed if f.error_type != CUSTOMER_ERROR),
            "numberOfGeneratedImageSets": len(per_set),
            "imageSetsSummary": [
                {"imageSetId": image_set_id, "numberOfMatchedSOPInstances": count}
                for image_set_id, count in sorted(per_set.items())
            ],
        }
    }


def write_outputs(
    store: BlobStore, job: ImportJob, files: list[ImportFile], assigned: Mapping[str, Assignment]
) -> dict[str, Any]:
    """Write the manifest and the three ndjson files; return the manifest."""
    folder = job_folder(job)
    success, warning, failure = [], [], []
    for file in files:
        path = _input_path(job, file.input_key)
        if file.status == FileStatus.FAILED:
            exception = {"exceptionType": file.error_type, "message": file.error_message}
            failure.append({"inputFile": path, "exception": exception})
            continue
        assignment = assigned.get(file.input_key)
        if assignment is None:
            continue
        response = {"imageSetId": assignment.image_set_id, "isPrimary": assignment.is_primary}
        success.append({"inputFile": path, "importResponse": response})
        staged = StagedInstance.from_bytes(file.result) if file.result else None
        if staged is not None and staged.warnings:
            detailed = {
                "imageSetId": assignment.image_set_id,
                "imageSetVersion": assignment.version,
                "isPrimary": assignment.is_primary,
                "warnings": staged.warnings,
            }
            warning.append({"inputFile": path, "importResponse": detailed})
    manifest = summary(job, files, assigned)
    store.put(f"{folder}SUCCESS/success.ndjson", _ndjson(success))
    store.put(f"{folder}FAILURE/failure.ndjson", _ndjson(failure))
    store.put(f"{folder}WARNING/warning.ndjson", _ndjson(warning))
    store.put(f"{folder}job-output-manifest.json", json.dumps(manifest, indent=2).encode())
    return manifest
