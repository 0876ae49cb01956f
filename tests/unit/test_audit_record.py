"""The audit record builder (openhi.audit.record, categories, identity): CloudTrail fields of guide 20056-20108."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from openhi.api.observe import CallRecord, Surface
from openhi.audit.categories import categorize
from openhi.audit.identity import user_identity
from openhi.audit.record import AuditContext, build_event, dropped_records_event, event_time
from openhi.iam.directory_model import unique_id
from openhi.iam.principals import Caller, CallerKind

ACCOUNT = "123456789012"
CONTEXT = AuditContext(region="eu-west-1", account_id=ACCOUNT)
DS = "a" * 32
IS = "b" * 32
ROOT = Caller(f"arn:aws:iam::{ACCOUNT}:root", ACCOUNT, CallerKind.ROOT, access_key_id="AKIAROOT")
USER = Caller(f"arn:aws:iam::{ACCOUNT}:user/alice", ACCOUNT, CallerKind.IAM_USER, access_key_id="AKIAALICE")
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/Readers"
SESSION = Caller(
    f"arn:aws:sts::{ACCOUNT}:assumed-role/Readers/s-1",
    ACCOUNT,
    CallerKind.ASSUMED_ROLE,
    access_key_id="ASIASESSION",
    role_arn=ROLE_ARN,
)


def call(
    operation: str | None = "GetDatastore",
    *,
    surface: Surface = "native",
    caller: Caller | None = ROOT,
    status: int = 200,
    error: tuple[str, str | None] | None = None,
    params: Mapping[str, Any] | None = None,
    response: Mapping[str, Any] | None = None,
    datastore: str | None = DS,
) -> CallRecord:
    return CallRecord(
        request_id="req-1",
        surface=surface,
        operation=operation,
        datastore_id=datastore,
        caller=caller,
        source_ip="192.0.2.0",
        user_agent="aws-sdk-java/2.18.1",
        started_at=datetime(2022, 10, 28, 16, 2, 30, 123456, tzinfo=UTC),
        duration_seconds=0.0123,
        status=status,
        error_code=error[0] if error else None,
        error_message=error[1] if error else None,
        request_parameters=params if params is not None else {"datastoreId": DS},
        response_elements=response,
    )


@pytest.mark.parametrize(
    ("surface", "operation", "data", "read_only"),
    [
        ("native", "GetImageFrame", True, True),
        ("native", "GetImageSetMetadata", False, True),
        ("native", "ListDatastores", False, True),
        ("native", "SearchImageSets", False, True),
        ("native", "CreateDatastore", False, False),
        ("native", "UpdateImageSetMetadata", False, False),
        ("dicomweb", "GetDICOMInstanceFrames", True, True),
        ("dicomweb", "GetDICOMSeriesMetadata", True, True),
        ("dicomweb", "GetDICOMInstanceThumbnail", True, True),
        ("dicomweb", "GetDICOMBulkdata", True, True),
        ("dicomweb", "SearchDICOMStudies", False, True),
        ("dicomweb", "StoreDICOMStudy", False, False),
        ("native", None, False, False),
        ("sts", "GetImageFrame", False, True),
    ],
)
def test_categories(surface: str, operation: str | None, data: bool, read_only: bool) -> None:
    category = categorize(surface, operation)
    assert (category.data_event, category.read_only) == (data, read_only)
    assert category.event_category == ("Data" if data else "Management")


def test_identity_of_the_root() -> None:
    assert user_identity(ROOT) == {
        "type": "Root",
        "principalId": ACCOUNT,
        "arn": f"arn:aws:iam::{ACCOUNT}:root",
        "accountId": ACCOUNT,
        "accessKeyId": "AKIAROOT",
    }


def test_identity_of_an_iam_user() -> None:
    assert user_identity(USER) == {
        "type": "IAMUser",
        "principalId": unique_id("AIDA", USER.arn),
        "arn": USER.arn,
        "accountId": ACCOUNT,
        "accessKeyId": "AKIAALICE",
        "userName": "alice",
    }


def test_identity_of_an_assumed_role_session() -> None:
    role_id = unique_id("AROA", ROLE_ARN)
    assert user_identity(SESSION) == {
        "type": "AssumedRole",
        "principalId": f"{role_id}:s-1",
        "arn": SESSION.arn,
        "accountId": ACCOUNT,
        "accessKeyId": "ASIASESSION",
        "sessionContext": {
            "sessionIssuer": {
                "type": "Role",
                "principalId": role_id,
                "arn": ROLE_ARN,
                "accountId": ACCOUNT,
                "userName": "Readers",
            },
            "webIdFederationData": {},
            "attributes": {"mfaAuthenticated": "false"},
        },
    }


def test_identity_of_a_failed_authentication() -> None:
    assert user_identity(None) == {"type": "Unknown"}


def test_management_read_in_the_guide_s_shape() -> None:
    record = build_event(
        call("GetDICOMImportJob", caller=SESSION, params={"jobId": "j" * 32, "datastoreId": DS}),
        CONTEXT,
    )
    assert list(record)[:12] == [
        "eventVersion",
        "userIdentity",
        "eventTime",
        "eventSource",
        "eventName",
        "awsRegion",
        "sourceIPAddress",
        "userAgent",
        "requestParameters",
        "responseElements",
        "requestID",
        "eventID",
    ]
    assert record["eventVersion"] == "1.08"
    assert record["eventTime"] == "2022-10-28T16:02:30Z"
    assert record["eventSource"] == "medical-imaging.amazonaws.com"
    assert record["eventName"] == "GetDICOMImportJob"
    assert record["awsRegion"] == "eu-west-1"
    assert record["sourceIPAddress"] == "192.0.2.0"
    assert record["userAgent"] == "aws-sdk-java/2.18.1"
    assert record["requestParameters"] == {"jobId": "j" * 32, "datastoreId": DS}
    assert record["responseElements"] is None
    assert record["requestID"] == "req-1"
    assert uuid.UUID(record["eventID"]).version == 4
    assert record["readOnly"] is True
    assert record["eventType"] == "AwsApiCall"
    assert record["managementEvent"] is True
    assert record["recipientAccountId"] == ACCOUNT
    assert record["eventCategory"] == "Management"
    assert "errorCode" not in record
    assert "errorMessage" not in record
    assert record["additionalEventData"] == {"surface": "native", "httpStatusCode": 200, "durationMillis": 12.3}


def test_event_ids_are_unique() -> None:
    assert build_event(call(), CONTEXT)["eventID"] != build_event(call(), CONTEXT)["eventID"]


def test_write_keeps_sanitized_response_elements() -> None:
    created = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    record = build_event(
        call("CreateDatastore", params={"datastoreName": "x"}, response={"datastoreId": DS, "createdAt": created}),
        CONTEXT,
    )
    assert record["readOnly"] is False
    assert record["responseElements"] == {"datastoreId": DS, "createdAt": "2024-01-02T03:04:05+00:00"}


def test_failed_call_has_error_code_and_message_and_no_response() -> None:
    record = build_event(
        call(
            "DeleteDatastore",
            caller=USER,
            status=403,
            error=("AccessDeniedException", "User: ... is not authorized"),
            response={"datastoreId": DS},
        ),
        CONTEXT,
    )
    assert record["errorCode"] == "AccessDeniedException"
    assert record["errorMessage"] == "User: ... is not authorized"
    assert record["responseElements"] is None
    assert record["userIdentity"]["userName"] == "alice"


def test_failure_without_a_code_or_message() -> None:
    record = build_event(call("GetDICOMStudy", surface="dicomweb", status=400, params={}), CONTEXT)
    assert record["errorCode"] == "HTTP400"
    assert "errorMessage" not in record


def test_unauthenticated_unrouted_call() -> None:
    record = build_event(
        call(None, caller=None, status=403, error=("InvalidSignatureException", "bad"), params={}, datastore=None),
        CONTEXT,
    )
    assert record["eventName"] == "Unknown"
    assert record["userIdentity"] == {"type": "Unknown"}
    assert (record["readOnly"], record["managementEvent"]) == (False, True)
    assert "resources" not in record


def test_frame_read_is_a_data_event_without_payload() -> None:
    payload = b"\x00\x01" * 5000
    record = build_event(
        call(
            "GetImageFrame",
            params={"datastoreId": DS, "imageSetId": IS, "imageFrameInformation": {"imageFrameId": "f" * 32}},
            response={"imageFrameBlob": payload, "contentType": "image/jph"},
        ),
        CONTEXT,
    )
    assert (record["managementEvent"], record["eventCategory"], record["readOnly"]) == (False, "Data", True)
    assert record["responseElements"] is None
    assert record["resources"] == [
        {
            "accountId": ACCOUNT,
            "type": "AWS::MedicalImaging::Datastore",
            "ARN": f"arn:aws:medical-imaging:eu-west-1:{ACCOUNT}:datastore/{DS}",
        },
        {
            "accountId": ACCOUNT,
            "type": "AWS::MedicalImaging::ImageSet",
            "ARN": f"arn:aws:medical-imaging:eu-west-1:{ACCOUNT}:datastore/{DS}/imageset/{IS}",
        },
    ]


def test_bytes_in_request_parameters_become_a_marker() -> None:
    patch = b'{"SchemaVersion": 1.1, "Patient": {"DICOM": {"PatientName": "DOE^JANE"}}}'
    record = build_event(
        call(
            "UpdateImageSetMetadata",
            params={
                "datastoreId": DS,
                "imageSetId": IS,
                "updateImageSetMetadataUpdates": {"DICOMUpdates": {"updatableAttributes": patch}},
            },
        ),
        CONTEXT,
    )
    updates = record["requestParameters"]["updateImageSetMetadataUpdates"]["DICOMUpdates"]
    assert updates == {"updatableAttributes": f"<{len(patch)} bytes>"}


def test_dicomweb_parameters_are_path_uids_and_query() -> None:
    record = build_event(
        call(
            "GetDICOMInstanceFrames",
            surface="dicomweb",
            params={"study": "1.2", "series": "1.2.3", "instance": "1.2.3.4", "frames": "1,2", "query": "imageSetId=x"},
        ),
        CONTEXT,
    )
    assert record["requestParameters"] == {
        "datastoreId": DS,
        "studyInstanceUID": "1.2",
        "seriesInstanceUID": "1.2.3",
        "sopInstanceUID": "1.2.3.4",
        "frameList": "1,2",
        "query": {"imageSetId": "x"},
    }
    assert (record["eventCategory"], record["additionalEventData"]["surface"]) == ("Data", "dicomweb")


def test_dicomweb_query_keeps_repeated_keys_and_drops_secrets() -> None:
    record = build_event(
        call(
            "SearchDICOMStudies",
            surface="dicomweb",
            params={"query": "includefield=00100010&includefield=00100020&PatientName=DOE%5E*&access_token=abc"},
        ),
        CONTEXT,
    )
    assert record["requestParameters"]["query"] == {
        "includefield": ["00100010", "00100020"],
        "PatientName": "DOE^*",
    }
    assert record["eventCategory"] == "Management"


def test_invalid_datastore_id_names_no_resource() -> None:
    assert "resources" not in build_event(call(datastore="not-an-id"), CONTEXT)


def test_user_agent_is_capped() -> None:
    long_call = dataclasses.replace(call(), user_agent="x" * 5000)
    assert len(build_event(long_call, CONTEXT)["userAgent"]) == 1024


def test_event_time_is_utc() -> None:
    moment = datetime(2022, 10, 28, 18, 2, 30, tzinfo=timezone(timedelta(hours=2)))
    assert event_time(moment) == "2022-10-28T16:02:30Z"


def test_dropped_records_event() -> None:
    event = dropped_records_event(7, CONTEXT, datetime(2024, 5, 1, tzinfo=UTC))
    assert event["eventType"] == "AwsServiceEvent"
    assert event["eventName"] == "AuditRecordsDropped"
    assert event["serviceEventDetails"]["droppedRecords"] == 7
    assert event["eventTime"] == "2024-05-01T00:00:00Z"
