"""Wire <-> service for SearchImageSets (guide 4407-5624; model ImageSetsMetadataSummary, DICOMTags).

Each summary carries the image set's id, its latest version (an integer here, unlike everywhere else:
aws-wire-api.md §8b), times, primary flag, storage tier and the DICOMTags the index keeps for it; tags the
image set does not have are left out. The response echoes the sort applied (default updatedAt DESC).
"""

from __future__ import annotations

from typing import Any

from openhi.imagesets.model import ImageSet
from openhi.imagesets.search import ImageSetSearch, SearchHit

MAX_STUDY_COUNT = 1_000_000  # model: DICOMNumberOfStudyRelatedSeries / Instances 0..1000000
INT32 = (-(2**31), 2**31 - 1)  # model: DICOMSeriesNumber


def _series_number(text: str | None) -> int | None:
    try:
        number = int((text or "").strip())
    except ValueError:
        return None
    return number if INT32[0] <= number <= INT32[1] else None


def _count(value: int | None) -> int | None:
    return None if value is None else min(max(value, 0), MAX_STUDY_COUNT)


def dicom_tags(hit: SearchHit) -> dict[str, Any]:
    """The model's ``DICOMTags`` of one hit (absent members left out by the serializer)."""
    image_set: ImageSet = hit.image_set
    grouping, summary = image_set.grouping, image_set.summary
    return {
        "DICOMPatientId": grouping.patient_id,
        "DICOMPatientName": summary and summary.patient_name,
        "DICOMPatientBirthDate": summary and summary.patient_birth_date,
        "DICOMPatientSex": summary and summary.patient_sex,
        "DICOMStudyInstanceUID": grouping.study_instance_uid,
        "DICOMStudyId": grouping.study_id,
        "DICOMStudyDescription": summary and summary.study_description,
        "DICOMNumberOfStudyRelatedSeries": _count(hit.study_series),
        "DICOMNumberOfStudyRelatedInstances": _count(hit.study_instances),
        "DICOMAccessionNumber": grouping.accession_number,
        "DICOMSeriesInstanceUID": grouping.series_instance_uid,
        "DICOMSeriesModality": summary and summary.series_modality,
        "DICOMSeriesBodyPart": summary and summary.series_body_part,
        "DICOMSeriesNumber": _series_number(grouping.series_number),
        "DICOMStudyDate": grouping.study_date,
        "DICOMStudyTime": summary and summary.study_time,
    }


def metadata_summary(hit: SearchHit) -> dict[str, Any]:
    """One ``ImageSetsMetadataSummary``."""
    image_set = hit.image_set
    return {
        "imageSetId": image_set.image_set_id,
        "version": image_set.version_id,
        "createdAt": image_set.created_at,
        "updatedAt": image_set.updated_at,
        "isPrimary": image_set.is_primary,
        "storageTier": image_set.storage_tier.value,  # storage tiers (guide 23009-23052, openhi.tiers)
        "lastAccessedAt": image_set.last_accessed_at,
        "DICOMTags": dicom_tags(hit),
    }


class SearchHandlers:
    """Handler of SearchImageSets."""

    def __init__(self, search: ImageSetSearch) -> None:
        self._search = search

    def search_image_sets(self, params: dict[str, Any]) -> dict[str, Any]:
        """SearchImageSets: ``searchCriteria`` is the payload; nextToken / maxResults come in the query."""
        page = self._search.search(
            params["datastoreId"], params.get("searchCriteria"), params.get("nextToken"), params.get("maxResults")
        )
        return {
            "imageSetsMetadataSummaries": [metadata_summary(hit) for hit in page.hits],
            "sort": {"sortField": page.sort.field.value, "sortOrder": page.sort.order.value},
            "nextToken": page.next_token,
        }
