"""One CloudTrail record for one answered call (guide 20050-20108; CloudTrail "record contents").

Fields, in the order of the guide's example (``GetDICOMImportJob``): ``eventVersion`` 1.08, ``userIdentity``
(``identity``), ``eventTime`` (when the request arrived, UTC, seconds), ``eventSource``
``medical-imaging.amazonaws.com``, ``eventName`` (the operation), ``awsRegion``, ``sourceIPAddress``,
``userAgent``, ``requestParameters``, ``responseElements``, ``errorCode`` + ``errorMessage`` on failure,
``requestID`` (the ``x-amzn-RequestId`` the client received), ``eventID`` (a fresh UUID), ``readOnly``,
``eventType`` ``AwsApiCall``, ``managementEvent``, ``recipientAccountId``, ``eventCategory``. Like CloudTrail's
data events, a call on a data store names it (and the image set) in ``resources``; ``additionalEventData``
carries what the HTTP edge knew (surface, status, duration).

- ``requestParameters``: the validated native parameters, or for DICOMweb the data store, the path UIDs (named
  as HealthImaging's DICOMweb APIs name them) and the query; never a body. Always through ``sanitize``.
- ``responseElements``: null for a failed call and for a read-only call (as CloudTrail records reads, and as the
  guide's example shows); otherwise the sanitized answer (``CreateDatastore``'s id and status ...).
- a call without a matched operation is recorded with ``eventName`` ``Unknown``.

Pure: builds dictionaries; ``writer`` serializes them.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qsl

from openhi.api.observe import CallRecord
from openhi.audit.categories import Category, categorize
from openhi.audit.identity import user_identity
from openhi.audit.sanitize import Json, sanitize
from openhi.ids import datastore_arn, image_set_arn, is_valid_id

EVENT_VERSION = "1.08"
EVENT_SOURCES = {"native": "medical-imaging.amazonaws.com", "dicomweb": "medical-imaging.amazonaws.com"}
STS_EVENT_SOURCE = "sts.amazonaws.com"
UNKNOWN_OPERATION = "Unknown"
MAX_USER_AGENT = 1024
# DICOMweb path parameters (api/dicomweb/routes.py) -> the names of HealthImaging's DICOMweb API parameters
DICOMWEB_PARAMETERS = {
    "study": "studyInstanceUID",
    "series": "seriesInstanceUID",
    "instance": "sopInstanceUID",
    "frames": "frameList",
    "bulk": "bulkDataUri",
}


@dataclass(frozen=True)
class AuditContext:
    """What every record of one server shares."""

    region: str
    account_id: str  # recipientAccountId: the account that owns the data stores


def event_time(moment: datetime) -> str:
    """CloudTrail's ``eventTime``: UTC, ISO 8601, whole seconds (``2022-10-28T16:02:30Z``)."""
    return _whole_second(int(moment.timestamp()))


@lru_cache(maxsize=64)
def _whole_second(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _query(query: str) -> dict[str, Any]:
    """A query string as a mapping; a repeated key keeps every value, in order."""
    parsed: dict[str, Any] = {}
    for key, value in parse_qsl(query, keep_blank_values=True):
        if key in parsed:
            previous = parsed[key]
            parsed[key] = [*previous, value] if isinstance(previous, list) else [previous, value]
        else:
            parsed[key] = value
    return parsed


def request_parameters(call: CallRecord) -> Json:
    """The call's parameters as recorded (sanitized; for DICOMweb: data store, path UIDs and query)."""
    if call.surface != "dicomweb":
        return sanitize(call.request_parameters)
    params: dict[str, Any] = {"datastoreId": call.datastore_id} if call.datastore_id else {}
    for name, value in call.request_parameters.items():
        if name == "query" and isinstance(value, str):
            params["query"] = _query(value)
        else:
            params[DICOMWEB_PARAMETERS.get(name, name)] = value
    return sanitize(params)


@lru_cache(maxsize=4096)
def _resources(region: str, account_id: str, datastore_id: str, image_set_id: str | None) -> list[dict[str, str]]:
    """CloudTrail ``resources`` for a call on a data store (and image set); shared, never modified."""
    if not is_valid_id(datastore_id):
        return []
    found = [
        {
            "accountId": account_id,
            "type": "AWS::MedicalImaging::Datastore",
            "ARN": datastore_arn(region, account_id, datastore_id),
        }
    ]
    if image_set_id is not None and is_valid_id(image_set_id):
        found.append(
            {
                "accountId": account_id,
                "type": "AWS::MedicalImaging::ImageSet",
                "ARN": image_set_arn(region, account_id, datastore_id, image_set_id),
            }
        )
    return found


def keeps_response(call: CallRecord, category: Category) -> bool:
    """Whether the record keeps the call's ``responseElements``: only for a successful call that writes."""
    return not (call.error_code is not None or call.status >= 400 or category.read_only)


def build_event(call: CallRecord, context: AuditContext, category: Category | None = None) -> dict[str, Any]:
    """The CloudTrail record of ``call``."""
    category = category or categorize(call.surface, call.operation)
    failed = call.error_code is not None or call.status >= 400
    response = call.response_elements if keeps_response(call, category) else None
    event: dict[str, Any] = {
        "eventVersion": EVENT_VERSION,
        "userIdentity": user_identity(call.caller),
        "eventTime": event_time(call.started_at),
        "eventSource": EVENT_SOURCES.get(call.surface, STS_EVENT_SOURCE),
        "eventName": call.operation or UNKNOWN_OPERATION,
        "awsRegion": context.region,
        "sourceIPAddress": call.source_ip,
        "userAgent": call.user_agent[:MAX_USER_AGENT],
        "requestParameters": request_parameters(call),
        "responseElements": None if response is None else sanitize(response),
    }
    if failed:
        event["errorCode"] = call.error_code or f"HTTP{call.status}"
        if call.error_message:
            event["errorMessage"] = call.error_message
    event["requestID"] = call.request_id
    event["eventID"] = str(uuid.uuid4())
    event["readOnly"] = category.read_only
    image_set = call.request_parameters.get("imageSetId") if call.surface == "native" else None
    image_set = image_set if isinstance(image_set, str) else None
    resources = (
        _resources(context.region, context.account_id, call.datastore_id, image_set) if call.datastore_id else []
    )
    if resources:
        event["resources"] = resources
    event["eventType"] = "AwsApiCall"
    event["managementEvent"] = not category.data_event
    event["recipientAccountId"] = context.account_id
    event["eventCategory"] = category.event_category
    event["additionalEventData"] = {
        "surface": call.surface,
        "httpStatusCode": call.status,
        "durationMillis": round(call.duration_seconds * 1000, 3),
    }
    return event


def dropped_records_event(count: int, context: AuditContext, now: datetime) -> dict[str, Any]:
    """A service event in the trail itself saying that ``count`` records were lost (queue full, write error)."""
    return {
        "eventVersion": EVENT_VERSION,
        "eventTime": event_time(now),
        "eventSource": EVENT_SOURCES["native"],
        "eventName": "AuditRecordsDropped",
        "awsRegion": context.region,
        "eventID": str(uuid.uuid4()),
        "readOnly": False,
        "eventType": "AwsServiceEvent",
        "managementEvent": True,
        "recipientAccountId": context.account_id,
        "eventCategory": "Management",
        "serviceEventDetails": {"droppedRecords": count, "processId": os.getpid()},
    }
