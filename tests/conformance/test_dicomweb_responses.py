"""Conformance of every DICOMweb route's answers: media types, multipart framing, the DICOM JSON Model, errors.

The route list comes from ``openhi.api.dicomweb.routes.build_routes`` itself, so a route added to the table
without cases here fails ``test_every_route_has_cases`` and its own parametrized tests. Each route gets its
main answers (the media types a viewer asks for) checked with ``tests/support/dicomweb_conformance.py``
(negotiated media type, multipart framing and part types, PS3.18 F.2 rules on every DICOM JSON body, DICOM
P10 parts that pydicom reads, images that are images), a HEAD that matches its GET, and its main error answers:
404 for an unknown study / series / instance / frame / bulk data id (generated from the route's path
parameters), 406 for an Accept the route cannot produce, plus STOW's 415/400/409. Every answer must carry
``x-amzn-RequestId`` and the CORS headers (requests are sent with ``Origin``); JSON answers are requested with
``Accept-Encoding: gzip`` and must never come compressed when they are binary.

Data: one import job (``file://`` input) loads a CT series of two instances; one carries a private OB value
above 1 MB (served as a BulkDataURI) and a sequence, and the study's patient name has ideographic groups. The
STOW routes store one more instance each. Embedded backend (the conformance tier's server): what is checked is
the shape of the answers, which the DICOMweb layer produces the same way on both backends.
"""

from __future__ import annotations

import gzip
import io
import json
import re
import struct
import typing
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest import mock

import httpx
import pydicom
import pytest
from pydicom.dataset import Dataset
from tests.e2e.helpers import wait_for_status
from tests.e2e.import_helpers import run_job
from tests.support.dicom_corpus import SeriesSpec, ct_dataset, uid, write_series
from tests.support.dicomweb_conformance import (
    Part,
    check_common_headers,
    check_dicom_json,
    check_error,
    check_multipart,
    check_negotiated,
    parse_media_type,
)
from tests.support.server import ServerProcess
from tests.support.signing import signed

from openhi.api.dicomweb.routes import DicomWebRoute, build_routes

ORIGIN = "http://viewer.localhost:3000"
DICOM_JSON = "application/dicom+json"
MULTIPART_DICOM = 'multipart/related; type="application/dicom"'
MULTIPART_OCTETS = 'multipart/related; type="application/octet-stream"'
UNKNOWN = "1.2.826.0.1.3680043.10.1337.404404404"
SERIES = SeriesSpec(study="conformance", series="conformance-1", slices=2, size=32, patient_name="YAMADA^TARO")
STOW_ANY = SeriesSpec(study="conformance", series="conformance-stow", slices=1, size=32, first_instance=10)
STOW_SINGLE = SeriesSpec(study="conformance", series="conformance-stow", slices=1, size=32, first_instance=30)
STOW_STUDY = SeriesSpec(study="conformance", series="conformance-stow", slices=1, size=32, first_instance=20)
OTHER_STUDY = SeriesSpec(study="elsewhere", series="elsewhere-1", slices=1, size=32)
BULK_SIZE = 1_100_000
PRIVATE_CREATOR = "OPENHI CONFORMANCE"
PRIVATE_BULK_TAG = "00091001"  # (0009,1001) in the block (0009,0010) of PRIVATE_CREATOR
JPEG_BASELINE = "1.2.840.10008.1.2.4.50"


# --- the route table ---------------------------------------------------------------------------------------


def route_table() -> list[DicomWebRoute]:
    """The routes as the server builds them (handlers replaced by mocks of their classes)."""
    hints = typing.get_type_hints(build_routes)
    handlers = [mock.Mock(spec=hints[name]) for name in hints if name != "return"]
    return build_routes(*handlers)


def template(route: DicomWebRoute) -> str:
    """``^/studies/(?P<study>[^/]+)/series$`` -> ``/studies/{study}/series``."""
    return re.sub(r"\(\?P<(\w+)>[^)]*\)", r"{\1}", route.pattern.pattern).strip("^$")


ROUTES = {route.operation: route for route in route_table()}


# --- the corpus --------------------------------------------------------------------------------------------


@dataclass
class Corpus:
    server: ServerProcess
    datastore_id: str
    study: str
    series: str
    instances: list[str]
    stow_any: bytes
    stow_study: bytes
    stow_single: bytes
    other_study: bytes
    _bulk: str | None = field(default=None)

    @property
    def base(self) -> str:
        return f"{self.server.endpoint}/datastore/{self.datastore_id}"

    def values(self) -> dict[str, str]:
        return {
            "study": self.study,
            "series": self.series,
            "instance": self.instances[0],
            "frames": "1",
        }

    def bulk(self) -> str:
        """The bulk data id of the private OB value, read from the instance metadata's BulkDataURI."""
        if self._bulk is None:
            path = f"/studies/{self.study}/series/{self.series}/instances/{self.instances[0]}/metadata"
            answer = send(self, "GET", path, DICOM_JSON)
            assert answer.status == 200, f"instance metadata (needed for the bulk data id): {answer.summary()}"
            [dataset] = json.loads(answer.body)
            uri = dataset.get(PRIVATE_BULK_TAG, {}).get("BulkDataURI")
            assert isinstance(uri, str), f"no BulkDataURI: {dataset.get(PRIVATE_BULK_TAG)}"
            assert "/bulkdata/" in uri, uri
            self._bulk = uri.split("/bulkdata/")[1].split("?")[0]
        return self._bulk


def _p10(dataset: Dataset) -> bytes:
    out = io.BytesIO()
    dataset.save_as(out, enforce_file_format=True)
    return out.getvalue()


def _decorate(path: Path, first: bool) -> None:
    """Give the corpus what the F.2 rules must see: a bulk OB value, a sequence, UTF-8 with a PN group."""
    dataset = pydicom.dcmread(path)
    dataset.SpecificCharacterSet = "ISO_IR 192"
    dataset.ReferringPhysicianName = "Yamada^Tarou=山田^太郎=やまだ^たろう"
    if first:
        block = dataset.private_block(0x0009, PRIVATE_CREATOR, create=True)
        block.add_new(0x01, "OB", bytes(range(256)) * (BULK_SIZE // 256) + b"\x00" * (BULK_SIZE % 256))
        reference = Dataset()
        reference.ReferencedSOPClassUID = dataset.SOPClassUID
        reference.ReferencedSOPInstanceUID = uid("referenced", 1)
        dataset.ReferencedImageSequence = [reference]
    dataset.save_as(path, enforce_file_format=True)


@pytest.fixture(scope="module")
def corpus(server: ServerProcess, tmp_path_factory: pytest.TempPathFactory) -> Corpus:
    client = server.client()
    datastore_id: str = client.create_datastore(datastoreName="dicomweb-conformance")["datastoreId"]
    wait_for_status(client, datastore_id, "ACTIVE")
    folder = tmp_path_factory.mktemp("dicomweb-conformance")
    paths = write_series(folder / "in", SERIES)
    for index, path in enumerate(paths):
        _decorate(path, first=index == 0)
    job = run_job(client, datastore_id, f"file://{folder / 'in'}/", f"file://{folder / 'out'}/")
    assert job["jobStatus"] == "COMPLETED", job
    datasets = [pydicom.dcmread(p, stop_before_pixels=True) for p in paths]
    return Corpus(
        server,
        datastore_id,
        datasets[0].StudyInstanceUID,
        datasets[0].SeriesInstanceUID,
        [d.SOPInstanceUID for d in datasets],
        _p10(ct_dataset(STOW_ANY, 0)),
        _p10(ct_dataset(STOW_STUDY, 0)),
        _p10(ct_dataset(STOW_SINGLE, 0)),
        _p10(ct_dataset(OTHER_STUDY, 0)),
    )


# --- the wire ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    """An answer as it came over the wire; ``body`` is gunzipped when the answer was gzip-encoded."""

    status: int
    headers: httpx.Headers
    body: bytes
    encoded: bool

    @property
    def content_type(self) -> str | None:
        return self.headers.get("content-type")

    def summary(self) -> str:
        return f"{self.status} {self.content_type} {self.body[:300]!r}"


def send(
    corpus: Corpus,
    method: str,
    path: str,
    accept: str | None,
    *,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
) -> Answer:
    extra = {"Origin": ORIGIN, "Accept-Encoding": "gzip", **(headers or {})}
    if accept is not None:
        extra["Accept"] = accept
    request = signed(method, f"{corpus.base}{path}", body, extra)
    with httpx.Client(timeout=60) as client:
        response = client.send(request, stream=True)
        raw = b"".join(response.iter_raw())
        response.close()
    encoded = response.headers.get("content-encoding") == "gzip"
    return Answer(response.status_code, response.headers, gzip.decompress(raw) if encoded else raw, encoded)


def multipart_body(*instances: bytes, boundary: str = "conformance-boundary-7f3a") -> tuple[bytes, str]:
    """A STOW-RS request body (PS3.18 §10.5.1.1) and its Content-Type."""
    body = b"".join(
        f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode() + p + b"\r\n" for p in instances
    )
    return body + f"--{boundary}--\r\n".encode(), f'{MULTIPART_DICOM}; boundary="{boundary}"'


# --- expected answers --------------------------------------------------------------------------------------

Check = Callable[[Answer, "Corpus"], list[str]]


def json_array(*required: str, non_empty: bool = True) -> Check:
    def check(answer: Answer, corpus: Corpus) -> list[str]:
        try:
            document = json.loads(answer.body.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            return [f"not UTF-8 JSON: {exc}"]
        problems = check_dicom_json(document, required=required)
        if non_empty and isinstance(document, list) and not document:
            problems.append("an empty array where the corpus matches")
        return problems

    return check


def empty_array(answer: Answer, corpus: Corpus) -> list[str]:
    if answer.status == 204 and not answer.body:
        return []
    try:
        document = json.loads(answer.body)
    except json.JSONDecodeError as exc:
        return [f"not JSON: {exc}"]
    return [] if document == [] else [f"expected no match, got {str(document)[:200]}"]


def stow_answer(*required: str) -> Check:
    def check(answer: Answer, corpus: Corpus) -> list[str]:
        try:
            document = json.loads(answer.body.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            return [f"not UTF-8 JSON: {exc}"]
        return check_dicom_json(document, array=False, required=required)

    return check


def parts_of(part_type: str, validate: Callable[[Part], list[str]], count: int | None = None) -> Check:
    def check(answer: Answer, corpus: Corpus) -> list[str]:
        problems, parts = check_multipart(answer.content_type, answer.body, part_type=part_type)
        if answer.encoded:
            problems.append("a multipart answer was gzip-encoded")
        if not parts:
            problems.append("no part")
        if count is not None and len(parts) != count:
            problems.append(f"{len(parts)} parts, expected {count}")
        for index, part in enumerate(parts, 1):
            problems += [f"part {index}: {problem}" for problem in validate(part)]
        return problems

    return check


def single(validate: Callable[[bytes], list[str]]) -> Check:
    def check(answer: Answer, corpus: Corpus) -> list[str]:
        problems = ["a binary answer was gzip-encoded"] if answer.encoded else []
        return problems + validate(answer.body)

    return check


def p10(data: bytes) -> list[str]:
    try:
        dataset = pydicom.dcmread(io.BytesIO(data))
        _ = dataset.pixel_array
    except Exception as exc:
        return [f"not a readable DICOM P10 instance: {exc}"]
    return [] if dataset.SOPInstanceUID else ["no SOP Instance UID"]


def p10_part(part: Part) -> list[str]:
    return p10(part.body)


def raw_frame(part: Part) -> list[str]:
    size = SERIES.size * SERIES.size * 2
    return [] if len(part.body) == size else [f"{len(part.body)} bytes, a 16-bit {SERIES.size}² frame has {size}"]


def htj2k(data: bytes) -> list[str]:
    return [] if data[:4] == b"\xff\x4f\xff\x51" else [f"not a JPEG 2000 codestream: {data[:8]!r}"]


def htj2k_part(part: Part) -> list[str]:
    return htj2k(part.body)


def jpeg(data: bytes) -> list[str]:
    return [] if data[:3] == b"\xff\xd8\xff" and data[-2:] == b"\xff\xd9" else [f"not a JPEG: {data[:8]!r}"]


def jpeg_part(part: Part) -> list[str]:
    return jpeg(part.body)


def png(data: bytes) -> list[str]:
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        return [f"not a PNG: {data[:8]!r}"]
    width, height = struct.unpack(">II", data[16:24])
    return [] if width and height else ["a PNG without pixels"]


def bulk_bytes(data: bytes) -> list[str]:
    expected = bytes(range(256)) * (BULK_SIZE // 256) + b"\x00" * (BULK_SIZE % 256)
    return [] if data == expected else [f"bulk data differs: {len(data)} bytes, expected {len(expected)}"]


def bulk_part(part: Part) -> list[str]:
    return bulk_bytes(part.body)


@dataclass(frozen=True)
class Case:
    """One request of a route and what its answer must be."""

    name: str
    accept: str | None
    status: int
    check: Check
    path: str | None = None  # default: the route's template filled with the corpus
    body: Callable[[Corpus], tuple[bytes, str]] | None = None
    headers: dict[str, str] = field(default_factory=dict)


QIDO_STUDY = ("0020000D", "00080020", "00100010", "00100020")
INSTANCE = ("00080016", "00080018", "0020000D", "0020000E")

CASES: dict[str, list[Case]] = {
    "StoreDICOM": [
        Case("multipart", DICOM_JSON, 200, stow_answer("00081199"), body=lambda c: multipart_body(c.stow_any)),
        Case(
            "single part", DICOM_JSON, 200, stow_answer("00081199"), body=lambda c: (c.stow_single, "application/dicom")
        ),
    ],
    "StoreDICOMStudy": [
        Case("multipart", DICOM_JSON, 200, stow_answer("00081199"), body=lambda c: multipart_body(c.stow_study)),
        Case("other study", DICOM_JSON, 409, stow_answer("00081198"), body=lambda c: multipart_body(c.other_study)),
    ],
    "SearchDICOMStudies": [
        Case("dicom+json", DICOM_JSON, 200, json_array(*QIDO_STUDY)),
        Case("json", "application/json", 200, json_array(*QIDO_STUDY)),
        Case("includefield all", DICOM_JSON, 200, json_array(*QIDO_STUDY), path="/studies?includefield=all"),
        Case("no match", DICOM_JSON, 200, empty_array, path=f"/studies?StudyInstanceUID={UNKNOWN}"),
    ],
    "SearchDICOMSeries": [
        Case("dicom+json", DICOM_JSON, 200, json_array("0020000E", "00080060")),
        Case("unknown study", DICOM_JSON, 200, empty_array, path=f"/studies/{UNKNOWN}/series"),
    ],
    "SearchDICOMInstances": [
        Case("dicom+json", DICOM_JSON, 200, json_array("00080016", "00080018")),
        Case("unknown series", DICOM_JSON, 200, empty_array, path="/studies/{study}/series/" + UNKNOWN + "/instances"),
    ],
    "SearchDICOMStudyInstances": [
        Case("dicom+json", DICOM_JSON, 200, json_array("00080016", "00080018", "0020000E")),
        Case(
            "includefield all",
            DICOM_JSON,
            200,
            json_array("00080016", "00080018", "0020000E"),
            path="/studies/{study}/instances?includefield=all",
        ),
        Case("unknown study", DICOM_JSON, 200, empty_array, path=f"/studies/{UNKNOWN}/instances"),
    ],
    "GetDICOMStudy": [
        Case("multipart dicom", f"{MULTIPART_DICOM}; transfer-syntax=*", 200, parts_of("application/dicom", p10_part))
    ],
    "GetDICOMStudyMetadata": [Case("dicom+json", DICOM_JSON, 200, json_array(*INSTANCE))],
    "GetDICOMSeries": [Case("multipart dicom", MULTIPART_DICOM, 200, parts_of("application/dicom", p10_part, 2))],
    "GetDICOMSeriesMetadata": [Case("dicom+json", DICOM_JSON, 200, json_array(*INSTANCE))],
    "GetDICOMSeriesRendered": [
        Case("multipart jpeg", 'multipart/related; type="image/jpeg"', 200, parts_of("image/jpeg", jpeg_part, 2))
    ],
    "GetDICOMSeriesThumbnail": [Case("jpeg", "image/jpeg", 200, single(jpeg))],
    "GetDICOMInstance": [
        Case("single part", "application/dicom", 200, single(p10)),
        Case("multipart", MULTIPART_DICOM, 200, parts_of("application/dicom", p10_part, 1)),
        Case("stored syntax", f"{MULTIPART_DICOM}; transfer-syntax=*", 200, parts_of("application/dicom", p10_part, 1)),
    ],
    "GetDICOMInstanceMetadata": [Case("dicom+json", DICOM_JSON, 200, json_array(*INSTANCE))],
    "GetDICOMInstanceRendered": [
        Case("jpeg", "image/jpeg", 200, single(jpeg)),
        Case("png", "image/png", 200, single(png)),
    ],
    "GetDICOMInstanceThumbnail": [Case("jpeg", "image/jpeg", 200, single(jpeg))],
    "GetDICOMInstanceFrames": [
        Case("explicit VR little endian", MULTIPART_OCTETS, 200, parts_of("application/octet-stream", raw_frame, 1)),
        Case("stored HTJ2K", 'multipart/related; type="image/jphc"', 200, parts_of("image/jphc", htj2k_part, 1)),
        Case("single part", "application/octet-stream", 200, single(lambda d: raw_frame(Part({}, d)))),
        Case(
            "range",
            "application/octet-stream",
            206,
            single(lambda d: [] if len(d) == 10 else [f"{len(d)} bytes for a 10-byte range"]),
            headers={"Range": "bytes=0-9"},
        ),
    ],
    "GetDICOMFramesRendered": [Case("jpeg", "image/jpeg", 200, single(jpeg))],
    "GetDICOMFramesThumbnail": [Case("jpeg", "image/jpeg", 200, single(jpeg))],
    "GetDICOMBulkdata": [
        Case("multipart", MULTIPART_OCTETS, 200, parts_of("application/octet-stream", bulk_part, 1)),
        Case("single part", "application/octet-stream", 200, single(bulk_bytes)),
    ],
}

# An Accept each route cannot produce (406). STOW answers only DICOM JSON; WADO cannot make lossy JPEG Baseline
# from lossless pixels; metadata and QIDO are JSON; rendered images are JPEG or PNG.
NOT_ACCEPTABLE: dict[str, str] = {
    "StoreDICOM": "image/png",
    "StoreDICOMStudy": "image/png",
    "SearchDICOMStudies": "image/png",
    "SearchDICOMSeries": "image/png",
    "SearchDICOMInstances": "image/png",
    "SearchDICOMStudyInstances": "image/png",
    "GetDICOMStudy": f"{MULTIPART_DICOM}; transfer-syntax={JPEG_BASELINE}",
    "GetDICOMStudyMetadata": "application/dicom",
    "GetDICOMSeries": f"{MULTIPART_DICOM}; transfer-syntax={JPEG_BASELINE}",
    "GetDICOMSeriesMetadata": "application/dicom",
    "GetDICOMSeriesRendered": "application/dicom",
    "GetDICOMSeriesThumbnail": "application/dicom",
    "GetDICOMInstance": f"application/dicom; transfer-syntax={JPEG_BASELINE}",
    "GetDICOMInstanceMetadata": "application/dicom",
    "GetDICOMInstanceRendered": "application/dicom",
    "GetDICOMInstanceThumbnail": "application/dicom",
    "GetDICOMInstanceFrames": 'multipart/related; type="image/jpeg"',
    "GetDICOMFramesRendered": "application/dicom",
    "GetDICOMFramesThumbnail": "application/dicom",
    "GetDICOMBulkdata": "image/png",
}
SEARCHES = {"SearchDICOMStudies", "SearchDICOMSeries", "SearchDICOMInstances", "SearchDICOMStudyInstances"}


@dataclass(frozen=True)
class ErrorCase:
    name: str
    status: int
    accept: str | None
    path: str | None = None
    body: Callable[[Corpus], tuple[bytes, str]] | None = None
    headers: dict[str, str] = field(default_factory=dict)


RANGED = {"GetDICOMInstanceFrames", "GetDICOMBulkdata"}


def error_cases(operation: str) -> list[ErrorCase]:
    """404 for each unknown path parameter (searches answer no match instead), 406, and STOW's own errors."""
    route = ROUTES[operation]
    path = template(route)
    cases = [ErrorCase("not acceptable", 406, NOT_ACCEPTABLE.get(operation, "<missing in NOT_ACCEPTABLE>"))]
    if "POST" in route.methods:
        cases[0] = ErrorCase(
            "not acceptable", 406, NOT_ACCEPTABLE[operation], body=lambda c: multipart_body(c.stow_any)
        )
        cases.append(ErrorCase("unsupported media type", 415, DICOM_JSON, body=lambda c: (b"hello", "text/plain")))
        if "{study}" in path:
            cases.append(
                ErrorCase(
                    "bad study uid",
                    400,
                    DICOM_JSON,
                    path="/studies/not-a-uid",
                    body=lambda c: multipart_body(c.stow_any),
                )
            )
        return cases
    if operation in SEARCHES:
        return cases
    unknown = {"study": UNKNOWN, "series": UNKNOWN, "instance": UNKNOWN, "frames": "99", "bulk": "no-such-bulk-data"}
    for name in re.findall(r"\{(\w+)\}", path):
        cases.append(ErrorCase(f"unknown {name}", 404, None, path=path.replace(f"{{{name}}}", unknown[name])))
    if operation in RANGED:  # RFC 9110 §15.5.17: a range past the end
        far = {"Range": "bytes=99999999-"}
        cases.append(ErrorCase("range not satisfiable", 416, "application/octet-stream", headers=far))
    return cases


def _fill(path: str, corpus: Corpus) -> str:
    values = corpus.values()
    if "{bulk}" in path:
        values["bulk"] = corpus.bulk()
    return path.format(**values)


def _send_case(corpus: Corpus, operation: str, case: Case | ErrorCase) -> tuple[str, str, Answer]:
    """Send a case's request to its route (POST for STOW-RS, else GET): (method, path, answer)."""
    route = ROUTES[operation]
    method = "POST" if "POST" in route.methods else "GET"
    path = _fill(case.path or template(route), corpus)
    headers = dict(case.headers)
    body = b""
    if case.body is not None:
        body, headers["Content-Type"] = case.body(corpus)
    return method, path, send(corpus, method, path, case.accept, body=body, headers=headers)


def _main_params() -> Iterator[Any]:
    for operation in ROUTES:
        for case in CASES.get(operation, [Case("<no case>", None, 200, lambda a, c: ["no case for this route"])]):
            yield pytest.param(operation, case, id=f"{operation}-{case.name}")


def _error_params() -> Iterator[Any]:
    for operation in ROUTES:
        for case in error_cases(operation):
            yield pytest.param(operation, case, id=f"{operation}-{case.name}")


# --- the tests ---------------------------------------------------------------------------------------------


def test_every_route_has_cases() -> None:
    assert set(CASES) == set(ROUTES), "a route without conformance cases (or a case for a route that is gone)"
    assert set(NOT_ACCEPTABLE) == set(ROUTES), "every route negotiates its media type: name a 406 Accept"
    for operation, cases in CASES.items():
        route = ROUTES[operation]
        for case in cases:
            if case.path is not None:
                filled = case.path.split("?")[0].format(study="1.2", series="1.3", instance="1.4", frames="1", bulk="b")
                assert route.pattern.match(filled), f"{operation} {case.name}: {case.path} is not this route's path"


@pytest.mark.parametrize(("operation", "case"), list(_main_params()))
def test_route_answer_conforms(corpus: Corpus, operation: str, case: Case) -> None:
    method, path, answer = _send_case(corpus, operation, case)
    problems = check_common_headers(answer.headers, ORIGIN)
    if answer.status != case.status:
        problems.append(f"status {answer.status}, expected {case.status}: {answer.summary()}")
    else:
        if case.accept is not None and not (answer.status == 204 and not answer.body):
            problems += check_negotiated(case.accept, answer.content_type)
        problems += case.check(answer, corpus)
    assert problems == [], f"{method} {path} (Accept: {case.accept}):\n" + "\n".join(problems[:40])


@pytest.mark.parametrize(("operation", "case"), [p for p in _main_params() if "GET" in ROUTES[p.values[0]].methods])
def test_head_matches_get(corpus: Corpus, operation: str, case: Case) -> None:
    path = _fill(case.path or template(ROUTES[operation]), corpus)
    got = send(corpus, "GET", path, case.accept, headers=dict(case.headers))
    head = send(corpus, "HEAD", path, case.accept, headers=dict(case.headers))
    assert head.status == got.status == case.status, (head.summary(), got.summary())
    assert head.body == b""
    assert parse_media_type(head.content_type or "").essence == parse_media_type(got.content_type or "").essence
    assert check_common_headers(head.headers, ORIGIN) == []


@pytest.mark.parametrize(("operation", "case"), list(_error_params()))
def test_route_error_conforms(corpus: Corpus, operation: str, case: ErrorCase) -> None:
    method, path, answer = _send_case(corpus, operation, case)
    problems = check_common_headers(answer.headers, ORIGIN)
    if case.status == 416 and not re.fullmatch(r"bytes \*/\d+", answer.headers.get("content-range", "")):
        problems.append(f"a 416 answer names the length: Content-Range {answer.headers.get('content-range')!r}")
    problems += check_error(answer.status, answer.headers, answer.body, case.status)
    assert problems == [], f"{method} {path} (Accept: {case.accept}): {answer.summary()}\n" + "\n".join(problems)


METADATA = ["GetDICOMStudyMetadata", "GetDICOMSeriesMetadata", "GetDICOMInstanceMetadata"]


@pytest.mark.parametrize("operation", METADATA)
def test_metadata_etag_survives_gzip(corpus: Corpus, operation: str) -> None:
    """A gzip answer's ETag (weak, RFC 9110 §8.8.1) still answers 304 to If-None-Match (weak comparison)."""
    path = _fill(template(ROUTES[operation]), corpus)
    first = send(corpus, "GET", path, DICOM_JSON)
    assert first.status == 200, first.summary()
    tag = first.headers.get("etag")
    assert tag, "metadata answers carry an ETag"
    if len(first.body) >= 1024:
        assert first.encoded, "a metadata answer above 1 KiB to Accept-Encoding: gzip"
        assert tag.startswith("W/"), f"a gzip answer's ETag must be weak: {tag}"
    again = send(corpus, "GET", path, DICOM_JSON, headers={"If-None-Match": tag})
    assert again.status == 304, again.summary()
    assert check_common_headers(again.headers, ORIGIN) == []
    plain = send(corpus, "GET", path, DICOM_JSON, headers={"Accept-Encoding": "identity"})
    assert not plain.encoded
    assert json.loads(plain.body) == json.loads(first.body)
    assert "accept-encoding" in plain.headers.get("vary", "").lower()


def test_endpoint_errors_conform(corpus: Corpus) -> None:
    """What the endpoint answers before any handler: an unknown resource and a method the route lacks."""
    unknown = send(corpus, "GET", f"/studies/{corpus.study}/nothing-here", DICOM_JSON)
    assert check_error(unknown.status, unknown.headers, unknown.body, 404) == []
    assert check_common_headers(unknown.headers, ORIGIN) == []
    wrong = send(corpus, "DELETE", "/studies", DICOM_JSON)
    assert check_error(wrong.status, wrong.headers, wrong.body, 405) == []
    assert check_common_headers(wrong.headers, ORIGIN) == []
    assert "GET" in wrong.headers["allow"]
    assert "POST" in wrong.headers["allow"]
    unsigned = httpx.get(f"{corpus.base}/studies", headers={"Origin": ORIGIN})
    assert unsigned.status_code == 403
    assert check_common_headers(unsigned.headers, ORIGIN) == []
    assert unsigned.json()["__type"] == unsigned.headers["x-amzn-errortype"]


def test_unique_request_ids(corpus: Corpus) -> None:
    ids = {send(corpus, "GET", "/studies", DICOM_JSON).headers.get("x-amzn-requestid") for _ in range(3)}
    assert len(ids) == 3
    assert all(ids)
    assert all(uuid.UUID(str(i)) for i in ids)


def test_corpus_exercises_the_rules(corpus: Corpus) -> None:
    """The metadata the suite checks holds what the F.2 rules are about (so they are not checked vacuously)."""
    path = f"/studies/{corpus.study}/series/{corpus.series}/instances/{corpus.instances[0]}/metadata"
    answer = send(corpus, "GET", path, DICOM_JSON)
    assert answer.status == 200, answer.summary()
    [dataset] = json.loads(answer.body)
    assert set(dataset["00080090"]["Value"][0]) == {"Alphabetic", "Ideographic", "Phonetic"}  # PN groups
    assert dataset["00081140"]["vr"] == "SQ"
    assert dataset["00081140"]["Value"][0]["00081155"]["Value"] == [uid("referenced", 1)]
    assert "BulkDataURI" in dataset[PRIVATE_BULK_TAG]
    assert dataset["00090010"]["Value"] == [PRIVATE_CREATOR]
    assert isinstance(dataset["00280030"]["Value"][0], float)  # DS
    assert isinstance(dataset["00200013"]["Value"][0], int)  # IS
    assert check_dicom_json([dataset]) == []
