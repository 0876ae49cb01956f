"""Normalize one DICOM dataset into the pieces of HealthImaging image set metadata.

``normalize(ds)`` splits the top-level elements between the Patient, Study, Series and Instance ``DICOM``
objects (levels of guide 22357-22562, see :mod:`.levels`), converts values as :mod:`.json_values` says
(guide 4330-4395), gathers the DICOMVRs (guide 7100-7130, 15870-15890), checks the import's constraints and
reports warnings (guide 22620-22643, 22881-22912), and sets aside large binary values.

Choices (written down where the guide is silent):

- **Required**: SOPInstanceUID, SOPClassUID, StudyInstanceUID, SeriesInstanceUID and the file meta
  TransferSyntaxUID must exist with one non-empty value, else :class:`DicomInputError` in the guide's words
  ("DICOM attribute TransferSyntaxUID does not exist", guide 3316-3324). Study/Series/SOP Instance UIDs over
  the 256-character import limit are refused too: they name the image set's study, series and instance.
- **Warnings** (the file is kept): values longer than their VR allows (PS3.5 Table 6.2-1; PN per component
  group) or than the import limits of guide 22620-22643 (NumberOfStudyRelated* above 1000000 included) give
  0xB202 INVALID_DICOM_VALUE_LENGTH (45571); UI values that break PS3.5 9.1 (empty component, leading zero,
  any character outside ``[0-9.]``) give 0xB201 INVALID_UID_FORMAT (45570); a value pydicom cannot decode is
  kept as raw UN bytes with 0xB000 COERCION_OF_DATA_ELEMENTS. One warning per element and code, nested
  elements included. Their codes are merged into the instance's WarningReason (0008,1196), a list of decimals
  (:mod:`.warnings` explains why the decimals, not the hexadecimal labels).
- **Left out**: file meta (group 0002; the caller records TransferSyntaxUID as StoredTransferSyntaxUID),
  command elements (group 0000), group lengths (gggg,0000) and Data Set Trailing Padding (FFFC,FFFC).
- **Pixel data**: top-level PixelData / FloatPixelData / DoubleFloatPixelData is ``null`` (the frames are
  stored apart) and never read here, so a deferred value stays on disk. Pixel data nested in a sequence (icon
  images) is an ordinary bytes value.
- **Bulk values**: bytes values (OB OD OF OL OV OW UN) longer than ``bulk_threshold`` (1 MB by default, guide
  §3 / DICOMweb BulkDataURI) become ``{"BulkDataReference": "<32 hex>"}`` in the metadata, and a
  :class:`BulkValue` holding the bytes is returned for the caller to store. The id is the first 32 hex digits
  of SHA-256 over the SOP Instance UID, the element path, the VR and the bytes: re-importing the same instance
  gives the same ids, and :func:`.json_values.json_to_element_value` resolves them through a callback.
- **DICOMVRs**: one map for the whole instance (only Instances carry DICOMVRs in the metadata schema, guide
  18040-18080), keyed by dotted hex path; it covers every level's private, unknown and off-dictionary VRs.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Any

from pydicom.datadict import tag_for_keyword
from pydicom.dataset import Dataset

from openhi.dicom.errors import DicomInputError
from openhi.dicom.json_values import (
    SINGLE_VALUED_TEXT_VRS,
    TEXT_VRS,
    DatasetEncoder,
    JsonValue,
    Path,
    element_key,
    value_to_json,
    vr_key,
)
from openhi.dicom.levels import Level, level_of
from openhi.dicom.warnings import (
    COERCION_OF_DATA_ELEMENTS,
    INVALID_DICOM_VALUE_LENGTH,
    INVALID_UID_FORMAT,
    ImportWarning,
    WarningKind,
    apply_warning_reasons,
)

DEFAULT_BULK_THRESHOLD = 1_048_576
PIXEL_DATA_TAGS = {0x7FE00008: "FloatPixelData", 0x7FE00009: "DoubleFloatPixelData", 0x7FE00010: "PixelData"}
REQUIRED_UIDS = ("SOPInstanceUID", "SOPClassUID", "StudyInstanceUID", "SeriesInstanceUID")
HARD_UID_LIMIT = 256
HARD_LIMITED_UIDS = frozenset({"StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"})

# guide 22620-22643: maximum lengths at import
IMPORT_LENGTH_LIMITS = {
    "PatientName": 256,
    "PatientID": 256,
    "PatientBirthDate": 18,
    "PatientSex": 16,
    "StudyInstanceUID": 256,
    "StudyID": 256,
    "StudyDescription": 256,
    "AccessionNumber": 256,
    "StudyDate": 18,
    "StudyTime": 28,
    "SOPInstanceUID": 256,
    "SeriesInstanceUID": 256,
}
IMPORT_COUNT_LIMITS = {"NumberOfStudyRelatedSeries": 1_000_000, "NumberOfStudyRelatedInstances": 1_000_000}

# PS3.5 Table 6.2-1: maximum length of one value (characters; PN: per component group). UC UR UT: unlimited.
VR_MAX_LENGTH = {
    "AE": 16,
    "AS": 4,
    "CS": 16,
    "DA": 8,
    "DS": 16,
    "DT": 26,
    "IS": 12,
    "LO": 64,
    "LT": 10240,
    "PN": 64,
    "SH": 16,
    "ST": 1024,
    "TM": 14,
    "UI": 64,
}
UID_PATTERN = re.compile(r"(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*")  # PS3.5 9.1


@dataclass(frozen=True)
class GroupingKey:
    """The elements HealthImaging groups instances by (guide 4270-4290), as their metadata strings."""

    study_date: str | None
    accession_number: str | None
    patient_id: str | None
    study_instance_uid: str | None
    study_id: str | None
    series_instance_uid: str | None
    series_number: str | None


@dataclass(frozen=True)
class BulkValue:
    """A large bytes value set apart: ``{"BulkDataReference": reference_id}`` stands for it in the metadata.

    ``path`` is (tag,) for a top-level element, (sequence tag, item index, ..., tag) for a nested one;
    ``level`` is the metadata level whose ``DICOM`` object holds the reference.
    """

    reference_id: str
    path: Path
    vr: str
    data: bytes = field(repr=False)
    level: Level

    @property
    def vr_key(self) -> str:
        """The dotted hex path of the element (the DICOMVRs key form)."""
        return vr_key(self.path)


@dataclass(frozen=True)
class NormalizedInstance:
    """One instance, normalized: the four ``DICOM`` objects plus what the caller stores or reports."""

    sop_instance_uid: str
    sop_class_uid: str
    study_instance_uid: str
    series_instance_uid: str
    transfer_syntax_uid: str
    grouping: GroupingKey
    patient: dict[str, JsonValue]
    study: dict[str, JsonValue]
    series: dict[str, JsonValue]
    instance: dict[str, JsonValue]
    instance_vrs: dict[str, str]
    warnings: list[ImportWarning]
    bulk_values: list[BulkValue]


def describe_path(path: Path) -> str:
    """A readable element path: "ReferencedStudySequence[0].ReferencedSOPInstanceUID (0008,1155)"."""
    parts: list[str] = []
    for position, step in enumerate(path):
        if position % 2:
            parts[-1] += f"[{step}]"
        else:
            key = element_key(step)
            parts.append(key if key != f"{step:08X}" else f"({step >> 16:04X},{step & 0xFFFF:04X})")
    tag = path[-1]
    name = ".".join(parts)
    return name if name.startswith("(") else f"{name} ({tag >> 16:04X},{tag & 0xFFFF:04X})"


def _shown(value: str, limit: int = 80) -> str:
    return repr(value if len(value) <= limit else value[:limit] + "...")


class _Normalizer(DatasetEncoder):
    def __init__(self, bulk_threshold: int, sop_instance_uid: str) -> None:
        super().__init__()
        self.bulk_threshold = bulk_threshold
        self.sop_instance_uid = sop_instance_uid
        self.level = Level.INSTANCE
        self.warnings: list[ImportWarning] = []
        self.bulk_values: list[BulkValue] = []

    def warn(self, kind: WarningKind, message: str) -> None:
        self.warnings.append(ImportWarning.of(kind, message))

    def skip(self, tag: int, path: Path) -> bool:
        return super().skip(tag, path) or (not path and (int(tag) >> 16) in (0x0000, 0x0002))

    def encode_bytes(self, vr: str, data: bytes, path: Path) -> JsonValue:
        if len(data) <= self.bulk_threshold:
            return super().encode_bytes(vr, data, path)
        digest = hashlib.sha256()
        digest.update(f"{self.sop_instance_uid}\0{'.'.join(map(str, path))}\0{vr}\0".encode())
        digest.update(data)
        reference_id = digest.hexdigest()[:32]
        self.bulk_values.append(BulkValue(reference_id, path, vr, data, self.level))
        return {"BulkDataReference": reference_id}

    def coerced(self, path: Path, message: str) -> None:
        self.warn(COERCION_OF_DATA_ELEMENTS, f"{describe_path(path)} {message}")

    def inspect(self, vr: str, path: Path, value: JsonValue) -> None:
        if vr not in TEXT_VRS or not isinstance(value, str):
            return
        values = [value] if vr in SINGLE_VALUED_TEXT_VRS else value.split("\\")
        problems: list[str] = []
        vr_limit = VR_MAX_LENGTH.get(vr)
        if vr_limit is not None:
            longest = max(len(part) for item in values for part in (item.split("=") if vr == "PN" else [item]))
            if longest > vr_limit:
                problems.append(f"a value is {longest} characters long where VR {vr} allows {vr_limit}")
        if len(path) == 1:
            problems.extend(_import_limit_problems(element_key(path[0]), value))
        if problems:
            self.warn(INVALID_DICOM_VALUE_LENGTH, f"{describe_path(path)}: {'; '.join(problems)}")
        if vr == "UI":
            invalid = [item for item in values if item and not UID_PATTERN.fullmatch(item)]
            if invalid:
                self.warn(
                    INVALID_UID_FORMAT,
                    f"{describe_path(path)}: {_shown(invalid[0])} is not a valid UID (PS3.5 9.1)",
                )


def _import_limit_problems(keyword: str, value: str) -> list[str]:
    limit = IMPORT_LENGTH_LIMITS.get(keyword)
    if limit is not None and len(value) > limit:
        return [f"it is {len(value)} characters long where the import allows {limit}"]
    count_limit = IMPORT_COUNT_LIMITS.get(keyword)
    if count_limit is not None:
        try:
            count = max(int(item) for item in value.split("\\"))
        except ValueError:
            return []
        if count > count_limit:
            return [f"{count} is above the import limit of {count_limit}"]
    return []


def _required(ds: Dataset, keyword: str) -> str:
    tag = tag_for_keyword(keyword)
    try:
        elem = ds.get(tag) if tag is not None else None
        value = None if elem is None else value_to_json(str(elem.VR), elem.value)
    except Exception as exc:  # malformed value: pydicom raises many types
        raise DicomInputError(f"DICOM attribute {keyword} cannot be read: {exc}") from exc
    if not isinstance(value, str) or not value.strip():
        raise DicomInputError(f"DICOM attribute {keyword} does not exist")
    if "\\" in value:
        raise DicomInputError(f"DICOM attribute {keyword} has more than one value")
    if keyword in HARD_LIMITED_UIDS and len(value) > HARD_UID_LIMIT:
        raise DicomInputError(
            f"DICOM attribute {keyword} is {len(value)} characters long; the limit is {HARD_UID_LIMIT}"
        )
    return value


def _transfer_syntax(ds: Dataset) -> str:
    meta = getattr(ds, "file_meta", None)
    value: Any = None
    if meta is not None and 0x00020010 in meta:
        value = meta[0x00020010].value
    if not isinstance(value, str) or not value.strip():
        raise DicomInputError("DICOM attribute TransferSyntaxUID does not exist")
    return value.strip()


def _text(obj: dict[str, JsonValue], key: str) -> str | None:
    value = obj.get(key)
    return value if isinstance(value, str) else None


def normalize(ds: Dataset, *, bulk_threshold: int = DEFAULT_BULK_THRESHOLD) -> NormalizedInstance:
    """Normalize one dataset (read by :func:`.reader.read_p10` or built in memory); see the module docstring.

    Raises :class:`DicomInputError` when the dataset cannot become an instance.
    """
    transfer_syntax_uid = _transfer_syntax(ds)
    uids = {keyword: _required(ds, keyword) for keyword in REQUIRED_UIDS}
    normalizer = _Normalizer(bulk_threshold, uids["SOPInstanceUID"])
    objects: dict[Level, dict[str, JsonValue]] = {level: {} for level in Level}
    for tag in sorted(int(tag) for tag in ds.keys()):  # noqa: SIM118 - tags, not elements
        if normalizer.skip(tag, ()):
            continue
        if tag in PIXEL_DATA_TAGS:
            objects[Level.INSTANCE][PIXEL_DATA_TAGS[tag]] = None
            continue
        normalizer.level = level = level_of(tag)
        path = (tag,)
        try:
            value = normalizer.encode_element(normalizer.read_element(ds, tag, path), path)
        except DicomInputError:
            raise
        except Exception as exc:  # a value that cannot be read at all (not even as raw bytes)
            raise DicomInputError(f"DICOM attribute {describe_path(path)} cannot be read: {exc}") from exc
        objects[level][element_key(tag)] = value
    patient, study, series = objects[Level.PATIENT], objects[Level.STUDY], objects[Level.SERIES]
    instance = objects[Level.INSTANCE]
    apply_warning_reasons(instance, normalizer.warnings)
    grouping = GroupingKey(
        study_date=_text(study, "StudyDate"),
        accession_number=_text(study, "AccessionNumber"),
        patient_id=_text(patient, "PatientID"),
        study_instance_uid=uids["StudyInstanceUID"],
        study_id=_text(study, "StudyID"),
        series_instance_uid=uids["SeriesInstanceUID"],
        series_number=_text(series, "SeriesNumber"),
    )
    return NormalizedInstance(
        sop_instance_uid=uids["SOPInstanceUID"],
        sop_class_uid=uids["SOPClassUID"],
        study_instance_uid=uids["StudyInstanceUID"],
        series_instance_uid=uids["SeriesInstanceUID"],
        transfer_syntax_uid=transfer_syntax_uid,
        grouping=grouping,
        patient=patient,
        study=study,
        series=series,
        instance=instance,
        instance_vrs=normalizer.vrs,
        warnings=normalizer.warnings,
        bulk_values=normalizer.bulk_values,
    )
