"""Finding the image sets, series and instances a DICOMweb URL names (guide 1880-2210).

Without ``imageSetId`` only primary image sets are reached: a series is found through its primary image set
(one per Series Instance UID, guide 3217-3360), a study through every primary image set of the study. With
``imageSetId`` that image set is read whatever its primary flag, and it must hold the named study and series
(guide 1990-2010, 2208). Deleted image sets are never reached. Unknown data stores, studies, series and
instances are ``NotFoundError`` (404).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from openhi.blobs.port import BlobStore
from openhi.datastores.service import load_datastore
from openhi.errors import NotFoundError
from openhi.imagesets.model import ImageSet, ImageSetState, ImageSetVersion
from openhi.imagesets.service import load_image_set
from openhi.imagesets.versions import current, load_document
from openhi.index.port import Index, UnitOfWork

_READABLE = (ImageSetState.ACTIVE, ImageSetState.LOCKED)

type DocumentLoader = Callable[[BlobStore, ImageSetVersion], dict[str, Any]]
"""Reads a version's document; callers may pass a caching loader (documents are immutable per version)."""


@dataclass(frozen=True)
class SeriesView:
    """One series of one image set's latest document."""

    image_set: ImageSet
    document: dict[str, Any]
    study_uid: str
    series_uid: str

    @property
    def series(self) -> dict[str, Any]:
        """The document's series entry (``{"DICOM": ..., "Instances": {...}}``)."""
        entry: dict[str, Any] = self.document["Study"]["Series"][self.series_uid]
        return entry

    @property
    def instance_uids(self) -> list[str]:
        """SOP Instance UIDs of the series, in document order."""
        return list(self.series["Instances"])

    def instance(self, sop_uid: str) -> InstanceView:
        """One instance of the series; NotFoundError when the series does not hold it."""
        entry = self.series["Instances"].get(sop_uid)
        if entry is None:
            raise NotFoundError(f"Instance {sop_uid} does not exist in series {self.series_uid}")
        return InstanceView(self, sop_uid, entry)

    def instances(self) -> Iterator[InstanceView]:
        """Every instance of the series."""
        for sop_uid, entry in self.series["Instances"].items():
            yield InstanceView(self, sop_uid, entry)


@dataclass(frozen=True)
class InstanceView:
    """One instance entry of a document, with the series it belongs to."""

    series: SeriesView
    sop_uid: str
    entry: dict[str, Any]

    @property
    def dicom(self) -> dict[str, Any]:
        """The instance-level ``DICOM`` object."""
        value: dict[str, Any] = self.entry["DICOM"]
        return value

    @property
    def stored_transfer_syntax(self) -> str:
        """The transfer syntax the frames are stored in."""
        return str(self.entry.get("StoredTransferSyntaxUID", ""))

    @property
    def frame_ids(self) -> list[str]:
        """Frame blob ids in frame order (frame N is ``frame_ids[N - 1]``)."""
        return [frame["ID"] for frame in self.entry.get("ImageFrames", [])]


def _study_uid(document: dict[str, Any]) -> str:
    return str(document["Study"]["DICOM"].get("StudyInstanceUID") or "")


def _view(
    uow: UnitOfWork, blobs: BlobStore, image_set: ImageSet, study_uid: str, series_uid: str, load: DocumentLoader
) -> SeriesView:
    document = load(blobs, current(uow, image_set))
    if _study_uid(document) != study_uid or series_uid not in document["Study"]["Series"]:
        raise NotFoundError(f"Series {series_uid} of study {study_uid} does not exist")
    return SeriesView(image_set, document, study_uid, series_uid)


def find_series(
    index: Index,
    blobs: BlobStore,
    datastore_id: str,
    study_uid: str,
    series_uid: str,
    image_set_id: str | None,
    load: DocumentLoader = load_document,
) -> SeriesView:
    """The series' primary image set (or the named one), at its latest version."""

    def work(uow: UnitOfWork) -> SeriesView:
        load_datastore(uow, datastore_id)
        if image_set_id is not None:
            image_set = load_image_set(uow, datastore_id, image_set_id)
        else:
            found = uow.image_sets.find_primary(datastore_id, series_uid)
            if found is None or found.state not in _READABLE:
                raise NotFoundError(f"Series {series_uid} of study {study_uid} does not exist")
            image_set = found
        return _view(uow, blobs, image_set, study_uid, series_uid, load)

    return index.run(work, readonly=True)


def find_study(
    index: Index,
    blobs: BlobStore,
    datastore_id: str,
    study_uid: str,
    image_set_id: str | None,
    load: DocumentLoader = load_document,
) -> list[SeriesView]:
    """Every series of the study: from its primary image sets, or from the named image set only."""

    def work(uow: UnitOfWork) -> list[SeriesView]:
        load_datastore(uow, datastore_id)
        if image_set_id is not None:
            image_sets = [load_image_set(uow, datastore_id, image_set_id)]
        else:
            image_sets = [s for s in uow.image_sets.primary_in_study(datastore_id, study_uid) if s.state in _READABLE]
        views = []
        for image_set in image_sets:
            document = load(blobs, current(uow, image_set))
            if _study_uid(document) != study_uid:
                continue
            views += [SeriesView(image_set, document, study_uid, uid) for uid in document["Study"]["Series"]]
        if not views:
            raise NotFoundError(f"Study {study_uid} does not exist")
        return views

    return index.run(work, readonly=True)
