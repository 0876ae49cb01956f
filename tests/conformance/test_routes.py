"""Every operation of the botocore model is routed from the request botocore itself would build.

The request path comes from botocore's own rest-json serializer (and is cross-checked against rendering
the model's ``requestUri`` with ``botocore.utils.percent_encode``); the router must answer that
operation and decode the labels back to the values botocore was given. The router must hold exactly
the model's routes, nothing more.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from botocore.serialize import create_serializer
from botocore.utils import percent_encode, percent_encode_sequence
from tests.conformance.model_support import (
    ALTERNATE_SAMPLES,
    DATASTORE_ID,
    minimal_params,
    operation,
    operation_names,
    uri_labels,
)

from openhi.api.aws.routing import Router, UnknownOperationError

ROUTER = Router()
HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")

# Pinned: a botocore release that adds, removes or renames an operation must fail here first.
EXPECTED_OPERATIONS = {
    "CopyImageSet",
    "CreateDatastore",
    "DeleteDatastore",
    "DeleteImageSet",
    "GetDICOMImportJob",
    "GetDatastore",
    "GetImageFrame",
    "GetImageSet",
    "GetImageSetMetadata",
    "ListDICOMImportJobs",
    "ListDatastores",
    "ListImageSetVersions",
    "ListTagsForResource",
    "SearchImageSets",
    "StartDICOMImportJob",
    "TagResource",
    "UntagResource",
    "UpdateImageSetMetadata",
}


def _render(request_uri: str, labels: dict[str, str]) -> str:
    """The model's requestUri with every label percent-encoded the way botocore encodes it."""
    return re.sub(r"\{([^}]+)\}", lambda m: percent_encode(labels[m.group(1)]), request_uri)


def _serialize(name: str, samples: dict[str, Any] | None) -> tuple[dict[str, Any], dict[str, Any]]:
    op = operation(name)
    params = minimal_params(op, samples=samples)
    request: dict[str, Any] = create_serializer("rest-json", include_validation=True).serialize_to_request(params, op)
    return params, request


def test_the_model_has_the_18_operations() -> None:
    assert len(operation_names()) == 18
    assert set(operation_names()) == EXPECTED_OPERATIONS


def test_the_model_has_no_greedy_labels() -> None:
    """Routing splits the raw path on '/' before decoding; that is only sound without greedy labels."""
    for name in operation_names():
        assert "+}" not in operation(name).http["requestUri"], name


@pytest.mark.parametrize("samples", [None, ALTERNATE_SAMPLES], ids=["samples", "alternate-samples"])
@pytest.mark.parametrize("name", operation_names())
def test_botocore_request_routes_to_its_operation(name: str, samples: dict[str, Any] | None) -> None:
    op = operation(name)
    params, request = _serialize(name, samples)
    labels = uri_labels(op, params)
    path = _render(op.http["requestUri"], labels)

    assert request["method"] == op.http["method"]
    assert request["url_path"] == path, "template rendering disagrees with botocore's serializer"

    match = ROUTER.match(request["method"], path)
    assert match.operation.name == name
    assert match.labels == labels

    if request["query_string"]:
        query = percent_encode_sequence(request["query_string"])
        with_query = ROUTER.match(request["method"], f"{path}?{query}")
        assert with_query.operation.name == name
        assert with_query.labels == labels


@pytest.mark.parametrize("name", operation_names())
def test_no_other_route_matches_the_same_request(name: str) -> None:
    _, request = _serialize(name, None)
    parts = request["url_path"].lstrip("/").split("/")
    matching = [
        route.operation.name
        for route in ROUTER.routes
        if route.method == request["method"] and route.match(parts) is not None
    ]
    assert matching == [name]


def test_arn_label_is_percent_encoded_like_botocore_and_decoded_back() -> None:
    """aws-wire-api.md §2: ':' and '/' inside the ARN travel as %3A and %2F."""
    params, request = _serialize("ListTagsForResource", None)
    assert request["url_path"] == (
        "/tags/arn%3Aaws%3Amedical-imaging%3Aus-east-1%3A123456789012%3Adatastore%2F" + DATASTORE_ID
    )
    for method, name in (
        ("GET", "ListTagsForResource"),
        ("POST", "TagResource"),
        ("DELETE", "UntagResource"),
    ):
        match = ROUTER.match(method, request["url_path"])
        assert match.operation.name == name
        assert match.labels == {"resourceArn": params["resourceArn"]}


def test_router_holds_exactly_the_model_routes() -> None:
    model_routes = {
        (operation(name).http["method"], operation(name).http["requestUri"].split("?")[0], name)
        for name in operation_names()
    }
    router_routes = {(route.method, "/" + "/".join(route.segments), route.operation.name) for route in ROUTER.routes}
    assert len(ROUTER.routes) == len(router_routes) == 18, "duplicate routes"
    assert router_routes - model_routes == set(), "routes the model does not have"
    assert model_routes - router_routes == set(), "model operations without a route"
    for route in ROUTER.routes:
        assert route.operation.http == operation(route.operation.name).http


def test_methods_the_model_does_not_define_for_a_path_are_unknown() -> None:
    """Every (method, path) not in the model is refused: no extra route hides behind a known path."""
    by_path: dict[str, set[str]] = {}
    paths: dict[str, str] = {}
    for name in operation_names():
        _, request = _serialize(name, None)
        template = operation(name).http["requestUri"]
        by_path.setdefault(template, set()).add(request["method"])
        paths[template] = request["url_path"]
    for template, methods in by_path.items():
        for method in set(HTTP_METHODS) - methods:
            with pytest.raises(UnknownOperationError):
                ROUTER.match(method, paths[template])
