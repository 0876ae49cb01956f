"""SearchImageSets criteria (pure parsing), the in-memory evaluation against a brute force, and the use case.

The guide's examples 1-4 (guide 4725-4990) parse; every malformed criteria raises ValidationError and nothing
else (hypothesis, on structured and on arbitrary input); the memory index answers exactly what a brute-force
filter and sort over the same random image sets answers, page by page; the service binds tokens to the
criteria and shapes DICOMTags.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from openhi.api.aws.search_handlers import SearchHandlers
from openhi.datastores.model import Datastore, DatastoreStatus, LosslessStorageFormat
from openhi.dicom.normalize import GroupingKey
from openhi.errors import NotFoundError, ValidationError
from openhi.imagesets.model import ImageSet, ImageSetState, ImageSetSummary, ImageSetWorkflowStatus
from openhi.imagesets.search import ImageSetSearch
from openhi.index.memory import MemoryIndex
from openhi.search.criteria import (
    Operator,
    SearchCursor,
    SearchField,
    SortField,
    SortOrder,
    parse_criteria,
    study_datetime_key,
)
from openhi.search.tokens import TokenCodec

T0 = datetime(2024, 3, 11, 22, 0, 5, 74000, tzinfo=UTC)
STORE = "d" * 32


def at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


# -- the guide's examples ----------------------------------------------------------------------------------


def test_guide_example_1_equal_patient_id() -> None:
    query = parse_criteria({"filters": [{"values": [{"DICOMPatientId": "SUBJECT08701"}], "operator": "EQUAL"}]})
    [condition] = query.conditions
    assert (condition.field, condition.operator, condition.lower) == (
        SearchField.PATIENT_ID,
        Operator.EQUAL,
        "SUBJECT08701",
    )
    assert (query.sort.field, query.sort.order) == (SortField.UPDATED_AT, SortOrder.DESC)


def test_guide_example_2_between_study_date_and_time() -> None:
    bounds = [
        {"DICOMStudyDateAndTime": {"DICOMStudyDate": "19900101", "DICOMStudyTime": "000000"}},
        {"DICOMStudyDateAndTime": {"DICOMStudyDate": "20230101", "DICOMStudyTime": "000000"}},
    ]
    [condition] = parse_criteria({"filters": [{"values": bounds, "operator": "BETWEEN"}]}).conditions
    assert (condition.lower, condition.upper) == ("19900101000000.000000", "20230101000000.000000")
    assert condition.matches("19991122140728.000000")
    assert not condition.matches(None)
    sdk = [  # the C++ / Java examples: time with milliseconds, and no time at all
        {"DICOMStudyDateAndTime": {"DICOMStudyDate": "19990101", "DICOMStudyTime": "000000.000"}},
        {"DICOMStudyDateAndTime": {"DICOMStudyDate": "20240501"}},
    ]
    [condition] = parse_criteria({"filters": [{"values": sdk, "operator": "BETWEEN"}]}).conditions
    assert (condition.lower, condition.upper) == ("19990101000000.000000", "20240501000000.000000")


def test_guide_examples_3_and_4_between_created_and_updated_with_sort() -> None:
    created = [{"createdAt": at("1985-04-12T23:20:50.52Z")}, {"createdAt": at("2022-04-12T23:20:50.52Z")}]
    [condition] = parse_criteria({"filters": [{"values": created, "operator": "BETWEEN"}]}).conditions
    assert condition.field is SearchField.CREATED_AT
    criteria = {
        "filters": [
            {
                "values": [
                    {"updatedAt": at("2024-03-11T15:00:05.074000-07:00")},
                    {"updatedAt": at("2024-03-11T16:00:05.074000-07:00")},
                ],
                "operator": "BETWEEN",
            },
            {"values": [{"DICOMSeriesInstanceUID": "1.2.840.99999999.84710745.943275268089"}], "operator": "EQUAL"},
        ],
        "sort": {"sortField": "updatedAt", "sortOrder": "ASC"},
    }
    query = parse_criteria(criteria)
    assert [c.field for c in query.conditions] == [SearchField.UPDATED_AT, SearchField.SERIES_INSTANCE_UID]
    assert (query.sort.field, query.sort.order) == (SortField.UPDATED_AT, SortOrder.ASC)
    assert query.conditions[0].matches(T0)  # 15:00:05.074-07:00 is 22:00:05.074Z
    assert parse_criteria(None) == parse_criteria({}) == parse_criteria({"filters": []})


# -- refusals ----------------------------------------------------------------------------------------------


def dt(day: str, time: str | None = None) -> dict[str, Any]:
    return {"DICOMStudyDateAndTime": {"DICOMStudyDate": day} | ({"DICOMStudyTime": time} if time is not None else {})}


INVALID: list[tuple[str, Any, str]] = [
    (
        "EQUAL with 2 values",
        {"operator": "EQUAL", "values": [{"DICOMPatientId": "a"}, {"DICOMPatientId": "b"}]},
        "EQUAL takes exactly 1",
    ),
    ("BETWEEN with 1 value", {"operator": "BETWEEN", "values": [{"createdAt": T0}]}, "BETWEEN takes exactly 2"),
    (
        "BETWEEN of two attributes",
        {"operator": "BETWEEN", "values": [{"createdAt": T0}, {"updatedAt": T0}]},
        "use one attribute",
    ),
    (
        "BETWEEN on patient id",
        {"operator": "BETWEEN", "values": [{"DICOMPatientId": "a"}, {"DICOMPatientId": "b"}]},
        "not supported for DICOMPatientId",
    ),
    (
        "BETWEEN on isPrimary",
        {"operator": "BETWEEN", "values": [{"isPrimary": False}, {"isPrimary": True}]},
        "not supported for isPrimary",
    ),
    (
        "bounds reversed",
        {"operator": "BETWEEN", "values": [{"createdAt": T0}, {"createdAt": T0 - timedelta(1)}]},
        "lower bound is after",
    ),
    ("dates reversed", {"operator": "BETWEEN", "values": [dt("20230101"), dt("19900101")]}, "lower bound is after"),
    (
        "times reversed",
        {"operator": "BETWEEN", "values": [dt("20230101", "1200"), dt("20230101", "1159")]},
        "lower bound",
    ),
    ("date with dashes", {"operator": "EQUAL", "values": [dt("2023-01-01")]}, "YYYYMMDD"),
    ("not a calendar date", {"operator": "EQUAL", "values": [dt("20230230")]}, "YYYYMMDD"),
    ("yyMMdd date", {"operator": "EQUAL", "values": [dt("230101")]}, "YYYYMMDD"),
    ("empty date", {"operator": "EQUAL", "values": [dt("")]}, "YYYYMMDD"),
    ("hour 24", {"operator": "EQUAL", "values": [dt("20230101", "240000")]}, "HHMMSS"),
    ("time with colons", {"operator": "EQUAL", "values": [dt("20230101", "12:00:00")]}, "HHMMSS"),
    ("seven fraction digits", {"operator": "EQUAL", "values": [dt("20230101", "120000.1234567")]}, "HHMMSS"),
    ("odd time", {"operator": "EQUAL", "values": [dt("20230101", "120")]}, "HHMMSS"),
    ("unknown operator", {"operator": "LIKE", "values": [{"DICOMPatientId": "a"}]}, "not EQUAL or BETWEEN"),
    (
        "two attributes in one value",
        {"operator": "EQUAL", "values": [{"DICOMPatientId": "a", "DICOMStudyId": "b"}]},
        "exactly one attribute",
    ),
    ("unknown attribute", {"operator": "EQUAL", "values": [{"PatientName": "a"}]}, "not a searchable attribute"),
    ("no values", {"operator": "EQUAL", "values": []}, "1 or 2"),
    ("naive time", {"operator": "EQUAL", "values": [{"createdAt": datetime(2024, 1, 1)}]}, "timestamp"),
    ("string flag", {"operator": "EQUAL", "values": [{"isPrimary": "true"}]}, "boolean"),
]


@pytest.mark.parametrize(("label", "item", "words"), INVALID, ids=[i[0] for i in INVALID])
def test_malformed_filters_are_refused_with_a_reason(label: str, item: Any, words: str) -> None:
    with pytest.raises(ValidationError, match=words) as caught:
        parse_criteria({"filters": [{"operator": "EQUAL", "values": [{"isPrimary": True}]}, item]})
    assert caught.value.field is not None
    assert caught.value.field.startswith("searchCriteria.filters.2"), label


def test_malformed_sort_and_shape_are_refused() -> None:
    for criteria in (
        {"sort": {"sortField": "patientName", "sortOrder": "ASC"}},
        {"sort": {"sortField": "updatedAt"}},
        {"sort": {"sortField": "updatedAt", "sortOrder": "UP"}},
        {"filters": [{"operator": "EQUAL", "values": [{"isPrimary": True}]}] * 3},
        {"filters": "all"},
        {"extra": 1},
    ):
        with pytest.raises(ValidationError):
            parse_criteria(criteria)


def test_study_datetime_key_reads_stored_values_leniently() -> None:
    assert study_datetime_key("19991122", "140728") == "19991122140728.000000"
    assert study_datetime_key("19991122", None) == "19991122000000.000000"
    assert study_datetime_key("19991122", "14") == "19991122140000.000000"
    assert study_datetime_key("19991122", "14:07:28.5") == "19991122140728.500000"
    assert study_datetime_key("19991122", "140728.123456789") == "19991122140728.123456"
    assert study_datetime_key(" 19991122 ", "garbage") == "19991122000000.000000"
    assert study_datetime_key("1999-11-22", "140728") is None
    assert study_datetime_key("19990231", "140728") is None
    assert study_datetime_key(None, "140728") is None


def test_summary_from_a_metadata_document() -> None:
    document = {
        "Patient": {"DICOM": {"PatientName": "Melissa844^Huel628", "PatientBirthDate": "19201120", "PatientSex": "F"}},
        "Study": {
            "DICOM": {"StudyDescription": "UNKNOWN", "StudyTime": "140728", "StudyDate": "19991122"},
            "Series": {
                "1.2.1": {"DICOM": {"Modality": "CT", "BodyPartExamined": "CHEST"}, "Instances": {"a": {}, "b": {}}},
                "1.2.2": {"DICOM": {"Modality": "SR", "BodyPartExamined": None}, "Instances": {"c": {}}},
            },
        },
    }
    summary = ImageSetSummary.from_document(document, "1.2.2")
    assert summary == ImageSetSummary("Melissa844^Huel628", "19201120", "F", "UNKNOWN", "140728", "SR", None, 3)
    assert ImageSetSummary.from_document(document).series_modality == "CT"
    assert ImageSetSummary.from_document({}).is_empty


# -- property: only ValidationError ------------------------------------------------------------------------

ATTRIBUTES = [f.value for f in SearchField] + ["PatientName", ""]
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.text(max_size=12),
    st.sampled_from(["20240101", "19991122", "000000", "1200", "2024-01-01", "EQUAL", "BETWEEN", "ASC", "DESC"]),
    st.datetimes(timezones=st.just(UTC)),
    st.datetimes(),
)
values = st.one_of(
    st.dictionaries(st.sampled_from(ATTRIBUTES), scalars, max_size=2),
    st.dictionaries(
        st.just("DICOMStudyDateAndTime"),
        st.dictionaries(st.sampled_from(["DICOMStudyDate", "DICOMStudyTime", "x"]), scalars, max_size=3),
        min_size=1,
        max_size=1,
    ),
    scalars,
)
filters = st.one_of(
    st.fixed_dictionaries(
        {"operator": st.sampled_from(["EQUAL", "BETWEEN", "equal", None]), "values": st.lists(values, max_size=3)}
    ),
    st.dictionaries(st.sampled_from(["operator", "values", "other"]), scalars, max_size=3),
)
criteria_strategy = st.one_of(
    st.fixed_dictionaries(
        {},
        optional={
            "filters": st.lists(filters, max_size=3),
            "sort": st.dictionaries(
                st.sampled_from(["sortField", "sortOrder", "x"]),
                st.sampled_from([*[f.value for f in SortField], "ASC", "DESC", "name", None]),
                max_size=3,
            ),
        },
    ),
    st.recursive(
        scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
)


@given(criteria_strategy)
@settings(max_examples=400)
def test_any_input_parses_or_raises_validation_error_only(criteria: Any) -> None:
    try:
        query = parse_criteria(criteria)
    except ValidationError as exc:
        message = exc.message
    else:
        assert len(query.conditions) <= 2
        assert len(query.digest()) == 32
        return
    assert message.startswith("Invalid search criteria")


# -- property: the memory index agrees with a brute force --------------------------------------------------

PATIENTS = ["P1", "P2", None]
STUDIES = ["1.1", "1.2", None]
DATES = ["20240101", "20240102", "19991231", "2024-01-01", None]
TIMES = ["000000", "120000", "235959", None]


@st.composite
def image_sets(draw: st.DrawFn) -> ImageSet:
    created = T0 + timedelta(minutes=draw(st.integers(0, 4)))
    return ImageSet(
        datastore_id=STORE,
        image_set_id=draw(st.text("0123456789abcdef", min_size=32, max_size=32)),
        version_id=1,
        state=draw(st.sampled_from(list(ImageSetState))),
        workflow_status=ImageSetWorkflowStatus.CREATED,
        is_primary=draw(st.booleans()),
        created_at=created,
        updated_at=created + timedelta(minutes=draw(st.integers(0, 3))),
        grouping=GroupingKey(
            study_date=draw(st.sampled_from(DATES)),
            accession_number=draw(st.sampled_from(["A1", "A2", None])),
            patient_id=draw(st.sampled_from(PATIENTS)),
            study_instance_uid=draw(st.sampled_from(STUDIES)),
            study_id=draw(st.sampled_from(["S1", None])),
            series_instance_uid=draw(st.sampled_from(["1.1.1", "1.1.2", None])),
            series_number=None,
        ),
        summary=ImageSetSummary(study_time=draw(st.sampled_from(TIMES)), instance_count=1),
    )


TEXT = {
    "DICOMPatientId": "patient_id",
    "DICOMAccessionNumber": "accession_number",
    "DICOMStudyId": "study_id",
    "DICOMStudyInstanceUID": "study_instance_uid",
    "DICOMSeriesInstanceUID": "series_instance_uid",
}


@st.composite
def valid_filters(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from([*TEXT, "isPrimary", "DICOMStudyDateAndTime", "createdAt", "updatedAt"]))
    if kind in TEXT:
        return {"operator": "EQUAL", "values": [{kind: draw(st.sampled_from(["P1", "A2", "S1", "1.1", "1.1.2", ""]))}]}
    if kind == "isPrimary":
        return {"operator": "EQUAL", "values": [{kind: draw(st.booleans())}]}
    if kind == "DICOMStudyDateAndTime":
        pool = [(d, t) for d in ("19991231", "20240101", "20240102") for t in ("000000", "120000", None)]
        low, high = sorted(
            draw(st.lists(st.sampled_from(pool), min_size=2, max_size=2)), key=lambda p: p[0] + (p[1] or "0")
        )
        return {"operator": "BETWEEN", "values": [dt(*low), dt(*high)]}
    low, high = sorted(T0 + timedelta(minutes=m) for m in draw(st.lists(st.integers(0, 7), min_size=2, max_size=2)))
    if draw(st.booleans()):
        return {"operator": "EQUAL", "values": [{kind: low}]}
    return {"operator": "BETWEEN", "values": [{kind: low}, {kind: high}]}


def brute_value(image_set: ImageSet, name: str) -> Any:
    if name in TEXT:
        return getattr(image_set.grouping, TEXT[name])
    if name == "isPrimary":
        return image_set.is_primary
    if name in ("createdAt", "updatedAt"):
        return image_set.created_at if name == "createdAt" else image_set.updated_at
    day = image_set.grouping.study_date
    if day is None or not day.isdigit():
        return None
    return day + (image_set.summary.study_time if image_set.summary and image_set.summary.study_time else "000000")


def brute_bound(value: dict[str, Any], name: str) -> Any:
    raw = value[name]
    if name == "DICOMStudyDateAndTime":
        return raw["DICOMStudyDate"] + raw.get("DICOMStudyTime", "000000")
    return raw


def brute_force(all_sets: list[ImageSet], criteria: dict[str, Any]) -> list[str]:
    found = []
    for image_set in all_sets:
        if image_set.state is ImageSetState.DELETED:
            continue
        keep = True
        for item in criteria.get("filters", []):
            name = next(iter(item["values"][0]))
            mine = brute_value(image_set, name)
            bounds = [brute_bound(v, name) for v in item["values"]]
            keep &= mine is not None and (mine == bounds[0] if len(bounds) == 1 else bounds[0] <= mine <= bounds[1])
        if keep:
            found.append(image_set)
    sort = criteria.get("sort", {"sortField": "updatedAt", "sortOrder": "DESC"})
    key = {"updatedAt": "updatedAt", "createdAt": "createdAt"}.get(sort["sortField"], "DICOMStudyDateAndTime")
    descending = sort["sortOrder"] == "DESC"
    dated = sorted(
        (s for s in found if brute_value(s, key) is not None), key=lambda s: (brute_value(s, key), s.image_set_id)
    )
    undated = sorted((s for s in found if brute_value(s, key) is None), key=lambda s: s.image_set_id)
    if descending:
        dated.reverse()
        undated.reverse()
    return [s.image_set_id for s in dated + undated]


def memory_index(all_sets: list[ImageSet]) -> MemoryIndex:
    index = MemoryIndex()
    datastore = Datastore(STORE, "s", DatastoreStatus.ACTIVE, LosslessStorageFormat.HTJ2K, T0, T0, "token")

    def work(uow: Any) -> None:
        uow.datastores.add(datastore)
        for image_set in all_sets:
            uow.image_sets.add(image_set)

    index.run(work)
    return index


@given(
    st.lists(image_sets(), max_size=14, unique_by=lambda s: s.image_set_id),
    st.lists(valid_filters(), max_size=2),
    st.one_of(
        st.none(),
        st.fixed_dictionaries(
            {"sortField": st.sampled_from([f.value for f in SortField]), "sortOrder": st.sampled_from(["ASC", "DESC"])}
        ),
    ),
    st.integers(1, 5),
)
@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
def test_memory_search_agrees_with_brute_force_page_by_page(
    all_sets: list[ImageSet], chosen: list[dict[str, Any]], sort: dict[str, str] | None, page_size: int
) -> None:
    criteria: dict[str, Any] = {"filters": chosen} | ({"sort": sort} if sort else {})
    query = parse_criteria(criteria)
    index = memory_index(all_sets)
    expected = brute_force(all_sets, criteria)
    assert [s.image_set_id for s in index.run(lambda uow: uow.image_sets.search(STORE, query, None, 100))] == expected
    served: list[str] = []
    after: SearchCursor | None = None

    def next_page(cursor: SearchCursor | None) -> list[ImageSet]:
        return index.run(lambda uow: uow.image_sets.search(STORE, query, cursor, page_size))

    while page := next_page(after):
        served += [s.image_set_id for s in page]
        last = page[-1]
        value = {SortField.UPDATED_AT: last.updated_at, SortField.CREATED_AT: last.created_at}.get(
            query.sort.field, last.study_datetime
        )
        after = SearchCursor(value, last.image_set_id)
    assert served == expected


@given(st.lists(valid_filters(), min_size=2, max_size=2))
def test_the_digest_ignores_filter_order(chosen: list[dict[str, Any]]) -> None:
    assert parse_criteria({"filters": chosen}).digest() == parse_criteria({"filters": chosen[::-1]}).digest()


# -- the use case over the memory index --------------------------------------------------------------------


def _search_service(count: int) -> tuple[ImageSetSearch, list[ImageSet]]:
    sets = [
        ImageSet(
            datastore_id=STORE,
            image_set_id=f"{n:032x}",
            version_id=n + 1,
            state=ImageSetState.LOCKED if n == 2 else ImageSetState.ACTIVE,
            workflow_status=ImageSetWorkflowStatus.CREATED,
            is_primary=n != 4,
            created_at=T0,
            updated_at=T0 + timedelta(seconds=n // 2),
            grouping=GroupingKey("19991122", "ACC", "SUBJECT08701", "1.2.840.1", "2011201407", f"1.2.840.1.{n}", "7"),
            summary=ImageSetSummary("Melissa844 Huel628", "19201120", "F", "UNKNOWN", "140728", "CT", "CHEST", 2),
        )
        for n in range(count)
    ]
    return ImageSetSearch(memory_index(sets), TokenCodec(b"s" * 32)), sets


def test_the_service_pages_with_tokens_bound_to_the_criteria() -> None:
    service, _ = _search_service(7)
    criteria = {"filters": [{"operator": "EQUAL", "values": [{"DICOMPatientId": "SUBJECT08701"}]}]}
    first = service.search(STORE, criteria, None, 3)
    assert first.next_token is not None
    assert [h.image_set.image_set_id for h in first.hits] == [f"{n:032x}" for n in (6, 5, 4)]
    second = service.search(STORE, criteria, first.next_token, 3)
    third = service.search(STORE, criteria, second.next_token, 3)
    assert third.next_token is None
    assert [h.image_set.image_set_id for h in second.hits + third.hits] == [f"{n:032x}" for n in (3, 2, 1, 0)]
    with pytest.raises(ValidationError, match="nextToken"):
        service.search(
            STORE, {"filters": [{"operator": "EQUAL", "values": [{"DICOMPatientId": "x"}]}]}, first.next_token, 3
        )
    with pytest.raises(ValidationError, match="nextToken"):
        service.search(STORE, None, "garbage", 3)
    with pytest.raises(ValidationError, match="maxResults"):
        service.search(STORE, None, None, 51)
    with pytest.raises(NotFoundError):
        service.search("e" * 32, None, None, None)
    assert [h.study_series for h in first.hits] == [6, 6, 6]  # image set 4 is not primary
    assert [h.study_instances for h in first.hits] == [12, 12, 12]


def test_the_handler_shapes_summaries_like_the_guide() -> None:
    service, _ = _search_service(1)
    response = SearchHandlers(service).search_image_sets({"datastoreId": STORE})
    assert response["sort"] == {"sortField": "updatedAt", "sortOrder": "DESC"}
    assert response["nextToken"] is None
    [summary] = response["imageSetsMetadataSummaries"]
    assert summary["version"] == 1
    assert summary["isPrimary"] is True
    assert summary["storageTier"] == "FREQUENT_ACCESS"
    assert summary["DICOMTags"] == {
        "DICOMPatientId": "SUBJECT08701",
        "DICOMPatientName": "Melissa844 Huel628",
        "DICOMPatientBirthDate": "19201120",
        "DICOMPatientSex": "F",
        "DICOMStudyInstanceUID": "1.2.840.1",
        "DICOMStudyId": "2011201407",
        "DICOMStudyDescription": "UNKNOWN",
        "DICOMNumberOfStudyRelatedSeries": 1,
        "DICOMNumberOfStudyRelatedInstances": 2,
        "DICOMAccessionNumber": "ACC",
        "DICOMSeriesInstanceUID": "1.2.840.1.0",
        "DICOMSeriesModality": "CT",
        "DICOMSeriesBodyPart": "CHEST",
        "DICOMSeriesNumber": 7,
        "DICOMStudyDate": "19991122",
        "DICOMStudyTime": "140728",
    }


def test_an_image_set_without_summary_shows_its_grouping_only() -> None:
    service, sets = _search_service(1)
    bare = replace(sets[0], summary=None, grouping=replace(sets[0].grouping, series_number="x"))
    service._index.run(lambda uow: uow.image_sets.update(bare))
    [summary] = SearchHandlers(service).search_image_sets({"datastoreId": STORE})["imageSetsMetadataSummaries"]
    tags = {k: v for k, v in summary["DICOMTags"].items() if v is not None}
    assert set(tags) == {
        "DICOMPatientId",
        "DICOMStudyInstanceUID",
        "DICOMStudyId",
        "DICOMAccessionNumber",
        "DICOMSeriesInstanceUID",
        "DICOMStudyDate",
        "DICOMNumberOfStudyRelatedSeries",
        "DICOMNumberOfStudyRelatedInstances",
    }
    assert tags["DICOMNumberOfStudyRelatedInstances"] == 0
