"""QIDO-RS query parsing (guide 2235-2330, PS3.18 §8.3.4): keys, values per kind, includefield, paging."""

from __future__ import annotations

import pytest

from openhi.catalog.query import AnyOf, Between, Exact, Fuzzy, Level, Wildcard
from openhi.dicomweb.qido.params import parse_query
from openhi.errors import BadRequestError


def _matcher(level: Level, key: str, value: str, *extra: tuple[str, str]) -> object:
    query = parse_query(level, [(key, value), *extra])
    return query.conditions[0].matcher if query.conditions else None


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("PatientID", "11235813", Exact("11235813")),
        ("00100020", "11235813", Exact("11235813")),
        ("00100020", " 11235813 ", Exact("11235813")),
        ("PatientID", "200965981???", Wildcard("200965981???")),
        ("StudyDescription", "*Nuclear*", Wildcard("*Nuclear*")),
        ("StudyDescription", "*", None),
        ("StudyDescription", "", None),
        ("StudyDate", "20130509", Exact("20130509")),
        ("00080020", "20000101-20001231", Between("20000101", "20001231")),
        ("StudyDate", "-20200101", Between(None, "20200101")),
        ("StudyDate", "20200101-", Between("20200101", None)),
        ("StudyDate", "2020.01.01", Exact("20200101")),
        ("StudyTime", "10", Between("100000.000000", "105959.999999")),
        ("StudyTime", "1030-1100", Between("103000.000000", "110059.999999")),
        ("StudyTime", "10:30:15.5-", Between("103015.500000", None)),
        ("StudyInstanceUID", "1.2.3", Exact("1.2.3")),
        ("StudyInstanceUID", "1.2.3\\1.2.4", AnyOf(("1.2.3", "1.2.4"))),
        ("StudyInstanceUID", "1.2.3,1.2.4,1.2.3", AnyOf(("1.2.3", "1.2.4"))),
        ("PatientName", '"Thomas^Albert"', Exact("thomas^albert")),
        ("PatientName", "DOE*", Wildcard("doe*")),
        ("ModalitiesInStudy", "CT\\MR", AnyOf(("CT", "MR"))),
        ("ModalitiesInStudy", "CT", Exact("CT")),
        ("ModalitiesInStudy", "*", Wildcard("*")),
    ],
)
def test_study_values(key: str, value: str, expected: object) -> None:
    assert _matcher(Level.STUDY, key, value) == expected


def test_fuzzy_person_names_match_by_words() -> None:
    matcher = _matcher(Level.STUDY, "PatientName", '"Thomas^Albert"', ("fuzzymatching", "true"))
    assert matcher == Fuzzy(("thomas", "albert"))
    # a wildcard keeps its meaning with fuzzy matching on
    assert _matcher(Level.STUDY, "PatientName", "Tho*", ("fuzzymatching", "true")) == Wildcard("tho*")


@pytest.mark.parametrize(
    ("level", "key", "value", "expected"),
    [
        (Level.SERIES, "00080060", "CT", Exact("CT")),
        (Level.SERIES, "SeriesNumber", "3", Exact(3)),
        (Level.SERIES, "SeriesInstanceUID", "1.2.3.4", Exact("1.2.3.4")),
        (Level.INSTANCE, "WarningReason", "1", Exact(1)),
        (Level.INSTANCE, "00081196", "1\\5", AnyOf((1, 5))),
        (Level.INSTANCE, "WarningReason", "*", Wildcard("*")),
        (Level.INSTANCE, "SOPClassUID", "1.2.840.10008.5.1.4.1.1.2", Exact("1.2.840.10008.5.1.4.1.1.2")),
        (Level.INSTANCE, "InstanceNumber", "7", Exact(7)),
        (Level.INSTANCE, "Modality", "MR", Exact("MR")),
    ],
)
def test_series_and_instance_values(level: Level, key: str, value: str, expected: object) -> None:
    assert _matcher(level, key, value) == expected


@pytest.mark.parametrize(
    ("level", "pairs", "message"),
    [
        (Level.STUDY, [("Modality", "CT")], "not searchable in a study search"),
        (Level.STUDY, [("NoSuchKeyword", "x")], "Unknown query parameter"),
        (Level.STUDY, [("00400275.00401001", "x")], "inside sequences"),
        (Level.STUDY, [("PatientID", "a"), ("00100020", "b")], "more than once"),
        (Level.STUDY, [("StudyDate", "2020-01-01")], "dates YYYYMMDD"),
        (Level.STUDY, [("StudyDate", "20201301")], "dates YYYYMMDD"),
        (Level.STUDY, [("StudyDate", "20210101-20200101")], "ends before it starts"),
        (Level.STUDY, [("StudyDate", "2020*")], "not a wildcard"),
        (Level.STUDY, [("StudyTime", "2500")], "times"),
        (Level.STUDY, [("StudyInstanceUID", "1.2.*")], "UIDs"),
        (Level.STUDY, [("limit", "1001")], "limit must be an integer from 1 to 1000"),
        (Level.STUDY, [("limit", "0")], "limit"),
        (Level.STUDY, [("limit", "ten")], "limit"),
        (Level.STUDY, [("offset", "9001")], "offset must be an integer from 0 to 9000"),
        (Level.STUDY, [("offset", "-1")], "offset"),
        (Level.STUDY, [("fuzzymatching", "yes")], "fuzzymatching must be true or false"),
        (Level.STUDY, [("includefield", ",".join(f"0010{n:04X}" for n in range(51)))], "At most 50"),
        (Level.SERIES, [("SeriesNumber", "one")], "integer"),
        (Level.SERIES, [("PatientName", "x")], "not searchable in a series search"),
        (Level.INSTANCE, [("WarningReason", "abc")], "WarningReason"),
    ],
)
def test_bad_queries_are_400_with_a_clear_message(level: Level, pairs: list[tuple[str, str]], message: str) -> None:
    with pytest.raises(BadRequestError, match=message):
        parse_query(level, pairs)


def test_paging_defaults_and_limits() -> None:
    query = parse_query(Level.STUDY, [])
    assert (query.limit, query.offset) == (1000, 0)
    query = parse_query(Level.STUDY, [("limit", "1000"), ("offset", "9000")])
    assert (query.limit, query.offset) == (1000, 9000)


def test_includefield_forms() -> None:
    query = parse_query(
        Level.STUDY,
        [
            ("includefield", "00101081"),
            ("includefield", "PatientWeight,00081030"),
            ("includefield", "00080096.00080100"),
            ("includefield", "00081115.00081199.00081150"),
            ("includefield", "00101081"),  # duplicates collapse
            ("includefield", "NoSuchKeyword"),  # ignored (guide 2306)
            ("includefield", "00191001"),
            ("00190010", "Philips"),
        ],
    )
    assert not query.include_all
    assert query.include == {
        0x00101081: None,
        0x00101030: None,
        0x00081030: None,
        0x00080096: {0x00080100: None},
        0x00081115: {0x00081199: {0x00081150: None}},
        0x00191001: None,
    }
    assert query.creators == {0x00190010: "Philips"}
    assert parse_query(Level.STUDY, [("includefield", "all"), ("includefield", "00101081")]).include_all


def test_fifty_includefields_are_allowed() -> None:
    values = ",".join(f"0010{n:04X}" for n in range(50))
    assert len(parse_query(Level.STUDY, [("includefield", values)]).include) == 50


def test_matching_keys_are_returned_too() -> None:
    query = parse_query(Level.STUDY, [("PatientBirthTime", "")])
    assert query.conditions == ()
    assert 0x00100032 in query.include
