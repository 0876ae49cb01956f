"""Every error shape of the botocore model: a domain error for it, its wire status, and botocore's parse.

(a) Each modelled error shape has a domain error in ``openhi.errors`` whose ``code`` is the shape name
    (InternalServerException: the base ``OpenHIError``), and ``to_wire`` gives the modelled status.
(b) The HTTP answer OpenHI builds for it, fed to botocore's own rest-json parser for every operation that
    lists the error, parses back to that code and message and selects the modelled exception class.
(c) The errors that can be produced through the server today are produced for real with boto3.
    (AccessDenied and Throttling cannot be until access control lands; (b) covers their shape.)
"""

from __future__ import annotations

import inspect
import uuid
from collections.abc import Callable
from typing import Any, cast

import boto3
import pytest
from botocore.awsrequest import HeadersDict
from botocore.exceptions import ClientError
from botocore.model import StructureShape
from botocore.parsers import create_parser
from tests.conformance.model_support import (
    error_shapes,
    modelled_status,
    operation,
    operations_listing,
    output_shape,
)
from tests.support.server import ServerProcess

import openhi.errors
from openhi.api.aws.errors import error_body, to_wire
from openhi.api.aws.model import error_statuses
from openhi.errors import OpenHIError

# Pinned: a botocore release that changes an error shape or its status must fail here first.
EXPECTED_STATUSES = {
    "AccessDeniedException": 403,
    "BadRequestException": 400,
    "ConflictException": 409,
    "InternalServerException": 500,
    "NotAcceptableException": 406,
    "ResourceNotFoundException": 404,
    "ServiceQuotaExceededException": 402,
    "ThrottlingException": 429,
    "ValidationException": 400,
}
ERROR_NAMES = sorted(error_shapes())
ERROR_CASES = [(error, op) for error in ERROR_NAMES for op in operations_listing(error)]
REQUEST_ID = "11111111-2222-3333-4444-555555555555"
ServerFactory = Callable[..., ServerProcess]


def domain_errors(code: str) -> list[type[OpenHIError]]:
    """The domain error classes answering ``code`` on the wire."""
    if code == "InternalServerException":
        return [OpenHIError]
    return [
        cls
        for _, cls in inspect.getmembers(openhi.errors, inspect.isclass)
        if issubclass(cls, OpenHIError) and cls.code == code
    ]


def instance(code: str, message: str) -> OpenHIError:
    return domain_errors(code)[0](message)


@pytest.fixture(scope="module")
def offline_client() -> Any:
    """A boto3 client used only for its exception table (never sends a request)."""
    return boto3.client(
        "medical-imaging",
        region_name="us-east-1",
        endpoint_url="http://127.0.0.1:9",
        aws_access_key_id="AKIDEXAMPLE",
        aws_secret_access_key="unused",
    )


# --- the model -----------------------------------------------------------------------------------


def test_the_model_error_shapes_and_statuses_are_the_pinned_ones() -> None:
    assert {name: modelled_status(shape) for name, shape in error_shapes().items()} == EXPECTED_STATUSES


def test_openhi_reads_the_same_statuses_from_the_model() -> None:
    assert error_statuses() == {name: modelled_status(shape) for name, shape in error_shapes().items()}


@pytest.mark.parametrize("name", ERROR_NAMES)
def test_error_shape_has_only_a_required_message(name: str) -> None:
    """error_body sends exactly ``message``; a model change adding members must be noticed."""
    shape = error_shapes()[name]
    assert isinstance(shape, StructureShape)
    assert shape.metadata.get("exception") is True
    assert list(shape.members) == ["message"]
    assert shape.required_members == ["message"]
    assert shape.members["message"].type_name == "string"


# --- (a) domain error -> wire status and code ----------------------------------------------------


@pytest.mark.parametrize("name", ERROR_NAMES)
def test_domain_error_maps_to_the_modelled_status_and_code(name: str) -> None:
    classes = domain_errors(name)
    assert classes, f"openhi.errors has no error class with code {name}"
    for cls in classes:
        message = f"{cls.__name__} for the conformance tier"
        status, code, wire_message = to_wire(cls(message), "rid")
        assert (status, code) == (modelled_status(error_shapes()[name]), name), cls
        if name != "InternalServerException":
            assert wire_message == message
        else:  # never leaks the internal message; names the request id instead
            assert "rid" in wire_message
            assert message not in wire_message


# --- (b) the HTTP answer, parsed by botocore -----------------------------------------------------


@pytest.mark.parametrize(("name", "operation_name"), ERROR_CASES, ids=[f"{e}-{o}" for e, o in ERROR_CASES])
def test_botocore_parses_the_error_answer(name: str, operation_name: str, offline_client: Any) -> None:
    op = operation(operation_name)
    status, code, message = to_wire(instance(name, f"{name} raised by {operation_name}"), REQUEST_ID)
    response = {
        "status_code": status,
        "headers": HeadersDict(
            {
                "x-amzn-ErrorType": code,
                "x-amzn-RequestId": REQUEST_ID,
                "content-type": "application/json",
            }
        ),
        "body": error_body(code, message),
    }
    parser = create_parser("rest-json")
    parsed: dict[str, Any] = parser.parse(response, output_shape(operation_name))
    assert parsed["Error"]["Code"] == name
    assert parsed["Error"]["Message"] == message
    assert parsed["ResponseMetadata"]["RequestId"] == REQUEST_ID
    assert parsed["ResponseMetadata"]["HTTPStatusCode"] == EXPECTED_STATUSES[name]

    # What botocore.endpoint does next: the code selects a modelled shape whose members are added.
    modelled = op.service_model.shape_for_error_code(parsed["Error"]["Code"])
    assert modelled is not None
    assert modelled.name == name
    parsed.update(parser.parse(response, modelled))
    assert parsed["message"] == message

    exception = offline_client.exceptions.from_code(parsed["Error"]["Code"])
    assert exception is getattr(offline_client.exceptions, name)
    assert exception is not ClientError
    assert exception.__name__ == name
    assert issubclass(exception, ClientError)


def test_body_alone_also_names_the_code() -> None:
    """Clients that only read the body (``__type``) get the same code."""
    response = {
        "status_code": 404,
        "headers": HeadersDict({"content-type": "application/json"}),
        "body": error_body("ResourceNotFoundException", "gone"),
    }
    parsed = create_parser("rest-json").parse(response, output_shape("GetDatastore"))
    assert parsed["Error"] == {"Code": "ResourceNotFoundException", "Message": "gone"}


# --- (c) over the wire ---------------------------------------------------------------------------


def assert_wire_error(caught: pytest.ExceptionInfo[ClientError], client: Any, name: str) -> None:
    exc = caught.value
    assert type(exc) is getattr(client.exceptions, name)
    response = cast(dict[str, Any], exc.response)
    meta = response["ResponseMetadata"]
    assert response["Error"]["Code"] == name
    assert meta["HTTPStatusCode"] == EXPECTED_STATUSES[name]
    assert meta["HTTPHeaders"]["x-amzn-errortype"] == name
    assert meta["RequestId"] == meta["HTTPHeaders"]["x-amzn-requestid"]
    assert meta["RetryAttempts"] == 0
    assert response["message"] == response["Error"]["Message"]  # the modelled member was parsed
    assert response["Error"]["Message"]


INVALID_CALLS: list[Any] = [
    pytest.param(lambda c: c.get_datastore(datastoreId="NOT-A-VALID-ID"), id="bad-datastoreId"),
    pytest.param(lambda c: c.get_datastore(datastoreId="a" * 31), id="short-datastoreId"),
    pytest.param(lambda c: c.list_datastores(maxResults=51), id="maxResults-51"),
    pytest.param(lambda c: c.list_datastores(datastoreStatus="FOO"), id="bad-enum-datastoreStatus"),
    pytest.param(lambda c: c.create_datastore(losslessStorageFormat="FOO"), id="bad-enum-losslessStorage"),
    pytest.param(lambda c: c.create_datastore(datastoreName="x" * 257), id="datastoreName-too-long"),
    pytest.param(lambda c: c.create_datastore(datastoreName="bad name!"), id="datastoreName-pattern"),
    pytest.param(lambda c: c.tag_resource(resourceArn="arn:aws:s3:::bucket", tags={"k": "v"}), id="bad-resourceArn"),
]


@pytest.mark.parametrize("call", INVALID_CALLS)
def test_validation_exception_over_the_wire(call: Callable[[Any], Any], client: Any) -> None:
    with pytest.raises(client.exceptions.ValidationException) as caught:
        call(client)
    assert_wire_error(caught, client, "ValidationException")


def test_resource_not_found_over_the_wire(client: Any) -> None:
    missing = uuid.uuid4().hex
    with pytest.raises(client.exceptions.ResourceNotFoundException) as caught:
        client.get_datastore(datastoreId=missing)
    assert_wire_error(caught, client, "ResourceNotFoundException")


def test_conflict_over_the_wire(client: Any) -> None:
    token = f"conflict-{uuid.uuid4().hex}"
    first = client.create_datastore(clientToken=token, datastoreName="first-name")
    again = client.create_datastore(clientToken=token, datastoreName="first-name")
    assert again["datastoreId"] == first["datastoreId"]  # same token, same request: idempotent
    with pytest.raises(client.exceptions.ConflictException) as caught:
        client.create_datastore(clientToken=token, datastoreName="second-name")
    assert_wire_error(caught, client, "ConflictException")


def test_service_quota_exceeded_over_the_wire(make_server: ServerFactory) -> None:
    client = make_server({"OPENHI_MAX_ACTIVE_DATASTORES": "1"}).client()
    client.create_datastore(datastoreName="only-slot")
    with pytest.raises(client.exceptions.ServiceQuotaExceededException) as caught:
        client.create_datastore(datastoreName="one-too-many")
    assert_wire_error(caught, client, "ServiceQuotaExceededException")
