"""The wire itself: SigV4 verification and error answers for malformed requests, sent as raw HTTP.

Every error must be AWS JSON (``__type``, ``message``, ``x-amzn-ErrorType``, ``x-amzn-RequestId``) with a 4xx
status — never a 500 and never a stack trace.
"""

from __future__ import annotations

import datetime as dt
import json
from urllib.parse import quote

import httpx
import pytest
from tests.support.server import ACCESS_KEY_ID, ServerProcess
from tests.support.signing import send, signed, signing_time


def assert_aws_error(response: httpx.Response, status: int, code: str) -> dict[str, str]:
    assert response.status_code == status, response.text
    assert response.headers["x-amzn-errortype"] == code
    assert response.headers["content-type"].startswith("application/json")
    assert response.headers["x-amzn-requestid"]
    body: dict[str, str] = response.json()
    assert body["__type"] == code
    assert body["message"]
    assert "Traceback" not in response.text
    return body


def test_health_needs_no_signature(server: ServerProcess) -> None:
    response = httpx.get(f"{server.endpoint}/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_unsigned_request(server: ServerProcess) -> None:
    response = httpx.get(f"{server.endpoint}/datastore")
    body = assert_aws_error(response, 403, "MissingAuthenticationTokenException")
    assert body["message"] == "Missing Authentication Token"


def test_wrong_secret(server: ServerProcess) -> None:
    response = send(signed("GET", f"{server.endpoint}/datastore", secret="not-the-secret"))
    assert (
        "signature we calculated does not match"
        in assert_aws_error(response, 403, "InvalidSignatureException")["message"]
    )


def test_unknown_access_key(server: ServerProcess) -> None:
    response = send(signed("GET", f"{server.endpoint}/datastore", access_key_id="AKIANOBODYKNOWSTHIS"))
    assert_aws_error(response, 403, "UnrecognizedClientException")


def test_session_token_is_not_ours(server: ServerProcess) -> None:
    response = send(signed("GET", f"{server.endpoint}/datastore", token="FwoGZXIvYXdzE"))
    assert_aws_error(response, 403, "UnrecognizedClientException")


def test_wrong_service_in_scope(server: ServerProcess) -> None:
    response = send(signed("GET", f"{server.endpoint}/datastore", service="s3"))
    assert "medical-imaging" in assert_aws_error(response, 403, "InvalidSignatureException")["message"]


def test_any_region_is_accepted(server: ServerProcess) -> None:
    response = send(signed("GET", f"{server.endpoint}/datastore", region="ap-southeast-2"))
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(("minutes", "fragment"), [(-16, "Signature expired"), (16, "Signature not yet current")])
def test_clock_skew_over_15_minutes(server: ServerProcess, minutes: int, fragment: str) -> None:
    with signing_time(dt.datetime.now(dt.UTC) + dt.timedelta(minutes=minutes)):
        request = signed("GET", f"{server.endpoint}/datastore")
    assert fragment in assert_aws_error(send(request), 403, "InvalidSignatureException")["message"]


def test_clock_skew_within_15_minutes(server: ServerProcess) -> None:
    with signing_time(dt.datetime.now(dt.UTC) - dt.timedelta(minutes=14)):
        request = signed("GET", f"{server.endpoint}/datastore")
    assert send(request).status_code == 200


def test_tampered_body_query_and_path(server: ServerProcess) -> None:
    body = json.dumps({"datastoreName": "signed", "clientToken": "tok-tamper"}).encode()
    request = signed("POST", f"{server.endpoint}/datastore", body, {"Content-Type": "application/json"})
    forged = httpx.Request("POST", request.url, content=body.replace(b"signed", b"forged"), headers=request.headers)
    forged.headers["content-length"] = str(len(forged.content))
    assert_aws_error(send(forged), 403, "InvalidSignatureException")
    listing = signed("GET", f"{server.endpoint}/datastore?maxResults=2")
    moved = httpx.Request("GET", f"{server.endpoint}/datastore?maxResults=3", headers=listing.headers)
    assert_aws_error(send(moved), 403, "InvalidSignatureException")
    getting = signed("GET", f"{server.endpoint}/datastore/{'a' * 32}")
    other = httpx.Request("GET", f"{server.endpoint}/datastore/{'b' * 32}", headers=getting.headers)
    assert_aws_error(send(other), 403, "InvalidSignatureException")


def test_malformed_authorization_header(server: ServerProcess) -> None:
    request = signed("GET", f"{server.endpoint}/datastore")
    request.headers["authorization"] = f"AWS4-HMAC-SHA256 Credential={ACCESS_KEY_ID}/20261128/us-east-1"
    assert_aws_error(send(request), 403, "IncompleteSignatureException")


def test_runtime_host_prefix_is_served(server: ServerProcess) -> None:
    """The SDK's default host prefix (``runtime-``) signs another Host; routing ignores it."""
    host = f"runtime-127.0.0.1:{server.port}"
    request = signed("GET", f"http://{host}/datastore")
    request.url = httpx.URL(f"{server.endpoint}/datastore")
    request.headers["host"] = host
    assert send(request).status_code == 200


def post_json(server: ServerProcess, path: str, body: bytes) -> httpx.Response:
    return send(signed("POST", f"{server.endpoint}{path}", body, {"Content-Type": "application/json"}))


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b'{"datastoreName": "x", "clientToken": ', "not valid JSON"),
        (b"\xff\xfe", "not valid JSON"),
        (b"[1, 2]", "JSON object"),
        (b'{"datastoreName": 5, "clientToken": "t"}', "datastoreName"),
        (b'{"datastoreName": "x", "clientToken": "t", "colour": "red"}', "colour"),
        (b'{"datastoreName": "x"}', "clientToken"),
        (b'{"clientToken": "t", "tags": ["not", "a", "map"]}', "tags"),
    ],
)
def test_malformed_bodies(server: ServerProcess, body: bytes, fragment: str) -> None:
    assert fragment in assert_aws_error(post_json(server, "/datastore", body), 400, "ValidationException")["message"]


def test_query_type_errors(server: ServerProcess) -> None:
    for query in ("maxResults=ten", "maxResults=0", "datastoreStatus=FOO"):
        response = send(signed("GET", f"{server.endpoint}/datastore?{query}"))
        assert query.split("=")[0] in assert_aws_error(response, 400, "ValidationException")["message"]


def test_unknown_route(server: ServerProcess) -> None:
    for method, path in (("GET", "/no/such/thing"), ("PUT", "/datastore"), ("GET", "/tags/a/b")):
        response = send(signed(method, f"{server.endpoint}{path}"))
        assert_aws_error(response, 404, "UnknownOperationException")


def test_any_method_gets_an_aws_answer(server: ServerProcess) -> None:
    for method in ("OPTIONS", "PATCH", "PUT"):
        assert_aws_error(
            httpx.request(method, f"{server.endpoint}/datastore"), 403, "MissingAuthenticationTokenException"
        )
        assert_aws_error(send(signed(method, f"{server.endpoint}/datastore")), 404, "UnknownOperationException")


def test_empty_label(server: ServerProcess) -> None:
    response = send(signed("GET", f"{server.endpoint}/datastore/"))
    assert "datastoreId" in assert_aws_error(response, 400, "ValidationException")["message"]


def test_oversized_body(server: ServerProcess) -> None:
    body = b'{"datastoreName": "' + b"x" * (11 * 1024 * 1024) + b'", "clientToken": "t"}'
    response = post_json(server, "/datastore", body)
    assert_aws_error(response, 413, "RequestEntityTooLarge")


def test_percent_encoded_arn_path(server: ServerProcess) -> None:
    arn = f"arn:aws:medical-imaging:us-east-1:123456789012:datastore/{'f' * 32}"
    response = send(signed("GET", f"{server.endpoint}/tags/{quote(arn, safe='-_.~')}"))
    assert arn in assert_aws_error(response, 404, "ResourceNotFoundException")["message"]
