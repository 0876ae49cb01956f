"""CORS and gzip on the wire (issue 5 §4, viewer friendliness), as raw HTTP against ``openhi serve``.

CORS: a preflight (``OPTIONS`` + ``Origin`` + ``Access-Control-Request-Method``, unsigned as browsers send it)
is answered before SigV4 on any path, native API or DICOMweb, known or not; every other answer, errors
included, carries ``Access-Control-Allow-Origin`` and the exposed headers. The setting
``cors_allowed_origins`` narrows the origins or turns CORS off. gzip: JSON answers above 1 KiB are compressed
when the client accepts gzip, with ``Vary: Accept-Encoding``; nothing already encoded is compressed twice.

Embedded backend only: both middlewares sit in front of the endpoints and never touch the index or the blob
store, so the scale-out backend would run the same code on the same bytes.
"""

from __future__ import annotations

import gzip
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from tests.e2e.conftest import ServerFactory
from tests.e2e.helpers import wait_for_status
from tests.e2e.import_helpers import run_job
from tests.support.dicom_corpus import SeriesSpec, write_series
from tests.support.server import ServerProcess
from tests.support.signing import signed

ORIGIN = "http://viewer.localhost:3000"
SIGV4_HEADERS = "authorization,x-amz-content-sha256,x-amz-date"
EXPOSED = {
    "etag",
    "content-range",
    "content-length",
    "content-location",
    "content-type",
    "x-amzn-requestid",
    "x-amzn-errortype",
}


@pytest.fixture(scope="module", params=["embedded"])
def backend(request: pytest.FixtureRequest) -> str:
    """Embedded only (see the module docstring)."""
    return str(request.param)


@pytest.fixture(scope="module")
def server(make_server: ServerFactory) -> ServerProcess:
    return make_server(env={"OPENHI_IMPORT_WORKERS": "1"})


@pytest.fixture(scope="module")
def datastore(server: ServerProcess) -> str:
    client = server.client()
    datastore_id: str = client.create_datastore(datastoreName="cors")["datastoreId"]
    wait_for_status(client, datastore_id, "ACTIVE")
    return datastore_id


@pytest.fixture(scope="module")
def image_set(server: ServerProcess, datastore: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    """One imported image set (for GetImageSetMetadata, whose body is gzip already)."""
    folder = tmp_path_factory.mktemp("cors-corpus")
    write_series(folder / "in", SeriesSpec(study="cors", slices=2, size=32))
    job = run_job(server.client(), datastore, f"file://{folder / 'in'}/", f"file://{folder / 'out'}/")
    assert job["jobStatus"] == "COMPLETED", job
    found = server.client().search_image_sets(datastoreId=datastore)["imageSetsMetadataSummaries"]
    return str(found[0]["imageSetId"])


@dataclass(frozen=True)
class Answer:
    """An answer with its body exactly as it came over the wire (not decoded by httpx)."""

    status_code: int
    headers: httpx.Headers
    raw: bytes

    def json(self) -> Any:
        return json.loads(gzip.decompress(self.raw) if self.headers.get("content-encoding") == "gzip" else self.raw)

    @property
    def text(self) -> str:
        return self.raw.decode(errors="replace")


def call(
    server: ServerProcess,
    method: str,
    path: str,
    headers: Mapping[str, str] | None = None,
    *,
    sign: bool = True,
    body: bytes = b"",
) -> Answer:
    """One request as a browser would send it (``Origin`` set unless given)."""
    url = f"{server.endpoint}{path}"
    extra = {"Origin": ORIGIN, **(headers or {})}
    request = signed(method, url, body, extra) if sign else httpx.Request(method, url, content=body, headers=extra)
    with httpx.Client(timeout=30) as client:
        response = client.send(request, stream=True)
        raw = b"".join(response.iter_raw())
        response.close()
    return Answer(response.status_code, response.headers, raw)


def preflight(server: ServerProcess, path: str, method: str = "GET", headers: str = SIGV4_HEADERS) -> Answer:
    return call(
        server,
        "OPTIONS",
        path,
        {"Access-Control-Request-Method": method, "Access-Control-Request-Headers": headers},
        sign=False,
    )


def tokens(value: str | None) -> set[str]:
    return {item.strip().lower() for item in (value or "").split(",") if item.strip()}


def assert_cors(response: Answer, origin: str = "*") -> None:
    assert response.headers.get("access-control-allow-origin") == origin, dict(response.headers)
    assert tokens(response.headers.get("access-control-expose-headers")) >= EXPOSED


def assert_aws_error(response: Answer, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["x-amzn-errortype"] == code
    assert response.json()["__type"] == code


@pytest.mark.parametrize(
    "path",
    [
        "/datastore",  # native ListDatastores
        "/no/such/route",  # native fallback: an AWS 404 without a preflight
        "/datastore/{id}/studies",  # DICOMweb
        "/datastore/{id}/studies/1.2.3/series/4.5.6/instances/7.8.9/frames/1",
        "/datastore/{id}/studies/1.2.3/unknown",  # DICOMweb 404
    ],
)
def test_preflight_is_answered_before_signature_and_routing(server: ServerProcess, datastore: str, path: str) -> None:
    response = preflight(
        server,
        path.format(id=datastore),
        headers=f"{SIGV4_HEADERS},x-amz-security-token,x-amz-user-agent,range,if-none-match,accept,content-type",
    )
    assert response.status_code == 200, response.text
    assert response.headers["access-control-allow-origin"] == "*"
    assert tokens(response.headers["access-control-allow-methods"]) >= {"get", "head", "post", "put", "delete", "patch"}
    allowed = tokens(response.headers["access-control-allow-headers"])
    assert {"authorization", "range", "if-none-match", "x-amz-date", "x-amz-content-sha256"} <= allowed
    assert {"x-amz-security-token", "x-amz-user-agent", "accept-encoding", "content-type", "accept"} <= allowed
    assert int(response.headers["access-control-max-age"]) > 0
    assert "x-amzn-errortype" not in response.headers


def test_preflight_for_every_method(server: ServerProcess, datastore: str) -> None:
    for method in ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH"):
        response = preflight(server, f"/datastore/{datastore}/studies", method=method)
        assert response.status_code == 200, (method, response.text)


def test_preflight_refuses_a_header_outside_the_list(server: ServerProcess) -> None:
    response = preflight(server, "/datastore", headers="authorization,x-secret-header")
    assert response.status_code == 400
    assert "access-control-allow-headers" in response.headers
    assert "x-secret-header" not in tokens(response.headers["access-control-allow-headers"])


def test_signed_answer_carries_cors_headers(server: ServerProcess) -> None:
    response = call(server, "GET", "/datastore")
    assert response.status_code == 200
    assert_cors(response)
    assert "origin" in tokens(response.headers.get("vary"))


def test_native_errors_carry_cors_headers(server: ServerProcess) -> None:
    unsigned = call(server, "GET", "/datastore", sign=False)
    assert_aws_error(unsigned, 403, "MissingAuthenticationTokenException")
    assert_cors(unsigned)
    unknown = call(server, "GET", "/no/such/route")
    assert_aws_error(unknown, 404, "UnknownOperationException")
    assert_cors(unknown)
    missing = call(server, "GET", f"/datastore/{'0' * 32}")
    assert_aws_error(missing, 404, "ResourceNotFoundException")
    assert_cors(missing)


def test_dicomweb_errors_carry_cors_headers(server: ServerProcess, datastore: str) -> None:
    unknown_route = call(server, "GET", f"/datastore/{datastore}/studies/1.2.3/unknown")
    assert_aws_error(unknown_route, 404, "ResourceNotFoundException")
    assert_cors(unknown_route)
    wrong_method = call(server, "DELETE", f"/datastore/{datastore}/studies")
    assert_aws_error(wrong_method, 405, "MethodNotAllowedException")
    assert_cors(wrong_method)
    unsigned = call(server, "GET", f"/datastore/{datastore}/studies", sign=False)
    assert unsigned.status_code == 403
    assert_cors(unsigned)


def test_no_origin_no_cors_headers(server: ServerProcess) -> None:
    request = signed("GET", f"{server.endpoint}/datastore")
    with httpx.Client() as client:
        response = client.send(request)
    assert response.status_code == 200
    assert "access-control-allow-origin" not in response.headers


def _make_datastores(server: ServerProcess, count: int) -> None:
    client = server.client()
    have = len(client.list_datastores()["datastoreSummaries"])
    for _ in range(max(0, count - have)):
        client.create_datastore(datastoreName=f"gzip-{uuid.uuid4().hex}")


def test_gzip_for_large_json_when_accepted(server: ServerProcess, datastore: str) -> None:
    _make_datastores(server, 12)  # ListDatastores well above 1 KiB
    plain = call(server, "GET", "/datastore")
    assert "content-encoding" not in plain.headers
    assert "accept-encoding" in tokens(plain.headers.get("vary"))
    assert len(plain.raw) > 1024
    zipped = call(server, "GET", "/datastore", {"Accept-Encoding": "gzip, deflate"})
    assert zipped.status_code == 200
    assert zipped.headers["content-encoding"] == "gzip"
    assert "accept-encoding" in tokens(zipped.headers.get("vary"))
    raw: bytes = zipped.raw
    assert int(zipped.headers["content-length"]) == len(raw) < len(plain.raw)
    assert json.loads(gzip.decompress(raw)) == json.loads(plain.raw)
    assert_cors(zipped)


@pytest.mark.parametrize("accept_encoding", ["identity", "gzip;q=0", "br", "*;q=0"])
def test_no_gzip_unless_accepted(server: ServerProcess, datastore: str, accept_encoding: str) -> None:
    _make_datastores(server, 12)
    response = call(server, "GET", "/datastore", {"Accept-Encoding": accept_encoding})
    assert "content-encoding" not in response.headers
    json.loads(response.raw)


def test_small_json_stays_identity(server: ServerProcess, datastore: str) -> None:
    response = call(server, "GET", f"/datastore/{datastore}", {"Accept-Encoding": "gzip"})
    assert response.status_code == 200
    assert len(response.raw) < 1024
    assert "content-encoding" not in response.headers
    assert "accept-encoding" in tokens(response.headers.get("vary"))


def test_image_set_metadata_is_not_compressed_twice(server: ServerProcess, datastore: str, image_set: str) -> None:
    path = f"/datastore/{datastore}/imageSet/{image_set}/getImageSetMetadata"
    response = call(server, "POST", path, {"Accept-Encoding": "gzip"})
    assert response.status_code == 200, response.text
    assert response.headers["content-encoding"] == "gzip"
    document = json.loads(gzip.decompress(response.raw))
    assert document["ImageSetID"] == image_set
    assert_cors(response)


def test_binary_answers_are_never_compressed(server: ServerProcess, datastore: str, image_set: str) -> None:
    client = server.client()
    document = json.loads(
        gzip.decompress(
            client.get_image_set_metadata(datastoreId=datastore, imageSetId=image_set)["imageSetMetadataBlob"].read()
        )
    )
    series = next(iter(document["Study"]["Series"].values()))
    frame_id = next(iter(series["Instances"].values()))["ImageFrames"][0]["ID"]
    path = f"/datastore/{datastore}/imageSet/{image_set}/getImageFrame"
    body = json.dumps({"imageFrameId": frame_id}).encode()
    response = call(server, "POST", path, {"Accept-Encoding": "gzip", "Content-Type": "application/json"}, body=body)
    assert response.status_code == 200, response.text
    assert "content-encoding" not in response.headers
    assert "accept-encoding" not in tokens(response.headers.get("vary"))
    assert response.raw[:4] == b"\xff\x4f\xff\x51"  # J2K SOC + SIZ
    assert_cors(response)


# --- the setting -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def listed_origin_server(make_server: ServerFactory) -> ServerProcess:
    return make_server(env={"OPENHI_CORS_ALLOWED_ORIGINS": f"https://other.example, {ORIGIN}"})


def test_listed_origin_is_mirrored(listed_origin_server: ServerProcess) -> None:
    ok = preflight(listed_origin_server, "/datastore")
    assert ok.status_code == 200
    assert ok.headers["access-control-allow-origin"] == ORIGIN
    assert "origin" in tokens(ok.headers["vary"])
    response = call(listed_origin_server, "GET", "/datastore")
    assert_cors(response, origin=ORIGIN)
    assert "origin" in tokens(response.headers["vary"])


def test_unlisted_origin_gets_no_allowance(listed_origin_server: ServerProcess) -> None:
    stranger = {"Origin": "http://evil.localhost:3000"}
    refused = call(
        listed_origin_server,
        "OPTIONS",
        "/datastore",
        {**stranger, "Access-Control-Request-Method": "GET"},
        sign=False,
    )
    assert refused.status_code == 400
    assert "access-control-allow-origin" not in refused.headers
    response = call(listed_origin_server, "GET", "/datastore", stranger)
    assert response.status_code == 200
    assert "access-control-allow-origin" not in response.headers


def test_cors_off(make_server: ServerFactory) -> None:
    off = make_server(env={"OPENHI_CORS_ALLOWED_ORIGINS": ""})
    response = call(off, "GET", "/datastore")
    assert response.status_code == 200
    assert "access-control-allow-origin" not in response.headers
    # without CORS an OPTIONS request is just another request: the native API's unsigned answer
    assert_aws_error(preflight(off, "/datastore"), 403, "MissingAuthenticationTokenException")


def test_a_setting_that_is_not_an_origin_stops_the_start(make_server: ServerFactory) -> None:
    with pytest.raises(RuntimeError) as failed:
        make_server(env={"OPENHI_CORS_ALLOWED_ORIGINS": "http://viewer.example/app/"})
    assert "cors_allowed_origins" in str(failed.value)
