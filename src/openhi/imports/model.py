"""Import job entities (guide 3217-3360; model shapes DICOMImportJobProperties / DICOMImportJobSummary).

A job is SUBMITTED, claimed by one process at a time through a lease, IN_PROGRESS while its files are
processed, then COMPLETED (even when some files failed) or FAILED (the job itself could not run: input
unreadable, limits exceeded). Each input file is one ``ImportFile`` row so that a job interrupted by a crash
resumes where it stopped: files already staged are not processed again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class JobStatus(StrEnum):
    """Model enum ``JobStatus``."""

    SUBMITTED = "SUBMITTED"
    IN_PROGRESS = "IN_PROGRESS"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"


class FileStatus(StrEnum):
    """Progress of one input file."""

    PENDING = "PENDING"
    STAGED = "STAGED"  # parsed, frames stored, instance result kept until the job commits
    FAILED = "FAILED"


@dataclass(frozen=True)
class ImportJob:
    """One StartDICOMImportJob request and its progress."""

    job_id: str
    datastore_id: str
    job_name: str
    status: JobStatus
    data_access_role_arn: str
    input_s3_uri: str
    output_s3_uri: str
    client_token: str
    submitted_at: datetime
    updated_at: datetime
    input_owner_account_id: str | None = None
    import_configuration: str | None = None  # the ImportConfiguration union as JSON text
    ended_at: datetime | None = None
    message: str | None = None
    lease_owner: str | None = None
    lease_until: datetime | None = None


@dataclass(frozen=True)
class ImportFile:
    """One input file of a job."""

    job_id: str
    seq: int
    input_key: str
    size: int
    status: FileStatus = FileStatus.PENDING
    group_key: str | None = None  # the series the staged instance belongs to
    result: bytes | None = None  # staged instance (gzip JSON) or None
    error_type: str | None = None
    error_message: str | None = None
