"""QIDO-RS searches over the catalog (guide 2210-2664): parse, query the index, answer DICOM JSON.

Only the catalog is read (index tables of primary, not deleted image sets, kept by ``write_version`` and the
delete), never a metadata document. A search names its data store (404 when unknown); UIDs in the path must be
UIDs (400). A search that matches nothing answers an empty list.
"""

from __future__ import annotations

from collections.abc import Sequence

from openhi.access import guard
from openhi.catalog.model import CatalogStudy, InstanceRow, SeriesRow
from openhi.catalog.query import Level
from openhi.datastores.service import load_datastore
from openhi.dicom.dicom_json import DicomJson
from openhi.dicom.uids import looks_like_uid
from openhi.dicomweb.qido.params import QidoQuery, parse_query
from openhi.dicomweb.qido.response import Answers
from openhi.errors import BadRequestError
from openhi.index.port import Index, UnitOfWork


def _uid(kind: str, value: str) -> str:
    if not looks_like_uid(value):
        raise BadRequestError(f"{kind} {value!r} is not a valid UID")
    return value


def _known[T](uow: UnitOfWork, datastore_id: str, found: list[T]) -> list[T]:
    """``found``, after making sure the data store exists when nothing matched (404 for an unknown one).

    Catalog rows exist only inside a live data store (a data store with image sets cannot be deleted), so a
    non-empty answer proves it exists and spares a statement on every search that finds something.
    """
    if not found:
        load_datastore(uow, datastore_id)
    return found


class QidoSearch:
    """SearchDICOMStudies, SearchDICOMSeries, SearchDICOMInstances (and the study's instances)."""

    def __init__(self, index: Index) -> None:
        self._index = index

    def studies(self, datastore_id: str, pairs: Sequence[tuple[str, str]], base: str) -> list[DicomJson]:
        """Studies of the data store matching the query, last updated first (those the caller may see)."""
        visible = guard.row_filter("SearchDICOMStudies", datastore_id=datastore_id)
        query = parse_query(Level.STUDY, pairs)

        def work(uow: UnitOfWork) -> list[CatalogStudy]:
            found = uow.catalog.search_studies(datastore_id, query.conditions, query.offset, query.limit)
            return _known(uow, datastore_id, found)

        answers = Answers(query, base)
        found = self._index.run(work, readonly=True)
        return [answers.study(study) for study in found if visible is None or visible(study.study_uid, None)]

    def series(self, datastore_id: str, study_uid: str, pairs: Sequence[tuple[str, str]], base: str) -> list[DicomJson]:
        """Series of a study matching the query, by Series Number."""
        query = parse_query(Level.SERIES, pairs)
        _uid("StudyInstanceUID", study_uid)
        guard.require("SearchDICOMSeries", datastore_id=datastore_id, study_uid=study_uid)

        def work(uow: UnitOfWork) -> list[SeriesRow]:
            found = uow.catalog.search_series(datastore_id, study_uid, query.conditions, query.offset, query.limit)
            return _known(uow, datastore_id, found)

        answers = Answers(query, base)
        return [answers.series(row) for row in self._index.run(work, readonly=True)]

    def instances(
        self,
        datastore_id: str,
        study_uid: str,
        series_uid: str | None,
        pairs: Sequence[tuple[str, str]],
        base: str,
    ) -> list[DicomJson]:
        """Instances of a series (or of a whole study) matching the query, by Instance Number."""
        query: QidoQuery = parse_query(Level.INSTANCE, pairs)
        _uid("StudyInstanceUID", study_uid)
        if series_uid is not None:
            _uid("SeriesInstanceUID", series_uid)
        operation = "SearchDICOMInstances" if series_uid is not None else "SearchDICOMStudyInstances"
        visible = guard.row_filter(operation, datastore_id=datastore_id, study_uid=study_uid, series_uid=series_uid)

        def work(uow: UnitOfWork) -> tuple[list[InstanceRow], list[SeriesRow]]:
            found = uow.catalog.search_instances(
                datastore_id, study_uid, series_uid, query.conditions, query.offset, query.limit
            )
            return _known(uow, datastore_id, found), (
                uow.catalog.series_of_study(datastore_id, study_uid) if found else []
            )

        found, series = self._index.run(work, readonly=True)
        by_key = {(row.image_set_id, row.series.series_uid): row for row in series}
        answers = Answers(query, base)
        return [
            answers.instance(row, by_key)
            for row in found
            if visible is None or visible(row.instance.study_uid, row.instance.series_uid)
        ]
