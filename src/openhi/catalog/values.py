"""The stored value of a searchable attribute on a catalog row, normalized as ``catalog.query`` matches it.

The memory index matches these values with ``query.matches``; the SQL index stores the same values in its
columns (``<column>_norm`` for person names), so both answer alike.
"""

from __future__ import annotations

from openhi.catalog.model import CatalogInstance, CatalogSeries, CatalogStudy
from openhi.catalog.query import Attribute, Kind, StoredValue, normalize_name


def _name(value: str | None) -> str | None:
    return None if value is None else normalize_name(value)


def study_value(study: CatalogStudy, attribute: Attribute) -> StoredValue:
    """The value of a study-level attribute of a study row."""
    if attribute.column == "study_uid":
        return study.study_uid
    if attribute.column == "modalities":
        return study.modalities
    value: str | None = getattr(study.fields, attribute.column)
    return _name(value) if attribute.kind is Kind.PERSON_NAME else value


def series_value(series: CatalogSeries, attribute: Attribute) -> StoredValue:
    """The value of a series-level attribute of a series row."""
    value: str | int | None = getattr(series, attribute.column)
    return value


def instance_value(instance: CatalogInstance, attribute: Attribute) -> StoredValue:
    """The value of an instance-level (or carried series-level) attribute of an instance row."""
    value: str | int | tuple[int, ...] | None = getattr(instance, attribute.column)
    return value
