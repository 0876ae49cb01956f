"""SearchImageSets criteria: the validated ``searchCriteria`` member -> a ``SearchQuery`` (pure).

Guide 4407-5624 and the model shapes SearchCriteria / SearchFilter / SearchByAttributeValue / Sort. The
model leaves the semantics to the documentation, which says little; OpenHI's rules:

- **Filters** (1..2) are combined with AND. Each filter has an ``operator`` and 1..2 ``values``; every value
  is a ``SearchByAttributeValue`` union naming one attribute.
- **EQUAL** takes exactly one value. It is allowed on every attribute. Text attributes (DICOMPatientId,
  DICOMAccessionNumber, DICOMStudyId, DICOMStudyInstanceUID, DICOMSeriesInstanceUID) compare exactly (case
  and spaces count) with the values stored at import; an empty string matches nothing (empty DICOM values are
  stored as absent). ``isPrimary`` compares the flag; createdAt / updatedAt compare the instant (to the
  microsecond); DICOMStudyDateAndTime compares the normalized study date and time (below).
- **BETWEEN** takes exactly two values of the same attribute, "(lowerBound, upperBound)" in that order
  (guide 4414), both bounds inclusive, lower <= upper. It is allowed on the ordered attributes only:
  DICOMStudyDateAndTime, createdAt, updatedAt. A range over an identifier (patient id, UIDs ...) or over a
  flag is meaningless and refused with ValidationException.
- **DICOMStudyDateAndTime**: ``DICOMStudyDate`` is a DICOM DA value, ``YYYYMMDD`` and a real calendar date;
  ``DICOMStudyTime`` is optional, a DICOM TM value ``HH[MM[SS[.F{1,6}]]]`` (the model documents
  ``HHmmss.FFFFFF``); absent or empty it is 00:00 (guide 4849: "DICOMStudyTime is optional; when absent,
  12:00 AM ... is the time value used for filtering"). Both become the sortable key
  ``YYYYMMDDHHMMSS.ffffff`` (``study_datetime_key``), the form the index stores for every image set whose
  Study Date is a valid DA (image sets without one never match a study date filter).
- **Sort** defaults to ``updatedAt`` DESC (guide 4416). Ties are broken by image set id in the same
  direction, so pages are stable. Sorting by DICOMStudyDateAndTime puts image sets without a study date last,
  in either direction.

Any other shape (wrong operator for the attribute, wrong number of values, values of two attributes in one
BETWEEN, malformed dates, lower > upper, unknown members) raises ``ValidationError`` naming the filter; no
other exception escapes ``parse_criteria``, whatever the input.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from openhi.errors import ValidationError

type SearchValue = str | bool | datetime


class SearchField(StrEnum):
    """The attributes of ``SearchByAttributeValue`` (wire names)."""

    PATIENT_ID = "DICOMPatientId"
    ACCESSION_NUMBER = "DICOMAccessionNumber"
    STUDY_ID = "DICOMStudyId"
    STUDY_INSTANCE_UID = "DICOMStudyInstanceUID"
    SERIES_INSTANCE_UID = "DICOMSeriesInstanceUID"
    STUDY_DATE_AND_TIME = "DICOMStudyDateAndTime"
    CREATED_AT = "createdAt"
    UPDATED_AT = "updatedAt"
    IS_PRIMARY = "isPrimary"


class Operator(StrEnum):
    """Model enum ``Operator``."""

    EQUAL = "EQUAL"
    BETWEEN = "BETWEEN"


class SortField(StrEnum):
    """Model enum ``SortField``."""

    UPDATED_AT = "updatedAt"
    CREATED_AT = "createdAt"
    STUDY_DATE_AND_TIME = "DICOMStudyDateAndTime"


class SortOrder(StrEnum):
    """Model enum ``SortOrder``."""

    ASC = "ASC"
    DESC = "DESC"


TEXT_FIELDS = frozenset(
    {
        SearchField.PATIENT_ID,
        SearchField.ACCESSION_NUMBER,
        SearchField.STUDY_ID,
        SearchField.STUDY_INSTANCE_UID,
        SearchField.SERIES_INSTANCE_UID,
    }
)
RANGE_FIELDS = frozenset({SearchField.STUDY_DATE_AND_TIME, SearchField.CREATED_AT, SearchField.UPDATED_AT})
TIME_FIELDS = frozenset({SearchField.CREATED_AT, SearchField.UPDATED_AT})

_DATE = re.compile(r"[0-9]{8}")
_TIME = re.compile(r"(?P<h>[0-9]{2})(?:(?P<m>[0-9]{2})(?:(?P<s>[0-9]{2})(?:\.(?P<f>[0-9]{1,6}))?)?)?")


@dataclass(frozen=True)
class Condition:
    """One filter: ``field`` between ``lower`` and ``upper`` inclusive (EQUAL: both the same value)."""

    field: SearchField
    operator: Operator
    lower: SearchValue
    upper: SearchValue

    def matches(self, value: SearchValue | None) -> bool:
        """Whether an image set whose attribute is ``value`` passes this filter (None never does)."""
        if value is None:
            return False
        if isinstance(self.lower, bool) or isinstance(value, bool):
            return value is self.lower
        if self.operator is Operator.EQUAL:
            return value == self.lower
        return self.lower <= value <= self.upper  # type: ignore[operator]


@dataclass(frozen=True)
class Sort:
    """Sort field and order (the response echoes it)."""

    field: SortField = SortField.UPDATED_AT
    order: SortOrder = SortOrder.DESC


@dataclass(frozen=True)
class SearchQuery:
    """Parsed criteria: conditions combined with AND, and the sort."""

    conditions: tuple[Condition, ...] = ()
    sort: Sort = Sort()

    def matches(self, attributes: Mapping[SearchField, SearchValue | None]) -> bool:
        """Whether an image set with these attribute values passes every condition."""
        return all(condition.matches(attributes.get(condition.field)) for condition in self.conditions)

    def canonical(self) -> str:
        """A stable text form (conditions in a fixed order), for binding pagination tokens to the query."""
        conditions = sorted(
            [c.field.value, c.operator.value, _plain(c.lower), _plain(c.upper)] for c in self.conditions
        )
        body = {"c": conditions, "s": [self.sort.field.value, self.sort.order.value]}
        return json.dumps(body, separators=(",", ":"), sort_keys=True)

    def digest(self) -> str:
        """32 hex digits of SHA-256 over ``canonical()``."""
        return hashlib.sha256(self.canonical().encode()).hexdigest()[:32]


@dataclass(frozen=True)
class SearchCursor:
    """Keyset position after the last image set served: its sort value and id."""

    value: str | datetime | None
    image_set_id: str


def _plain(value: SearchValue) -> str | bool:
    return value.isoformat() if isinstance(value, datetime) else value


# -- study date and time ------------------------------------------------------------------------------------


def _valid_date(text: str) -> bool:
    if _DATE.fullmatch(text) is None:
        return False
    try:
        date(int(text[:4]), int(text[4:6]), int(text[6:]))
    except ValueError:
        return False
    return True


def _time_key(text: str) -> str | None:
    """``HHMMSS.ffffff`` for a DICOM TM value (HH, HHMM, HHMMSS, HHMMSS.F{1,6}), or None when malformed."""
    found = _TIME.fullmatch(text)
    if found is None:
        return None
    hours, minutes, seconds = found["h"], found["m"] or "00", found["s"] or "00"
    if int(hours) > 23 or int(minutes) > 59 or int(seconds) > 60:  # PS3.5 TM: 60 for a leap second
        return None
    return f"{hours}{minutes}{seconds}.{(found['f'] or '').ljust(6, '0')}"


def study_datetime_key(study_date: str | None, study_time: str | None) -> str | None:
    """The index's sortable ``YYYYMMDDHHMMSS.ffffff`` for stored Study Date / Study Time values.

    Lenient, since it reads whatever was imported: None unless the date is a valid ``YYYYMMDD``; a time that
    is absent or malformed counts as 00:00 (``HH:MM:SS`` of old ACR-NEMA data is read without its colons;
    fractions beyond microseconds are cut).
    """
    if study_date is None or not _valid_date(study_date.strip()):
        return None
    text = (study_time or "").strip().replace(":", "")
    head, dot, fraction = text.partition(".")
    return study_date.strip() + (_time_key(head + dot + fraction[:6]) or "000000.000000")


def _parse_study_date_and_time(value: object, where: str) -> str:
    if not isinstance(value, Mapping) or set(value) - {"DICOMStudyDate", "DICOMStudyTime"}:
        raise _invalid(where, "DICOMStudyDateAndTime must be an object with DICOMStudyDate and DICOMStudyTime")
    day = value.get("DICOMStudyDate")
    if not isinstance(day, str) or not _valid_date(day):
        raise _invalid(where, f"DICOMStudyDate {_shown(day)} is not a valid date in YYYYMMDD format")
    moment = value.get("DICOMStudyTime")
    if moment is None or moment == "":
        return f"{day}000000.000000"
    key = _time_key(moment) if isinstance(moment, str) else None
    if key is None:
        raise _invalid(where, f"DICOMStudyTime {_shown(moment)} is not a valid time in HHMMSS.FFFFFF format")
    return day + key


# -- parsing ----------------------------------------------------------------------------------------------


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _invalid(where: str, problem: str) -> ValidationError:
    path = f"searchCriteria.{where}" if where else "searchCriteria"
    return ValidationError(f"Invalid search criteria: {path}: {problem}", field=path)


def _value(item: object, where: str) -> tuple[SearchField, SearchValue]:
    if not isinstance(item, Mapping) or len(item) != 1:
        raise _invalid(where, "each value must set exactly one attribute")
    [(name, raw)] = item.items()
    try:
        field = SearchField(name)
    except ValueError:
        raise _invalid(where, f"{_shown(name)} is not a searchable attribute") from None
    if field is SearchField.STUDY_DATE_AND_TIME:
        return field, _parse_study_date_and_time(raw, where)
    if field in TIME_FIELDS:
        if not isinstance(raw, datetime) or raw.utcoffset() is None:
            raise _invalid(where, f"{field.value} must be a timestamp")
        return field, raw
    if field is SearchField.IS_PRIMARY:
        if not isinstance(raw, bool):
            raise _invalid(where, "isPrimary must be a boolean")
        return field, raw
    if not isinstance(raw, str):
        raise _invalid(where, f"{field.value} must be a string")
    return field, raw


def _condition(item: object, where: str) -> Condition:
    if not isinstance(item, Mapping) or set(item) - {"operator", "values"}:
        raise _invalid(where, "a filter is an object with an operator and values")
    try:
        operator = Operator(str(item.get("operator")))
    except ValueError:
        raise _invalid(where, f"operator {_shown(item.get('operator'))} is not EQUAL or BETWEEN") from None
    values = item.get("values")
    if not isinstance(values, list) or not values:
        raise _invalid(where, "values must be a list of 1 or 2 attribute values")
    parsed = [_value(value, f"{where}.values.{n + 1}") for n, value in enumerate(values)]
    field = parsed[0][0]
    if operator is Operator.EQUAL:
        if len(parsed) != 1:
            raise _invalid(where, f"EQUAL takes exactly 1 value, got {len(parsed)}")
        return Condition(field, operator, parsed[0][1], parsed[0][1])
    if len(parsed) != 2:
        raise _invalid(where, f"BETWEEN takes exactly 2 values (lowerBound, upperBound), got {len(parsed)}")
    if parsed[1][0] is not field:
        raise _invalid(where, f"the two BETWEEN values name {field.value} and {parsed[1][0].value}; use one attribute")
    if field not in RANGE_FIELDS:
        raise _invalid(
            where,
            f"BETWEEN is not supported for {field.value}; use it with DICOMStudyDateAndTime, createdAt, updatedAt",
        )
    lower, upper = parsed[0][1], parsed[1][1]
    if lower > upper:  # type: ignore[operator]
        raise _invalid(where, "the lower bound is after the upper bound; give BETWEEN as (lowerBound, upperBound)")
    return Condition(field, operator, lower, upper)


def _sort(value: object) -> Sort:
    if value is None:
        return Sort()
    if not isinstance(value, Mapping) or set(value) != {"sortField", "sortOrder"}:
        raise _invalid("sort", "sort must have exactly sortField and sortOrder")
    try:
        return Sort(SortField(value["sortField"]), SortOrder(value["sortOrder"]))
    except ValueError:
        raise _invalid(
            "sort", f"{_shown(value['sortField'])} / {_shown(value['sortOrder'])} is not a valid sort field / order"
        ) from None


def parse_criteria(criteria: Mapping[str, Any] | None) -> SearchQuery:
    """The query for a validated ``searchCriteria`` member (None: every image set, newest update first)."""
    if criteria is None:
        return SearchQuery()
    if not isinstance(criteria, Mapping) or set(criteria) - {"filters", "sort"}:
        raise _invalid("", "searchCriteria may hold filters and sort only")
    filters = criteria.get("filters")
    if filters is None:
        filters = []
    if not isinstance(filters, list) or len(filters) > 2:
        raise _invalid("filters", "filters must be a list of at most 2 filters")
    conditions = tuple(_condition(item, f"filters.{n + 1}") for n, item in enumerate(filters))
    return SearchQuery(conditions, _sort(criteria.get("sort")))
