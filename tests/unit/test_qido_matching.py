"""QIDO-RS matching: the memory catalog answers what a brute-force scan of the documents answers (hypothesis),
plus the rules of guide 2235-2260 on examples (wildcards, ranges, UID lists, fuzzy person names)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.support.catalog_docs import DS, brute_studies, catalog_index, document, instance, series

from openhi.catalog.query import Level
from openhi.dicomweb.qido.params import parse_query
from openhi.index.memory import MemoryIndex

NAMES = ["Thomas^Albert", "thomas", "DOE^JOHN", "Doe^Jane^Q", "Müller^Jürgen", "O'Neil^Ann", "Albertson^Tom"]
DESCRIPTIONS = ["Nuclear Med", "CT Chest", "Brain MRI", "nuclear", "Chest*x", "Pelvis?"]
MODALITIES = ["CT", "MR", "PT", "US", "SR"]
DATES = ["20200101", "20200229", "20211231", "19991231", "2020.06.15"]
TIMES = ["1030", "103015.5", "235959", "00", "120000.000001"]


@st.composite
def documents(draw: st.DrawFn) -> list[dict[str, Any]]:
    count = draw(st.integers(1, 8))
    docs = []
    for n in range(count):
        study_uid = f"1.2.{draw(st.integers(0, 4))}"
        patient = {
            key: draw(st.sampled_from(values))
            for key, values in (("PatientName", NAMES), ("PatientID", ["P1", "P2", "p1", "P10"]))
            if draw(st.booleans())
        }
        study = {
            key: draw(st.sampled_from(values))
            for key, values in (
                ("StudyDate", DATES),
                ("StudyTime", TIMES),
                ("StudyDescription", DESCRIPTIONS),
                ("AccessionNumber", ["A1", "A2", "ACC-3"]),
                ("ReferringPhysicianName", NAMES),
            )
            if draw(st.booleans())
        }
        modality = draw(st.sampled_from([*MODALITIES, None]))
        series_uid = f"{study_uid}.{n}"
        docs.append(
            document(
                study_uid,
                [series(series_uid, [instance(f"{series_uid}.1", 1)], modality=modality)],
                patient=patient,
                study=study,
            )
        )
    return docs


QUERY_VALUES = {
    "PatientName": ["thomas", "THOM*", "*albert*", "Doe^J???", "doe*", "*", "müller*", '"Thomas^Albert"', "tom"],
    "PatientID": ["P1", "p1", "P?", "P*", "*1"],
    "StudyDescription": ["*Nuclear*", "nuclear", "Chest*", "*x", "*Pelvis*"],
    "StudyDate": ["20200101", "20200101-20211231", "-20200101", "20200615-", "19991231-19991231"],
    "StudyTime": ["10", "1030-1100", "-0100", "2359-", "103015.5"],
    "ModalitiesInStudy": ["CT", "CT\\MR", "C*", "*", "?T"],
    "AccessionNumber": ["A1", "A*", "ACC-?"],
    "ReferringPhysicianName": ["thomas*", "*^*"],
    "StudyInstanceUID": ["1.2.1", "1.2.1\\1.2.3", "1.2.0,1.2.4"],
}


@st.composite
def queries(draw: st.DrawFn) -> list[tuple[str, str]]:
    keys = draw(st.lists(st.sampled_from(sorted(QUERY_VALUES)), max_size=3, unique=True))
    pairs = [(key, draw(st.sampled_from(QUERY_VALUES[key]))) for key in keys]
    if draw(st.booleans()):
        pairs.append(("fuzzymatching", "true"))
    return pairs


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(docs=documents(), pairs=queries())
def test_memory_catalog_answers_what_a_scan_of_the_documents_answers(
    docs: list[dict[str, Any]], pairs: list[tuple[str, str]]
) -> None:
    query = parse_query(Level.STUDY, pairs)
    index = catalog_index(docs)
    found = index.run(lambda uow: uow.catalog.search_studies(DS, query.conditions, 0, 1000))
    assert [study.study_uid for study in found] == brute_studies(docs, query.conditions)


def _uids(index: MemoryIndex, pairs: list[tuple[str, str]]) -> set[str]:
    query = parse_query(Level.STUDY, pairs)
    return {s.study_uid for s in index.run(lambda uow: uow.catalog.search_studies(DS, query.conditions, 0, 1000))}


@pytest.fixture
def named() -> MemoryIndex:
    names = ["Thomas^Albert", "thomas", "Albert", "Thomas Albert", "hom^ber", "Thomasina^Alberta"]
    return catalog_index(
        [
            document(f"1.9.{n}", [series(f"1.9.{n}.1", [instance(f"1.9.{n}.1.1", 1)])], patient={"PatientName": name})
            for n, name in enumerate(names)
        ]
    )


def test_fuzzy_matching_is_a_case_insensitive_word_prefix_match(named: MemoryIndex) -> None:
    # guide 2246: "Thomas^Albert" matches thomas, Albert, Thomas Albert, Thomas^Albert -- not hom or ber
    fuzzy = [("fuzzymatching", "true")]
    assert _uids(named, [*fuzzy, ("PatientName", '"Thomas^Albert"')]) == {"1.9.0", "1.9.3", "1.9.5"}
    assert _uids(named, [*fuzzy, ("PatientName", "thom")]) == {"1.9.0", "1.9.1", "1.9.3", "1.9.5"}
    assert _uids(named, [*fuzzy, ("PatientName", "albert")]) == {"1.9.0", "1.9.2", "1.9.3", "1.9.5"}
    assert _uids(named, [*fuzzy, ("PatientName", "hom")]) == {"1.9.4"}
    assert _uids(named, [*fuzzy, ("PatientName", "ber")]) == {"1.9.4"}
    assert _uids(named, [*fuzzy, ("PatientName", "omas")]) == set()


def test_without_fuzzy_matching_a_name_matches_whole_case_insensitively(named: MemoryIndex) -> None:
    assert _uids(named, [("PatientName", "thomas^albert")]) == {"1.9.0"}
    assert _uids(named, [("PatientName", "thom")]) == set()
    assert _uids(named, [("PatientName", "Thom*")]) == {"1.9.0", "1.9.1", "1.9.3", "1.9.5"}
    assert _uids(named, [("PatientName", "*bert")]) == {"1.9.0", "1.9.2", "1.9.3"}
    assert _uids(named, [("PatientName", "Thomas?Albert")]) == {"1.9.0", "1.9.3"}
