"""What STOW-RS learns about one part before and after the import pipeline ran on it.

``peek`` reads the three UIDs the Store transaction needs before any pixel data is touched (PS3.18 §10.5:
an instance of another study than the target resource's is refused, and a failed instance is reported with
its SOP Class and Instance UIDs when they can be read). ``failure_reason`` maps the import pipeline's failure
of a part to the Failure Reason (0008,1197) of PS3.18 Table I.2-2, and ``warning_reason`` picks the one
Warning Reason (0008,1196) of a stored instance from its import warnings (PS3.18 Table I.2-1, guide
22881-22912): "in the event that multiple codes may apply, the single most appropriate code shall be used".
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pydicom

from openhi.dicom.uids import looks_like_uid

# PS3.18 Table I.2-2 (Failure Reason) and PS3.7 C.4 (0111H Duplicate SOP Instance, an additional code).
OUT_OF_RESOURCES = 0xA700
DATA_SET_DOES_NOT_MATCH_SOP_CLASS = 0xA900
CANNOT_UNDERSTAND = 0xC000
PROCESSING_FAILURE = 0x0110
DUPLICATE_SOP_INSTANCE = 0x0111

# PS3.18 Table I.2-1 (Warning Reason), most appropriate first.
COERCION_OF_DATA_ELEMENTS = 0xB000
ELEMENTS_DISCARDED = 0xB006
DATA_SET_DOES_NOT_MATCH_SOP_CLASS_WARNING = 0xB007
_STANDARD_WARNINGS = (DATA_SET_DOES_NOT_MATCH_SOP_CLASS_WARNING, ELEMENTS_DISCARDED, COERCION_OF_DATA_ELEMENTS)

_TAGS = [0x00080016, 0x00080018, 0x0020000D]  # SOPClassUID, SOPInstanceUID, StudyInstanceUID

# Messages of openhi.dicom.reader for input that is not DICOM at all, or cut short.
_UNREADABLE = ("not a DICOM P10 file", "truncated DICOM file")


@dataclass(frozen=True)
class PartHeader:
    """The UIDs of one part, each None when absent or not a UID."""

    sop_class_uid: str | None = None
    sop_instance_uid: str | None = None
    study_instance_uid: str | None = None


def _uid(value: Any) -> str | None:
    text = str(value).strip().rstrip("\x00") if value is not None else ""
    return text if looks_like_uid(text) else None


def peek(path: Path) -> PartHeader:
    """The part's UIDs, read from its header only (never fails: unreadable input gives an empty header)."""
    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True, defer_size=1024, force=True, specific_tags=_TAGS)
        meta = getattr(ds, "file_meta", None)
        sop_class = ds.get("SOPClassUID") or (meta.get("MediaStorageSOPClassUID") if meta is not None else None)
        return PartHeader(_uid(sop_class), _uid(ds.get("SOPInstanceUID")), _uid(ds.get("StudyInstanceUID")))
    except Exception:  # pydicom raises many types on non-DICOM input; the pipeline reports the real reason
        return PartHeader()


def failure_reason(error_type: str | None, message: str | None) -> int:
    """Failure Reason of a part the import pipeline refused (``FileOutcome.error_type`` / ``error_message``).

    Not DICOM or truncated -> 0xC000 (cannot understand); any other refusal of the data set (a missing or
    unreadable required attribute, pixel data inconsistent with its attributes) -> 0xA900 (data set does
    not match SOP class); a failure to write (blob store unavailable, disk full) -> 0xA700 (out of
    resources); anything unexpected -> 0x0110 (processing failure).
    """
    text = message or ""
    if text.startswith(_UNREADABLE):
        return CANNOT_UNDERSTAND
    if error_type == "ValidationException":
        return DATA_SET_DOES_NOT_MATCH_SOP_CLASS
    if text.startswith("unexpected "):
        return PROCESSING_FAILURE
    return OUT_OF_RESOURCES


def warning_reason(warnings: Iterable[Mapping[str, Any]]) -> int | None:
    """The one Warning Reason of a stored instance: a standard code when one applies, else HealthImaging's."""
    codes = [int(w["warning_reason_code"]) for w in warnings if isinstance(w.get("warning_reason_code"), int)]
    for code in _STANDARD_WARNINGS:
        if code in codes:
            return code
    return codes[0] if codes else None
