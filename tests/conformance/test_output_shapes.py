"""Raw responses of the implemented operations, checked against the botocore model's output shapes.

boto3 silently drops JSON fields its model does not declare and passes wrong types through, so a
client-level test would not notice them. Here the requests are signed with botocore's ``SigV4Auth``
and sent with httpx, and the raw JSON body is checked: every required member present, no undeclared
member (recursively), enums within the model's enum, timestamps JSON numbers, strings matching the
model's patterns and lengths. A scenario drives every implemented operation, including the optional
members (kmsKeyArn, lambdaAuthorizerArn, nextToken ...), and every member the model declares must show
up in some response, so a model that grows a member shows up here.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest, HeadersDict
from botocore.credentials import Credentials
from botocore.model import Shape, StructureShape
from botocore.parsers import create_parser
from botocore.serialize import create_serializer
from botocore.utils import percent_encode_sequence
from tests.conformance.model_support import (
    REGION,
    SERVICE_NAME,
    operation,
    operation_names,
    output_shape,
    shape_violations,
)
from tests.support.server import ACCESS_KEY_ID, SECRET_ACCESS_KEY, ServerProcess

from openhi.api.aws.handlers import PLANNED

IMPLEMENTED = sorted(set(operation_names()) - set(PLANNED))
KMS_KEY_ARN = "arn:aws:kms:us-east-1:123456789012:key/11111111-2222-3333-4444-555555555555"
LAMBDA_ARN = "arn:aws:lambda:us-east-1:123456789012:function:openhi-authorizer"


class RawClient:
    """Builds requests with botocore's serializer, signs them with SigV4Auth, sends them with httpx."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        self.http = httpx.Client(timeout=30.0)
        self.credentials = Credentials(ACCESS_KEY_ID, SECRET_ACCESS_KEY)
        self.serializer = create_serializer("rest-json", include_validation=True)
        self.recorded: dict[str, list[httpx.Response]] = {}

    def call(self, name: str, **params: Any) -> dict[str, Any]:
        """Send one request; record the raw response; return its JSON body (200 required)."""
        request = self.serializer.serialize_to_request(params, operation(name))
        url = self.endpoint + request["url_path"]
        if request["query_string"]:
            url += "?" + percent_encode_sequence(request["query_string"])
        body = request["body"] or b""
        if isinstance(body, str):
            body = body.encode()
        signed = AWSRequest(method=request["method"], url=url, data=body, headers=dict(request["headers"]))
        SigV4Auth(self.credentials, SERVICE_NAME, REGION).add_auth(signed)
        response = self.http.request(
            request["method"], url, headers=dict(signed.headers.items()), content=body
        )
        assert response.status_code == 200, f"{name}: {response.status_code} {response.text}"
        self.recorded.setdefault(name, []).append(response)
        document: dict[str, Any] = response.json()
        return document

    def close(self) -> None:
        self.http.close()


def _wait_until(raw: RawClient, datastore_id: str, status: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        current = raw.call("GetDatastore", datastoreId=datastore_id)["datastoreProperties"]["datastoreStatus"]
        if current == status:
            return
        assert time.monotonic() < deadline, f"datastore {datastore_id} stuck in {current}"
        time.sleep(0.1)


@pytest.fixture(scope="module")
def recorded(server: ServerProcess) -> Iterator[dict[str, list[httpx.Response]]]:
    """Drive every implemented operation, with and without its optional members; raw responses by op."""
    raw = RawClient(server.endpoint)
    full = raw.call(
        "CreateDatastore",
        clientToken=uuid.uuid4().hex,
        datastoreName="conformance-full",
        tags={"env": "dev"},
        kmsKeyArn=KMS_KEY_ARN,
        lambdaAuthorizerArn=LAMBDA_ARN,
        losslessStorageFormat="JPEG_2000_LOSSLESS",
    )["datastoreId"]
    bare = raw.call("CreateDatastore", clientToken=uuid.uuid4().hex)["datastoreId"]
    for datastore_id in (full, bare):
        _wait_until(raw, datastore_id, "ACTIVE")
    arn = raw.call("GetDatastore", datastoreId=full)["datastoreProperties"]["datastoreArn"]
    bare_arn = raw.call("GetDatastore", datastoreId=bare)["datastoreProperties"]["datastoreArn"]

    first = raw.call("ListDatastores", maxResults=1)
    assert "nextToken" in first, "two data stores, one per page: the first page must carry nextToken"
    raw.call("ListDatastores", maxResults=1, nextToken=first["nextToken"])
    raw.call("ListDatastores", datastoreStatus="ACTIVE")
    raw.call("ListDatastores")

    raw.call("TagResource", resourceArn=arn, tags={"team": "rad", "cost-center": "42"})
    raw.call("ListTagsForResource", resourceArn=arn)
    raw.call("UntagResource", resourceArn=arn, tagKeys=["team", "not-set"])
    raw.call("ListTagsForResource", resourceArn=arn)
    raw.call("UntagResource", resourceArn=bare_arn, tagKeys=["env"])
    assert raw.call("ListTagsForResource", resourceArn=bare_arn) == {"tags": {}}

    for datastore_id in (full, bare):
        raw.call("DeleteDatastore", datastoreId=datastore_id)
        raw.call("GetDatastore", datastoreId=datastore_id)
    raw.call("ListDatastores", datastoreStatus="DELETING")
    yield raw.recorded
    raw.close()


def _declared_paths(shape: Shape, prefix: str = "", depth: int = 0) -> set[str]:
    """Every member path a body of ``shape`` may hold (lists as ``[]``; map keys are data, not paths)."""
    if depth > 8:
        return set()
    paths: set[str] = set()
    if isinstance(shape, StructureShape):
        for name, member in shape.members.items():
            if depth == 0 and member.serialization.get("location"):
                continue
            paths.add(f"{prefix}.{name}")
            paths |= _declared_paths(member, f"{prefix}.{name}", depth + 1)
    elif shape.type_name == "list":
        paths |= _declared_paths(shape.member, f"{prefix}[]", depth + 1)  # type: ignore[attr-defined]
    return paths


def _seen_paths(shape: Shape, value: Any, prefix: str = "") -> set[str]:
    paths: set[str] = set()
    if isinstance(shape, StructureShape) and isinstance(value, dict):
        for name, item in value.items():
            if name in shape.members:
                paths.add(f"{prefix}.{name}")
                paths |= _seen_paths(shape.members[name], item, f"{prefix}.{name}")
    elif shape.type_name == "list" and isinstance(value, list):
        for item in value:
            paths |= _seen_paths(shape.member, item, f"{prefix}[]")  # type: ignore[attr-defined]
    return paths


def _key_tree(value: Any) -> Any:
    """The keys of a JSON document, recursively (values replaced by their key trees or None)."""
    if isinstance(value, dict):
        return {key: _key_tree(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_key_tree(item) for item in value]
    return None


def test_the_scenario_drives_every_implemented_operation(recorded: dict[str, list[httpx.Response]]) -> None:
    assert set(recorded) == set(IMPLEMENTED)


@pytest.mark.parametrize("name", IMPLEMENTED)
def test_raw_responses_conform_to_the_output_shape(
    name: str, recorded: dict[str, list[httpx.Response]]
) -> None:
    shape = output_shape(name)
    for response in recorded[name]:
        assert response.headers["content-type"].startswith("application/json")
        assert response.headers.get("x-amzn-requestid")
        document = json.loads(response.content)
        assert isinstance(document, dict)
        assert shape_violations(shape, document, body=True) == [], response.text


@pytest.mark.parametrize("name", IMPLEMENTED)
def test_every_declared_member_is_emitted_somewhere(
    name: str, recorded: dict[str, list[httpx.Response]]
) -> None:
    """The scenario covers every member of the output shape: a member the model adds shows up here."""
    shape = output_shape(name)
    seen: set[str] = set()
    for response in recorded[name]:
        seen |= _seen_paths(shape, json.loads(response.content))
    assert _declared_paths(shape) - seen == set()


@pytest.mark.parametrize("name", IMPLEMENTED)
def test_boto3_keeps_every_field(name: str, recorded: dict[str, list[httpx.Response]]) -> None:
    """botocore's own parser yields exactly the raw document's keys: nothing dropped, nothing added."""
    parser = create_parser("rest-json")
    for response in recorded[name]:
        parsed = parser.parse(
            {"status_code": 200, "headers": HeadersDict(response.headers.items()), "body": response.content},
            output_shape(name),
        )
        parsed.pop("ResponseMetadata")
        assert _key_tree(parsed) == _key_tree(json.loads(response.content))


# --- the checker itself: it must catch what it claims to ------------------------------------------


def test_the_checker_refuses_what_boto3_would_drop_or_misread() -> None:
    shape = output_shape("GetDatastore")
    good = {
        "datastoreProperties": {
            "datastoreId": "a" * 32,
            "datastoreName": "n",
            "datastoreStatus": "ACTIVE",
            "createdAt": 1704067200.5,
            "updatedAt": 1704067200,
        }
    }
    assert shape_violations(shape, good, body=True) == []
    props = good["datastoreProperties"]
    bad_cases: list[dict[str, Any]] = [
        {"datastoreProperties": {**props, "extra": 1}},
        {"datastoreProperties": {k: v for k, v in props.items() if k != "datastoreName"}},
        {"datastoreProperties": {**props, "datastoreStatus": "READY"}},
        {"datastoreProperties": {**props, "createdAt": "2024-01-01T00:00:00Z"}},
        {"datastoreProperties": {**props, "createdAt": True}},
        {"datastoreProperties": {**props, "datastoreId": "A" * 32}},
        {"datastoreProperties": {**props, "kmsKeyArn": None}},
        {"datastoreProperties": {**props, "datastoreName": ""}},
        {**good, "ResponseMetadata": {}},
    ]
    for bad in bad_cases:
        assert shape_violations(shape, bad, body=True), bad
    tags = output_shape("ListTagsForResource")
    assert shape_violations(tags, {"tags": {"aws:reserved": "x"}}, body=True)
    assert shape_violations(tags, {}, body=True)
