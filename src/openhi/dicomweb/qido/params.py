"""QIDO-RS query parameters -> a ``QidoQuery`` (guide 2235-2330, PS3.18 §8.3.4, PS3.4 C.2.2.2).

- Matching keys are a keyword (``PatientID``) or an 8-hex tag (``00100020``), each given at most once (a
  repeated UID, ModalitiesInStudy or WarningReason key adds values to its list), and
  must be searchable at the level (guide 2560-2640; ``catalog.query.SEARCHABLE``); anything else is a 400
  that names the searchable keys. A private creator key (``00190010=Philips``) declares the creator of the
  private tags asked for in ``includefield`` (guide 2318-2326). An empty value is universal matching.
- Values by kind: UIDs one or a list (``\\`` or ``,``); dates and times one value or a range ``a-b``, ``-b``,
  ``a-`` (DA ``YYYYMMDD``, TM ``HH[MM[SS[.F]]]``); numbers an integer; text and person names one value or a
  wildcard pattern (``*``, ``?``; a lone ``*`` is universal matching); ModalitiesInStudy and WarningReason one
  value, a list, or a pattern. Person names may be quoted (guide 2246) and, with ``fuzzymatching=true``,
  match by word prefixes.
- ``includefield``: repeated and/or comma-separated tags, keywords, ``all``, dotted sequence paths; at most 50
  (400 beyond); duplicates collapse; unknown names are ignored (guide 2300-2306).
- ``limit`` 1-1000 (default 1000), ``offset`` 0-9000 (guide 2249): 400 outside.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date

from openhi.catalog.query import (
    BY_TAG,
    SEARCHABLE,
    AnyOf,
    Attribute,
    Between,
    Condition,
    Exact,
    Fuzzy,
    Kind,
    Level,
    Matcher,
    Wildcard,
    name_words,
    normalize_date,
    normalize_name,
    normalize_time,
)
from openhi.dicom.json_values import is_private, key_to_tag
from openhi.dicom.uids import looks_like_uid
from openhi.errors import BadRequestError

DEFAULT_LIMIT = 1000
MAX_LIMIT = 1000
MAX_OFFSET = 9000
MAX_INCLUDEFIELDS = 50
RESERVED = ("limit", "offset", "fuzzymatching", "includefield")

_INTEGER = re.compile(r"[+-]?[0-9]+")
_CODE_PATTERN = re.compile(r"[0-9*?]+")
# Kinds whose values may be a list, so a repeated key (dicomweb-client sends lists so) adds to the list.
_LISTS = frozenset({Kind.UID, Kind.MULTI, Kind.CODES})

type IncludeTree = dict[int, IncludeTree | None]
"""Requested attributes: tag -> None for the whole element, or the tree of a sequence's item attributes."""


@dataclass(frozen=True)
class QidoQuery:
    """A parsed QIDO-RS request."""

    level: Level
    conditions: tuple[Condition, ...] = ()
    include_all: bool = False
    include: IncludeTree = field(default_factory=dict)
    creators: dict[int, str] = field(default_factory=dict)
    limit: int = DEFAULT_LIMIT
    offset: int = 0
    fuzzy: bool = False


def _bad(message: str) -> BadRequestError:
    return BadRequestError(message)


def _integer(name: str, text: str, low: int, high: int) -> int:
    if _INTEGER.fullmatch(text.strip()) is None or not low <= int(text) <= high:
        raise _bad(f"Query parameter {name} must be an integer from {low} to {high}, got {text!r}")
    return int(text)


def _tag(key: str) -> int | None:
    try:
        return key_to_tag(key.strip())
    except ValueError:
        return None


def is_private_creator(tag: int) -> bool:
    """A private creator element (gggg,0010-00FF with an odd group, PS3.5 7.8.1)."""
    return is_private(tag) and 0x10 <= (tag & 0xFFFF) <= 0xFF


def _wild(text: str) -> bool:
    return "*" in text or "?" in text


def _uids(attribute: Attribute, text: str) -> Matcher:
    values = tuple(part.strip() for part in re.split(r"[\\,]", text))
    for value in values:
        if not looks_like_uid(value):
            raise _bad(f"{attribute.keyword} takes UIDs (digits and dots, at most 64 characters), got {value!r}")
    unique = tuple(dict.fromkeys(values))
    return Exact(unique[0]) if len(unique) == 1 else AnyOf(unique)


def _date(attribute: Attribute, text: str) -> str:
    value = normalize_date(text)
    try:
        if not re.fullmatch(r"[0-9]{8}", value):
            raise ValueError(value)
        date(int(value[:4]), int(value[4:6]), int(value[6:]))
    except ValueError:
        raise _bad(f"{attribute.keyword} takes dates YYYYMMDD (or a range of them), got {text!r}") from None
    return value


def _time(attribute: Attribute, text: str, *, upper: bool) -> str:
    value = normalize_time(text, upper=upper)
    valid = value is not None and int(value[:2]) < 24 and int(value[2:4]) < 60 and int(value[4:6]) < 61
    if value is None or not valid:
        raise _bad(f"{attribute.keyword} takes times HH[MM[SS[.FFFFFF]]] (or a range of them), got {text!r}")
    return value


def _range_or_single(attribute: Attribute, text: str) -> Matcher:
    """DA / TM single value or range (PS3.4 C.2.2.2.5; open ends allowed)."""
    if _wild(text):
        raise _bad(f"{attribute.keyword} takes a value or a range, not a wildcard pattern: {text!r}")
    low_text, dash, high_text = text.partition("-")
    if attribute.kind is Kind.DATE:
        if not dash:
            return Exact(_date(attribute, text))
        if not low_text.strip() and not high_text.strip():
            raise _bad(f"{attribute.keyword}: a range needs at least one end, got {text!r}")
        low = _date(attribute, low_text) if low_text.strip() else None
        high = _date(attribute, high_text) if high_text.strip() else None
    else:
        if not dash:
            return Between(_time(attribute, text, upper=False), _time(attribute, text, upper=True))
        if not low_text.strip() and not high_text.strip():
            raise _bad(f"{attribute.keyword}: a range needs at least one end, got {text!r}")
        low = _time(attribute, low_text, upper=False) if low_text.strip() else None
        high = _time(attribute, high_text, upper=True) if high_text.strip() else None
    if low is not None and high is not None and low > high:
        raise _bad(f"{attribute.keyword}: the range {text!r} ends before it starts")
    return Between(low, high)


def _several(attribute: Attribute, text: str) -> Matcher | None:
    """ModalitiesInStudy / WarningReason: a value, a list (any matches) or a pattern."""
    parts = tuple(dict.fromkeys(part.strip() for part in re.split(r"[\\,]", text) if part.strip()))
    if not parts:
        return None
    if attribute.kind is Kind.CODES:
        if any(_CODE_PATTERN.fullmatch(part) is None for part in parts):
            raise _bad(f"WarningReason takes decimal warning codes or a pattern of them, got {text!r}")
    elif any("|" in part for part in parts):
        raise _bad(f"{attribute.keyword}: '|' is not a valid character, got {text!r}")
    if len(parts) == 1:
        part = parts[0]
        if _wild(part):
            return Wildcard(part)
        return Exact(int(part) if attribute.kind is Kind.CODES else part)
    if any(_wild(part) for part in parts):
        raise _bad(f"{attribute.keyword}: a list of values cannot hold wildcards, got {text!r}")
    return AnyOf(tuple(int(part) if attribute.kind is Kind.CODES else part for part in parts))


def parse_value(attribute: Attribute, raw: str, fuzzy: bool) -> Matcher | None:
    """The matcher of one attribute's value; None for universal matching."""
    text = raw.strip()
    if attribute.kind is Kind.PERSON_NAME and len(text) >= 2 and text[0] == text[-1] == '"':
        text = text[1:-1].strip()
    if attribute.kind in (Kind.MULTI, Kind.CODES):
        return _several(attribute, text)
    if text in ("", "*"):
        return None
    if attribute.kind is Kind.UID:
        return _uids(attribute, text)
    if attribute.kind in (Kind.DATE, Kind.TIME):
        return _range_or_single(attribute, text)
    if attribute.kind is Kind.NUMBER:
        if _INTEGER.fullmatch(text) is None or not -(2**31) <= int(text) < 2**31:
            raise _bad(f"{attribute.keyword} takes an integer, got {text!r}")
        return Exact(int(text))
    if attribute.kind is Kind.PERSON_NAME:
        normalized = normalize_name(text)
        if _wild(normalized):
            return Wildcard(normalized)
        if fuzzy:
            words = name_words(normalized)
            return Fuzzy(words) if words else None
        return Exact(normalized)
    return Wildcard(text) if _wild(text) else Exact(text)


def _include_path(item: str) -> list[int] | None:
    tags = [_tag(part) for part in item.split(".")]
    if not tags or any(tag is None for tag in tags):
        return None
    return [tag for tag in tags if tag is not None]


def _add_path(tree: IncludeTree, path: list[int]) -> None:
    head, rest = path[0], path[1:]
    if not rest:
        tree[head] = None
        return
    if head in tree and tree[head] is None:
        return  # the whole sequence is asked for already
    sub = tree.setdefault(head, {})
    assert sub is not None  # noqa: S101 - just made or found a sub-tree
    _add_path(sub, rest)


def parse_includefields(values: Sequence[str]) -> tuple[bool, IncludeTree]:
    """(``all`` asked, the tree of asked attributes) of every ``includefield`` value."""
    items = [item.strip() for value in values for item in value.split(",") if item.strip()]
    if len(items) > MAX_INCLUDEFIELDS:
        raise _bad(f"At most {MAX_INCLUDEFIELDS} includefield values are allowed, got {len(items)}")
    include_all = False
    tree: IncludeTree = {}
    for item in dict.fromkeys(items):
        if item.lower() == "all":
            include_all = True
            continue
        path = _include_path(item)
        if path is not None:  # guide 2306: invalid names are silently left out
            _add_path(tree, path)
    return include_all, tree


def _flag(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered not in ("true", "false"):
        raise _bad(f"fuzzymatching must be true or false, got {text!r}")
    return lowered == "true"


def parse_query(level: Level, pairs: Sequence[tuple[str, str]]) -> QidoQuery:
    """Parse the query string pairs of a search at ``level`` (raises BadRequestError, a 400)."""
    reserved: dict[str, list[str]] = {name: [] for name in RESERVED}
    matching: list[tuple[str, str]] = []
    for key, value in pairs:
        lowered = key.lower()
        (reserved[lowered].append(value) if lowered in reserved else matching.append((key, value)))
    for name in ("limit", "offset", "fuzzymatching"):
        if len(reserved[name]) > 1:
            raise _bad(f"Query parameter {name} is given more than once")
    fuzzy = _flag(reserved["fuzzymatching"][0]) if reserved["fuzzymatching"] else False
    limit = _integer("limit", reserved["limit"][0], 1, MAX_LIMIT) if reserved["limit"] else DEFAULT_LIMIT
    offset = _integer("offset", reserved["offset"][0], 0, MAX_OFFSET) if reserved["offset"] else 0
    include_all, include = parse_includefields(reserved["includefield"])
    conditions: list[Condition] = []
    creators: dict[int, str] = {}
    values: dict[int, tuple[str, list[str]]] = {}
    searchable = SEARCHABLE[level]
    for key, value in matching:
        if "." in key:
            raise _bad(f"Query key {key!r}: matching on attributes inside sequences is not supported")
        tag = _tag(key)
        if tag is None:
            raise _bad(f"Unknown query parameter {key!r}: not a DICOM keyword or an 8-hex-digit tag")
        values.setdefault(tag, (key, []))[1].append(value)
    for tag, (key, given) in values.items():
        if is_private_creator(tag):
            if len(given) > 1:
                raise _bad(f"Query parameter {key!r} is given more than once")
            creators[tag] = given[0].strip()
            continue
        attribute = BY_TAG.get(tag)
        if attribute is None or attribute.keyword not in searchable:
            raise _bad(
                f"{key} is not searchable in a {level.value} search; searchable attributes: "
                + ", ".join(sorted(searchable))
            )
        if len(given) > 1 and attribute.kind not in _LISTS:
            raise _bad(f"Query parameter {key!r} is given more than once")
        matcher = parse_value(attribute, ",".join(given), fuzzy)
        if matcher is not None:
            conditions.append(Condition(attribute, matcher))
        include.setdefault(tag, None)  # PS3.18 §8.3.4.1: matching attributes are returned
    return QidoQuery(
        level=level,
        conditions=tuple(conditions),
        include_all=include_all,
        include=include,
        creators=creators,
        limit=limit,
        offset=offset,
        fuzzy=fuzzy,
    )
