"""The event catalogue and the EventBridge form (guide 20221-20911): every state of guide 20235-20264 is an event
whose rendering equals the guide's example field by field."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from tests.support.event_examples import DS, GUIDE_EXAMPLES, check_against_guide

from openhi.datastores.model import Datastore, DatastoreStatus, LosslessStorageFormat
from openhi.dicom.normalize import GroupingKey
from openhi.events.catalogue import (
    DATASTORE_DETAIL_TYPES,
    DETAIL_TYPES,
    IMAGE_SET_DETAIL_TYPES,
    IMPORT_JOB_DETAIL_TYPES,
    datastore_event,
    image_set_event,
    import_job_event,
)
from openhi.events.model import ChangeEvent, EventOrigin, format_time, render
from openhi.imagesets.model import ImageSet, ImageSetState, ImageSetWorkflowStatus
from openhi.imports.model import ImportJob, JobStatus

GUIDE_ORIGIN = EventOrigin("111122223333", "us-west-2")
GUIDE_TIME = datetime(2024, 3, 14, 0, 1, tzinfo=UTC)
GUIDE_ID = "7cf0fb1c-8720-4d48-baa3-6eb97b35a10e"
IMAGE_SET_ID = "5b3a711878c34d40e888253319388649"
STATES_OF_EXAMPLES = {
    "COPYING": ImageSetState.LOCKED,
    "COPYING_WITH_READ_ONLY_ACCESS": ImageSetState.LOCKED,
    "UPDATING": ImageSetState.LOCKED,
    "DELETING": ImageSetState.LOCKED,
    "DELETED": ImageSetState.DELETED,
}

NO_GROUPING = GroupingKey(None, None, None, None, None, None, None)


def datastore(status: DatastoreStatus) -> Datastore:
    return Datastore(DS, "test", status, LosslessStorageFormat.HTJ2K, GUIDE_TIME, GUIDE_TIME, "token")


def job(status: JobStatus) -> ImportJob:
    return ImportJob(
        job_id="a6a1d220f152e7aab6d8925d995d8b76",
        datastore_id=DS,
        job_name="test_only_1",
        status=status,
        data_access_role_arn="arn:aws:iam::111122223333:role/ImportRole",
        input_s3_uri="s3://healthimaging-test-bucket/input/",
        output_s3_uri="s3://healthimaging-test-bucket/output/",
        client_token="token",
        submitted_at=GUIDE_TIME - timedelta(minutes=5),
        updated_at=GUIDE_TIME,
    )


def image_set(workflow: ImageSetWorkflowStatus) -> ImageSet:
    return ImageSet(
        datastore_id=DS,
        image_set_id=IMAGE_SET_ID,
        version_id=1,
        state=STATES_OF_EXAMPLES.get(workflow.value, ImageSetState.ACTIVE),
        workflow_status=workflow,
        is_primary=True,
        created_at=GUIDE_TIME - timedelta(days=1),
        updated_at=GUIDE_TIME,
        grouping=NO_GROUPING,
    )


def as_guide_prints(event: ChangeEvent) -> dict[str, Any]:
    return render(replace(event, event_id=GUIDE_ID), GUIDE_ORIGIN)


def test_the_catalogue_has_one_event_per_state_of_the_guide() -> None:
    assert set(DATASTORE_DETAIL_TYPES) == set(DatastoreStatus)
    assert set(IMPORT_JOB_DETAIL_TYPES) == set(JobStatus)
    assert set(IMAGE_SET_DETAIL_TYPES) == set(ImageSetWorkflowStatus)
    assert set(GUIDE_EXAMPLES) == DETAIL_TYPES
    assert len(DETAIL_TYPES) == 5 + 4 + 10  # guide 20235-20264


@pytest.mark.parametrize("status", list(DatastoreStatus))
def test_data_store_events_are_the_guide_examples(status: DatastoreStatus) -> None:
    rendered = as_guide_prints(datastore_event(datastore(status)))
    assert rendered == GUIDE_EXAMPLES[DATASTORE_DETAIL_TYPES[status]]
    check_against_guide(rendered, account="111122223333", region="us-west-2")


@pytest.mark.parametrize("status", list(JobStatus))
def test_import_job_events_are_the_guide_examples(status: JobStatus) -> None:
    rendered = as_guide_prints(import_job_event(job(status)))
    assert rendered == GUIDE_EXAMPLES[IMPORT_JOB_DETAIL_TYPES[status]]
    check_against_guide(rendered, account="111122223333", region="us-west-2")


@pytest.mark.parametrize("workflow", list(ImageSetWorkflowStatus))
def test_image_set_events_are_the_guide_examples(workflow: ImageSetWorkflowStatus) -> None:
    source = "0309de3674fd551fa7ddd2880b21f990" if workflow is ImageSetWorkflowStatus.COPYING else None
    rendered = as_guide_prints(image_set_event(image_set(workflow), source))
    example = GUIDE_EXAMPLES[IMAGE_SET_DETAIL_TYPES[workflow]]
    # The guide's image set examples name another account and image set in their ARNs than in account / imagesetId;
    # OpenHI's ARNs name the event's own account and image set.
    resource = f"arn:aws:medical-imaging:us-west-2:111122223333:datastore/{DS}/imageset/{IMAGE_SET_ID}"
    assert rendered["resources"] == [resource]
    assert {**rendered, "resources": example["resources"]} == {**example, "detail": rendered["detail"]}
    expected_detail = dict(example["detail"])
    if source is not None:
        expected_detail["sourceImageSetArn"] = (
            f"arn:aws:medical-imaging:us-west-2:111122223333:datastore/{DS}/imageset/{source}"
        )
    assert rendered["detail"] == expected_detail
    assert list(rendered["detail"]) == list(example["detail"])
    check_against_guide(rendered, account="111122223333", region="us-west-2")


def test_a_non_primary_image_set_and_later_versions() -> None:
    later = replace(image_set(ImageSetWorkflowStatus.UPDATED), version_id=12, is_primary=False)
    detail = render(image_set_event(later), GUIDE_ORIGIN)["detail"]
    assert (detail["isPrimary"], detail["imageSetVersion"]) == (False, "12")


def test_ids_are_fresh_version_4_uuids() -> None:
    first, second = (datastore_event(datastore(DatastoreStatus.ACTIVE)) for _ in range(2))
    assert first.event_id != second.event_id
    check_against_guide(render(first, EventOrigin("123456789012", "eu-west-1")), region="eu-west-1")


def test_time_is_utc_whole_seconds_and_must_be_aware() -> None:
    plus_two = timezone(timedelta(hours=2))
    assert format_time(datetime(2024, 3, 14, 2, 1, 0, 999_999, tzinfo=plus_two)) == "2024-03-14T00:01:00Z"
    with pytest.raises(ValueError, match="aware"):
        ChangeEvent("id", "Data Store Created", datetime(2024, 3, 14), DS, {})


def test_resource_keys_order_events_per_data_store_job_and_image_set() -> None:
    assert datastore_event(datastore(DatastoreStatus.ACTIVE)).resource_key == DS
    assert import_job_event(job(JobStatus.COMPLETED)).resource_key == f"{DS}/job/a6a1d220f152e7aab6d8925d995d8b76"
    assert image_set_event(image_set(ImageSetWorkflowStatus.CREATED)).resource_key == f"{DS}/{IMAGE_SET_ID}"
