"""WADO-RS metadata: instance, series and study metadata as ``application/dicom+json`` (guide 1990-2080).

Each instance is ``dicom.dicom_json.instance_dicom_json`` of the image set document (Patient, Study, Series and
Instance levels; PS3.18 F.2), with:

- bulk values over 1 MB as ``BulkDataURI`` (guide 2145-2160) to
  ``{base}/series/{series}/instances/{sop}/bulkdata/{reference}``, plus ``?imageSetId=`` when the request named
  one (the bulk data is then looked up in the same image set);
- Transfer Syntax UID (0002,0010) = the stored transfer syntax (guide 2036: "the transfer syntax UID in the
  metadata matches StoredTransferSyntaxUID");
- no Pixel Data / Float Pixel Data / Double Float Pixel Data: the document holds ``null`` for them (frames are
  stored apart), and an attribute without a value would claim the pixel data is empty. Viewers (OHIF,
  Cornerstone) build frame URLs from the UIDs and read Rows, Columns, Number of Frames and the rest of the
  Image Pixel module from the metadata.

A series array is serialized once per (image set, version, series, URL base) and cached: a version's
document never changes. ``etag`` is a strong validator from the same facts (RFC 9110 §8.8.3).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

from openhi.dicom.dicom_json import instance_dicom_json
from openhi.dicomweb.cache import LruCache
from openhi.dicomweb.locate import SeriesView
from openhi.dicomweb.transfer import StoredPixels

_PIXEL_KEYS = ("7FE00008", "7FE00009", "7FE00010")
TRANSFER_SYNTAX_KEY = "00020010"


def instance_json(view: SeriesView, sop_uid: str, base: str, query: str) -> dict[str, Any]:
    """The DICOM JSON object of one instance (see the module docstring); ``query`` is ``""`` or ``?...``."""
    prefix = f"{base}/series/{view.series_uid}/instances/{sop_uid}/bulkdata/"
    out = instance_dicom_json(view.document, view.series_uid, sop_uid, bulk_uri=lambda ref: f"{prefix}{ref}{query}")
    for key in _PIXEL_KEYS:
        out.pop(key, None)
    entry = view.series["Instances"][sop_uid]
    syntax = StoredPixels.of(entry).syntax if entry.get("ImageFrames") else entry.get("StoredTransferSyntaxUID")
    if syntax:
        out[TRANSFER_SYNTAX_KEY] = {"vr": "UI", "Value": [str(syntax)]}
        out = dict(sorted(out.items()))
    return out


def _dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def etag(kind: str, views: Sequence[SeriesView], base: str, query: str, extra: str = "") -> str:
    """A strong ETag naming the representation: image set versions, series, URL base and query."""
    facts = [kind, base, query, extra]
    facts += [f"{v.image_set.image_set_id}:{v.image_set.version_id}:{v.series_uid}" for v in views]
    return '"' + hashlib.sha256("\n".join(facts).encode()).hexdigest()[:40] + '"'


class MetadataWriter:
    """Serializes metadata, caching each series' JSON array items."""

    def __init__(self, max_cache_bytes: int = 128 * 1024 * 1024) -> None:
        self._cache: LruCache[bytes] = LruCache(max_cache_bytes)

    def series_items(self, view: SeriesView, base: str, query: str) -> bytes:
        """The series' instance objects, comma-separated (the inside of a JSON array)."""
        key = (view.image_set.image_set_id, view.image_set.version_id, view.series_uid, base, query)
        return self._cache.get_or_make(
            key,
            lambda: b",".join(_dumps(instance_json(view, sop, base, query)) for sop in view.instance_uids),
            len,
        )

    def series(self, view: SeriesView, base: str, query: str) -> bytes:
        """GetDICOMSeriesMetadata: the JSON array of every instance of the series."""
        return b"[" + self.series_items(view, base, query) + b"]"

    def study(self, views: Sequence[SeriesView], base: str, query: str) -> bytes:
        """Study metadata: every instance of every series of the study."""
        items = [self.series_items(view, base, query) for view in views]
        return b"[" + b",".join(item for item in items if item) + b"]"

    @staticmethod
    def instance(view: SeriesView, sop_uid: str, base: str, query: str) -> bytes:
        """GetDICOMInstanceMetadata: a JSON array holding the one instance (PS3.18 §10.4.3)."""
        return b"[" + _dumps(instance_json(view, sop_uid, base, query)) + b"]"
