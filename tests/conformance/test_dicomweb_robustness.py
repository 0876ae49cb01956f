"""No DICOMweb input answers 5xx: hypothesis-generated queries, paths and headers against ``openhi serve``.

The standard (house rule and PS3.18 §8.5): bad input gets a clear status in the protocol's own format (4xx with
the JSON error body), never a 500 or a stack trace. Each property sends signed requests built from a mix of
meaningful and hostile pieces (real keywords and tags, ranges, wildcards, unknown keys, odd characters, huge
numbers, repeated parameters) to QIDO-RS, WADO-RS frames / metadata, rendered resources and STOW-RS, on a data
store holding one small series stored by STOW.
"""

from __future__ import annotations

import io
import json
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.e2e.helpers import wait_for_status
from tests.support.dicom_corpus import SeriesSpec, ct_dataset, uid
from tests.support.server import ServerProcess
from tests.support.signing import signed

SPEC = SeriesSpec(study="robust", series="robust-1", slices=2, size=16)
STUDY, SERIES = uid("robust"), uid("robust", "robust-1")
SOP = uid("robust", "robust-1", 0)
PROPERTY = settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)

KEYS = st.sampled_from(
    [
        "PatientName", "PatientID", "00100020", "StudyDate", "StudyTime", "StudyInstanceUID", "ModalitiesInStudy",
        "AccessionNumber", "SeriesNumber", "Modality", "InstanceNumber", "SOPClassUID", "WarningReason",
        "includefield", "limit", "offset", "fuzzymatching", "0020000D", "00080020", "7FE00010", "0009XXXX",
        "ReferencedSOPSequence", "00081199.00081150", "bogus", "", "imageSetId",
    ]
)  # fmt: skip
VALUES = st.one_of(
    st.sampled_from(
        ["DOE*", "?OE", "20240101-20241231", "-20240501", "20240501-", "083000-090000", "1.2\\3.4", "*", "all",
         "1000", "9001", "-1", "0", "true", "maybe", "99999999999999999999", "20241301", "2024-05-01", "\\\\",
         "00100010,00080020", "ÆØÅ^名前", "%", "%00", "a" * 300, STUDY]
    ),
    st.text(max_size=20),
)  # fmt: skip
ACCEPTS = st.sampled_from(
    [
        "application/dicom+json", "application/json", "*/*", "text/html", "", "multipart/related",
        'multipart/related; type="application/octet-stream"; transfer-syntax=*',
        'multipart/related; type="application/octet-stream"; transfer-syntax=1.2.3',
        "image/jpeg", "image/png;q=0.5, image/jpeg;q=0.1", "application/dicom; transfer-syntax=garbage",
        'multipart/related; type="image/jphc"', ";;;", "application/octet-stream; q=abc",
    ]
)  # fmt: skip


@pytest.fixture(scope="module")
def datastore(server: ServerProcess, client: Any) -> str:
    datastore_id = str(client.create_datastore(datastoreName="robustness")["datastoreId"])
    wait_for_status(client, datastore_id, "ACTIVE")
    for index in range(SPEC.slices):
        buffer = io.BytesIO()
        ct_dataset(SPEC, index).save_as(buffer, enforce_file_format=True)
        url = f"{server.endpoint}/datastore/{datastore_id}/studies"
        answer = _send(signed("POST", url, buffer.getvalue(), {"Content-Type": "application/dicom"}))
        assert answer.status_code == 200, answer.text
    return datastore_id


def _send(request: httpx.Request) -> httpx.Response:
    with httpx.Client(timeout=60) as http:
        return http.send(request)


def _get(server: ServerProcess, path: str, query: list[tuple[str, str]], accept: str) -> httpx.Response:
    encoded = "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in query)
    url = f"{server.endpoint}{path}" + (f"?{encoded}" if encoded else "")
    headers = {"Accept": accept} if accept else {}
    return _send(signed("GET", url, b"", headers))


def _assert_clean(answer: httpx.Response) -> None:
    assert answer.status_code < 500, (answer.status_code, answer.text[:500])
    if answer.status_code >= 400:
        body = json.loads(answer.content)
        if isinstance(body, dict) and "00081198" in body:  # a STOW-RS response in which every part failed (409)
            assert answer.status_code == 409
            return
        assert set(body) == {"__type", "message"}, body
        assert "Traceback" not in body["message"]


@PROPERTY
@given(
    level=st.sampled_from(["", f"/{STUDY}/series", f"/{STUDY}/series/{SERIES}/instances", f"/{STUDY}/instances"]),
    query=st.lists(st.tuples(KEYS, VALUES), max_size=5),
    accept=ACCEPTS,
)
def test_qido_never_fails_on_the_server(
    server: ServerProcess, datastore: str, level: str, query: list[tuple[str, str]], accept: str
) -> None:
    _assert_clean(_get(server, f"/datastore/{datastore}/studies{level}", query, accept))


@PROPERTY
@given(
    frames=st.one_of(st.sampled_from(["1", "1,1", "0", "2", "1,a", "", ",", "-1", "99999999999999999999"]),
                     st.text(alphabet="0123456789,", max_size=12)),
    accept=ACCEPTS,
    suffix=st.sampled_from(["", "/rendered", "/thumbnail"]),
    query=st.lists(st.tuples(st.sampled_from(["window", "viewport", "quality", "imageSetId", "accept"]), VALUES),
                   max_size=3),
)  # fmt: skip
def test_frames_and_rendered_never_fail_on_the_server(
    server: ServerProcess, datastore: str, frames: str, accept: str, suffix: str, query: list[tuple[str, str]]
) -> None:
    path = f"/datastore/{datastore}/studies/{STUDY}/series/{SERIES}/instances/{SOP}/frames/{quote(frames, safe=',')}"
    _assert_clean(_get(server, path + suffix, query, accept))


@PROPERTY
@given(
    resource=st.sampled_from(
        ["metadata", "rendered", "thumbnail", "", "bulkdata/abc", "bulkdata/" + "f" * 32, "frames/1/rendered"]
    ),
    study=st.sampled_from([STUDY, "1.2.3", "not-a-uid", "1..2", "9" * 80]),
    accept=ACCEPTS,
    query=st.lists(st.tuples(st.sampled_from(["imageSetId", "window", "viewport"]), VALUES), max_size=2),
)
def test_instance_resources_never_fail_on_the_server(
    server: ServerProcess, datastore: str, resource: str, study: str, accept: str, query: list[tuple[str, str]]
) -> None:
    path = f"/datastore/{datastore}/studies/{study}/series/{SERIES}/instances/{SOP}"
    _assert_clean(_get(server, f"{path}/{resource}" if resource else path, query, accept))


@PROPERTY
@given(
    content_type=st.sampled_from(
        [
            "application/dicom", "multipart/related", 'multipart/related; type="application/dicom"; boundary=b',
            "multipart/related; boundary=", 'multipart/related; type="application/dicom"; boundary="' + "x" * 80 + '"',
            "text/plain", "", "application/dicom+json",
        ]
    ),
    body=st.one_of(
        st.binary(max_size=400),
        st.sampled_from([b"--b\r\nContent-Type: application/dicom\r\n\r\nDICM\r\n--b--\r\n", b"--b--", b"\r\n"]),
    ),
    study=st.sampled_from(["", f"/{STUDY}", "/not-a-uid"]),
    accept=ACCEPTS,
)  # fmt: skip
def test_stow_never_fails_on_the_server(
    server: ServerProcess, datastore: str, content_type: str, body: bytes, study: str, accept: str
) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    if accept:
        headers["Accept"] = accept
    url = f"{server.endpoint}/datastore/{datastore}/studies{study}"
    _assert_clean(_send(signed("POST", url, body, headers)))
