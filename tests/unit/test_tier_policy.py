"""The tier rules (guide 23009-23052): which operations are accesses, when an image set is idle."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from openhi.api.aws import model
from openhi.api.dicomweb.routes import build_routes
from openhi.dicom.normalize import GroupingKey
from openhi.imagesets.model import ImageSet, ImageSetState, ImageSetWorkflowStatus
from openhi.tiers.policy import ACCESS_OPERATIONS, WADO_ACCESS_OPERATIONS, TierPolicy, counts_as_access

T0 = datetime(2026, 1, 1, tzinfo=UTC)
DAY = timedelta(days=1)
IMAGE_SET = ImageSet(
    "d" * 32,
    "a" * 32,
    1,
    ImageSetState.ACTIVE,
    ImageSetWorkflowStatus.CREATED,
    True,
    T0,
    T0,
    GroupingKey(None, None, None, None, None, None, None),
)
# Every DICOMweb operation of the route table (api/dicomweb/routes.py), by kind.
DICOMWEB_QIDO_AND_STOW = {
    "StoreDICOM",
    "StoreDICOMStudy",
    "SearchDICOMStudies",
    "SearchDICOMSeries",
    "SearchDICOMInstances",
    "SearchDICOMStudyInstances",
}


def test_an_image_set_is_idle_thirty_days_after_its_last_access_or_its_creation() -> None:
    policy = TierPolicy()
    assert not policy.is_idle(IMAGE_SET, T0 + 30 * DAY)  # exactly 30 days: not yet "more than"
    assert policy.is_idle(IMAGE_SET, T0 + 30 * DAY + timedelta(microseconds=1))
    accessed = replace(IMAGE_SET, last_accessed_at=T0 + 10 * DAY)
    assert not policy.is_idle(accessed, T0 + 35 * DAY)
    assert policy.is_idle(accessed, T0 + 41 * DAY)
    assert TierPolicy.idle_since(accessed) == T0 + 10 * DAY


def test_the_period_is_configurable_in_fractional_days() -> None:
    policy = TierPolicy.days(0.5)
    assert policy.cutoff(T0) == T0 - timedelta(hours=12)
    with pytest.raises(ValueError, match="positive"):
        TierPolicy.days(0)


@pytest.mark.parametrize(
    "operation", ["GetImageSetMetadata", "GetImageFrame", "CopyImageSet", "UpdateImageSetMetadata"]
)
def test_reads_of_data_copies_and_updates_are_accesses(operation: str) -> None:
    assert counts_as_access(operation)


@pytest.mark.parametrize(
    "operation",
    [
        "CreateDatastore",
        "GetDatastore",
        "ListDICOMImportJobs",
        "ListImageSetVersions",
        "ListTagsForResource",
        "SearchImageSets",
        "GetImageSet",
        "TagResource",
        "UntagResource",
        "DeleteImageSet",
        "DeleteDatastore",
        "StartDICOMImportJob",
        *sorted(DICOMWEB_QIDO_AND_STOW),
    ],
)
def test_listings_searches_properties_tags_deletes_and_stores_are_not(operation: str) -> None:
    assert not counts_as_access(operation)


def test_the_native_accesses_are_model_operations() -> None:
    native = {operation.name for operation in model.operations()}
    assert native >= ACCESS_OPERATIONS - WADO_ACCESS_OPERATIONS


class AnyHandler:
    """Stands for the handler objects of ``build_routes``: every attribute is a handler."""

    def __getattr__(self, name: str) -> Any:
        return lambda request: None


def test_every_wado_route_is_an_access_and_nothing_else_of_dicomweb_is() -> None:
    handlers: Any = AnyHandler()
    operations = {route.operation for route in build_routes(handlers, handlers, handlers, handlers)}
    assert operations == WADO_ACCESS_OPERATIONS | DICOMWEB_QIDO_AND_STOW
    assert {operation for operation in operations if counts_as_access(operation)} == WADO_ACCESS_OPERATIONS
