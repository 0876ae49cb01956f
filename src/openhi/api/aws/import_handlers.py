"""Wire <-> service for StartDICOMImportJob, GetDICOMImportJob, ListDICOMImportJobs (guide 3217-4247)."""

from __future__ import annotations

import json
from typing import Any

from openhi.imports.model import ImportJob, JobStatus
from openhi.imports.service import ImportService, StartImportRequest


class ImportHandlers:
    """Handlers of the import job operations."""

    def __init__(self, imports: ImportService) -> None:
        self._imports = imports

    def start(self, params: dict[str, Any]) -> dict[str, Any]:
        """StartDICOMImportJob: answers SUBMITTED at once; the job runs in the background."""
        configuration = params.get("importConfiguration")
        job = self._imports.start(
            StartImportRequest(
                datastore_id=params["datastoreId"],
                client_token=params["clientToken"],
                data_access_role_arn=params["dataAccessRoleArn"],
                input_uri=params["inputS3Uri"],
                output_uri=params["outputS3Uri"],
                job_name=params.get("jobName"),
                input_owner_account_id=params.get("inputOwnerAccountId"),
                import_configuration=json.dumps(configuration) if configuration else None,
            )
        )
        return {
            "datastoreId": job.datastore_id,
            "jobId": job.job_id,
            "jobStatus": job.status.value,
            "submittedAt": job.submitted_at,
        }

    def get(self, params: dict[str, Any]) -> dict[str, Any]:
        """GetDICOMImportJob."""
        job = self._imports.get(params["datastoreId"], params["jobId"])
        properties = _summary(job) | {
            "inputS3Uri": job.input_s3_uri,
            "outputS3Uri": job.output_s3_uri,
            "importConfiguration": json.loads(job.import_configuration) if job.import_configuration else None,
        }
        return {"jobProperties": properties}

    def list(self, params: dict[str, Any]) -> dict[str, Any]:
        """ListDICOMImportJobs."""
        status = params.get("jobStatus")
        page = self._imports.list(
            params["datastoreId"],
            JobStatus(status) if status else None,
            params.get("nextToken"),
            params.get("maxResults"),
        )
        return {"jobSummaries": [_summary(job) for job in page.jobs], "nextToken": page.next_token}


def _summary(job: ImportJob) -> dict[str, Any]:
    return {
        "jobId": job.job_id,
        "jobName": job.job_name,
        "jobStatus": job.status.value,
        "datastoreId": job.datastore_id,
        "dataAccessRoleArn": job.data_access_role_arn,
        "endedAt": job.ended_at,
        "submittedAt": job.submitted_at,
        "message": job.message,
    }
