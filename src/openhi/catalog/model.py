"""Catalog rows: what QIDO-RS searches (guide 2210-2664), one row per study, per series and per instance.

Rows are derived from the latest metadata document of each primary, not deleted image set (guide 2214: QIDO
searches primary image sets only) when a version is written (``imagesets.versions.write_version``), so a
search never reads a document. Series and instance rows belong to one image set; the study row aggregates
the series rows of every primary image set of the study (counts, modalities) and takes the patient and study
attributes of the most recently updated one. ``attributes`` columns hold the level's ``{"DICOM": ...,
"DICOMVRs": ...}`` object of the document (keyword keys) as compact JSON, for ``includefield`` and ``all``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class CatalogInstance:
    """One instance of one series of an image set; modality and series number are the series' (for sorting
    and relational matching of ``/studies/{uid}/instances``)."""

    study_uid: str
    series_uid: str
    sop_uid: str
    sop_class_uid: str | None
    instance_number: int | None
    warning_reasons: tuple[int, ...]
    modality: str | None
    series_number: int | None
    attributes: str


@dataclass(frozen=True)
class CatalogSeries:
    """One series of an image set, with the patient and study attributes of that image set."""

    study_uid: str
    series_uid: str
    modality: str | None
    series_number: int | None
    series_description: str | None
    pps_start_date: str | None
    pps_start_time: str | None
    instance_count: int
    attributes: str
    study_attributes: str


@dataclass(frozen=True)
class ImageSetCatalog:
    """Every catalog row one image set contributes."""

    series: tuple[CatalogSeries, ...] = ()
    instances: tuple[CatalogInstance, ...] = ()

    @property
    def study_uids(self) -> frozenset[str]:
        """The studies the image set contributes to."""
        return frozenset(series.study_uid for series in self.series)


@dataclass(frozen=True)
class StudyFields:
    """The searchable patient and study attributes of a study row (PS3.18 Table 10.6.1-5, guide 2560-2575)."""

    patient_name: str | None = None
    patient_id: str | None = None
    patient_birth_date: str | None = None
    patient_birth_time: str | None = None
    patient_sex: str | None = None
    study_date: str | None = None
    study_time: str | None = None
    accession_number: str | None = None
    study_id: str | None = None
    study_description: str | None = None
    referring_physician_name: str | None = None


@dataclass(frozen=True)
class CatalogStudy:
    """One study of a data store, aggregated over its primary image sets."""

    datastore_id: str
    study_uid: str
    fields: StudyFields
    modalities: tuple[str, ...]
    series_count: int
    instance_count: int
    updated_at: datetime
    attributes: str


@dataclass(frozen=True)
class SeriesRow:
    """A series row as stored: the image set it belongs to and when that image set was last written."""

    datastore_id: str
    image_set_id: str
    series: CatalogSeries
    updated_at: datetime


@dataclass(frozen=True)
class InstanceRow:
    """An instance row as stored."""

    datastore_id: str
    image_set_id: str
    instance: CatalogInstance
