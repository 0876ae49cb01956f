"""Every operation of the botocore model, called over the wire by an unmodified boto3 client.

Parameters are generated from each operation's input shape (required members only). Each call must
reach its handler and answer as modelled: success, or ResourceNotFoundException for the sample ids,
which name nothing (SearchImageSets included: its sample data store does not exist). Every operation of
the model is implemented, so none may answer NotImplementedException (501); nothing may answer 500 or
UnknownOperationException either (which would mean the route or the request parsing failed before the
handler). With a data store that exists, StartDICOMImportJob's sample parameters (s3:// buckets the server
cannot reach) start a job: 200 and SUBMITTED at once, the job then FAILS with a message; the image set
operations answer ResourceNotFoundException for the sample image set id, and SearchImageSets an empty page.
"""

from __future__ import annotations

import time
import uuid
from typing import Any, cast

import pytest
from botocore import xform_name
from botocore.exceptions import ClientError
from botocore.validate import validate_parameters
from tests.conformance.model_support import (
    ACCOUNT_ID,
    REGION,
    minimal_params,
    operation,
    operation_names,
    shape_violations,
)

from openhi.api.aws.handlers import PLANNED, AwsHandlers, Identity
from openhi.api.aws.image_set_handlers import ImageSetHandlers
from openhi.api.aws.image_set_write_handlers import ImageSetWriteHandlers
from openhi.api.aws.import_handlers import ImportHandlers
from openhi.api.aws.search_handlers import SearchHandlers


def _uri_members(name: str) -> set[str]:
    """The input members an operation carries in its URI path."""
    shape = operation(name).input_shape
    assert shape is not None
    return {member for member, value in shape.members.items() if value.serialization.get("location") == "uri"}


def _addresses_a_resource(name: str) -> bool:
    """Operations with URI labels name an existing resource; the sample ids name none."""
    return bool(_uri_members(name))


# Operations that name something inside a data store (an image set, a job) besides the data store itself.
INSIDE_A_DATASTORE = sorted(
    name for name in operation_names() if "datastoreId" in _uri_members(name) and len(_uri_members(name)) > 1
)


def test_the_handler_table_covers_exactly_the_model() -> None:
    handlers = AwsHandlers(
        Identity(ACCOUNT_ID, REGION),
        cast(Any, None),
        cast(Any, None),
        ImageSetHandlers(cast(Any, None), REGION, ACCOUNT_ID),
        ImportHandlers(cast(Any, None)),
        ImageSetWriteHandlers(cast(Any, None), cast(Any, None), cast(Any, None), REGION, ACCOUNT_ID),
        SearchHandlers(cast(Any, None)),
    )
    assert set(handlers.table) == set(operation_names())


def test_no_operation_is_planned_any_more() -> None:
    """Every operation of the model is implemented: nothing is left to answer NotImplementedException."""
    assert PLANNED == {}


@pytest.mark.parametrize("name", operation_names())
def test_minimal_params_satisfy_the_model(name: str) -> None:
    op = operation(name)
    params = minimal_params(op)
    assert op.input_shape is not None
    assert shape_violations(op.input_shape, params) == []
    validate_parameters(params, op.input_shape)  # botocore's own client-side checks


def test_the_client_does_not_inject_the_host_prefix(client: Any) -> None:
    assert client.meta.config.inject_host_prefix is False


def _call(client: Any, name: str, params: dict[str, Any]) -> tuple[dict[str, Any] | None, ClientError | None]:
    """(response, None) on success, (None, error) on a ClientError."""
    try:
        return getattr(client, xform_name(name))(**params), None
    except ClientError as exc:
        return None, exc


@pytest.mark.parametrize("name", operation_names())
def test_operation_reaches_its_handler(name: str, client: Any) -> None:
    op = operation(name)
    params = minimal_params(op, idempotency_tokens=False)  # botocore fills clientToken, as for users
    response, exc = _call(client, name, params)
    if exc is None:
        assert response is not None
        assert not _addresses_a_resource(name), f"{name} succeeded for ids that name nothing"
        assert response["ResponseMetadata"]["HTTPStatusCode"] == 200
        return
    error = exc.response["Error"]
    meta = exc.response["ResponseMetadata"]
    status = meta["HTTPStatusCode"]
    assert status != 500, f"{name} failed inside the server: {error}"
    assert error["Code"] not in ("InternalServerException", "UnknownOperationException"), error
    # Every operation of the model is implemented: none may answer NotImplementedException (501) any more.
    assert error["Code"] != "NotImplementedException", f"{name} is not implemented: {error}"
    assert status != 501, f"{name} is not implemented: {error}"
    assert meta["RequestId"], "x-amzn-RequestId missing"
    assert meta["RequestId"] == meta["HTTPHeaders"]["x-amzn-requestid"]
    assert meta["RetryAttempts"] == 0
    assert _addresses_a_resource(name), f"{name} should have succeeded: {error}"
    assert (error["Code"], status) == ("ResourceNotFoundException", 404), error
    assert isinstance(exc, client.exceptions.ResourceNotFoundException)
    assert "ResourceNotFoundException" in {shape.name for shape in op.error_shapes}


@pytest.mark.parametrize("name", ["GetImageFrame", "GetImageSetMetadata"])
def test_streaming_operation_error_is_a_json_error(name: str, client: Any) -> None:
    """Outputs with a streaming payload still answer errors as JSON documents with x-amzn-ErrorType."""
    with pytest.raises(client.exceptions.ResourceNotFoundException) as caught:
        getattr(client, xform_name(name))(**minimal_params(operation(name), idempotency_tokens=False))
    headers = caught.value.response["ResponseMetadata"]["HTTPHeaders"]
    assert headers["x-amzn-errortype"] == "ResourceNotFoundException"
    assert headers["content-type"].startswith("application/json")
    assert caught.value.response["Error"]["Message"]


@pytest.fixture(scope="module")
def datastore_id(client: Any) -> str:
    """An ACTIVE data store of the shared server."""
    created: str = client.create_datastore(clientToken=uuid.uuid4().hex)["datastoreId"]
    deadline = time.monotonic() + 20
    while client.get_datastore(datastoreId=created)["datastoreProperties"]["datastoreStatus"] != "ACTIVE":
        assert time.monotonic() < deadline, "data store never became ACTIVE"
        time.sleep(0.1)
    return created


def test_inside_a_datastore_is_the_image_set_and_job_operations() -> None:
    assert set(INSIDE_A_DATASTORE) == {
        "CopyImageSet",
        "DeleteImageSet",
        "GetDICOMImportJob",
        "GetImageFrame",
        "GetImageSet",
        "GetImageSetMetadata",
        "ListImageSetVersions",
        "UpdateImageSetMetadata",
    }


@pytest.mark.parametrize("name", INSIDE_A_DATASTORE)
def test_unknown_ids_in_an_existing_datastore_are_not_found(name: str, client: Any, datastore_id: str) -> None:
    """The data store exists, the sample image set / job id does not: ResourceNotFoundException, as modelled."""
    params = minimal_params(operation(name), idempotency_tokens=False) | {"datastoreId": datastore_id}
    response, exc = _call(client, name, params)
    assert exc is not None, f"{name} succeeded for an id that names nothing: {response}"
    error, status = exc.response["Error"], exc.response["ResponseMetadata"]["HTTPStatusCode"]
    assert (error["Code"], status) == ("ResourceNotFoundException", 404), error
    assert isinstance(exc, client.exceptions.ResourceNotFoundException)


def test_search_of_an_unknown_datastore_is_not_found(client: Any) -> None:
    with pytest.raises(client.exceptions.ResourceNotFoundException) as caught:
        client.search_image_sets(datastoreId="f" * 32, searchCriteria={})
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


def test_search_of_an_empty_datastore_is_an_empty_page(client: Any, datastore_id: str) -> None:
    found = client.search_image_sets(**minimal_params(operation("SearchImageSets")) | {"datastoreId": datastore_id})
    assert found["imageSetsMetadataSummaries"] == []
    assert "nextToken" not in found
    assert found["sort"] == {"sortField": "updatedAt", "sortOrder": "DESC"}  # the default sort, echoed


def test_start_import_with_the_sample_parameters_submits_a_job(client: Any, datastore_id: str) -> None:
    """In an ACTIVE data store the sample (unreachable) s3:// URIs give 200 SUBMITTED; the job then FAILS."""
    params = minimal_params(operation("StartDICOMImportJob"), idempotency_tokens=False)
    started = client.start_dicom_import_job(**{**params, "datastoreId": datastore_id})
    assert started["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert (started["datastoreId"], started["jobStatus"]) == (datastore_id, "SUBMITTED")
    deadline = time.monotonic() + 120
    while True:
        job = client.get_dicom_import_job(datastoreId=datastore_id, jobId=started["jobId"])["jobProperties"]
        if job["jobStatus"] not in ("SUBMITTED", "IN_PROGRESS"):
            break
        assert time.monotonic() < deadline, f"import job stuck: {job}"
        time.sleep(0.1)
    assert job["jobStatus"] == "FAILED", job
    assert job["message"]
    assert (job["inputS3Uri"], job["outputS3Uri"]) == (params["inputS3Uri"], params["outputS3Uri"])
