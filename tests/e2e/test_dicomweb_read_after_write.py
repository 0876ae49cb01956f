"""WADO-RS reads follow the index at once: after UpdateImageSetMetadata (guide 4248-4406: a new immutable
version) the very next metadata, instance (P10) and rendered read show the new version, on both backends.

The read path caches only what is derived from a document under the document's content-addressed key (decoded
documents, series metadata, encoded P10 headers); which version is current is read from the index on every
request, so no cache can serve the old version.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest
from tests.e2e.helpers import wait_for_status
from tests.support.dicom_corpus import SeriesSpec, ct_dataset
from tests.support.dicomweb import dicomweb_client
from tests.support.server import ServerProcess

STUDY_DESCRIPTION = "00081030"


@pytest.fixture
def datastore(client: Any) -> str:
    datastore_id: str = client.create_datastore(datastoreName=f"raw-{uuid.uuid4().hex[:8]}")["datastoreId"]
    wait_for_status(client, datastore_id, "ACTIVE")
    return datastore_id


def _wait_active(client: Any, datastore_id: str, image_set_id: str, version: str) -> None:
    deadline = time.monotonic() + 30
    while True:
        found = client.get_image_set(datastoreId=datastore_id, imageSetId=image_set_id)
        if (found["imageSetState"], found["versionId"]) == ("ACTIVE", version) or time.monotonic() > deadline:
            assert (found["imageSetState"], found["versionId"]) == ("ACTIVE", version), found
            return
        time.sleep(0.1)


def _description(metadata: dict[str, Any]) -> str | None:
    values = metadata.get(STUDY_DESCRIPTION, {}).get("Value")
    return str(values[0]) if values else None


def test_reads_after_an_update_show_the_new_version(server: ServerProcess, client: Any, datastore: str) -> None:
    spec = SeriesSpec(study="raw", series="raw-series", slices=2, size=32)
    datasets = [ct_dataset(spec, index) for index in range(spec.slices)]
    for ds in datasets:
        ds.StudyDescription = "before"
    web = dicomweb_client(server, datastore)
    web.store_instances(datasets)
    study, series, sop = datasets[0].StudyInstanceUID, datasets[0].SeriesInstanceUID, datasets[0].SOPInstanceUID

    def reads() -> tuple[str | None, str | None, str]:
        instance_metadata = web.retrieve_instance_metadata(study, series, sop)
        series_metadata = web.retrieve_series_metadata(study, series)
        assert {_description(item) for item in series_metadata} == {_description(instance_metadata)}
        p10 = web.retrieve_instance(study, series, sop)
        return _description(instance_metadata), _description(series_metadata[0]), str(p10.StudyDescription)

    for _ in range(2):  # the second round is served from the caches
        assert reads() == ("before", "before", "before")
    [summary] = client.search_image_sets(datastoreId=datastore, searchCriteria={})["imageSetsMetadataSummaries"]
    image_set_id = summary["imageSetId"]
    client.update_image_set_metadata(
        datastoreId=datastore,
        imageSetId=image_set_id,
        latestVersionId=str(summary["version"]),
        updateImageSetMetadataUpdates={
            "DICOMUpdates": {
                "updatableAttributes": b'{"SchemaVersion": 1.1, "Study": {"DICOM": {"StudyDescription": "after"}}}'
            }
        },
    )
    _wait_active(client, datastore, image_set_id, str(int(summary["version"]) + 1))
    assert reads() == ("after", "after", "after")
    ele = (("application/octet-stream", "1.2.840.10008.1.2.1"),)
    frame = web.retrieve_instance_frames(study, series, sop, frame_numbers=[1], media_types=ele)[0]
    assert frame == datasets[0].PixelData  # the frames are untouched by the new version
