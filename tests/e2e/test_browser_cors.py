"""Browser smoke test: a page on another origin loads QIDO results and one frame from OpenHI through CORS.

Headless Debian Chromium (``/usr/bin/chromium``) driven by Playwright (the Python package only: no browser
download). The test serves a small HTML page on its own loopback port, so the page's origin differs from
OpenHI's (another port is another origin, RFC 6454 §4). Its script ``fetch``es, with the headers OpenHI needs:

- QIDO-RS ``/studies`` (``Accept: application/dicom+json``),
- one frame, ``.../frames/1`` with ``Accept: multipart/related; type="application/octet-stream"``,
- an unknown study's metadata, a 404 whose JSON body the page must be able to read (CORS on errors).

A page cannot compute SigV4 without the secret key, so the test signs each request in Python with botocore
for the exact URL, method and ``Accept`` the page will send (the browser sets ``Host`` to the same value; the
server verifies only the ``SignedHeaders``) and embeds ``Authorization`` and ``X-Amz-Date`` in the page. Those
headers make every fetch non-simple, so Chromium must send an unsigned preflight first; the test watches the
network through the DevTools protocol and checks that the preflight happened and allowed ``Authorization``.

Embedded backend only: CORS is the ASGI middleware in front of both endpoints and the browser sees the same
answers whatever stores the frames (the scale-out backend is covered by the DICOMweb e2e tests). Chromium
missing is a skip locally and a failure in CI (``OPENHI_REQUIRE_BACKENDS=1``); ``scripts/install --dev``
installs it on Debian.
"""

from __future__ import annotations

import base64
import json
import threading
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pydicom
import pytest
import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from tests.e2e.conftest import ServerFactory
from tests.e2e.helpers import wait_for_status
from tests.e2e.import_helpers import run_job
from tests.support.backends import unavailable
from tests.support.dicom_corpus import SeriesSpec, write_series
from tests.support.dicomweb import signed_session
from tests.support.dicomweb_conformance import check_multipart
from tests.support.server import ACCESS_KEY_ID, SECRET_ACCESS_KEY, ServerProcess

CHROMIUM = Path("/usr/bin/chromium")
QIDO_ACCEPT = "application/dicom+json"
FRAME_ACCEPT = 'multipart/related; type="application/octet-stream"'
CORPUS = SeriesSpec(study="browser", series="browser-1", slices=2, size=32)
UNKNOWN_STUDY = "1.2.826.0.1.3680043.10.1337.404"

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>OpenHI CORS smoke test</title></head>
<body><pre id="log"></pre>
<script>
const calls = __CALLS__;
function crc32(bytes) {
  let crc = ~0;
  for (const b of bytes) {
    crc ^= b;
    for (let k = 0; k < 8; k++) crc = (crc >>> 1) ^ (0xEDB88320 & -(crc & 1));
  }
  return (~crc) >>> 0;
}
function toBase64(bytes) {
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(binary);
}
async function run(call) {
  try {
    const response = await fetch(call.url, {method: "GET", headers: call.headers, mode: "cors"});
    const bytes = new Uint8Array(await response.arrayBuffer());
    let text = null;
    try { text = new TextDecoder("utf-8", {fatal: true}).decode(bytes); } catch (e) { text = null; }
    return {
      name: call.name, status: response.status,
      contentType: response.headers.get("Content-Type"),
      requestId: response.headers.get("x-amzn-RequestId"),
      errorType: response.headers.get("x-amzn-ErrorType"),
      length: bytes.length, crc32: crc32(bytes), text: text, base64: toBase64(bytes),
    };
  } catch (error) {
    return {name: call.name, error: String(error)};
  }
}
window.results = Promise.all(calls.map(run));
</script></body></html>
"""


@dataclass(frozen=True)
class Corpus:
    datastore_id: str
    study: str
    series: str
    sop: str
    first_file: Path


@pytest.fixture(scope="module", params=["embedded"])
def backend(request: pytest.FixtureRequest) -> str:
    """Embedded only (see the module docstring)."""
    return str(request.param)


@pytest.fixture(scope="module")
def server(make_server: ServerFactory) -> ServerProcess:
    return make_server(env={"OPENHI_IMPORT_WORKERS": "1"})


@pytest.fixture(scope="module")
def corpus(server: ServerProcess, tmp_path_factory: pytest.TempPathFactory) -> Corpus:
    """A small CT series imported by an import job (``file://`` input, OpenHI's local extension)."""
    client = server.client()
    datastore_id: str = client.create_datastore(datastoreName="browser")["datastoreId"]
    wait_for_status(client, datastore_id, "ACTIVE")
    folder = tmp_path_factory.mktemp("browser-corpus")
    [first, *_] = write_series(folder / "in", CORPUS)
    job = run_job(client, datastore_id, f"file://{folder / 'in'}/", f"file://{folder / 'out'}/")
    assert job["jobStatus"] == "COMPLETED", job
    dataset = pydicom.dcmread(first, stop_before_pixels=True)
    return Corpus(datastore_id, dataset.StudyInstanceUID, dataset.SeriesInstanceUID, dataset.SOPInstanceUID, first)


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    """Headless Debian Chromium under Playwright (skip locally, fail in CI, when it is missing)."""
    if not CHROMIUM.exists():
        unavailable(f"{CHROMIUM} is missing (Debian package chromium; scripts/install --dev installs it)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        unavailable(f"the playwright package is missing: {exc}")
        raise
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="module")
def page_host() -> Iterator[PageHost]:
    host = PageHost()
    yield host
    host.stop()


class PageHost:
    """A plain HTTP server on another loopback port that serves the test page (a different origin)."""

    def __init__(self) -> None:
        self.html = b""
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(owner.html)))
                self.end_headers()
                self.wfile.write(owner.html)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.origin = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


def presigned_headers(url: str, accept: str) -> dict[str, str]:
    """The headers the page must send for ``GET url``: botocore SigV4 over host, x-amz-date and accept."""
    request = AWSRequest(method="GET", url=url, headers={"Accept": accept})
    SigV4Auth(Credentials(ACCESS_KEY_ID, SECRET_ACCESS_KEY), "medical-imaging", "us-east-1").add_auth(request)
    signed = {name: value for name, value in request.headers.items() if name.lower() != "host"}
    assert "accept" in signed["Authorization"].split("SignedHeaders=")[1].split(",")[0].split(";")
    return signed


def test_page_on_another_origin_reads_qido_and_a_frame(
    server: ServerProcess, corpus: Corpus, chromium: Any, page_host: PageHost
) -> None:
    base = f"{server.endpoint}/datastore/{corpus.datastore_id}"
    frame_url = f"{base}/studies/{corpus.study}/series/{corpus.series}/instances/{corpus.sop}/frames/1"
    calls = [
        {"name": "qido", "url": f"{base}/studies", "accept": QIDO_ACCEPT},
        {"name": "frame", "url": frame_url, "accept": FRAME_ACCEPT},
        {"name": "missing", "url": f"{base}/studies/{UNKNOWN_STUDY}/metadata", "accept": QIDO_ACCEPT},
    ]
    for call in calls:
        call["headers"] = {"Accept": call["accept"], **presigned_headers(call["url"], call["accept"])}
    page_host.html = PAGE.replace("__CALLS__", json.dumps(calls)).encode()
    assert page_host.origin != server.endpoint

    context = chromium.new_context()
    page = context.new_page()
    network = NetworkLog(context.new_cdp_session(page))
    page.goto(f"{page_host.origin}/index.html")
    results = {result["name"]: result for result in page.evaluate("window.results")}
    context.close()

    for name in ("qido", "frame", "missing"):
        assert "error" not in results[name], f"{name}: the page could not read the answer: {results[name]}"
        assert results[name]["requestId"], f"{name}: x-amzn-RequestId is not exposed to the page"

    # (a) a preflight preceded the signed requests and allowed Authorization
    preflights = network.preflights(server.endpoint)
    assert {p["url"] for p in preflights} == {c["url"] for c in calls}, f"preflights: {network.summary()}"
    for preflight in preflights:
        assert preflight["status"] == 200, preflight
        assert "authorization" in preflight["requested_headers"], preflight
        allowed = {
            h.strip().lower() for h in preflight["response_headers"].get("access-control-allow-headers", "").split(",")
        }
        assert "authorization" in allowed, preflight
        origin = preflight["response_headers"].get("access-control-allow-origin")
        assert origin in ("*", page_host.origin), preflight

    # (b) the study JSON and the frame bytes are what a signed Python client gets
    session = signed_session()
    qido = results["qido"]
    assert qido["status"] == 200, qido
    assert qido["contentType"].startswith("application/dicom+json")
    studies = json.loads(qido["text"])
    assert [s["0020000D"]["Value"] for s in studies] == [[corpus.study]]
    expected_qido = session.get(calls[0]["url"], headers={"Accept": QIDO_ACCEPT}, timeout=30)
    assert json.loads(expected_qido.content) == studies

    frame = results["frame"]
    assert frame["status"] == 200, frame
    page_body = base64.b64decode(frame["base64"])
    assert (frame["length"], frame["crc32"]) == (len(page_body), zlib.crc32(page_body))
    [page_part] = multipart_payloads(frame["contentType"], page_body)
    expected_frame = session.get(frame_url, headers={"Accept": FRAME_ACCEPT}, timeout=30)
    assert expected_frame.status_code == 200
    [python_part] = multipart_payloads(expected_frame.headers["Content-Type"], expected_frame.content)
    assert page_part == python_part
    assert page_part == pydicom.dcmread(corpus.first_file).PixelData  # Explicit VR Little Endian, bit-exact

    # (c) an error answer is readable from JS (CORS headers on errors)
    missing = results["missing"]
    assert missing["status"] == 404, missing
    assert missing["errorType"] == "ResourceNotFoundException"
    assert json.loads(missing["text"])["__type"] == "ResourceNotFoundException"


def multipart_payloads(content_type: str, body: bytes) -> list[bytes]:
    """The part bodies of a multipart/related answer (framing checked by the conformance checker)."""
    problems, parts = check_multipart(content_type, body)
    assert problems == [], problems
    return [part.body for part in parts]


class NetworkLog:
    """Every request Chromium sends and the answer it got, from the DevTools protocol (preflights included)."""

    def __init__(self, cdp: Any) -> None:
        self._requests: dict[str, dict[str, Any]] = {}
        cdp.on("Network.requestWillBeSent", self._sent)
        cdp.on("Network.responseReceived", self._received)
        cdp.send("Network.enable")

    def _sent(self, event: dict[str, Any]) -> None:
        request = event["request"]
        headers = {k.lower(): v for k, v in request.get("headers", {}).items()}
        self._requests[event["requestId"]] = {
            "url": request["url"],
            "method": request["method"],
            "type": event.get("type"),
            "requested_headers": {
                h.strip().lower() for h in headers.get("access-control-request-headers", "").split(",") if h.strip()
            },
        }

    def _received(self, event: dict[str, Any]) -> None:
        entry = self._requests.setdefault(event["requestId"], {})
        response = event["response"]
        entry["status"] = response["status"]
        entry["response_headers"] = {k.lower(): v for k, v in response.get("headers", {}).items()}

    def preflights(self, endpoint: str) -> list[dict[str, Any]]:
        return [
            entry
            for entry in self._requests.values()
            if entry.get("method") == "OPTIONS" and str(entry.get("url", "")).startswith(endpoint)
        ]

    def summary(self) -> list[tuple[Any, Any, Any, Any]]:
        return [(e.get("method"), e.get("url"), e.get("type"), e.get("status")) for e in self._requests.values()]


def test_requests_are_unreadable_from_an_origin_not_allowed(
    make_server: ServerFactory, chromium: Any, page_host: PageHost
) -> None:
    """The control: with CORS narrowed to another origin, the same page cannot read OpenHI's answers."""
    narrowed = make_server(env={"OPENHI_CORS_ALLOWED_ORIGINS": "http://viewer.example"})
    url = f"{narrowed.endpoint}/datastore"
    calls = [
        {
            "name": "list",
            "url": url,
            "headers": {"Accept": "application/json", **presigned_headers(url, "application/json")},
        }
    ]
    page_host.html = PAGE.replace("__CALLS__", json.dumps(calls)).encode()
    context = chromium.new_context()
    page = context.new_page()
    page.goto(f"{page_host.origin}/index.html")
    [result] = page.evaluate("window.results")
    context.close()
    assert "error" in result, result  # fetch rejects: the preflight gave no allowance to this origin
    assert requests.get(f"{narrowed.endpoint}/health", timeout=10).status_code == 200
