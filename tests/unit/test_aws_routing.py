"""Routing on method + raw path segments, percent-decoding labels after the split (aws-wire-api.md §16.1)."""

from __future__ import annotations

import pytest

from openhi.api.aws.routing import Router, UnknownOperationError

ROUTER = Router()
ARN = "arn:aws:medical-imaging:us-east-1:123456789012:datastore/" + "a" * 32 + "/imageset/" + "b" * 32


def test_encoded_arn_label_is_decoded_after_splitting() -> None:
    raw = "/tags/" + ARN.replace(":", "%3A").replace("/", "%2F")
    match = ROUTER.match("GET", raw)
    assert match.operation.name == "ListTagsForResource"
    assert match.labels == {"resourceArn": ARN}
    assert ROUTER.match("POST", raw).operation.name == "TagResource"
    assert ROUTER.match("DELETE", raw).operation.name == "UntagResource"


@pytest.mark.parametrize(
    ("method", "path", "operation"),
    [
        ("GET", "/datastore", "ListDatastores"),
        ("POST", "/datastore", "CreateDatastore"),
        ("GET", "/datastore/" + "a" * 32, "GetDatastore"),
        ("DELETE", "/datastore/" + "a" * 32, "DeleteDatastore"),
        ("GET", "/datastore/", "GetDatastore"),
        ("POST", "/datastore/d/imageSet/i/getImageSet", "GetImageSet"),
        ("POST", "/datastore/d/searchImageSets", "SearchImageSets"),
        ("GET", "/getDICOMImportJob/datastore/d/job/j", "GetDICOMImportJob"),
    ],
)
def test_routes(method: str, path: str, operation: str) -> None:
    assert ROUTER.match(method, path).operation.name == operation


def test_empty_label_is_routed_so_validation_can_refuse_it() -> None:
    assert ROUTER.match("GET", "/datastore/").labels == {"datastoreId": ""}


@pytest.mark.parametrize(("method", "path"), [("PUT", "/datastore"), ("GET", "/nothing"), ("GET", "/tags/a/b")])
def test_unknown(method: str, path: str) -> None:
    with pytest.raises(UnknownOperationError):
        ROUTER.match(method, path)
