"""The action catalogue: every operation's IAM action and the condition keys it supports.

Action names are ``medical-imaging:{Operation}`` with the operation names HealthImaging uses (guide 21725-21750
for the DICOMweb ones, the API reference for the 18 native ones). Study- and series-level condition keys
(``medical-imaging:StudyInstanceUID`` / ``SeriesInstanceUID``) are supported by the DICOMweb operations whose
path carries that UID as a required parameter (guide 21725-21750); other operations behave as if the key were
absent (guide 21751: a StringEquals on it then does not match). OpenHI's extensions follow the same rule, and
two searches filter their rows instead (an OpenHI choice so that "a search returns only what the caller may
see"): SearchDICOMStudies evaluates the study key per study, SearchDICOMStudyInstances the series key per
instance.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

SERVICE: Final = "medical-imaging"
STUDY_KEY: Final = "medical-imaging:StudyInstanceUID"
SERIES_KEY: Final = "medical-imaging:SeriesInstanceUID"

NATIVE_OPERATIONS: Final = (
    "CreateDatastore",
    "GetDatastore",
    "ListDatastores",
    "DeleteDatastore",
    "StartDICOMImportJob",
    "GetDICOMImportJob",
    "ListDICOMImportJobs",
    "SearchImageSets",
    "GetImageSet",
    "GetImageSetMetadata",
    "GetImageFrame",
    "ListImageSetVersions",
    "UpdateImageSetMetadata",
    "CopyImageSet",
    "DeleteImageSet",
    "TagResource",
    "UntagResource",
    "ListTagsForResource",
)

_BOTH = frozenset({STUDY_KEY, SERIES_KEY})
_STUDY = frozenset({STUDY_KEY})

# Keys taken from the request path (guide 21725-21750, and the same rule for OpenHI's extensions).
PATH_CONDITION_KEYS: Final[Mapping[str, frozenset[str]]] = {
    "StoreDICOM": frozenset(),
    "StoreDICOMStudy": _STUDY,
    "SearchDICOMStudies": frozenset(),
    "SearchDICOMSeries": _STUDY,
    "SearchDICOMInstances": _BOTH,
    "SearchDICOMStudyInstances": _STUDY,
    "GetDICOMStudy": _STUDY,
    "GetDICOMStudyMetadata": _STUDY,
    "GetDICOMSeries": _BOTH,
    "GetDICOMSeriesMetadata": _BOTH,
    "GetDICOMSeriesRendered": _BOTH,
    "GetDICOMSeriesThumbnail": _BOTH,
    "GetDICOMInstance": _BOTH,
    "GetDICOMInstanceMetadata": _BOTH,
    "GetDICOMInstanceRendered": _BOTH,
    "GetDICOMInstanceThumbnail": _BOTH,
    "GetDICOMInstanceFrames": _BOTH,
    "GetDICOMFramesRendered": _BOTH,
    "GetDICOMFramesThumbnail": _BOTH,
    "GetDICOMBulkdata": _BOTH,
}

DICOMWEB_OPERATIONS: Final = tuple(PATH_CONDITION_KEYS)

# Searches whose rows are filtered by a key the path does not carry (see the module docstring).
ROW_CONDITION_KEYS: Final[Mapping[str, frozenset[str]]] = {
    "SearchDICOMStudies": _STUDY,
    "SearchDICOMStudyInstances": frozenset({SERIES_KEY}),
}


def action_name(operation: str) -> str:
    """``GetImageFrame`` -> ``medical-imaging:GetImageFrame``."""
    return f"{SERVICE}:{operation}"


def condition_context(operation: str, study_uid: str | None, series_uid: str | None) -> dict[str, list[str]]:
    """The condition keys ``operation`` supports, with the UIDs of the request (absent keys left out)."""
    supported = PATH_CONDITION_KEYS.get(operation, frozenset()) | ROW_CONDITION_KEYS.get(operation, frozenset())
    context: dict[str, list[str]] = {}
    if study_uid is not None and STUDY_KEY in supported:
        context[STUDY_KEY] = [study_uid]
    if series_uid is not None and SERIES_KEY in supported:
        context[SERIES_KEY] = [series_uid]
    return context
