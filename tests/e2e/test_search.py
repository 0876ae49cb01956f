"""SearchImageSets end to end with unmodified boto3 and the AWS CLI, on both backends.

Four synthetic series are imported from a local folder; then the guide's four examples run (guide 4725-4990:
EQUAL DICOMPatientId; BETWEEN DICOMStudyDateAndTime; BETWEEN createdAt; EQUAL DICOMSeriesInstanceUID with
BETWEEN updatedAt sorted ASC), the paginator walks every page, and malformed criteria answer
ValidationException.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from tests.e2e.helpers import error_of, wait_for_status
from tests.e2e.import_helpers import run_job
from tests.support.dicom_corpus import SeriesSpec, ct_dataset, uid
from tests.support.server import ServerProcess

PATIENT = "SUBJECT08701"


@dataclass(frozen=True)
class Imported:
    """The module's data store and the image set of each series (by name)."""

    datastore_id: str
    image_sets: dict[str, str]
    series_uids: dict[str, str]
    before: datetime
    after: datetime


def write(folder: Path, spec: SeriesSpec, **attributes: object) -> None:
    """The series with some attributes replaced (None deletes one)."""
    target = folder / spec.series
    target.mkdir(parents=True, exist_ok=True)
    for index in range(spec.slices):
        ds = ct_dataset(spec, index)
        for keyword, value in attributes.items():
            if value is None:
                delattr(ds, keyword)
            else:
                setattr(ds, keyword, value)
        ds.save_as(target / f"{index:04d}.dcm", enforce_file_format=True)


@pytest.fixture(scope="module")
def imported(client: Any, tmp_path_factory: pytest.TempPathFactory) -> Imported:
    folder = tmp_path_factory.mktemp("search")
    datastore_id: str = client.create_datastore(datastoreName="search")["datastoreId"]
    wait_for_status(client, datastore_id, "ACTIVE")
    subject = {"PatientID": PATIENT, "PatientName": "Melissa844 Huel628", "PatientBirthDate": "19201120"}
    old_study = subject | {"StudyDate": "19991122", "StudyTime": "140728", "StudyID": "2011201407"}
    specs = {
        "a": (SeriesSpec(study="s1", series="a", slices=2, size=16), old_study | {"BodyPartExamined": "CHEST"}),
        "b": (SeriesSpec(study="s1", series="b", slices=1, size=16, series_number=2), old_study),
        "c": (SeriesSpec(study="s2", series="c", slices=1, size=16, patient_id="PAT-2"), {"StudyTime": "083501"}),
        "d": (SeriesSpec(study="s3", series="d", slices=1, size=16, patient_id="PAT-3"), {"StudyDate": None}),
    }
    for spec, attributes in specs.values():
        write(folder / "in", spec, **attributes, StudyDescription="UNKNOWN" if spec.study == "s1" else "Chest CT")
    before = datetime.now(UTC) - timedelta(seconds=1)
    job = run_job(client, datastore_id, f"file://{folder / 'in'}/", f"file://{folder / 'out'}/")
    assert job["jobStatus"] == "COMPLETED", job
    time.sleep(0.01)
    after = datetime.now(UTC) + timedelta(seconds=1)
    success = folder / "out" / f"{datastore_id}-DicomImport-{job['jobId']}" / "SUCCESS" / "success.ndjson"
    image_sets: dict[str, str] = {}
    for line in success.read_text().splitlines():
        entry = json.loads(line)
        image_sets[entry["inputFile"].split("/")[-2]] = entry["importResponse"]["imageSetId"]
    assert set(image_sets) == set(specs)
    series_uids = {name: uid(spec.study, spec.series) for name, (spec, _) in specs.items()}
    return Imported(datastore_id, image_sets, series_uids, before, after)


def found(response: dict[str, Any]) -> list[str]:
    return [summary["imageSetId"] for summary in response["imageSetsMetadataSummaries"]]


def names(imported: Imported, image_set_ids: list[str]) -> list[str]:
    by_id = {value: key for key, value in imported.image_sets.items()}
    return [by_id[i] for i in image_set_ids]


def test_example_1_equal_patient_id_answers_the_guide_fields(client: Any, imported: Imported) -> None:
    criteria = {"filters": [{"values": [{"DICOMPatientId": PATIENT}], "operator": "EQUAL"}]}
    response = client.search_image_sets(datastoreId=imported.datastore_id, searchCriteria=criteria)
    assert sorted(names(imported, found(response))) == ["a", "b"]
    assert response["sort"] == {"sortField": "updatedAt", "sortOrder": "DESC"}
    assert "nextToken" not in response
    summary = next(s for s in response["imageSetsMetadataSummaries"] if s["imageSetId"] == imported.image_sets["a"])
    assert summary["version"] == 1
    assert summary["isPrimary"] is True
    assert summary["storageTier"] == "FREQUENT_ACCESS"
    assert imported.before <= summary["createdAt"] <= summary["updatedAt"] <= imported.after
    assert summary["DICOMTags"] == {
        "DICOMPatientId": PATIENT,
        "DICOMPatientName": "Melissa844 Huel628",
        "DICOMPatientBirthDate": "19201120",
        "DICOMPatientSex": "F",
        "DICOMStudyInstanceUID": uid("s1"),
        "DICOMStudyId": "2011201407",
        "DICOMStudyDescription": "UNKNOWN",
        "DICOMNumberOfStudyRelatedSeries": 2,
        "DICOMNumberOfStudyRelatedInstances": 3,
        "DICOMAccessionNumber": "ACC-s1",
        "DICOMSeriesInstanceUID": imported.series_uids["a"],
        "DICOMSeriesModality": "CT",
        "DICOMSeriesBodyPart": "CHEST",
        "DICOMSeriesNumber": 1,
        "DICOMStudyDate": "19991122",
        "DICOMStudyTime": "140728",
    }


def study_between(low: tuple[str, str | None], high: tuple[str, str | None]) -> dict[str, Any]:
    def value(day: str, moment: str | None) -> dict[str, Any]:
        inner = {"DICOMStudyDate": day} | ({"DICOMStudyTime": moment} if moment is not None else {})
        return {"DICOMStudyDateAndTime": inner}

    return {"filters": [{"values": [value(*low), value(*high)], "operator": "BETWEEN"}]}


def test_example_2_between_study_date_and_time(client: Any, imported: Imported) -> None:
    def search(criteria: dict[str, Any]) -> list[str]:
        return sorted(
            names(imported, found(client.search_image_sets(datastoreId=imported.datastore_id, searchCriteria=criteria)))
        )

    assert search(study_between(("19900101", "000000"), ("20230101", "000000"))) == ["a", "b"]
    assert search(study_between(("19991122", "140728"), ("19991122", "140728.000"))) == ["a", "b"]  # inclusive
    assert search(study_between(("19991122", "140728.000001"), ("19991123", None))) == []
    assert search(study_between(("19991122", None), ("20240501", None))) == ["a", "b"]  # 20240501 08:35:01 is later
    assert search(study_between(("19991122", None), ("20240501", "083501"))) == ["a", "b", "c"]
    everything = {"sort": {"sortField": "DICOMStudyDateAndTime", "sortOrder": "DESC"}}
    ordered = names(
        imported, found(client.search_image_sets(datastoreId=imported.datastore_id, searchCriteria=everything))
    )
    assert ordered[0] == "c"
    assert ordered[-1] == "d"  # no study date: last


def test_example_3_between_created_at(client: Any, imported: Imported) -> None:
    since_1985 = {
        "filters": [
            {
                "values": [
                    {"createdAt": datetime(1985, 4, 12, 23, 20, 50, 520000, tzinfo=UTC)},
                    {"createdAt": datetime.now(UTC)},
                ],
                "operator": "BETWEEN",
            }
        ]
    }
    response = client.search_image_sets(datastoreId=imported.datastore_id, searchCriteria=since_1985)
    assert sorted(names(imported, found(response))) == ["a", "b", "c", "d"]
    until_2022 = {
        "filters": [
            {
                "values": [
                    {"createdAt": datetime(1985, 4, 12, tzinfo=UTC)},
                    {"createdAt": datetime(2022, 4, 12, tzinfo=UTC)},
                ],
                "operator": "BETWEEN",
            }
        ]
    }
    assert found(client.search_image_sets(datastoreId=imported.datastore_id, searchCriteria=until_2022)) == []


def test_example_4_equal_series_and_between_updated_at_sorted_ascending(client: Any, imported: Imported) -> None:
    window = [{"updatedAt": imported.before}, {"updatedAt": imported.after}]
    criteria = {
        "filters": [
            {"values": window, "operator": "BETWEEN"},
            {"values": [{"DICOMSeriesInstanceUID": imported.series_uids["c"]}], "operator": "EQUAL"},
        ],
        "sort": {"sortField": "updatedAt", "sortOrder": "ASC"},
    }
    response = client.search_image_sets(datastoreId=imported.datastore_id, searchCriteria=criteria)
    assert names(imported, found(response)) == ["c"]
    assert response["sort"] == {"sortField": "updatedAt", "sortOrder": "ASC"}
    for order in ("ASC", "DESC"):
        everything = {
            "filters": [{"values": window, "operator": "BETWEEN"}],
            "sort": {"sortField": "updatedAt", "sortOrder": order},
        }
        summaries = client.search_image_sets(datastoreId=imported.datastore_id, searchCriteria=everything)[
            "imageSetsMetadataSummaries"
        ]
        keys = [(s["updatedAt"], s["imageSetId"]) for s in summaries]
        assert keys == sorted(keys, reverse=order == "DESC")
        assert len(keys) == 4


def test_the_paginator_walks_every_page_once(client: Any, imported: Imported) -> None:
    paginator = client.get_paginator("search_image_sets")
    criteria = {"sort": {"sortField": "createdAt", "sortOrder": "ASC"}}
    pages = list(
        paginator.paginate(datastoreId=imported.datastore_id, searchCriteria=criteria, PaginationConfig={"PageSize": 1})
    )
    assert [len(page["imageSetsMetadataSummaries"]) for page in pages] == [1, 1, 1, 1]
    assert all(page["sort"] == {"sortField": "createdAt", "sortOrder": "ASC"} for page in pages)
    assert "nextToken" not in pages[-1]
    walked = [summary["imageSetId"] for page in pages for summary in page["imageSetsMetadataSummaries"]]
    assert sorted(walked) == sorted(imported.image_sets.values())
    full = paginator.paginate(datastoreId=imported.datastore_id, PaginationConfig={"PageSize": 3}).build_full_result()
    assert sorted(found(full)) == sorted(imported.image_sets.values())
    first = client.search_image_sets(datastoreId=imported.datastore_id, maxResults=2)
    code, status, message = error_of(
        client.search_image_sets,
        datastoreId=imported.datastore_id,
        searchCriteria=criteria,  # another query than the token's
        nextToken=first["nextToken"],
    )
    assert (code, status) == ("ValidationException", 400), message


INVALID: list[tuple[str, dict[str, Any]]] = [
    (
        "between on patient",
        {"filters": [{"operator": "BETWEEN", "values": [{"DICOMPatientId": "a"}, {"DICOMPatientId": "b"}]}]},
    ),
    (
        "equal with two values",
        {"filters": [{"operator": "EQUAL", "values": [{"DICOMPatientId": "a"}, {"DICOMPatientId": "b"}]}]},
    ),
    ("date with dashes", study_between(("1999-11-22", None), ("20230101", None))),
    ("time out of range", study_between(("19991122", "250000"), ("20230101", None))),
    ("bounds reversed", study_between(("20230101", None), ("19900101", None))),
    (
        "mixed attributes",
        {
            "filters": [
                {
                    "operator": "BETWEEN",
                    "values": [{"createdAt": datetime(2020, 1, 1)}, {"updatedAt": datetime(2021, 1, 1)}],
                }
            ]
        },
    ),
]


@pytest.mark.parametrize(("label", "criteria"), INVALID, ids=[i[0] for i in INVALID])
def test_invalid_criteria_are_validation_exceptions(
    client: Any, imported: Imported, label: str, criteria: dict[str, Any]
) -> None:
    code, status, message = error_of(
        client.search_image_sets, datastoreId=imported.datastore_id, searchCriteria=criteria
    )
    assert (code, status) == ("ValidationException", 400), (label, message)
    assert message


def test_other_refusals(client: Any, imported: Imported) -> None:
    code, status, _ = error_of(client.search_image_sets, datastoreId=imported.datastore_id, maxResults=51)
    assert (code, status) == ("ValidationException", 400)
    code, status, _ = error_of(client.search_image_sets, datastoreId="f" * 32)
    assert (code, status) == ("ResourceNotFoundException", 404)


def test_the_guide_cli_examples(server: ServerProcess, imported: Imported, tmp_path: Path) -> None:
    """The CLI examples verbatim (criteria files), with example 4's window and UID made to match an image set."""
    examples = {
        "1": ({"filters": [{"values": [{"DICOMPatientId": PATIENT}], "operator": "EQUAL"}]}, ["a", "b"]),
        "2": (study_between(("19900101", "000000"), ("20230101", "000000")), ["a", "b"]),
        "3": (
            {
                "filters": [
                    {
                        "values": [{"createdAt": "1985-04-12T23:20:50.52Z"}, {"createdAt": "2022-04-12T23:20:50.52Z"}],
                        "operator": "BETWEEN",
                    }
                ]
            },
            [],
        ),
        "4": (
            {
                "filters": [
                    {
                        "values": [
                            {"updatedAt": imported.before.isoformat()},
                            {"updatedAt": imported.after.isoformat()},
                        ],
                        "operator": "BETWEEN",
                    },
                    {"values": [{"DICOMSeriesInstanceUID": imported.series_uids["b"]}], "operator": "EQUAL"},
                ],
                "sort": {"sortField": "updatedAt", "sortOrder": "ASC"},
            },
            ["b"],
        ),
    }
    for number, (criteria, expected) in examples.items():
        path = tmp_path / f"search-criteria-{number}.json"
        path.write_text(json.dumps(criteria))
        output = server.aws_json(
            "search-image-sets", "--datastore-id", imported.datastore_id, "--search-criteria", f"file://{path}"
        )
        assert sorted(names(imported, found(output))) == expected, number
