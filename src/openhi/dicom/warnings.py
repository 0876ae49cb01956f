"""Import warning codes: the catalogue of guide 22881-22912 and the WarningReason (0008,1196) helper.

HealthImaging imports what it can and reports the rest as warnings, written to ``WARNING/warning.ndjson``
(shape at guide 3326-3333: ``{"warning_reason_code": 45330, "type": "InvalidOffsetTable", "message": ...}``)
and kept in the instance metadata as WarningReason (0008,1196), a US value searchable by the DICOMweb
QIDO-RS instance search. The first three codes are the DICOM standard Warning Reasons of PS3.18 I.2.1 /
PS3.4 Annex B (0xB000, 0xB006, 0xB007); the others are HealthImaging's own. The enum names are those of the
guide's table (English edition, "HealthImaging warning codes").

**Which column is the code.** The table gives each code in hexadecimal and in decimal, and three rows
disagree with themselves: 0xB201 INVALID_UID_FORMAT is listed as 45570 (0xB201 is 45569), 0xB202
INVALID_DICOM_VALUE_LENGTH as 45571 (0xB202 is 45570) and 0xBFFF OTHER as 47513 (0xBFFF is 49151). The
decimal is what a client sees (``warning_reason_code`` in warning.ndjson, WarningReason values in the
metadata, the numbers one searches for), so :attr:`WarningKind.code` is the guide's decimal and
:attr:`WarningKind.hex_label` keeps the guide's hexadecimal label.
"""

from __future__ import annotations

from collections.abc import Iterable, MutableMapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

WARNING_REASON_KEYWORD = "WarningReason"
WARNING_REASON_TAG = 0x00081196


@dataclass(frozen=True)
class WarningKind:
    """One row of the guide's table: decimal code, hex label, enum name, details, resulting behavior."""

    code: int
    hex_label: str
    name: str
    details: str
    behavior: str

    @property
    def ndjson_type(self) -> str:
        """The CamelCase ``type`` of warning.ndjson's example (INVALID_OFFSET_TABLE -> InvalidOffsetTable)."""
        return "".join(part.capitalize() for part in self.name.split("_"))


_NA = "n/a"
_BLOB = "Pixel data is kept as one blob; retrieve it with transfer-syntax '*' (stored format)."
_MALFORMED = "Pixel data is malformed and cannot be retrieved by frame; retrieve the whole instance."
_UNSEARCHABLE = "Some fields may not be parsed, hence not searchable (e.g. StudyDate, StudyTime)."

# (decimal, hexadecimal as the guide prints it, enum name, details, resulting behavior)
_TABLE: tuple[tuple[int, str, str, str, str], ...] = (
    # DICOM standard warning reasons
    (45056, "0xB000", "COERCION_OF_DATA_ELEMENTS", "Data elements were modified on storage.", _NA),
    (45062, "0xB006", "ELEMENTS_DISCARDED", "Data elements were discarded on storage.", _NA),
    (45063, "0xB007", "SOP_CLASS_DATA_MISMATCH", "The data set does not match its SOP class.", _NA),
    # AWS HealthImaging warning reasons
    (45312, "0xB100", "TRANSCODING_EXCEPTION", "Pixel data could not be transcoded for storage.", _BLOB),
    (
        45328,
        "0xB110",
        "FRAMES_EXTRACTION_FAILURE",
        "Frames could not be parsed from the pixel data.",
        _MALFORMED,
    ),
    (45329, "0xB111", "FRAME_NUMBER_MISMATCH", "NumberOfFrames differs from the fragment count.", _MALFORMED),
    (
        45330,
        "0xB112",
        "INVALID_OFFSET_TABLE",
        "The offset table does not match the frame lengths.",
        _MALFORMED,
    ),
    (45344, "0xB120", "UNSUPPORTED_TRANSFER_SYNTAX", "The transfer syntax is unknown or unsupported.", _BLOB),
    (45570, "0xB201", "INVALID_UID_FORMAT", "A UID violates the UI value representation.", _NA),
    (45571, "0xB202", "INVALID_DICOM_VALUE_LENGTH", "A value is longer than its VR allows.", _UNSEARCHABLE),
    (47513, "0xBFFF", "OTHER", "A warning with no specific code.", _MALFORMED),
)

CATALOGUE: tuple[WarningKind, ...] = tuple(WarningKind(*row) for row in _TABLE)
BY_CODE: MappingProxyType[int, WarningKind] = MappingProxyType({kind.code: kind for kind in CATALOGUE})
BY_NAME: MappingProxyType[str, WarningKind] = MappingProxyType({kind.name: kind for kind in CATALOGUE})

COERCION_OF_DATA_ELEMENTS = BY_NAME["COERCION_OF_DATA_ELEMENTS"]
ELEMENTS_DISCARDED = BY_NAME["ELEMENTS_DISCARDED"]
SOP_CLASS_DATA_MISMATCH = BY_NAME["SOP_CLASS_DATA_MISMATCH"]
TRANSCODING_EXCEPTION = BY_NAME["TRANSCODING_EXCEPTION"]
FRAMES_EXTRACTION_FAILURE = BY_NAME["FRAMES_EXTRACTION_FAILURE"]
FRAME_NUMBER_MISMATCH = BY_NAME["FRAME_NUMBER_MISMATCH"]
INVALID_OFFSET_TABLE = BY_NAME["INVALID_OFFSET_TABLE"]
UNSUPPORTED_TRANSFER_SYNTAX = BY_NAME["UNSUPPORTED_TRANSFER_SYNTAX"]
INVALID_UID_FORMAT = BY_NAME["INVALID_UID_FORMAT"]
INVALID_DICOM_VALUE_LENGTH = BY_NAME["INVALID_DICOM_VALUE_LENGTH"]
OTHER = BY_NAME["OTHER"]


@dataclass(frozen=True)
class ImportWarning:
    """One warning about one imported instance: ``code`` (e.g. 45571), ``type`` (enum name) and ``message``.

    The name is the import pipeline's; it shadows Python's builtin ``ImportWarning`` only where imported.
    """

    code: int
    type: str
    message: str

    @classmethod
    def of(cls, kind: WarningKind, message: str) -> ImportWarning:
        """A warning of ``kind`` with a specific message."""
        return cls(kind.code, kind.name, message)

    def to_ndjson(self) -> dict[str, Any]:
        """The object of one warning in warning.ndjson (guide 3326-3333)."""
        kind = BY_CODE.get(self.code)
        return {
            "warning_reason_code": self.code,
            "type": kind.ndjson_type if kind is not None else self.type,
            "message": self.message,
        }


def apply_warning_reasons(instance: MutableMapping[str, Any], warnings: Iterable[ImportWarning]) -> None:
    """Merge the codes of ``warnings`` into ``instance["WarningReason"]`` (sorted decimal codes, no repeats).

    Codes already present (from the file, or from an earlier step of the import) are kept. With no codes at
    all the key is left alone.
    """
    codes = {warning.code for warning in warnings}
    existing = instance.get(WARNING_REASON_KEYWORD)
    if isinstance(existing, int):
        codes.add(existing)
    elif isinstance(existing, list):
        codes.update(code for code in existing if isinstance(code, int))
    if codes:
        instance[WARNING_REASON_KEYWORD] = sorted(codes)
