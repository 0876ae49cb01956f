"""The image set metadata document (guide 4330-4395, SchemaVersion 1.1) and how instances merge into it.

Shape: ``{SchemaVersion, DatastoreID, ImageSetID, Patient{DICOM}, Study{DICOM, Series{<SeriesUID>{DICOM,
Instances{<SOPUID>{DICOM, DICOMVRs, StoredTransferSyntaxUID, ImageFrames[...]}}}}}}``. An instance that
arrives again replaces the stored one (guide 3217-3360: the latest import wins); the Patient, Study and
Series elements take the values of the most recently merged instance, keeping elements it does not carry.
Documents are stored gzip-compressed and served as such by GetImageSetMetadata.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from collections.abc import Iterable
from typing import Any

from openhi.errors import QuotaExceededError
from openhi.imagesets.staged import StagedInstance

SCHEMA_VERSION = "1.1"
MAX_METADATA_BYTES = 50 * 1024 * 1024
"""Guide 22775: an import, copy or UpdateImageSetMetadata may produce image set metadata of at most 50 MB."""


def empty_document(datastore_id: str, image_set_id: str) -> dict[str, Any]:
    """A document with no instance yet."""
    return {
        "SchemaVersion": SCHEMA_VERSION,
        "DatastoreID": datastore_id,
        "ImageSetID": image_set_id,
        "Patient": {"DICOM": {}},
        "Study": {"DICOM": {}, "Series": {}},
    }


def merge(document: dict[str, Any], instances: Iterable[StagedInstance]) -> dict[str, Any]:
    """The document with ``instances`` merged in (the input is not modified)."""
    merged: dict[str, Any] = json.loads(json.dumps(document))
    for staged in instances:
        merged["Patient"]["DICOM"].update(staged.patient)
        merged["Study"]["DICOM"].update(staged.study)
        series_uid = staged.grouping.series_instance_uid or ""
        series = merged["Study"]["Series"].setdefault(series_uid, {"DICOM": {}, "Instances": {}})
        series["DICOM"].update(staged.series)
        entry: dict[str, Any] = {"DICOM": staged.instance}
        if staged.instance_vrs:
            entry["DICOMVRs"] = staged.instance_vrs
        entry["StoredTransferSyntaxUID"] = staged.stored_transfer_syntax
        entry["ImageFrames"] = staged.image_frames
        series["Instances"][staged.sop_instance_uid] = entry
    return merged


def frame_ids(document: dict[str, Any]) -> set[str]:
    """Every image frame id the document references."""
    return {
        frame["ID"]
        for series in document["Study"]["Series"].values()
        for instance in series["Instances"].values()
        for frame in instance.get("ImageFrames", [])
    }


def instance_count(document: dict[str, Any]) -> int:
    """Number of SOP instances in the document."""
    return sum(len(series["Instances"]) for series in document["Study"]["Series"].values())


def check_size(document: dict[str, Any], max_bytes: int = MAX_METADATA_BYTES) -> None:
    """ServiceQuotaExceededException when the document's JSON (as served before its gzip transfer encoding) is
    larger than ``max_bytes``."""
    size = len(json.dumps(document, separators=(",", ":")).encode())
    if size > max_bytes:
        raise QuotaExceededError(
            f"The image set metadata would be {size} bytes, more than the {max_bytes} bytes an image set may hold"
        )


def encode(document: dict[str, Any]) -> bytes:
    """gzip JSON, deterministic (mtime 0) so that equal documents give equal bytes."""
    return gzip.compress(json.dumps(document, separators=(",", ":")).encode(), compresslevel=6, mtime=0)


def decode(data: bytes) -> dict[str, Any]:
    """Inverse of ``encode``."""
    document: dict[str, Any] = json.loads(gzip.decompress(data))
    return document


def content_id(data: bytes) -> str:
    """32-hex content address of encoded metadata (blob keys are immutable and re-runs are idempotent)."""
    return hashlib.sha256(data).hexdigest()[:32]
