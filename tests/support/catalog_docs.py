"""Synthetic image set metadata documents for the QIDO-RS catalog tests (the shape of imagesets.document)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from openhi.catalog.derive import catalog_of
from openhi.catalog.model import ImageSetCatalog
from openhi.datastores.model import Datastore, DatastoreStatus, LosslessStorageFormat
from openhi.index.memory import MemoryIndex
from openhi.index.port import UnitOfWork

DS = "d" * 32
T0 = datetime(2024, 1, 1, tzinfo=UTC)


def instance(
    sop_uid: str,
    number: int | None = None,
    *,
    sop_class: str = "1.2.840.10008.5.1.4.1.1.2",
    warnings: list[int] | None = None,
    extra: dict[str, Any] | None = None,
    vrs: dict[str, str] | None = None,
) -> tuple[str, dict[str, Any]]:
    dicom: dict[str, Any] = {"SOPInstanceUID": sop_uid, "SOPClassUID": sop_class, "Rows": 4, "Columns": 4}
    if number is not None:
        dicom["InstanceNumber"] = str(number)
    if warnings:
        dicom["WarningReason"] = warnings
    dicom.update(extra or {})
    return sop_uid, {"DICOM": dicom, "DICOMVRs": vrs or {}, "ImageFrames": []}


def series(
    series_uid: str,
    instances: list[tuple[str, dict[str, Any]]],
    *,
    modality: str | None = "CT",
    number: int | None = 1,
    description: str | None = None,
    extra: dict[str, Any] | None = None,
) -> tuple[str, dict[str, Any]]:
    dicom: dict[str, Any] = {"SeriesInstanceUID": series_uid}
    if modality is not None:
        dicom["Modality"] = modality
    if number is not None:
        dicom["SeriesNumber"] = str(number)
    if description is not None:
        dicom["SeriesDescription"] = description
    dicom.update(extra or {})
    return series_uid, {"DICOM": dicom, "Instances": dict(instances)}


def document(
    study_uid: str,
    series_list: list[tuple[str, dict[str, Any]]],
    *,
    patient: dict[str, Any] | None = None,
    study: dict[str, Any] | None = None,
) -> dict[str, Any]:
    study_dicom: dict[str, Any] = {"StudyInstanceUID": study_uid, **(study or {})}
    return {
        "SchemaVersion": "1.1",
        "DatastoreID": DS,
        "ImageSetID": "i" * 32,
        "Patient": {"DICOM": dict(patient or {})},
        "Study": {"DICOM": study_dicom, "Series": dict(series_list)},
    }


# -- brute force: what a search must answer, computed from the documents directly -----------------------------


def _first(value: Any) -> str | None:
    if isinstance(value, list):
        value = value[0] if value else None
    if value is None:
        return None
    text = str(value).split("\\")[0].strip()
    return text or None


def study_values(docs: list[dict[str, Any]]) -> dict[str, Any]:
    """Keyword -> stored value of a study over its documents (the last one is the latest written)."""
    from openhi.catalog.query import normalize_date, normalize_name, stored_time

    latest = docs[-1]
    level = {**latest["Patient"]["DICOM"], **latest["Study"]["DICOM"]}
    out: dict[str, Any] = {}
    for keyword in ("AccessionNumber", "StudyDescription", "PatientID", "StudyInstanceUID", "StudyID"):
        out[keyword] = _first(level.get(keyword))
    for keyword in ("PatientName", "ReferringPhysicianName"):
        value = _first(level.get(keyword))
        out[keyword] = None if value is None else normalize_name(value)
    for keyword in ("StudyDate", "PatientBirthDate"):
        value = _first(level.get(keyword))
        out[keyword] = None if value is None else normalize_date(value)
    for keyword in ("StudyTime", "PatientBirthTime"):
        value = _first(level.get(keyword))
        out[keyword] = None if value is None else stored_time(value)
    modalities = {_first(series["DICOM"].get("Modality")) for doc in docs for series in doc["Study"]["Series"].values()}
    out["ModalitiesInStudy"] = tuple(sorted(m for m in modalities if m))
    return out


def brute_studies(docs: list[dict[str, Any]], conditions: Any) -> list[str]:
    """Study UIDs matching every condition, last written first (``docs`` in write order, primary only)."""
    from openhi.catalog.query import matches

    by_study: dict[str, list[dict[str, Any]]] = {}
    last_write: dict[str, int] = {}
    for position, doc in enumerate(docs):
        uid = doc["Study"]["DICOM"]["StudyInstanceUID"]
        if not doc["Study"]["Series"]:
            continue
        by_study.setdefault(uid, []).append(doc)
        last_write[uid] = position
    found = [
        uid
        for uid, study_docs in by_study.items()
        if all(matches(c, study_values(study_docs)[c.attribute.keyword]) for c in conditions)
    ]
    return sorted(found, key=lambda uid: (last_write[uid], uid), reverse=True)


def catalog_index(docs: Sequence[dict[str, Any]]) -> MemoryIndex:
    """A memory index with the active data store ``DS`` whose catalog holds each document as a primary image set:
    the n-th has the image set id ``f"{n:032x}"`` and was written at ``T0`` + n seconds."""
    index = MemoryIndex()
    datastore = Datastore(DS, "s", DatastoreStatus.ACTIVE, LosslessStorageFormat.HTJ2K, T0, T0, "t")
    index.run(lambda uow: uow.datastores.add(datastore))
    for position, doc in enumerate(docs):
        index.run(partial(_put, f"{position:032x}", catalog_of(doc), T0 + timedelta(seconds=position)))
    return index


def _put(image_set_id: str, catalog: ImageSetCatalog, at: datetime, uow: UnitOfWork) -> None:
    uow.catalog.put_image_set(DS, image_set_id, 1, catalog, at)
