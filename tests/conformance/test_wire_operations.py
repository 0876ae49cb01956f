"""Every operation of the botocore model, called over the wire by an unmodified boto3 client.

Parameters are generated from each operation's input shape (required members only). Each call must
reach its handler: implemented operations answer as modelled (success, or ResourceNotFoundException
for the sample ids, which name nothing), the operations of later issues answer a parseable
NotImplementedException (501) naming the operation. Nothing may answer 500 or UnknownOperationException
(which would mean the route or the request parsing failed before the handler). With a data store that
exists, StartDICOMImportJob's sample parameters (s3:// buckets the server cannot reach) start a job: 200
and SUBMITTED at once, the job then FAILS with a message.
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
from openhi.api.aws.import_handlers import ImportHandlers

IMPLEMENTED = sorted(set(operation_names()) - set(PLANNED))


def _addresses_a_resource(name: str) -> bool:
    """Operations with URI labels name an existing resource; the sample ids name none."""
    shape = operation(name).input_shape
    return shape is not None and any(member.serialization.get("location") == "uri" for member in shape.members.values())


def test_the_handler_table_covers_exactly_the_model() -> None:
    handlers = AwsHandlers(
        Identity(ACCOUNT_ID, REGION),
        cast(Any, None),
        cast(Any, None),
        ImageSetHandlers(cast(Any, None), REGION, ACCOUNT_ID),
        ImportHandlers(cast(Any, None)),
    )
    assert set(handlers.table) == set(operation_names())
    assert set(PLANNED) < set(operation_names())


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
        assert name not in PLANNED, f"{name} is planned but answered a (fake) success"
        assert not _addresses_a_resource(name), f"{name} succeeded for ids that name nothing"
        assert response["ResponseMetadata"]["HTTPStatusCode"] == 200
        return
    error = exc.response["Error"]
    meta = exc.response["ResponseMetadata"]
    status = meta["HTTPStatusCode"]
    assert status != 500, f"{name} failed inside the server: {error}"
    assert error["Code"] not in ("InternalServerException", "UnknownOperationException"), error
    assert meta["RequestId"], "x-amzn-RequestId missing"
    assert meta["RequestId"] == meta["HTTPHeaders"]["x-amzn-requestid"]
    assert meta["RetryAttempts"] == 0
    if name in PLANNED:
        assert (error["Code"], status) == ("NotImplementedException", 501), error
        assert name in error["Message"]
        assert type(exc) is ClientError  # not a modelled error shape: botocore's generic class
    else:
        assert _addresses_a_resource(name), f"{name} should have succeeded: {error}"
        assert (error["Code"], status) == ("ResourceNotFoundException", 404), error
        assert isinstance(exc, client.exceptions.ResourceNotFoundException)
        assert "ResourceNotFoundException" in {shape.name for shape in op.error_shapes}


@pytest.mark.parametrize("name", sorted(PLANNED))
def test_planned_operation_error_parses_like_any_error(name: str, client: Any) -> None:
    """The 501 is a JSON error botocore parses like a modelled one."""
    op = operation(name)
    with pytest.raises(ClientError) as caught:
        getattr(client, xform_name(name))(**minimal_params(op, idempotency_tokens=False))
    response = caught.value.response
    assert response["Error"]["Code"] == "NotImplementedException"
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 501
    assert response["ResponseMetadata"]["HTTPHeaders"]["x-amzn-errortype"] == "NotImplementedException"
    assert response["ResponseMetadata"]["HTTPHeaders"]["content-type"].startswith("application/json")
    assert f"calling the {name} operation" in str(caught.value)
    assert name in str(caught.value)


@pytest.mark.parametrize("name", ["GetImageFrame", "GetImageSetMetadata"])
def test_streaming_operation_error_is_a_json_error(name: str, client: Any) -> None:
    """Outputs with a streaming payload still answer errors as JSON documents with x-amzn-ErrorType."""
    with pytest.raises(client.exceptions.ResourceNotFoundException) as caught:
        getattr(client, xform_name(name))(**minimal_params(operation(name), idempotency_tokens=False))
    headers = caught.value.response["ResponseMetadata"]["HTTPHeaders"]
    assert headers["x-amzn-errortype"] == "ResourceNotFoundException"
    assert headers["content-type"].startswith("application/json")
    assert caught.value.response["Error"]["Message"]


def test_start_import_with_the_sample_parameters_submits_a_job(client: Any) -> None:
    """In an ACTIVE data store the sample (unreachable) s3:// URIs give 200 SUBMITTED; the job then FAILS."""
    datastore_id = client.create_datastore(clientToken=uuid.uuid4().hex)["datastoreId"]
    deadline = time.monotonic() + 20
    while client.get_datastore(datastoreId=datastore_id)["datastoreProperties"]["datastoreStatus"] != "ACTIVE":
        assert time.monotonic() < deadline, "data store never became ACTIVE"
        time.sleep(0.1)
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
