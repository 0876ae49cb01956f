"""SearchImageSets over ``MemoryState``: the reference the SQL adapter is contract-tested against.

A plain scan: every not deleted image set of the data store whose attributes pass ``SearchQuery.matches``,
ordered as the port says (sort value, then id, in the sort direction; undated image sets last when sorting
by study date and time), cut after the cursor.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from openhi.imagesets.model import ImageSet, ImageSetState
from openhi.index.memory_state import MemoryState
from openhi.search.criteria import SearchCursor, SearchField, SearchQuery, SearchValue, SortField, SortOrder


def attributes(image_set: ImageSet) -> dict[SearchField, SearchValue | None]:
    """The searchable attributes of an image set."""
    grouping = image_set.grouping
    return {
        SearchField.PATIENT_ID: grouping.patient_id,
        SearchField.ACCESSION_NUMBER: grouping.accession_number,
        SearchField.STUDY_ID: grouping.study_id,
        SearchField.STUDY_INSTANCE_UID: grouping.study_instance_uid,
        SearchField.SERIES_INSTANCE_UID: grouping.series_instance_uid,
        SearchField.STUDY_DATE_AND_TIME: image_set.study_datetime,
        SearchField.CREATED_AT: image_set.created_at,
        SearchField.UPDATED_AT: image_set.updated_at,
        SearchField.IS_PRIMARY: image_set.is_primary,
    }


def sort_value(image_set: ImageSet, field: SortField) -> str | datetime | None:
    """The value an image set is sorted by."""
    if field is SortField.UPDATED_AT:
        return image_set.updated_at
    if field is SortField.CREATED_AT:
        return image_set.created_at
    return image_set.study_datetime


def _after(image_set: ImageSet, field: SortField, descending: bool, cursor: SearchCursor) -> bool:
    value = sort_value(image_set, field)
    if cursor.value is None:  # in the undated tail: only undated rows further along by id
        return value is None and (
            image_set.image_set_id < cursor.image_set_id if descending else image_set.image_set_id > cursor.image_set_id
        )
    if value is None:  # the undated tail follows every dated row
        return True
    mine, theirs = (value, image_set.image_set_id), (cursor.value, cursor.image_set_id)
    return mine < theirs if descending else mine > theirs


def search(
    state: MemoryState, datastore_id: str, query: SearchQuery, after: SearchCursor | None, limit: int
) -> list[ImageSet]:
    """One page of matches (see the module docstring)."""
    field, descending = query.sort.field, query.sort.order is SortOrder.DESC
    matches = [
        image_set
        for (owner, image_set_id), row in state.image_sets.items()
        if owner == datastore_id
        and row.state != ImageSetState.DELETED
        and query.matches(attributes(image_set := row.image_set(owner, image_set_id)))
    ]
    dated = [m for m in matches if sort_value(m, field) is not None]
    undated = [m for m in matches if sort_value(m, field) is None]
    dated.sort(key=lambda m: (sort_value(m, field), m.image_set_id), reverse=descending)
    undated.sort(key=lambda m: m.image_set_id, reverse=descending)
    ordered = dated + undated
    if after is not None:
        ordered = [m for m in ordered if _after(m, field, descending, after)]
    return ordered[: max(limit, 0)]


def study_counts(state: MemoryState, datastore_id: str, study_uids: Sequence[str]) -> dict[str, tuple[int, int]]:
    """Study UID -> (distinct series, instances) over the primary, not deleted image sets of the data store."""
    wanted = set(study_uids)
    series: dict[str, set[str]] = {}
    instances: dict[str, int] = {}
    for (owner, _), row in state.image_sets.items():
        study = row.grouping.study_instance_uid
        if owner != datastore_id or study not in wanted or not row.is_primary or row.state == ImageSetState.DELETED:
            continue
        if row.grouping.series_instance_uid is not None:
            series.setdefault(study, set()).add(row.grouping.series_instance_uid)
        else:
            series.setdefault(study, set())
        instances[study] = instances.get(study, 0) + (row.summary.instance_count if row.summary else 0)
    return {study: (len(series[study]), instances[study]) for study in series}
