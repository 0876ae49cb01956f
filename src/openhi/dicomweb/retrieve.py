"""WADO-RS use cases over image sets (guide 1880-2210): find what a URL names, and read its parts.

Documents are read through a cache keyed by their content-addressed blob key (documents never change), so a
viewer's burst of metadata and frame requests on one series reads and parses the document once. Finding
honours ``imageSetId`` (guide 1990-2010, 2200-2210: primary image sets only without it), see ``locate``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from openhi.blobs import keys
from openhi.blobs.port import BlobStore
from openhi.codecs.pixels import PixelFormat
from openhi.dicom.json_values import BULK_REFERENCE_KEY
from openhi.dicomweb.cache import DOCUMENT_CACHE_BYTES, DocumentCache, LruCache
from openhi.dicomweb.frames import FrameReader, pixel_format
from openhi.dicomweb.locate import InstanceView, SeriesView, find_series, find_study
from openhi.dicomweb.metadata import MetadataWriter
from openhi.dicomweb.p10 import HeaderCache, InstanceSource, P10Writer, merged_attributes
from openhi.dicomweb.transfer import StoredPixels
from openhi.errors import NotAcceptableError, NotFoundError
from openhi.imagesets.model import ImageSetVersion
from openhi.index.port import Index
from openhi.tiers.access import NO_ACCESS_RECORDING, AccessRecorder


@dataclass(frozen=True)
class Instance:
    """One instance ready to be served: its view, merged attributes, stored pixel facts and pixel format."""

    view: InstanceView
    source: InstanceSource
    fmt: PixelFormat | None

    @property
    def stored(self) -> StoredPixels:
        """What is stored of its pixel data."""
        return self.source.stored


def _bulk_references(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        reference = value.get(BULK_REFERENCE_KEY)
        if isinstance(reference, str) and len(value) == 1:
            yield reference
            return
        for item in value.values():
            yield from _bulk_references(item)
    elif isinstance(value, list):
        for item in value:
            yield from _bulk_references(item)


class WadoService:
    """Finds studies, series and instances and gives readers for their frames, P10 files and bulk data."""

    def __init__(
        self,
        index: Index,
        blobs: BlobStore,
        documents: DocumentCache | None = None,
        header_cache_bytes: int = 32 * 1024 * 1024,
        access: AccessRecorder = NO_ACCESS_RECORDING,
    ) -> None:
        self._index = index
        self._blobs = blobs
        self._access = access  # storage tiers: what a URL reaches is accessed (locate.py)
        self._documents = documents or DocumentCache(DOCUMENT_CACHE_BYTES)
        self._headers: HeaderCache = LruCache(header_cache_bytes)
        self.metadata = MetadataWriter()

    def _load(self, blobs: BlobStore, version: ImageSetVersion) -> dict[str, Any]:
        return self._documents.load(blobs, version)

    def series(self, datastore_id: str, study_uid: str, series_uid: str, image_set_id: str | None) -> SeriesView:
        """The series (404 when unknown)."""
        return find_series(
            self._index, self._blobs, datastore_id, study_uid, series_uid, image_set_id, self._load, self._access
        )

    def study(self, datastore_id: str, study_uid: str, image_set_id: str | None) -> list[SeriesView]:
        """Every series of the study (404 when unknown)."""
        return find_study(self._index, self._blobs, datastore_id, study_uid, image_set_id, self._load, self._access)

    @staticmethod
    def instance(view: SeriesView, sop_uid: str) -> Instance:
        """One instance of a series with what serving it needs (404 when the series does not hold it)."""
        return prepare(view.instance(sop_uid))

    def frames(self, datastore_id: str) -> FrameReader:
        """A reader of the data store's frames."""
        return FrameReader(self._blobs, datastore_id)

    def p10(self, datastore_id: str) -> P10Writer:
        """A P10 writer over the data store's frames and bulk values."""
        return P10Writer(
            self.frames(datastore_id), lambda ref: self._blobs.get(keys.bulk_value(datastore_id, ref)), self._headers
        )

    def bulk_key(self, datastore_id: str, instance: Instance, reference: str) -> str:
        """Blob key of a bulk value the instance references (404 for any other reference)."""
        if reference not in set(_bulk_references(dict(instance.source.attributes))):
            raise NotFoundError(f"Instance {instance.view.sop_uid} has no bulk data {reference}")
        key = keys.bulk_value(datastore_id, reference)
        if self._blobs.head(key) is None:
            raise NotFoundError(f"Bulk data {reference} is not stored")
        return key

    def bulk_size(self, key: str) -> int:
        """Length of a bulk value."""
        info = self._blobs.head(key)
        if info is None:
            raise NotFoundError("bulk data is not stored")
        return info.size

    def bulk_range(self, key: str, offset: int, length: int) -> bytes:
        """Bytes of a bulk value."""
        return self._blobs.get_range(key, offset, length)


def prepare(view: InstanceView) -> Instance:
    """Merge the instance's levels and read its stored pixel facts and pixel format."""
    series = view.series
    attributes = merged_attributes(series.document, series.series_uid, view.sop_uid)
    vrs: Mapping[str, str] = view.entry.get("DICOMVRs") or {}
    stored = StoredPixels.of({**view.entry, "DICOM": attributes})
    key = (series.document_key, series.series_uid, view.sop_uid) if series.document_key else None
    source = InstanceSource(attributes, vrs, view.sop_uid, stored, view.frame_ids, key)
    fmt = None
    if stored.frame_count:
        try:
            fmt = pixel_format(attributes)
        except NotAcceptableError:
            fmt = None  # only the stored bytes can be served (decoding needs the pixel description)
    return Instance(view, source, fmt)
