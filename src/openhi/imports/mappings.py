"""``importConfiguration.dicomJsonMetadataImportConfiguration``: JSON metadata that augments DICOM files.

The model's ``DicomMetadataMapping`` (studyInstanceUID, optional seriesInstanceUID, metadataFilePath
relative to ``inputS3Uri``) names a JSON file whose elements override those of every imported instance of
that study (or series). The guide (3343-3352, 23059) does not fix the file's format; OpenHI reads the DICOM
JSON model of PS3.18 F.2 (``{"00100010": {"vr": "PN", "Value": [{"Alphabetic": "DOE^JANE"}]}}``), the format
every DICOMweb tool writes. The mapping files themselves are not imported. An instance changed this way is
reported with warning 0xB000 (data elements modified on storage, guide 22881-22912).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass

from pydicom.dataset import Dataset

from openhi.dicom.errors import DicomInputError


@dataclass(frozen=True)
class MetadataMapping:
    """One DicomMetadataMapping of the job."""

    study_instance_uid: str
    series_instance_uid: str | None
    metadata_file_path: str

    def applies_to(self, study_instance_uid: str, series_instance_uid: str) -> bool:
        """True for instances of the mapped study (and series, when the mapping names one)."""
        return self.study_instance_uid == study_instance_uid and self.series_instance_uid in (
            None,
            "",
            series_instance_uid,
        )


def mappings_of(import_configuration: str | None) -> tuple[MetadataMapping, ...]:
    """The mappings of a job's stored ``importConfiguration`` (JSON text), in order."""
    if not import_configuration:
        return ()
    document = json.loads(import_configuration)
    entries = document.get("dicomJsonMetadataImportConfiguration", {}).get("dicomMetadataMappings", [])
    return tuple(
        MetadataMapping(entry["studyInstanceUID"], entry.get("seriesInstanceUID"), entry["metadataFilePath"])
        for entry in entries
    )


def parse_overrides(path: str, data: bytes) -> Dataset:
    """The elements of one mapping file; a clear DicomInputError when it is not DICOM JSON."""
    try:
        return Dataset.from_json(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, TypeError, KeyError, AttributeError) as exc:
        raise DicomInputError(f"metadata file {path} is not DICOM JSON (PS3.18 F.2): {exc}") from exc


def apply_overrides(ds: Dataset, overrides: Iterable[Dataset]) -> bool:
    """Set every element of ``overrides`` on ``ds``; True when anything was applied."""
    changed = False
    for override in overrides:
        for element in override:
            ds[element.tag] = element
            changed = True
    return changed
