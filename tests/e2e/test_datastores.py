"""CreateDatastore, GetDatastore, ListDatastores, DeleteDatastore via unmodified boto3, on both backends."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import pytest
from tests.e2e.conftest import ServerFactory
from tests.e2e.helpers import error_of, wait_for_status

KMS = "arn:aws:kms:us-east-1:123456789012:key/11111111-2222-3333-4444-555555555555"
LAMBDA = "arn:aws:lambda:us-east-1:123456789012:function:authorizer"


def test_create_is_creating_then_active_with_all_properties(client: Any) -> None:
    created = client.create_datastore(
        datastoreName="my-datastore", kmsKeyArn=KMS, lambdaAuthorizerArn=LAMBDA, tags={"env": "dev"}
    )
    assert set(created) - {"ResponseMetadata"} == {"datastoreId", "datastoreStatus"}
    assert created["datastoreStatus"] == "CREATING"
    datastore_id = created["datastoreId"]
    assert len(datastore_id) == 32
    first = client.get_datastore(datastoreId=datastore_id)["datastoreProperties"]
    assert first["datastoreStatus"] == "CREATING"  # observable before the lifecycle finishes
    properties = wait_for_status(client, datastore_id, "ACTIVE")
    assert properties["datastoreName"] == "my-datastore"
    assert properties["losslessStorageFormat"] == "HTJ2K"
    assert properties["kmsKeyArn"] == KMS
    assert properties["lambdaAuthorizerArn"] == LAMBDA
    assert properties["datastoreArn"] == f"arn:aws:medical-imaging:us-east-1:123456789012:datastore/{datastore_id}"
    assert isinstance(properties["createdAt"], datetime)
    assert properties["updatedAt"] >= properties["createdAt"]
    assert client.list_tags_for_resource(resourceArn=properties["datastoreArn"])["tags"] == {"env": "dev"}


def test_jpeg_2000_lossless_format_is_kept(client: Any) -> None:
    created = client.create_datastore(datastoreName="j2k", losslessStorageFormat="JPEG_2000_LOSSLESS")
    properties = client.get_datastore(datastoreId=created["datastoreId"])["datastoreProperties"]
    assert properties["losslessStorageFormat"] == "JPEG_2000_LOSSLESS"


def test_unnamed_datastore(client: Any) -> None:
    created = client.create_datastore()
    name = client.get_datastore(datastoreId=created["datastoreId"])["datastoreProperties"]["datastoreName"]
    assert name == f"datastore-{created['datastoreId'][:8]}"


def test_client_token_idempotency(client: Any) -> None:
    token = uuid.uuid4().hex
    first = client.create_datastore(datastoreName="idem", clientToken=token)
    again = client.create_datastore(datastoreName="idem", clientToken=token)
    assert again["datastoreId"] == first["datastoreId"]
    code, status, message = error_of(client.create_datastore, datastoreName="other", clientToken=token)
    assert (code, status) == ("ConflictException", 409)
    assert token in message
    with pytest.raises(client.exceptions.ConflictException):
        client.create_datastore(datastoreName="other", clientToken=token)


def test_list_paginates_every_datastore_once_newest_first(client: Any) -> None:
    made = [client.create_datastore(datastoreName=f"page-{n}")["datastoreId"] for n in range(7)]
    pages = list(client.get_paginator("list_datastores").paginate(PaginationConfig={"PageSize": 2}))
    assert all(len(page["datastoreSummaries"]) <= 2 for page in pages)
    assert "nextToken" not in pages[-1]
    listed = [s["datastoreId"] for page in pages for s in page["datastoreSummaries"]]
    assert len(listed) == len(set(listed))
    ours = [i for i in listed if i in made]
    assert ours == list(reversed(made))
    summary = next(s for page in pages for s in page["datastoreSummaries"] if s["datastoreId"] == made[0])
    assert set(summary) == {
        "datastoreId",
        "datastoreName",
        "datastoreStatus",
        "datastoreArn",
        "createdAt",
        "updatedAt",
    }


def test_list_filters_by_status(client: Any) -> None:
    datastore_id = client.create_datastore(datastoreName="filtered")["datastoreId"]
    wait_for_status(client, datastore_id, "ACTIVE")
    active = client.get_paginator("list_datastores").paginate(datastoreStatus="ACTIVE").build_full_result()
    assert datastore_id in {s["datastoreId"] for s in active["datastoreSummaries"]}
    assert {s["datastoreStatus"] for s in active["datastoreSummaries"]} == {"ACTIVE"}
    deleted = client.list_datastores(datastoreStatus="DELETED")["datastoreSummaries"]
    assert datastore_id not in {s["datastoreId"] for s in deleted}


def test_list_token_errors(client: Any) -> None:
    for _ in range(3):
        client.create_datastore(datastoreName="tok")
    token = client.list_datastores(maxResults=1)["nextToken"]
    assert error_of(client.list_datastores, nextToken=token + "x")[:2] == ("ValidationException", 400)
    code, _, message = error_of(client.list_datastores, nextToken=token, datastoreStatus="ACTIVE")
    assert code == "ValidationException"
    assert "nextToken" in message
    assert error_of(client.list_datastores, maxResults=51)[:2] == ("ValidationException", 400)


def test_delete_is_deleting_then_deleted(client: Any) -> None:
    datastore_id = client.create_datastore(datastoreName="to-delete")["datastoreId"]
    code, status, _ = error_of(client.delete_datastore, datastoreId=datastore_id)  # still CREATING
    assert (code, status) == ("ConflictException", 409)
    wait_for_status(client, datastore_id, "ACTIVE")
    deleting = client.delete_datastore(datastoreId=datastore_id)
    assert (deleting["datastoreId"], deleting["datastoreStatus"]) == (datastore_id, "DELETING")
    assert client.get_datastore(datastoreId=datastore_id)["datastoreProperties"]["datastoreStatus"] == "DELETING"
    wait_for_status(client, datastore_id, "DELETED")
    assert client.delete_datastore(datastoreId=datastore_id)["datastoreStatus"] == "DELETED"  # idempotent
    deleted = client.list_datastores(datastoreStatus="DELETED")["datastoreSummaries"]
    assert datastore_id in {s["datastoreId"] for s in deleted}


def test_unknown_and_invalid_ids(client: Any) -> None:
    for call in (client.get_datastore, client.delete_datastore):
        code, status, message = error_of(call, datastoreId="f" * 32)
        assert (code, status) == ("ResourceNotFoundException", 404)
        assert "f" * 32 in message
        code, status, message = error_of(call, datastoreId="NOT-A-VALID-ID")
        assert (code, status) == ("ValidationException", 400)
        assert "datastoreId" in message


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"datastoreName": "x" * 257}, "datastoreName"),
        ({"datastoreName": "no spaces"}, "datastoreName"),
        ({"losslessStorageFormat": "PNG"}, "losslessStorageFormat"),
        ({"kmsKeyArn": "arn:aws:kms:us-east-1:123456789012:nope"}, "kmsKeyArn"),
        ({"lambdaAuthorizerArn": "arn:aws:lambda:nowhere"}, "lambdaAuthorizerArn"),
        ({"clientToken": "bad token!"}, "clientToken"),
        ({"tags": {"aws:internal": "x"}}, "tags"),
    ],
)
def test_create_validation_names_the_field(client: Any, kwargs: dict[str, Any], field: str) -> None:
    code, status, message = error_of(client.create_datastore, **kwargs)
    assert (code, status) == ("ValidationException", 400)
    assert f"at '{field}" in message


def test_quota_of_active_datastores(make_server: ServerFactory) -> None:
    server = make_server(env={"OPENHI_MAX_ACTIVE_DATASTORES": "2", "OPENHI_DATASTORE_TRANSITION_SECONDS": "0.2"})
    client = server.client()
    first = client.create_datastore(datastoreName="q1")["datastoreId"]
    client.create_datastore(datastoreName="q2")
    code, status, message = error_of(client.create_datastore, datastoreName="q3")
    assert (code, status) == ("ServiceQuotaExceededException", 402)
    assert "2" in message
    wait_for_status(client, first, "ACTIVE")
    client.delete_datastore(datastoreId=first)
    wait_for_status(client, first, "DELETED")
    assert client.create_datastore(datastoreName="q3")["datastoreStatus"] == "CREATING"
