"""The orders QIDO-RS answers in (guide 2226-2228), as sort keys over catalog rows (the memory index's sort).

Studies: last update descending, ties by Study Instance UID descending. Series: Series Number ascending, series
without a number last, then Series Instance UID and image set id. Instances: Series Number, Series Instance
UID, Instance Number ascending (none last), then SOP Instance UID and image set id.
"""

from __future__ import annotations

from datetime import datetime

from openhi.catalog.model import CatalogStudy, InstanceRow, SeriesRow


def study_key(study: CatalogStudy) -> tuple[datetime, str]:
    """Sort key of a study; sort with ``reverse=True``."""
    return study.updated_at, study.study_uid


def series_key(row: SeriesRow) -> tuple[bool, int, str, str]:
    """Sort key of a series row (ascending)."""
    number = row.series.series_number
    return number is None, number or 0, row.series.series_uid, row.image_set_id


def instance_key(row: InstanceRow) -> tuple[bool, int, str, bool, int, str, str]:
    """Sort key of an instance row (ascending)."""
    instance = row.instance
    series_number, number = instance.series_number, instance.instance_number
    return (
        series_number is None,
        series_number or 0,
        instance.series_uid,
        number is None,
        number or 0,
        instance.sop_uid,
        row.image_set_id,
    )
