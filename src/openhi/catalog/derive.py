"""Catalog rows from an image set metadata document (guide 4330-4395 for the document's shape).

Study and series attributes are the document's Patient + Study and Series objects, plus the attributes of the
guide's study and series lists (``fields``) that the document keeps at the instance level, taken from the
series' first instance (e.g. PerformedProcedureStepStartDate, SpecificCharacterSet).

``catalog_of`` is called when a version is written, like the search summary (``ImageSetSummary.from_document``):
one ``CatalogSeries`` per series and one ``CatalogInstance`` per instance of the document, with the searchable
values normalized as ``catalog.query`` matches them. ``study_fields`` reads the searchable patient and study
attributes back from a study ``attributes`` object; ``aggregate_study`` builds the study row of a study.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from openhi.catalog.fields import SERIES_LIFTED, STUDY_LIFTED
from openhi.catalog.model import (
    CatalogInstance,
    CatalogSeries,
    CatalogStudy,
    ImageSetCatalog,
    SeriesRow,
    StudyFields,
)
from openhi.catalog.query import normalize_date, stored_time
from openhi.dicom.json_values import key_to_tag, tag_key


def _text(level: Mapping[str, Any], keyword: str) -> str | None:
    value = level.get(keyword)
    if isinstance(value, list):
        value = value[0] if value else None
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        return None
    first = value.split("\\")[0].strip()
    return first or None


def _date(level: Mapping[str, Any], keyword: str) -> str | None:
    value = _text(level, keyword)
    return None if value is None else normalize_date(value)


def _time(level: Mapping[str, Any], keyword: str) -> str | None:
    value = _text(level, keyword)
    return None if value is None else stored_time(value)


def _number(level: Mapping[str, Any], keyword: str) -> int | None:
    value = _text(level, keyword)
    if value is None:
        return None
    try:
        number = int(float(value)) if "." in value or "e" in value.lower() else int(value)
    except ValueError:
        return None
    return number if -(2**31) <= number < 2**31 else None


def _codes(level: Mapping[str, Any], keyword: str) -> tuple[int, ...]:
    value = level.get(keyword)
    items = value if isinstance(value, list) else [value]
    return tuple(sorted({int(item) for item in items if isinstance(item, int) and not isinstance(item, bool)}))


def _top_hex(obj: Mapping[str, Any]) -> set[str]:
    found = set()
    for key in obj:
        try:
            found.add(tag_key(key_to_tag(key)))
        except ValueError:
            continue
    return found


def attributes_json(obj: Mapping[str, Any], vrs: Mapping[str, str] | None) -> str:
    """``{"DICOM": obj, "DICOMVRs": the VRs of obj's elements}`` as compact, key-sorted JSON text."""
    present = _top_hex(obj)
    kept = {path: vr for path, vr in (vrs or {}).items() if path.split(".")[0] in present}
    return json.dumps({"DICOM": obj, "DICOMVRs": kept}, separators=(",", ":"), sort_keys=True)


def read_attributes(text: str) -> tuple[dict[str, Any], dict[str, str]]:
    """The (DICOM object, DICOMVRs) of an ``attributes`` column."""
    loaded = json.loads(text) if text else {}
    return dict(loaded.get("DICOM") or {}), dict(loaded.get("DICOMVRs") or {})


def _lifted(dicom: Mapping[str, Any], tags: frozenset[int]) -> dict[str, Any]:
    """The attributes of an instance-level object whose tags are in ``tags``."""
    out = {}
    for key, value in dicom.items():
        try:
            if key_to_tag(key) in tags:
                out[key] = value
        except ValueError:
            continue
    return out


def catalog_of(document: Mapping[str, Any]) -> ImageSetCatalog:
    """Every catalog row of a metadata document (empty without a Study Instance UID)."""
    patient = document.get("Patient", {}).get("DICOM", {}) or {}
    study = document.get("Study", {}) or {}
    study_dicom = study.get("DICOM", {}) or {}
    study_uid = _text(study_dicom, "StudyInstanceUID")
    if study_uid is None:
        return ImageSetCatalog()
    series_rows: list[CatalogSeries] = []
    instance_rows: list[CatalogInstance] = []
    for series_uid, series in (study.get("Series", {}) or {}).items():
        series_dicom = series.get("DICOM", {}) or {}
        instances: Mapping[str, Any] = series.get("Instances", {}) or {}
        first: Mapping[str, Any] = next(iter(instances.values()), {})
        first_vrs = first.get("DICOMVRs")
        first_dicom: Mapping[str, Any] = first.get("DICOM", {}) or {}
        series_dicom = {**_lifted(first_dicom, SERIES_LIFTED), **series_dicom}
        study_attributes = {**_lifted(first_dicom, STUDY_LIFTED), **patient, **study_dicom}
        modality = _text(series_dicom, "Modality")
        series_number = _number(series_dicom, "SeriesNumber")
        series_rows.append(
            CatalogSeries(
                study_uid=study_uid,
                series_uid=series_uid,
                modality=modality,
                series_number=series_number,
                series_description=_text(series_dicom, "SeriesDescription"),
                pps_start_date=_date(series_dicom, "PerformedProcedureStepStartDate"),
                pps_start_time=_time(series_dicom, "PerformedProcedureStepStartTime"),
                instance_count=len(instances),
                attributes=attributes_json(series_dicom, first_vrs),
                study_attributes=attributes_json(study_attributes, first_vrs),
            )
        )
        for sop_uid, entry in instances.items():
            dicom = entry.get("DICOM", {}) or {}
            instance_rows.append(
                CatalogInstance(
                    study_uid=study_uid,
                    series_uid=series_uid,
                    sop_uid=sop_uid,
                    sop_class_uid=_text(dicom, "SOPClassUID"),
                    instance_number=_number(dicom, "InstanceNumber"),
                    warning_reasons=_codes(dicom, "WarningReason"),
                    modality=modality,
                    series_number=series_number,
                    attributes=attributes_json(dicom, entry.get("DICOMVRs")),
                )
            )
    return ImageSetCatalog(tuple(series_rows), tuple(instance_rows))


def study_fields(study_attributes: str) -> StudyFields:
    """The searchable patient and study attributes of a study ``attributes`` column."""
    dicom, _ = read_attributes(study_attributes)
    return StudyFields(
        patient_name=_text(dicom, "PatientName"),
        patient_id=_text(dicom, "PatientID"),
        patient_birth_date=_date(dicom, "PatientBirthDate"),
        patient_birth_time=_time(dicom, "PatientBirthTime"),
        patient_sex=_text(dicom, "PatientSex"),
        study_date=_date(dicom, "StudyDate"),
        study_time=_time(dicom, "StudyTime"),
        accession_number=_text(dicom, "AccessionNumber"),
        study_id=_text(dicom, "StudyID"),
        study_description=_text(dicom, "StudyDescription"),
        referring_physician_name=_text(dicom, "ReferringPhysicianName"),
    )


def aggregate_study(datastore_id: str, study_uid: str, rows: list[SeriesRow]) -> CatalogStudy | None:
    """The study row over the series rows of its primary image sets (None when there are none).

    NumberOfStudyRelatedSeries counts distinct Series Instance UIDs, NumberOfStudyRelatedInstances sums the
    series' instances (PS3.18 Table 6.7.1-2); ModalitiesInStudy is the sorted set of the series' modalities.
    Patient and study attributes and the sort time (guide 2226: studies by last update, newest first) are those
    of the most recently written image set.
    """
    if not rows:
        return None
    latest = max(rows, key=lambda row: (row.updated_at, row.image_set_id))
    return CatalogStudy(
        datastore_id=datastore_id,
        study_uid=study_uid,
        fields=study_fields(latest.series.study_attributes),
        modalities=tuple(sorted({row.series.modality for row in rows if row.series.modality})),
        series_count=len({row.series.series_uid for row in rows}),
        instance_count=sum(row.series.instance_count for row in rows),
        updated_at=latest.updated_at,
        attributes=latest.series.study_attributes,
    )
