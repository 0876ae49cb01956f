"""Model-driven validation: every constraint botocore leaves to the server (aws-wire-api.md §2)."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from openhi.api.aws.model import service_model
from openhi.api.aws.validation import compiled_pattern, validate_input
from openhi.errors import ValidationError

ID = "a" * 32


def check(operation: str, params: dict[str, Any]) -> dict[str, Any]:
    return validate_input(service_model().operation_model(operation).input_shape, params)


def failure(operation: str, params: dict[str, Any]) -> ValidationError:
    with pytest.raises(ValidationError) as info:
        check(operation, params)
    return info.value


def test_valid_create_passes_unchanged() -> None:
    params = {"clientToken": "tok-1", "datastoreName": "my-store", "tags": {"env": "dev"}}
    assert check("CreateDatastore", params) == params


@pytest.mark.parametrize(
    ("params", "field", "fragment"),
    [
        ({"clientToken": "t", "datastoreName": "x" * 257}, "datastoreName", "less than or equal to 256"),
        ({"clientToken": "t", "datastoreName": "bad name!"}, "datastoreName", "regular expression pattern"),
        ({"clientToken": "t", "losslessStorageFormat": "PNG"}, "losslessStorageFormat", "enum value set"),
        ({"clientToken": "t", "kmsKeyArn": "arn:aws:kms:nope"}, "kmsKeyArn", "regular expression"),
        ({"clientToken": "t" * 65}, "clientToken", "less than or equal to 64"),
        ({"datastoreName": "x"}, "clientToken", "must not be null"),
        ({"clientToken": "t", "tags": {"aws:reserved": "v"}}, "tags.key", "regular expression"),
        ({"clientToken": "t", "tags": {"k": "v" * 257}}, "tags.k", "less than or equal to 256"),
        ({"clientToken": "t", "datastoreName": 5}, "datastoreName", "must be a string"),
        ({"clientToken": "t", "bogus": 1}, "bogus", "not a known member"),
    ],
)
def test_create_datastore_constraints(params: dict[str, Any], field: str, fragment: str) -> None:
    error = failure("CreateDatastore", params)
    assert error.field == field
    assert fragment in error.message
    assert error.message.startswith("1 validation error detected: Value")


def test_all_errors_are_reported_together() -> None:
    error = failure("CreateDatastore", {"clientToken": "t", "datastoreName": "!", "losslessStorageFormat": "X"})
    assert error.message.startswith("2 validation errors detected:")


def test_integer_ranges_and_types() -> None:
    assert failure("ListDatastores", {"maxResults": 51}).field == "maxResults"
    assert failure("ListDatastores", {"maxResults": 0}).field == "maxResults"
    assert failure("ListDatastores", {"maxResults": "ten"}).field == "maxResults"
    assert failure("ListDatastores", {"maxResults": True}).field == "maxResults"
    assert check("ListDatastores", {"maxResults": 50}) == {"maxResults": 50}


def test_datastore_id_pattern_is_matched_whole() -> None:
    assert failure("GetDatastore", {"datastoreId": "NOT-A-VALID-ID" + "a" * 32}).field == "datastoreId"
    assert failure("GetDatastore", {"datastoreId": ""}).field == "datastoreId"
    assert check("GetDatastore", {"datastoreId": ID}) == {"datastoreId": ID}


def test_union_needs_exactly_one_member() -> None:
    params = {"datastoreId": ID, "imageSetId": ID, "latestVersionId": "1"}
    both = {"revertToVersionId": "1", "DICOMUpdates": {}}
    assert (
        "Exactly one member"
        in failure("UpdateImageSetMetadata", params | {"updateImageSetMetadataUpdates": both}).message
    )
    assert (
        "Exactly one member"
        in failure("UpdateImageSetMetadata", params | {"updateImageSetMetadataUpdates": {}}).message
    )


def test_timestamps_become_aware_datetimes_and_blobs_bytes() -> None:
    criteria = {"filters": [{"operator": "EQUAL", "values": [{"createdAt": 1704067200.5}]}]}
    result = check("SearchImageSets", {"datastoreId": ID, "searchCriteria": criteria})
    moment = result["searchCriteria"]["filters"][0]["values"][0]["createdAt"]
    assert moment == datetime(2024, 1, 1, 0, 0, 0, 500000, tzinfo=UTC)
    blob = base64.b64encode(b'{"SchemaVersion": 1.1}').decode()
    updates = {"DICOMUpdates": {"updatableAttributes": blob}}
    out = check(
        "UpdateImageSetMetadata",
        {
            "datastoreId": ID,
            "imageSetId": ID,
            "latestVersionId": "1",
            "updateImageSetMetadataUpdates": updates,
        },
    )
    assert out["updateImageSetMetadataUpdates"]["DICOMUpdates"]["updatableAttributes"] == b'{"SchemaVersion": 1.1}'


def test_invalid_base64_blob_is_refused() -> None:
    updates = {"DICOMUpdates": {"updatableAttributes": "***"}}
    params = {
        "datastoreId": ID,
        "imageSetId": ID,
        "latestVersionId": "1",
        "updateImageSetMetadataUpdates": updates,
    }
    assert "base64" in failure("UpdateImageSetMetadata", params).message


def test_java_ascii_class_is_translated() -> None:
    assert compiled_pattern(r"\p{ASCII}{0,8192}").fullmatch("abc/+=") is not None
    assert compiled_pattern(r"\p{ASCII}{0,8192}").fullmatch("é") is None


@given(st.text(min_size=1, max_size=300))
def test_datastore_name_accepted_iff_model_pattern_and_length(name: str) -> None:
    allowed = 1 <= len(name) <= 256 and all(c.isascii() and (c.isalnum() or c in "._/#-") for c in name)
    try:
        check("CreateDatastore", {"clientToken": "t", "datastoreName": name})
        accepted = True
    except ValidationError:
        accepted = False
    assert accepted == allowed
