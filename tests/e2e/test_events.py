"""Events of real API flows (guide 20221-20911) through ``openhi serve`` on both backends: every event type the API
can produce, read through the pull API (``GET /events``) and the NDJSON sink, and checked field by field against the
guide's examples.

Data stores: CreateDatastore / DeleteDatastore. Import jobs: StartDICOMImportJob (a completed and a failed job).
Image sets: created and updated by import jobs and by STOW-RS, UpdateImageSetMetadata, CopyImageSet, DeleteImageSet,
and the failures a dead process leaves (an update or copy ended by the recovery sweep). "Data Store Creation Failed"
comes from a data store whose customer key (kmsKeyArn) the key provider does not hold.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from tests.e2e.conftest import ServerFactory
from tests.e2e.helpers import settled, wait_for_status
from tests.e2e.import_helpers import run_job
from tests.support.dicom_corpus import SeriesSpec, ct_dataset, write_series
from tests.support.dicomweb import dicomweb_client
from tests.support.event_examples import check_against_guide
from tests.support.event_feed import about, feed, kinds, ndjson_events, pull, wait_for_feed
from tests.support.iam_cli import iam_json
from tests.support.server import ServerProcess


@pytest.fixture(scope="module")
def events_file(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp(f"events-{backend}") / "sink" / "events.ndjson"


@pytest.fixture(scope="module")
def server(make_server: ServerFactory, events_file: Path) -> ServerProcess:
    return make_server(
        env={
            "OPENHI_IMPORT_WORKERS": "1",
            "OPENHI_EVENT_SINKS": json.dumps([{"type": "ndjson", "path": str(events_file)}]),
            "OPENHI_IMAGE_SET_LOCK_TIMEOUT_SECONDS": "1",
        }
    )


@pytest.fixture(scope="module")
def client(server: ServerProcess) -> Any:
    return server.client()


@pytest.fixture(scope="module")
def datastore(client: Any) -> str:
    datastore_id: str = client.create_datastore(datastoreName="events")["datastoreId"]
    wait_for_status(client, datastore_id, "ACTIVE")
    return datastore_id


def when(event: dict[str, Any]) -> datetime:
    return datetime.strptime(event["time"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def check_all(events: list[dict[str, Any]], started: datetime) -> None:
    """Every event matches its guide example and happened during the test."""
    for event in events:
        check_against_guide(event)
        assert started - timedelta(seconds=1) <= when(event) <= datetime.now(UTC) + timedelta(seconds=1)


def import_series(client: Any, datastore: str, folder: Path, spec: SeriesSpec) -> dict[str, Any]:
    write_series(folder / "in", spec)
    job = run_job(client, datastore, f"file://{folder / 'in'}/", f"file://{folder / 'out'}/")
    assert job["jobStatus"] == "COMPLETED", job
    return job


def image_set_of(folder: Path, datastore: str, job: dict[str, Any]) -> str:
    success = folder / "out" / f"{datastore}-DicomImport-{job['jobId']}" / "SUCCESS" / "success.ndjson"
    return str(json.loads(success.read_text().splitlines()[0])["importResponse"]["imageSetId"])


def test_data_store_lifecycle_events(client: Any, server: ServerProcess) -> None:
    started = datetime.now(UTC)
    datastore_id = client.create_datastore(datastoreName="events-lifecycle")["datastoreId"]
    arn = wait_for_status(client, datastore_id, "ACTIVE")["datastoreArn"]
    client.delete_datastore(datastoreId=datastore_id)
    wait_for_status(client, datastore_id, "DELETED")
    events = wait_for_feed(server, lambda all_: len(about(all_, "datastoreId", datastore_id)) >= 4)
    mine = about(events, "datastoreId", datastore_id)
    assert kinds(mine) == ["Data Store Creating", "Data Store Created", "Data Store Deleting", "Data Store Deleted"]
    check_all(mine, started)
    for event, status in zip(mine, ["CREATING", "ACTIVE", "DELETING", "DELETED"], strict=True):
        assert event["resources"] == [arn]
        assert event["detail"] == {
            "imagingVersion": "1.0",
            "datastoreId": datastore_id,
            "datastoreName": "events-lifecycle",
            "datastoreStatus": status,
        }
    assert len({event["id"] for event in mine}) == 4


def test_data_store_creation_failed_event(client: Any, server: ServerProcess) -> None:
    started = datetime.now(UTC)
    unknown_key = "arn:aws:kms:us-east-1:123456789012:key/99999999-8888-7777-6666-555555555555"  # not in the keyring
    datastore_id = client.create_datastore(datastoreName="events-failed", kmsKeyArn=unknown_key)["datastoreId"]
    arn = wait_for_status(client, datastore_id, "CREATE_FAILED")["datastoreArn"]
    events = wait_for_feed(server, lambda all_: len(about(all_, "datastoreId", datastore_id)) >= 2)
    mine = about(events, "datastoreId", datastore_id)
    assert kinds(mine) == ["Data Store Creating", "Data Store Creation Failed"]
    check_all(mine, started)
    assert mine[1]["resources"] == [arn]
    assert mine[1]["detail"] == {
        "imagingVersion": "1.0",
        "datastoreId": datastore_id,
        "datastoreName": "events-failed",
        "datastoreStatus": "CREATE_FAILED",
    }


def test_import_job_and_image_set_events(client: Any, server: ServerProcess, datastore: str, tmp_path: Path) -> None:
    started = datetime.now(UTC)
    spec = SeriesSpec(study="ev-import", series="ev-import-s", slices=2, size=16)
    job = import_series(client, datastore, tmp_path / "first", spec)
    image_set_id = image_set_of(tmp_path / "first", datastore, job)
    # the same series again with a new instance: the primary image set gets version 2 (guide 20906)
    again = import_series(client, datastore, tmp_path / "second", SeriesSpec(**{**spec.__dict__, "first_instance": 5}))
    assert image_set_of(tmp_path / "second", datastore, again) == image_set_id
    events = wait_for_feed(server, lambda all_: len(about(all_, "jobId", again["jobId"])) >= 3)
    properties = client.get_image_set(datastoreId=datastore, imageSetId=image_set_id)
    for finished in (job, again):
        mine = about(events, "jobId", finished["jobId"])
        assert kinds(mine) == ["Import Job Submitted", "Import Job In Progress", "Import Job Completed"]
        check_all(mine, started)
        for event, status in zip(mine, ["SUBMITTED", "IN_PROGRESS", "COMPLETED"], strict=True):
            assert event["resources"] == [
                client.get_datastore(datastoreId=datastore)["datastoreProperties"]["datastoreArn"]
            ]
            assert event["detail"] == {
                "imagingVersion": "1.0",
                "datastoreId": datastore,
                "jobId": finished["jobId"],
                "jobName": finished["jobName"],
                "jobStatus": status,
                "inputS3Uri": finished["inputS3Uri"],
                "outputS3Uri": finished["outputS3Uri"],
            }
    changes = about(events, "imagesetId", image_set_id)
    assert kinds(changes) == ["Image Set Created", "Image Set Updated"]
    check_all(changes, started)
    assert [event["resources"] for event in changes] == [[properties["imageSetArn"]]] * 2
    assert [(e["detail"]["isPrimary"], e["detail"]["imageSetVersion"]) for e in changes] == [(True, "1"), (True, "2")]
    assert [e["detail"]["imageSetState"] for e in changes] == ["ACTIVE", "ACTIVE"]
    # the image set events of a job come between its In Progress and its Completed
    order = [event["id"] for event in events]
    first_job = about(events, "jobId", job["jobId"])
    assert order.index(first_job[1]["id"]) < order.index(changes[0]["id"]) < order.index(first_job[2]["id"])


def test_failed_import_job_events(client: Any, server: ServerProcess, datastore: str, tmp_path: Path) -> None:
    started = datetime.now(UTC)
    job = run_job(client, datastore, f"file://{tmp_path / 'missing'}/", f"file://{tmp_path / 'out'}/")
    assert job["jobStatus"] == "FAILED"
    events = wait_for_feed(server, lambda all_: "Import Job Failed" in kinds(about(all_, "jobId", job["jobId"])))
    mine = about(events, "jobId", job["jobId"])
    assert kinds(mine) == ["Import Job Submitted", "Import Job Failed"]
    check_all(mine, started)
    assert mine[-1]["detail"]["inputS3Uri"] == f"file://{tmp_path / 'missing'}/"


def test_update_copy_and_delete_events(client: Any, server: ServerProcess, datastore: str, tmp_path: Path) -> None:
    started = datetime.now(UTC)
    job = import_series(
        client, datastore, tmp_path, SeriesSpec(study="ev-writes", series="ev-writes-s", slices=2, size=16)
    )
    source = image_set_of(tmp_path, datastore, job)
    patch = json.dumps({"SchemaVersion": 1.1, "Patient": {"DICOM": {"PatientName": "EVENTS^UPDATED"}}})
    client.update_image_set_metadata(
        datastoreId=datastore,
        imageSetId=source,
        latestVersionId="1",
        updateImageSetMetadataUpdates={"DICOMUpdates": {"updatableAttributes": patch}},
    )
    assert settled(client, datastore, source)["versionId"] == "2"
    copy = client.copy_image_set(
        datastoreId=datastore,
        sourceImageSetId=source,
        copyImageSetInformation={"sourceImageSet": {"latestVersionId": "2"}},
    )
    destination = copy["destinationImageSetProperties"]["imageSetId"]
    settled(client, datastore, destination)
    settled(client, datastore, source)
    client.delete_image_set(datastoreId=datastore, imageSetId=destination)
    assert settled(client, datastore, destination)["imageSetState"] == "DELETED"

    def complete(all_: list[dict[str, Any]]) -> bool:
        return (
            "Image Set Deleted" in kinds(about(all_, "imagesetId", destination))
            and len(about(all_, "imagesetId", source)) >= 5
        )

    events = wait_for_feed(server, complete)
    on_source, on_destination = about(events, "imagesetId", source), about(events, "imagesetId", destination)
    check_all(on_source + on_destination, started)
    assert kinds(on_source) == [
        "Image Set Created",
        "Image Set Updating",
        "Image Set Updated",
        "Image Set Copying With Read Only Access",
        "Image Set Copied",
    ]
    assert [(e["detail"]["imageSetState"], e["detail"]["imageSetVersion"]) for e in on_source] == [
        ("ACTIVE", "1"),
        ("LOCKED", "1"),
        ("ACTIVE", "2"),
        ("LOCKED", "2"),
        ("ACTIVE", "2"),
    ]
    source_arn = client.get_image_set(datastoreId=datastore, imageSetId=source)["imageSetArn"]
    assert kinds(on_destination) == [
        "Image Set Copying",
        "Image Set Copied",
        "Image Set Deleting",
        "Image Set Deleted",
    ]
    assert [e["detail"]["imageSetState"] for e in on_destination] == ["LOCKED", "ACTIVE", "LOCKED", "DELETED"]
    copying = on_destination[0]["detail"]
    assert copying["sourceImageSetArn"] == source_arn
    assert copying["isPrimary"] is False  # a copy without a destination is a new non-primary image set
    assert all(e["detail"]["isPrimary"] is False for e in on_destination)
    destination_arn = client.get_image_set(datastoreId=datastore, imageSetId=destination)["imageSetArn"]
    assert {tuple(e["resources"]) for e in on_destination} == {(destination_arn,)}


def test_failed_write_events_after_a_dead_process(
    client: Any, server: ServerProcess, datastore: str, tmp_path: Path
) -> None:
    """What a process killed between lock and finish leaves: the recovery sweep ends it UPDATE_FAILED / COPY_FAILED."""
    from openhi.imagesets.model import ImageSetState, ImageSetWorkflowStatus
    from openhi.index.port import UnitOfWork
    from openhi.index.sql.adapter import SqlIndex

    started = datetime.now(UTC)
    updated = image_set_of(
        tmp_path / "a",
        datastore,
        import_series(
            client, datastore, tmp_path / "a", SeriesSpec(study="ev-fail", series="ev-fail-u", slices=1, size=16)
        ),
    )
    copied = image_set_of(
        tmp_path / "b",
        datastore,
        import_series(
            client, datastore, tmp_path / "b", SeriesSpec(study="ev-fail", series="ev-fail-c", slices=1, size=16)
        ),
    )

    def crashed_while(image_set_id: str, workflow: ImageSetWorkflowStatus) -> Callable[[UnitOfWork], bool]:
        def work(uow: UnitOfWork) -> bool:
            long_ago = datetime.now(UTC) - timedelta(seconds=30)
            active, locked = [ImageSetState.ACTIVE], ImageSetState.LOCKED
            return uow.image_sets.set_state(datastore, image_set_id, 1, active, locked, workflow, None, long_ago)

        return work

    index = SqlIndex.open(server.index_url)
    try:
        assert index.run(crashed_while(updated, ImageSetWorkflowStatus.UPDATING))
        assert index.run(crashed_while(copied, ImageSetWorkflowStatus.COPYING))
    finally:
        index.close()
    settled(client, datastore, updated)
    settled(client, datastore, copied)
    events = wait_for_feed(
        server,
        lambda all_: len(about(all_, "imagesetId", updated)) >= 2 and len(about(all_, "imagesetId", copied)) >= 2,
    )
    failed_update, failed_copy = about(events, "imagesetId", updated)[-1], about(events, "imagesetId", copied)[-1]
    check_all([failed_update, failed_copy], started)
    assert (failed_update["detail-type"], failed_update["detail"]["imageSetState"]) == (
        "Image Set Update Failed",
        "ACTIVE",
    )
    assert (failed_copy["detail-type"], failed_copy["detail"]["imageSetState"]) == ("Image Set Copy Failed", "ACTIVE")
    assert failed_update["detail"]["imageSetVersion"] == "1"


def test_stow_events(client: Any, server: ServerProcess, datastore: str) -> None:
    started = datetime.now(UTC)
    spec = SeriesSpec(study=f"evs{uuid.uuid4().hex[:6]}", series="ev-stow-s", slices=3, size=16)
    dicomweb = dicomweb_client(server, datastore)
    dicomweb.store_instances(datasets=[ct_dataset(spec, 0), ct_dataset(spec, 1)])
    dicomweb.store_instances(datasets=[ct_dataset(spec, 2)])
    series_uid = str(ct_dataset(spec, 0).SeriesInstanceUID)
    found = client.search_image_sets(
        datastoreId=datastore,
        searchCriteria={"filters": [{"values": [{"DICOMSeriesInstanceUID": series_uid}], "operator": "EQUAL"}]},
    )["imageSetsMetadataSummaries"]
    assert len(found) == 1
    image_set_id = found[0]["imageSetId"]
    events = wait_for_feed(server, lambda all_: len(about(all_, "imagesetId", image_set_id)) >= 2)
    mine = about(events, "imagesetId", image_set_id)
    assert kinds(mine) == ["Image Set Created", "Image Set Updated"]
    check_all(mine, started)
    assert [(e["detail"]["isPrimary"], e["detail"]["imageSetVersion"]) for e in mine] == [(True, "1"), (True, "2")]


def test_the_ndjson_sink_holds_the_feed_in_order(server: ServerProcess, events_file: Path) -> None:
    """Run last in the module: the sink has delivered what the pull API lists, in the same order, once each."""
    published = [event for _, event in feed(server)]
    assert published
    deadline = time.monotonic() + 30
    while len(ndjson_events(events_file)) < len(published):
        assert time.monotonic() < deadline, (len(ndjson_events(events_file)), len(published))
        time.sleep(0.2)
    written = ndjson_events(events_file)
    assert written[: len(published)] == published
    assert len({event["id"] for event in written}) == len(written)
    for event in written:
        check_against_guide(event)
    sequences = [sequence for sequence, _ in feed(server)]
    assert sequences == list(range(1, len(sequences) + 1))  # no gaps


def test_pull_api_pages_and_refuses_bad_requests(server: ServerProcess, datastore: str) -> None:
    everything = feed(server)
    assert len(everything) >= 4
    page = pull(server, after=1, limit=2)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("application/json")
    assert page.json() == {
        "events": [{"sequence": s, "event": e} for s, e in everything[1:3]],
        "nextSequence": everything[2][0],
    }
    last = everything[-1][0]
    assert pull(server, after=last + 100).json() == {"events": [], "nextSequence": last + 100}
    for after, limit in (("-1", "10"), ("x", "10"), ("0", "0"), ("0", "1001")):
        refused = pull(server, after=after, limit=limit)
        assert refused.status_code == 400, refused.text
        assert refused.json()["__type"] == "ValidationException"
    import requests

    unsigned = requests.get(f"{server.endpoint}/events", timeout=10)
    assert unsigned.status_code == 403
    wrong = pull(server, secret="not-the-secret-key-000000000000000000000")
    assert wrong.status_code == 403
    assert wrong.json()["__type"] == "InvalidSignatureException"
    # a caller whose policies do not allow medical-imaging:ListEvents
    iam_json(server, "create-user", "--user", "events-nobody")
    key = iam_json(server, "create-access-key", "--user", "events-nobody")["AccessKey"]
    denied = pull(server, access_key_id=key["AccessKeyId"], secret=key["SecretAccessKey"])
    assert denied.status_code == 403
    assert denied.json()["__type"] == "AccessDeniedException"
    assert "medical-imaging:ListEvents" in denied.json()["message"]
    policy = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": {"Effect": "Allow", "Action": "medical-imaging:ListEvents", "Resource": "*"},
        }
    )
    iam_json(server, "create-user", "--user", "events-reader")
    iam_json(server, "put-user-policy", "--user", "events-reader", "--name", "events", "--document", policy)
    key = iam_json(server, "create-access-key", "--user", "events-reader")["AccessKey"]
    deadline = time.monotonic() + 15
    while (
        allowed := pull(server, limit=1, access_key_id=key["AccessKeyId"], secret=key["SecretAccessKey"])
    ).status_code != 200:
        assert time.monotonic() < deadline, allowed.text  # the directory caches keys for a few seconds
        time.sleep(0.5)
    assert allowed.json()["events"][0]["sequence"] == 1
