"""QIDO-RS search conditions and their matching rules (PS3.4 C.2.2.2 as guide 2235-2260 narrows them).

A condition is one searchable attribute and one matcher. The matchers are the PS3.4 matching kinds the guide
lists: single value (``Exact``), list of UIDs (``AnyOf``), wildcard with ``*`` and ``?`` (``Wildcard``), range
of dates or times with open ends (``Between``), and the guide's fuzzy person-name matching (``Fuzzy``: each
word of the query is a case-insensitive prefix of some word of the name, guide 2246). Universal matching is no
condition at all. ``matches`` is the reference semantics: the memory index applies it row by row, and the SQL
index is contract-tested against it.

Stored and query values are normalized the same way, by the functions here:
- person names (PN) match case-insensitively (PS3.4 C.2.2.2.1 allows it for PN): both sides are casefolded;
- times (TM) are padded to ``HHMMSS.ffffff`` so that text order is time order; an upper range bound is padded
  with the largest value of each missing component (``12`` means up to ``125959.999999``);
- multi-valued attributes (ModalitiesInStudy, WarningReason) match when any one value does; for them ``*``
  means "has at least one value" (WarningReason searches by wildcard, guide 2640).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from enum import StrEnum


class Level(StrEnum):
    """The QIDO-RS query levels."""

    STUDY = "study"
    SERIES = "series"
    INSTANCE = "instance"


class Kind(StrEnum):
    """How an attribute's values are matched."""

    TEXT = "text"
    PERSON_NAME = "person_name"
    UID = "uid"
    DATE = "date"
    TIME = "time"
    NUMBER = "number"
    MULTI = "multi"  # several code strings (ModalitiesInStudy)
    CODES = "codes"  # several decimal codes (WarningReason)


@dataclass(frozen=True)
class Attribute:
    """A searchable attribute: its tag, keyword, matching kind and the catalog column it is stored in."""

    tag: int
    keyword: str
    kind: Kind
    level: Level
    column: str


def _a(tag: int, keyword: str, kind: Kind, level: Level, column: str) -> Attribute:
    return Attribute(tag, keyword, kind, level, column)


_S, _R, _I = Level.STUDY, Level.SERIES, Level.INSTANCE

# Guide 2560-2575 (studies), 2600-2605 (series), 2635-2640 (instances); plus the PS3.18 Table 10.6.1-5
# required keys the guide does not list (SeriesNumber, PerformedProcedureStepStartDate/Time, InstanceNumber)
# and SeriesDescription, which viewers filter on.
ATTRIBUTES: tuple[Attribute, ...] = (
    _a(0x00080020, "StudyDate", Kind.DATE, _S, "study_date"),
    _a(0x00080030, "StudyTime", Kind.TIME, _S, "study_time"),
    _a(0x00080050, "AccessionNumber", Kind.TEXT, _S, "accession_number"),
    _a(0x00080061, "ModalitiesInStudy", Kind.MULTI, _S, "modalities"),
    _a(0x00080090, "ReferringPhysicianName", Kind.PERSON_NAME, _S, "referring_physician_name"),
    _a(0x00081030, "StudyDescription", Kind.TEXT, _S, "study_description"),
    _a(0x00100010, "PatientName", Kind.PERSON_NAME, _S, "patient_name"),
    _a(0x00100020, "PatientID", Kind.TEXT, _S, "patient_id"),
    _a(0x00100030, "PatientBirthDate", Kind.DATE, _S, "patient_birth_date"),
    _a(0x00100032, "PatientBirthTime", Kind.TIME, _S, "patient_birth_time"),
    _a(0x0020000D, "StudyInstanceUID", Kind.UID, _S, "study_uid"),
    _a(0x00200010, "StudyID", Kind.TEXT, _S, "study_id"),
    _a(0x00080060, "Modality", Kind.TEXT, _R, "modality"),
    _a(0x0020000E, "SeriesInstanceUID", Kind.UID, _R, "series_uid"),
    _a(0x00200011, "SeriesNumber", Kind.NUMBER, _R, "series_number"),
    _a(0x0008103E, "SeriesDescription", Kind.TEXT, _R, "series_description"),
    _a(0x00400244, "PerformedProcedureStepStartDate", Kind.DATE, _R, "pps_start_date"),
    _a(0x00400245, "PerformedProcedureStepStartTime", Kind.TIME, _R, "pps_start_time"),
    _a(0x00080016, "SOPClassUID", Kind.UID, _I, "sop_class_uid"),
    _a(0x00080018, "SOPInstanceUID", Kind.UID, _I, "sop_uid"),
    _a(0x00200013, "InstanceNumber", Kind.NUMBER, _I, "instance_number"),
    _a(0x00081196, "WarningReason", Kind.CODES, _I, "warning_reasons"),
)
BY_TAG = {attribute.tag: attribute for attribute in ATTRIBUTES}

# What each query level may filter on: instance queries also take the series attributes the instance rows carry
# (the relational /studies/{uid}/instances search, PS3.18 10.6.1.2.3).
SEARCHABLE: dict[Level, frozenset[str]] = {
    Level.STUDY: frozenset(a.keyword for a in ATTRIBUTES if a.level is Level.STUDY),
    Level.SERIES: frozenset(a.keyword for a in ATTRIBUTES if a.level is Level.SERIES),
    Level.INSTANCE: frozenset(a.keyword for a in ATTRIBUTES if a.level is Level.INSTANCE)
    | {"Modality", "SeriesInstanceUID", "SeriesNumber"},
}


# -- matchers ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Exact:
    """Single value matching (PS3.4 C.2.2.2.1): equal to the normalized value."""

    value: str | int


@dataclass(frozen=True)
class AnyOf:
    """List of UID matching (PS3.4 C.2.2.2.2), also used for several modalities or warning codes."""

    values: tuple[str | int, ...]


@dataclass(frozen=True)
class Wildcard:
    """Wild card matching (PS3.4 C.2.2.2.4): ``*`` any sequence (also empty), ``?`` any one character."""

    pattern: str


@dataclass(frozen=True)
class Between:
    """Range matching (PS3.4 C.2.2.2.5) of normalized dates or times; a missing end is open."""

    low: str | None
    high: str | None


@dataclass(frozen=True)
class Fuzzy:
    """The guide's fuzzy person-name matching (guide 2246): every word is a prefix of some word of the name."""

    words: tuple[str, ...]


type Matcher = Exact | AnyOf | Wildcard | Between | Fuzzy


@dataclass(frozen=True)
class Condition:
    """One attribute and how it must match."""

    attribute: Attribute
    matcher: Matcher


# -- normalization (shared by stored values and query values) -------------------------------------------------

_WORD_SPLIT = re.compile(r"[\s\^=,]+")
_TIME = re.compile(r"([0-9]{2})(?::?([0-9]{2})(?::?([0-9]{2})(?:\.([0-9]{1,6}))?)?)?")
_LEGACY_DATE = re.compile(r"([0-9]{4})\.([0-9]{2})\.([0-9]{2})")


def normalize_name(value: str) -> str:
    """A person name as matched: NFKC, casefolded, surrounding spaces removed."""
    return unicodedata.normalize("NFKC", value).casefold().strip()


def name_words(normalized: str) -> tuple[str, ...]:
    """The words of a normalized name: split on component (``^``), group (``=``) separators, spaces, commas."""
    return tuple(word for word in _WORD_SPLIT.split(normalized) if word)


def normalize_date(value: str) -> str:
    """A DA value as stored: ``YYYYMMDD`` (the ACR-NEMA ``YYYY.MM.DD`` form is rewritten), else unchanged."""
    text = value.strip()
    legacy = _LEGACY_DATE.fullmatch(text)
    return "".join(legacy.groups()) if legacy else text


def normalize_time(value: str, *, upper: bool = False) -> str | None:
    """A TM value padded to ``HHMMSS.ffffff`` (lowest, or with ``upper`` highest, of what it leaves open)."""
    match = _TIME.fullmatch(value.strip())
    if match is None:
        return None
    hours, minutes, seconds, fraction = match.groups()
    fill = ("59", "59", "999999") if upper else ("00", "00", "000000")
    if fraction is not None:
        fraction = fraction.ljust(6, "9" if upper else "0")
    return f"{hours}{minutes or fill[0]}{seconds or fill[1]}.{fraction or fill[2]}"


def stored_time(value: str) -> str:
    """A TM value as stored: normalized when it parses, else unchanged (and then it only matches itself)."""
    return normalize_time(value) or value.strip()


# -- reference semantics -----------------------------------------------------------------------------------------

type StoredValue = str | int | tuple[str, ...] | tuple[int, ...] | None


def wildcard_regex(pattern: str, *, any_char: str = ".") -> str:
    """The anchored-free regex body of a wildcard pattern: ``*`` -> ``any*``, ``?`` -> ``any``, others literal.

    Literals are escaped with a backslash when they are not alphanumeric, a form Python's ``re`` and
    PostgreSQL's regular expressions read the same way.
    """
    out = []
    for char in pattern:
        if char == "*":
            out.append(f"{any_char}*")
        elif char == "?":
            out.append(any_char)
        elif char.isalnum():
            out.append(char)
        else:
            out.append("\\" + char)
    return "".join(out)


def _one(matcher: Matcher, value: str | int) -> bool:
    if isinstance(matcher, Exact):
        return value == matcher.value
    if isinstance(matcher, AnyOf):
        return value in matcher.values
    if isinstance(matcher, Wildcard):
        return re.fullmatch(wildcard_regex(matcher.pattern), str(value), re.DOTALL) is not None
    if isinstance(matcher, Between):
        text = str(value)
        return (matcher.low is None or text >= matcher.low) and (matcher.high is None or text <= matcher.high)
    words = name_words(str(value))
    return all(any(word.startswith(prefix) for word in words) for prefix in matcher.words)


def matches(condition: Condition, value: StoredValue) -> bool:
    """Whether a stored value (normalized as above; a tuple for multi-valued attributes) matches."""
    if value is None:
        return False
    if isinstance(value, tuple):
        return any(_one(condition.matcher, item) for item in value)
    return _one(condition.matcher, value)
