"""``GET /metrics`` after a scripted workload through boto3 and DICOMweb, on both backends (guide 20109-20220).

The workload: two data stores; four CT instances in two series of one study stored with one STOW-RS request;
every frame read with GetImageFrame; a copy of one image set and its deletion; a call denied to a user without
policies; a throttled call; the second data store deleted. Every native call is tallied on the client side from
botocore's own events (operation, data store, HTTP status), the DICOMweb call by hand, and the scrape, parsed with
prometheus_client's parser, must match exactly: call counts per operation, data store and outcome, histogram
counts per operation, and the resource gauges (image sets, studies, series, instances, bytes equal to the bytes
GetImageFrame returned).
"""

from __future__ import annotations

import functools
import io
import json
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import httpx
import pydicom
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from prometheus_client.parser import text_string_to_metric_families
from pydicom.dataset import Dataset
from tests.e2e.conftest import ServerFactory
from tests.e2e.helpers import settled
from tests.e2e.import_helpers import instances, metadata
from tests.support.dicom_corpus import SeriesSpec, ct_dataset
from tests.support.dicomweb import dicomweb_url
from tests.support.server import ServerProcess
from tests.support.signing import send, signed

ACCOUNT = "123456789012"
BOUNDARY = "5b0c8a43-metrics-workload"
# Throttling on, with the guide's limits lifted for what the workload repeats; ListDatastores gets a burst of 1.
UNLIMITED = [
    "CreateDatastore",
    "GetDatastore",
    "DeleteDatastore",
    "StoreDICOM",
    "SearchImageSets",
    "GetImageSet",
    "GetImageSetMetadata",
    "GetImageFrame",
    "CopyImageSet",
    "DeleteImageSet",
]
RATES = {"ListDatastores": [0.001, 1], **dict.fromkeys(UNLIMITED)}
NO_RETRIES = Config(inject_host_prefix=False, retries={"total_max_attempts": 1})
NOBODY_KEY, NOBODY_SECRET = "AKIAMETRICSNOBODY001", "secret-of-nobody".ljust(40, "s")
Key = tuple[str, str, str]  # operation, datastore_id label, outcome
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def outcome_of(status: int) -> str:
    """The outcome label the server gives an answer with this status (metrics/calls.py)."""
    if status == 429:
        return "throttled"
    if status in (401, 403):
        return "denied"
    return "server_error" if status >= 500 else "client_error" if status >= 400 else "success"


class Tally:
    """Every call the workload makes, as the server should count it."""

    def __init__(self) -> None:
        self.calls: Counter[Key] = Counter()

    def add(self, operation: str, datastore_id: str, status: int) -> None:
        # The server drops the data store label of a 404 (the id may be made up).
        self.calls[(operation, "" if status == 404 else datastore_id, outcome_of(status))] += 1

    def watch(self, client: Any) -> Any:
        """Tally every attempt of a boto3 client (each one is a call the server answers)."""

        def params(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
            context["tally_datastore"] = params.get("datastoreId", "")

        def answered(response_dict: dict[str, Any] | None, context: dict[str, Any], event_name: str, **_: Any) -> None:
            assert response_dict is not None, "no answer: the server must answer every call of the workload"
            operation = event_name.rsplit(".", 1)[1]
            self.add(operation, context.get("tally_datastore", ""), response_dict["status_code"])

        client.meta.events.register("before-parameter-build.medical-imaging", params)
        client.meta.events.register("response-received.medical-imaging", answered)
        return client


def _series(label: str) -> list[Dataset]:
    spec = SeriesSpec(study="mstudy", series=label, patient_id="PAT-M", slices=2, size=16)
    return [ct_dataset(spec, index) for index in range(spec.slices)]


def _multipart(datasets: list[Dataset]) -> bytes:
    out = []
    for n, ds in enumerate(datasets):
        buffer = io.BytesIO()
        pydicom.dcmwrite(buffer, ds, enforce_file_format=True)
        out.append(f"{'\r\n' if n else ''}--{BOUNDARY}\r\nContent-Type: application/dicom\r\n\r\n".encode())
        out.append(buffer.getvalue())
    out.append(f"\r\n--{BOUNDARY}--".encode())
    return b"".join(out)


def _iam_file(folder: Any) -> str:
    path = folder / "iam.toml"
    path.write_text(
        f'[[users]]\nname = "nobody"\naccess_key_id = "{NOBODY_KEY}"\nsecret_access_key = "{NOBODY_SECRET}"\n'
    )
    return str(path)


def _until(call: Callable[[], Any], done: Callable[[Any], bool], timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        try:
            found = call()
        except ClientError as exc:
            found = exc.response
        if done(found) or time.monotonic() > deadline:
            assert done(found), found
            return found
        time.sleep(0.1)


def scrape(server: ServerProcess, **headers: str) -> tuple[httpx.Response, Samples]:
    answer = httpx.get(f"{server.endpoint}/metrics", headers=headers, timeout=30)
    assert answer.status_code == 200, answer.text
    found = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(answer.text)
        for sample in family.samples
    }
    return answer, found


def call_counts(found: Samples) -> dict[Key, int]:
    counts = {}
    for (name, labels), value in found.items():
        if name == "openhi_call_count_total":
            named = dict(labels)
            counts[(named["operation"], named["datastore_id"], named["outcome"])] = int(value)
    return counts


def value(found: Samples, name: str, **labels: str) -> float:
    return found[(name, tuple(sorted(labels.items())))]


@pytest.fixture(scope="module")
def workload(make_server: ServerFactory, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    env = {
        "OPENHI_IAM_FILE": _iam_file(tmp_path_factory.mktemp("metrics-iam")),
        "OPENHI_THROTTLING": "true",
        "OPENHI_THROTTLE_RATES": json.dumps(RATES),
        "OPENHI_IMPORT_WORKERS": "1",
    }
    server = make_server(env=env)
    tally = Tally()
    root = tally.watch(server.client())
    nobody = tally.watch(server.client(aws_access_key_id=NOBODY_KEY, aws_secret_access_key=NOBODY_SECRET))

    kept = root.create_datastore(datastoreName="metrics")["datastoreId"]
    dropped = root.create_datastore(datastoreName="metrics-dropped")["datastoreId"]
    for datastore_id in (kept, dropped):
        _until(
            functools.partial(root.get_datastore, datastoreId=datastore_id),
            lambda r: r.get("datastoreProperties", {}).get("datastoreStatus") == "ACTIVE",
        )

    body = _multipart(_series("a") + _series("b"))
    headers = {"Content-Type": f'multipart/related; type="application/dicom"; boundary="{BOUNDARY}"'}
    stored = send(signed("POST", f"{dicomweb_url(server, kept)}/studies", body, headers))
    tally.add("StoreDICOM", kept, stored.status_code)
    assert stored.status_code == 200, stored.text

    summaries = root.search_image_sets(datastoreId=kept, searchCriteria={})["imageSetsMetadataSummaries"]
    assert len(summaries) == 2
    frame_bytes: dict[str, int] = {}
    for summary in summaries:
        image_set_id = summary["imageSetId"]
        frame_bytes[image_set_id] = 0
        for entry in instances(metadata(root, kept, image_set_id)).values():
            for frame in entry["ImageFrames"]:
                answer = root.get_image_frame(
                    datastoreId=kept, imageSetId=image_set_id, imageFrameInformation={"imageFrameId": frame["ID"]}
                )
                frame_bytes[image_set_id] += len(answer["imageFrameBlob"].read())

    with pytest.raises(ClientError) as denied:
        nobody.get_datastore(datastoreId=kept)
    assert denied.value.response["Error"]["Code"] == "AccessDeniedException"
    once = tally.watch(server.client(config=NO_RETRIES))  # the default test client retries a throttled call
    once.list_datastores()
    with pytest.raises(ClientError) as throttled:
        once.list_datastores()
    assert throttled.value.response["Error"]["Code"] == "ThrottlingException"

    # A copy counts its shared frames again (non-primary); deleting it takes them back.
    source = summaries[0]["imageSetId"]
    copy = root.copy_image_set(
        datastoreId=kept, sourceImageSetId=source, copyImageSetInformation={"sourceImageSet": {"latestVersionId": "1"}}
    )["destinationImageSetProperties"]["imageSetId"]
    settled(root, kept, copy)
    settled(root, kept, source)
    _, during_copy = scrape(server)
    root.delete_image_set(datastoreId=kept, imageSetId=copy)
    _until(
        lambda: root.get_image_set(datastoreId=kept, imageSetId=copy),
        lambda r: r.get("imageSetState") == "DELETED",
    )

    root.delete_datastore(datastoreId=dropped)
    _until(
        lambda: root.get_datastore(datastoreId=dropped),
        lambda r: r.get("datastoreProperties", {}).get("datastoreStatus") == "DELETED",
    )
    time.sleep(1.1)  # past the 1 s cache of the resource metrics (the copy's scrape above)
    return {
        "server": server,
        "tally": tally,
        "kept": kept,
        "dropped": dropped,
        "frame_bytes": frame_bytes,
        "source": source,
        "during_copy": during_copy,
    }


def test_call_counts_match_the_workload_exactly(workload: dict[str, Any]) -> None:
    tally: Tally = workload["tally"]
    _, found = scrape(workload["server"])
    assert call_counts(found) == dict(tally.calls)
    kept = workload["kept"]
    assert tally.calls[("GetDatastore", kept, "denied")] == 1
    assert tally.calls[("ListDatastores", "", "throttled")] == 1
    assert tally.calls[("StoreDICOM", kept, "success")] == 1
    assert tally.calls[("GetImageFrame", kept, "success")] == 4
    per_operation: Counter[str] = Counter()
    for (operation, _, _), count in tally.calls.items():
        per_operation[operation] += count
    for operation, count in per_operation.items():
        assert value(found, "openhi_request_duration_seconds_count", operation=operation) == count
        assert value(found, "openhi_request_duration_seconds_bucket", operation=operation, le="+Inf") == count


def test_scrapes_are_not_calls_and_get_no_cors_headers(workload: dict[str, Any]) -> None:
    server: ServerProcess = workload["server"]
    answer, before = scrape(server, Origin="https://viewer.example")
    assert answer.headers["content-type"].startswith("text/plain")
    assert "access-control-allow-origin" not in answer.headers  # the server's CORS setting is "*"
    _, after = scrape(server)
    assert call_counts(after) == call_counts(before)


def test_resource_metrics_match_what_was_stored(workload: dict[str, Any]) -> None:
    _, found = scrape(workload["server"])
    kept, dropped = workload["kept"], workload["dropped"]
    stored = sum(workload["frame_bytes"].values())
    assert stored > 0
    assert value(found, "openhi_resource_metrics_up") == 1
    assert value(found, "openhi_datastores", account_id=ACCOUNT, status="ACTIVE") == 1
    assert value(found, "openhi_datastores", account_id=ACCOUNT, status="DELETED") == 1
    assert value(found, "openhi_image_sets", account_id=ACCOUNT) == 2
    assert value(found, "openhi_storage_bytes", account_id=ACCOUNT, storage_tier="FrequentAccessStorage") == stored
    assert value(found, "openhi_storage_bytes", account_id=ACCOUNT, storage_tier="ArchiveInstantAccessStorage") == 0
    per_datastore = {
        "openhi_datastore_image_sets": 2,
        "openhi_datastore_primary_image_sets": 2,
        "openhi_datastore_small_image_sets": 2,
        "openhi_datastore_dicom_studies": 1,
        "openhi_datastore_dicom_series": 2,
        "openhi_datastore_dicom_instances": 4,
        "openhi_datastore_structured_storage_bytes": 1024 + 2 * 830 + 4 * 680,
    }
    for name, expected in per_datastore.items():
        assert value(found, name, datastore_id=kept) == expected, name
    tier = "FrequentAccessStorage"
    assert value(found, "openhi_datastore_storage_bytes", datastore_id=kept, storage_tier=tier) == stored
    assert not any(
        ("datastore_id", dropped) in labels for name, labels in found if name.startswith("openhi_datastore_")
    )


def test_a_copy_counted_its_frames_again_while_it_existed(workload: dict[str, Any]) -> None:
    found: Samples = workload["during_copy"]
    kept, frame_bytes = workload["kept"], workload["frame_bytes"]
    assert value(found, "openhi_datastore_image_sets", datastore_id=kept) == 3
    assert value(found, "openhi_datastore_primary_image_sets", datastore_id=kept) == 2
    expected = sum(frame_bytes.values()) + frame_bytes[workload["source"]]
    tier = "FrequentAccessStorage"
    assert value(found, "openhi_datastore_storage_bytes", datastore_id=kept, storage_tier=tier) == expected
    assert value(found, "openhi_datastore_dicom_instances", datastore_id=kept) == 4  # the copy is not primary
