"""The AWS CLI (``aws medical-imaging ... --endpoint-url``) against ``openhi serve``, on both backends."""

from __future__ import annotations

import re

from tests.e2e.helpers import wait_for_status
from tests.support.server import ServerProcess


def test_create_datastore_prints_the_guides_shape(server: ServerProcess) -> None:
    """Guide lines 645-700: ``{"datastoreId": "<32 chars>", "datastoreStatus": "CREATING"}``."""
    output = server.aws_json("create-datastore", "--datastore-name", "my-datastore")
    assert set(output) == {"datastoreId", "datastoreStatus"}
    assert re.fullmatch(r"[0-9a-z]{32}", output["datastoreId"])
    assert output["datastoreStatus"] == "CREATING"


def test_datastore_lifecycle_and_tags(server: ServerProcess) -> None:
    created = server.aws_json(
        "create-datastore",
        "--datastore-name",
        "cli-store",
        "--lossless-storage-format",
        "JPEG_2000_LOSSLESS",
        "--tags",
        "env=dev,team=rad",
    )
    datastore_id = created["datastoreId"]
    wait_for_status(server.client(), datastore_id, "ACTIVE")
    properties = server.aws_json("get-datastore", "--datastore-id", datastore_id)["datastoreProperties"]
    assert properties["datastoreName"] == "cli-store"
    assert properties["datastoreStatus"] == "ACTIVE"
    assert properties["losslessStorageFormat"] == "JPEG_2000_LOSSLESS"
    assert isinstance(properties["createdAt"], float | int)  # the CLI prints epoch numbers as received
    arn = properties["datastoreArn"]

    listed = server.aws_json("list-datastores", "--datastore-status", "ACTIVE")
    assert datastore_id in {s["datastoreId"] for s in listed["datastoreSummaries"]}

    assert server.aws_json("list-tags-for-resource", "--resource-arn", arn)["tags"] == {
        "env": "dev",
        "team": "rad",
    }
    server.aws("tag-resource", "--resource-arn", arn, "--tags", "owner=pacs")
    server.aws("untag-resource", "--resource-arn", arn, "--tag-keys", "env", "team")
    assert server.aws_json("list-tags-for-resource", "--resource-arn", arn)["tags"] == {"owner": "pacs"}

    deleted = server.aws_json("delete-datastore", "--datastore-id", datastore_id)
    assert deleted == {"datastoreId": datastore_id, "datastoreStatus": "DELETING"}
    wait_for_status(server.client(), datastore_id, "DELETED")


def test_cli_auto_paginates(server: ServerProcess) -> None:
    made = {server.aws_json("create-datastore", "--datastore-name", f"p{n}")["datastoreId"] for n in range(5)}
    listed = server.aws_json("list-datastores", "--page-size", "2")
    ids = [s["datastoreId"] for s in listed["datastoreSummaries"]]
    assert made <= set(ids)
    assert len(ids) == len(set(ids))


def test_cli_errors(server: ServerProcess) -> None:
    result = server.aws("get-datastore", "--datastore-id", "f" * 32, check=False)
    assert result.returncode == 255
    assert "ResourceNotFoundException" in result.stderr
    result = server.aws("create-datastore", "--datastore-name", "bad name", check=False)
    assert result.returncode == 255
    assert "ValidationException" in result.stderr
    ids = ("--datastore-id", "a" * 32, "--image-set-id", "b" * 32)
    result = server.aws("delete-image-set", *ids, check=False)
    assert "ResourceNotFoundException" in result.stderr
    result = server.aws("get-image-set", *ids, check=False)
    assert "ResourceNotFoundException" in result.stderr
