"""TagResource, UntagResource, ListTagsForResource on data store and image set ARNs, through boto3."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from tests.e2e.helpers import error_of, wait_for_status
from tests.support.index_rows import insert_image_set
from tests.support.server import ServerProcess

from openhi.blobs.factory import open_blob_store
from openhi.index.sql.adapter import SqlIndex

ACCOUNT, REGION = "123456789012", "us-east-1"


@pytest.fixture(scope="module")
def index(server: ServerProcess) -> Iterator[SqlIndex]:
    """The server's own index, opened from the test process (to place image set rows)."""
    opened = SqlIndex.open(server.index_url)
    yield opened
    opened.close()


@pytest.fixture
def datastore(client: Any) -> dict[str, Any]:
    datastore_id = client.create_datastore(datastoreName="tagged", tags={"env": "dev", "team": "rad"})["datastoreId"]
    return wait_for_status(client, datastore_id, "ACTIVE")


def test_tags_on_a_datastore(client: Any, datastore: dict[str, Any]) -> None:
    arn = datastore["datastoreArn"]
    assert client.list_tags_for_resource(resourceArn=arn)["tags"] == {"env": "dev", "team": "rad"}
    client.tag_resource(resourceArn=arn, tags={"env": "prod", "cost-center": "42", "empty": ""})
    assert client.list_tags_for_resource(resourceArn=arn)["tags"] == {
        "env": "prod",
        "team": "rad",
        "cost-center": "42",
        "empty": "",
    }
    client.untag_resource(resourceArn=arn, tagKeys=["team", "not-there"])
    assert set(client.list_tags_for_resource(resourceArn=arn)["tags"]) == {"env", "cost-center", "empty"}


def test_at_most_50_tags(client: Any, datastore: dict[str, Any]) -> None:
    arn = datastore["datastoreArn"]
    client.tag_resource(resourceArn=arn, tags={f"k{n}": str(n) for n in range(48)})  # 2 + 48 = 50
    code, status, message = error_of(client.tag_resource, resourceArn=arn, tags={"one-more": "x"})
    assert (code, status) == ("ValidationException", 400)
    assert "50" in message
    assert len(client.list_tags_for_resource(resourceArn=arn)["tags"]) == 50


@pytest.mark.parametrize(
    ("tags", "fragment"),
    [
        ({"aws:reserved": "x"}, "tags"),
        ({"k" * 129: "x"}, "tags"),
        ({"k": "v" * 257}, "tags"),
        ({"bad key!": "v"}, "tags"),
    ],
)
def test_tag_constraints(client: Any, datastore: dict[str, Any], tags: dict[str, str], fragment: str) -> None:
    code, status, message = error_of(client.tag_resource, resourceArn=datastore["datastoreArn"], tags=tags)
    assert (code, status) == ("ValidationException", 400)
    assert fragment in message


def test_unknown_and_malformed_arns(client: Any, datastore: dict[str, Any]) -> None:
    datastore_id = datastore["datastoreId"]
    for arn in (
        f"arn:aws:medical-imaging:{REGION}:{ACCOUNT}:datastore/{'f' * 32}",
        f"arn:aws:medical-imaging:{REGION}:999999999999:datastore/{datastore_id}",
        f"arn:aws:medical-imaging:eu-west-1:{ACCOUNT}:datastore/{datastore_id}",
        f"arn:aws:medical-imaging:{REGION}:{ACCOUNT}:datastore/{datastore_id}/imageset/{'e' * 32}",
    ):
        assert error_of(client.list_tags_for_resource, resourceArn=arn)[:2] == (
            "ResourceNotFoundException",
            404,
        )
        assert error_of(client.tag_resource, resourceArn=arn, tags={"a": "b"})[0] == "ResourceNotFoundException"
        assert error_of(client.untag_resource, resourceArn=arn, tagKeys=["a"])[0] == "ResourceNotFoundException"
    code, status, message = error_of(client.list_tags_for_resource, resourceArn="arn:aws:s3:::my-bucket")
    assert (code, status) == ("ValidationException", 400)
    assert "resourceArn" in message


def test_tags_on_an_image_set_and_delete_guard(client: Any, datastore: dict[str, Any], index: SqlIndex) -> None:
    datastore_id = datastore["datastoreId"]
    image_set_id = "c" * 32
    insert_image_set(index, datastore_id, image_set_id)
    arn = f"{datastore['datastoreArn']}/imageset/{image_set_id}"
    client.tag_resource(resourceArn=arn, tags={"series": "axial"})
    assert client.list_tags_for_resource(resourceArn=arn)["tags"] == {"series": "axial"}
    assert client.list_tags_for_resource(resourceArn=datastore["datastoreArn"])["tags"] == {
        "env": "dev",
        "team": "rad",
    }
    client.untag_resource(resourceArn=arn, tagKeys=["series"])
    assert client.list_tags_for_resource(resourceArn=arn)["tags"] == {}
    code, status, message = error_of(client.delete_datastore, datastoreId=datastore_id)
    assert (code, status) == ("ConflictException", 409)
    assert "image sets" in message


def test_delete_purges_blobs_and_tags(
    client: Any, server: ServerProcess, datastore: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    datastore_id = datastore["datastoreId"]
    for name, value in server.env.items():  # the server's S3 endpoint and credentials, when it has them
        if name.startswith("AWS_"):
            monkeypatch.setenv(name, value)
    blobs = open_blob_store(server.blob_url)
    assert list(blobs.iter_prefix(f"datastores/{datastore_id}/")) == [f"datastores/{datastore_id}/datastore.json"]
    client.delete_datastore(datastoreId=datastore_id)
    wait_for_status(client, datastore_id, "DELETED")
    assert list(blobs.iter_prefix(f"datastores/{datastore_id}/")) == []
    code, _, _ = error_of(client.list_tags_for_resource, resourceArn=datastore["datastoreArn"])
    assert code == "ResourceNotFoundException"
