"""``MemoryCatalogRepository``: the QIDO-RS catalog over ``MemoryState``, the reference of the SQL adapter.

A plain scan of the data store's rows: every condition is checked with ``catalog.query.matches`` on the
row's stored value (``catalog.values``), the matches are sorted with ``catalog.order`` and cut at
``offset`` / ``limit``. Study rows are rebuilt from the series rows whenever an image set changes
(``catalog.derive.aggregate_study``), exactly as the SQL adapter does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from openhi.catalog import order
from openhi.catalog.derive import aggregate_study
from openhi.catalog.model import CatalogStudy, ImageSetCatalog, InstanceRow, SeriesRow
from openhi.catalog.query import Condition, matches
from openhi.catalog.values import instance_value, series_value, study_value
from openhi.errors import ConflictError
from openhi.imagesets.model import ImageSetState
from openhi.index import memory_counters
from openhi.index.memory_state import MemoryState, utc


def _page[T](rows: list[T], offset: int, limit: int) -> list[T]:
    return rows[max(offset, 0) : max(offset, 0) + max(limit, 0)]


@dataclass(frozen=True)
class MemoryCatalogRepository:
    """``DicomCatalogRepository`` over the state."""

    state: MemoryState

    def _studies_of(self, datastore_id: str, image_set_id: str) -> set[str]:
        return {
            row.series.study_uid
            for (owner, of, _), row in self.state.catalog_series.items()
            if owner == datastore_id and of == image_set_id
        }

    def _drop(self, datastore_id: str, image_set_id: str) -> None:
        for key in [k for k in self.state.catalog_series if k[:2] == (datastore_id, image_set_id)]:
            del self.state.catalog_series[key]
        for key4 in [k for k in self.state.catalog_instances if k[:2] == (datastore_id, image_set_id)]:
            del self.state.catalog_instances[key4]
        self.state.catalog_versions.pop((datastore_id, image_set_id), None)

    def _refresh(self, datastore_id: str, study_uids: set[str]) -> None:
        for study_uid in study_uids:
            rows = [
                row
                for (owner, _, _), row in self.state.catalog_series.items()
                if owner == datastore_id and row.series.study_uid == study_uid
            ]
            study = aggregate_study(datastore_id, study_uid, rows)
            if study is None:
                self.state.catalog_studies.pop((datastore_id, study_uid), None)
            else:
                self.state.catalog_studies[(datastore_id, study_uid)] = study

    def put_image_set(
        self, datastore_id: str, image_set_id: str, version_id: int, catalog: ImageSetCatalog, updated_at: datetime
    ) -> None:
        if datastore_id not in self.state.datastores:
            raise ConflictError(f"Data store {datastore_id} is not in the index")
        touched = self._studies_of(datastore_id, image_set_id) | set(catalog.study_uids)
        before = memory_counters.catalog_usage(self.state, datastore_id, image_set_id, touched)
        self._drop(datastore_id, image_set_id)
        at = utc(updated_at)
        for series in catalog.series:
            key = (datastore_id, image_set_id, series.series_uid)
            self.state.catalog_series[key] = SeriesRow(datastore_id, image_set_id, series, at)
        for instance in catalog.instances:
            key4 = (datastore_id, image_set_id, instance.series_uid, instance.sop_uid)
            self.state.catalog_instances[key4] = InstanceRow(datastore_id, image_set_id, instance)
        self.state.catalog_versions[(datastore_id, image_set_id)] = version_id
        self._refresh(datastore_id, touched)
        memory_counters.record_catalog(self.state, datastore_id, image_set_id, touched, before)

    def remove_image_set(self, datastore_id: str, image_set_id: str) -> None:
        touched = self._studies_of(datastore_id, image_set_id)
        before = memory_counters.catalog_usage(self.state, datastore_id, image_set_id, touched)
        self._drop(datastore_id, image_set_id)
        self._refresh(datastore_id, touched)
        memory_counters.record_catalog(self.state, datastore_id, image_set_id, touched, before)

    def uncataloged(self, limit: int) -> list[tuple[str, str, int]]:
        found = sorted(
            (owner, image_set_id, row.version_id)
            for (owner, image_set_id), row in self.state.image_sets.items()
            if row.is_primary
            and row.state != ImageSetState.DELETED
            and self.state.catalog_versions.get((owner, image_set_id), 0) < row.version_id
        )
        return found[: max(limit, 0)]

    def search_studies(
        self, datastore_id: str, conditions: Sequence[Condition], offset: int, limit: int
    ) -> list[CatalogStudy]:
        found = [
            study
            for (owner, _), study in self.state.catalog_studies.items()
            if owner == datastore_id and all(matches(c, study_value(study, c.attribute)) for c in conditions)
        ]
        found.sort(key=order.study_key, reverse=True)
        return _page(found, offset, limit)

    def search_series(
        self, datastore_id: str, study_uid: str, conditions: Sequence[Condition], offset: int, limit: int
    ) -> list[SeriesRow]:
        found = [
            row
            for row in self.series_of_study(datastore_id, study_uid)
            if all(matches(c, series_value(row.series, c.attribute)) for c in conditions)
        ]
        return _page(found, offset, limit)

    def search_instances(
        self,
        datastore_id: str,
        study_uid: str,
        series_uid: str | None,
        conditions: Sequence[Condition],
        offset: int,
        limit: int,
    ) -> list[InstanceRow]:
        found = [
            row
            for (owner, _, of_series, _), row in self.state.catalog_instances.items()
            if owner == datastore_id
            and row.instance.study_uid == study_uid
            and (series_uid is None or of_series == series_uid)
            and all(matches(c, instance_value(row.instance, c.attribute)) for c in conditions)
        ]
        found.sort(key=order.instance_key)
        return _page(found, offset, limit)

    def series_of_study(self, datastore_id: str, study_uid: str) -> list[SeriesRow]:
        found = [
            row
            for (owner, _, _), row in self.state.catalog_series.items()
            if owner == datastore_id and row.series.study_uid == study_uid
        ]
        return sorted(found, key=order.series_key)
