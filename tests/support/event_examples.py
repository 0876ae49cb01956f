"""The guide's event examples (guide 20276-20911), transcribed, and a field-by-field check of an event against them.

The examples are copied as the guide prints them, with the PDF's line breaks inside ARNs joined, its page-break
fences removed and its two typos fixed (a trailing comma after ``imageSetVersion`` in "Image Set Created", an extra
closing brace after "Data Store Creation Failed"). ``check_against_guide`` compares an event with the example of its
``detail-type``: the same envelope keys in the same order, fixed values (version, source, imagingVersion, the
statuses and image set state of the example) equal, every other value of the same JSON type and form (UUID, time,
ARN), and the same detail keys in the same order.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from typing import Any

DS = "bbc4f3cccbae4095a34170fddc19b13d"
DS_ARN = f"arn:aws:medical-imaging:us-west-2:111122223333:datastore/{DS}"
IS_ARN = f"arn:aws:medical-imaging:us-west-2:846006145877:datastore/{DS}/imageset/207284eef860ac01c4b2a8de27a6fc11"
SOURCE_ARN = (
    "arn:aws:medical-imaging:us-west-2:147997158357:datastore/c381ee9b9ef34902a45b476dd7be068b/"
    "imageset/0309de3674fd551fa7ddd2880b21f990"
)


def _envelope(detail_type: str, resource: str, detail: dict[str, Any]) -> dict[str, Any]:
    return {
        "version": "0",
        "id": "7cf0fb1c-8720-4d48-baa3-6eb97b35a10e",
        "detail-type": detail_type,
        "source": "aws.medical-imaging",
        "account": "111122223333",
        "time": "2024-03-14T00:01:00Z",
        "region": "us-west-2",
        "resources": [resource],
        "detail": detail,
    }


def _datastore(detail_type: str, status: str) -> dict[str, Any]:
    detail = {"imagingVersion": "1.0", "datastoreId": DS, "datastoreName": "test", "datastoreStatus": status}
    return _envelope(detail_type, DS_ARN, detail)


def _job(detail_type: str, status: str) -> dict[str, Any]:
    detail = {
        "imagingVersion": "1.0",
        "datastoreId": DS,
        "jobId": "a6a1d220f152e7aab6d8925d995d8b76",
        "jobName": "test_only_1",
        "jobStatus": status,
        "inputS3Uri": "s3://healthimaging-test-bucket/input/",
        "outputS3Uri": "s3://healthimaging-test-bucket/output/",
    }
    return _envelope(detail_type, DS_ARN, detail)


def _image_set(detail_type: str, state: str, workflow: str, **extra: str) -> dict[str, Any]:
    detail: dict[str, Any] = {
        "imagingVersion": "1.0",
        "isPrimary": True,
        "imageSetVersion": "1",
        "datastoreId": DS,
        "imagesetId": "5b3a711878c34d40e888253319388649",
        "imageSetState": state,
        "imageSetWorkflowStatus": workflow,
        **extra,
    }
    return _envelope(detail_type, IS_ARN, detail)


GUIDE_EXAMPLES: dict[str, dict[str, Any]] = {
    example["detail-type"]: example
    for example in (
        _datastore("Data Store Creating", "CREATING"),  # guide 20278-20300
        _datastore("Data Store Creation Failed", "CREATE_FAILED"),  # 20302-20330
        _datastore("Data Store Created", "ACTIVE"),  # 20332-20356
        _datastore("Data Store Deleting", "DELETING"),  # 20358-20385
        _datastore("Data Store Deleted", "DELETED"),  # 20387-20409
        _job("Import Job Submitted", "SUBMITTED"),  # 20430-20455
        _job("Import Job In Progress", "IN_PROGRESS"),  # 20457-20487
        _job("Import Job Completed", "COMPLETED"),  # 20489-20516
        _job("Import Job Failed", "FAILED"),  # 20518-20551
        _image_set("Image Set Created", "ACTIVE", "CREATED"),  # 20577-20608
        _image_set("Image Set Copying", "LOCKED", "COPYING", sourceImageSetArn=SOURCE_ARN),  # 20610-20640
        _image_set("Image Set Copying With Read Only Access", "LOCKED", "COPYING_WITH_READ_ONLY_ACCESS"),  # 20642-20674
        _image_set("Image Set Copied", "ACTIVE", "COPIED"),  # 20676-20703
        _image_set("Image Set Copy Failed", "ACTIVE", "COPY_FAILED"),  # 20705-20730
        _image_set("Image Set Updating", "LOCKED", "UPDATING"),  # 20732-20762
        _image_set("Image Set Updated", "ACTIVE", "UPDATED"),  # 20764-20791
        _image_set("Image Set Update Failed", "ACTIVE", "UPDATE_FAILED"),  # 20793-20825
        _image_set("Image Set Deleting", "LOCKED", "DELETING"),  # 20827-20854
        _image_set("Image Set Deleted", "DELETED", "DELETED"),  # 20856-20888
    )
}

FIXED_DETAIL = ("imagingVersion", "datastoreStatus", "jobStatus", "imageSetState", "imageSetWorkflowStatus")
TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z")
DATASTORE_ARN = re.compile(r"arn:aws:medical-imaging:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):datastore/[0-9a-z]{32}")
IMAGE_SET_ARN = re.compile(DATASTORE_ARN.pattern + r"/imageset/[0-9a-z]{32}")


def check_against_guide(event: dict[str, Any], *, account: str = "123456789012", region: str = "us-east-1") -> None:
    """Assert that ``event`` has exactly the structure of the guide's example of its detail type."""
    example = GUIDE_EXAMPLES[event["detail-type"]]
    assert list(event) == list(example), (list(event), list(example))
    for key in ("version", "source", "detail-type"):
        assert event[key] == example[key], key
    assert uuid.UUID(event["id"]).version == 4
    assert (event["account"], event["region"]) == (account, region)
    assert TIME.fullmatch(event["time"]), event["time"]
    datetime.strptime(event["time"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert isinstance(event["resources"], list)
    assert len(event["resources"]) == 1
    arn_form = IMAGE_SET_ARN if "/imageset/" in example["resources"][0] else DATASTORE_ARN
    match = arn_form.fullmatch(event["resources"][0])
    assert match is not None, event["resources"]
    assert (match["account"], match["region"]) == (account, region)
    detail, expected = event["detail"], example["detail"]
    assert list(detail) == list(expected), (list(detail), list(expected))
    for key, value in expected.items():
        assert type(detail[key]) is type(value), (key, detail[key])
        if key in FIXED_DETAIL:
            assert detail[key] == value, (key, detail[key], value)
    assert detail["datastoreId"] in event["resources"][0]
    if "imagesetId" in detail:
        assert event["resources"][0].endswith(f"/imageset/{detail['imagesetId']}")
        assert detail["imageSetVersion"].isdigit()
    if "sourceImageSetArn" in detail:
        assert IMAGE_SET_ARN.fullmatch(detail["sourceImageSetArn"])
