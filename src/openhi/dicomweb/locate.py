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

from openhi.access import guard
from openhi.blobs.port import BlobStore
from openhi.datastores.service import load_datastore, require_datastore_id
from openhi.errors import NotFoundError
from openhi.imagesets.model import ImageSet, ImageSetState, ImageSetVersion
from openhi.imagesets.versions import load_document
from openhi.index.port import Index, UnitOfWork
from openhi.tiers.access import NO_ACCESS_RECORDING, AccessRecorder

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
    document_key: str = ""  # the document's content-addressed blob key: what is derived from it may be cached

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
    image_set: ImageSet, version: ImageSetVersion, document: dict[str, Any], study_uid: str, series_uid: str
) -> SeriesView:
    if _study_uid(document) != study_uid or series_uid not in document["Study"]["Series"]:
        raise NotFoundError(f"Series {series_uid} of study {study_uid} does not exist")
    return SeriesView(image_set, document, study_uid, series_uid, version.metadata_key)


def _named(uow: UnitOfWork, datastore_id: str, image_set_id: str) -> tuple[ImageSet, ImageSetVersion]:
    """The named, not deleted image set at its latest version (one statement when it exists)."""
    found = uow.image_sets.get_with_version(datastore_id, image_set_id)
    if found is None or found[0].state == ImageSetState.DELETED:
        load_datastore(uow, datastore_id)  # an unknown data store is told as such
        raise NotFoundError(f"Image set {image_set_id} does not exist in datastore {datastore_id}")
    return found


def find_series(
    index: Index,
    blobs: BlobStore,
    datastore_id: str,
    study_uid: str,
    series_uid: str,
    image_set_id: str | None,
    load: DocumentLoader = load_document,
    access: AccessRecorder = NO_ACCESS_RECORDING,
) -> SeriesView:
    """The series' primary image set (or the named one), at its latest version.

    The common path is one indexed statement (image set joined to its latest version row); the data store is
    looked up only when nothing is found, to tell an unknown data store from an unknown series. The document
    is read after the unit of work: it is immutable under its content-addressed key. The caller must be allowed
    the operation being served on the data store, with this study and series (guide 21725-21750).
    """
    require_datastore_id(datastore_id)
    guard.require(datastore_id=datastore_id, study_uid=study_uid, series_uid=series_uid)

    def work(uow: UnitOfWork) -> tuple[ImageSet, ImageSetVersion]:
        if image_set_id is not None:
            return _named(uow, datastore_id, image_set_id)
        found = uow.image_sets.primary_with_version(datastore_id, series_uid)
        if found is None or found[0].state not in _READABLE:
            load_datastore(uow, datastore_id)
            raise NotFoundError(f"Series {series_uid} of study {study_uid} does not exist")
        return found

    image_set, version = index.run(work, readonly=True)
    access.accessed(datastore_id, image_set.image_set_id)  # every WADO-RS retrieval is an access (guide 23028)
    return _view(image_set, version, load(blobs, version), study_uid, series_uid)


def find_study(
    index: Index,
    blobs: BlobStore,
    datastore_id: str,
    study_uid: str,
    image_set_id: str | None,
    load: DocumentLoader = load_document,
    access: AccessRecorder = NO_ACCESS_RECORDING,
) -> list[SeriesView]:
    """Every series of the study: from its primary image sets, or from the named image set only."""
    require_datastore_id(datastore_id)
    guard.require(datastore_id=datastore_id, study_uid=study_uid)

    def work(uow: UnitOfWork) -> list[tuple[ImageSet, ImageSetVersion]]:
        if image_set_id is not None:
            return [_named(uow, datastore_id, image_set_id)]
        found = uow.image_sets.primary_in_study_with_versions(datastore_id, study_uid)
        if not found:
            load_datastore(uow, datastore_id)
        return found

    views = []
    for image_set, version in index.run(work, readonly=True):
        document = load(blobs, version)
        if _study_uid(document) != study_uid:
            continue
        access.accessed(datastore_id, image_set.image_set_id)  # an access (guide 23028)
        series = document["Study"]["Series"]
        views += [SeriesView(image_set, document, study_uid, uid, version.metadata_key) for uid in series]
    if not views:
        raise NotFoundError(f"Study {study_uid} does not exist")
    return views
