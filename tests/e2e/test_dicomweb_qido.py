"""QIDO-RS end to end with dicomweb-client (PyPI) against ``openhi serve``, on both backends.

Data comes in through an import job (guide 3217-3360). Every query type of guide 2235-2260 is exercised at the
study, series and instance levels: attribute by keyword and by tag, ranges (open ends too), wildcards, UID
lists, fuzzy person names, includefield (keywords, tags, comma lists, ``all``, dotted sequence paths, private
tags with their creator), limit/offset, the guide's sort orders, the counts, WarningReason at the instance
level; then the catalog follows UpdateImageSetMetadata, CopyImageSet to a non-primary image set and
DeleteImageSet; and bad queries are 400 (406 for an unacceptable media type) with a JSON body.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from dicomweb_client.api import DICOMwebClient
from pydicom.dataset import Dataset
from tests.e2e.helpers import settled, wait_for_status
from tests.e2e.import_helpers import run_job
from tests.support.dicom_corpus import SeriesSpec, ct_dataset, uid
from tests.support.dicomweb import dicomweb_client, dicomweb_url, signed_session
from tests.support.server import ServerProcess

STUDY_A, STUDY_B, STUDY_C = uid("qido-a"), uid("qido-b"), uid("qido-c")
PATIENT_B = "200965981123"


def _write(folder: Path, spec: SeriesSpec, numbers: list[int], **overrides: Any) -> list[str]:
    """Write a series whose instances carry ``numbers`` as Instance Number and the ``overrides``."""
    target = folder / f"{spec.study}-{spec.series}"
    target.mkdir(parents=True, exist_ok=True)
    sops = []
    for index, number in enumerate(numbers):
        ds: Dataset = ct_dataset(spec, index)
        ds.InstanceNumber = number
        for keyword, value in overrides.items():
            if callable(value):
                value(ds, index)
            else:
                setattr(ds, keyword, value)
        ds.save_as(target / f"{index:04d}.dcm", enforce_file_format=True)
        sops.append(str(ds.SOPInstanceUID))
    return sops


def _referring_sequence(ds: Dataset, index: int) -> None:
    item = Dataset()
    item.CodeValue = "RP-1"
    item.CodeMeaning = "Referring code"
    ds.ReferringPhysicianIdentificationSequence = [item]


def _private_and_warning(ds: Dataset, index: int) -> None:
    ds.add_new(0x00190010, "LO", "Philips")
    ds.add_new(0x00191001, "LO", "secret")
    if index == 0:
        ds.DerivationDescription = "x" * 1100  # ST allows 1024: INVALID_DICOM_VALUE_LENGTH (guide 22881-22912)


@pytest.fixture(scope="module")
def corpus(server: ServerProcess, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Three studies imported by one job: A (CT + MR series), B (CT), C (PT)."""
    client = server.client()
    datastore = client.create_datastore(datastoreName="qido")["datastoreId"]
    wait_for_status(client, datastore, "ACTIVE")
    folder = tmp_path_factory.mktemp("qido")
    common = {"size": 16}
    a_ct = SeriesSpec(
        study="qido-a", series="ct", patient_id="11235813", patient_name="Thomas^Albert", series_number=2, **common
    )
    a_mr = SeriesSpec(
        study="qido-a", series="mr", patient_id="11235813", patient_name="Thomas^Albert", series_number=1, **common
    )
    b_ct = SeriesSpec(study="qido-b", series="ct", patient_id=PATIENT_B, patient_name="Doe^John", **common)
    c_pt = SeriesSpec(study="qido-c", series="pt", patient_id="P3", patient_name="Müller^Anna", **common)
    study_a = {
        "StudyDate": "20130509",
        "StudyTime": "101500",
        "StudyDescription": "Nuclear Medicine Scan",
        "ReferringPhysicianName": "Smith^Jane",
        "PatientWeight": "72.5",
        "PatientAge": "043Y",
        "Sequence": _referring_sequence,
    }
    sops = {
        "a_ct": _write(folder, a_ct, [3, 1, 2], **study_a, Private=_private_and_warning),
        "a_mr": _write(folder, a_mr, [1, 2], **study_a, Modality="MR"),
        "b_ct": _write(
            folder,
            b_ct,
            [1, 2],
            StudyDate="20200101",
            StudyTime="0800",
            StudyDescription="Chest Nuclear",
            ReferringPhysicianName="Jones^Bob",
        ),
        "c_pt": _write(
            folder, c_pt, [1], StudyDate="20211231", StudyTime="2300", StudyDescription="Brain", Modality="PT"
        ),
    }
    job = run_job(client, datastore, f"file://{folder}/", f"file://{folder / 'out'}/")
    assert job["jobStatus"] == "COMPLETED", job
    outputs = folder / "out" / f"{datastore}-DicomImport-{job['jobId']}"
    assert not (outputs / "FAILURE" / "failure.ndjson").read_text().strip()
    success = folder / "out" / f"{datastore}-DicomImport-{job['jobId']}" / "SUCCESS" / "success.ndjson"
    image_sets: dict[str, str] = {}
    for line in success.read_text().splitlines():
        response = json.loads(line)["importResponse"]
        image_sets.setdefault(response["imageSetId"], response["imageSetId"])
    return {"datastore": datastore, "sops": sops, "client": client, "image_sets": sorted(image_sets)}


@pytest.fixture(scope="module")
def web(server: ServerProcess, corpus: dict[str, Any]) -> DICOMwebClient:
    return dicomweb_client(server, corpus["datastore"])


def _uids(results: list[dict[str, Any]], tag: str = "0020000D") -> list[str]:
    return [result[tag]["Value"][0] for result in results]


def _studies(web: DICOMwebClient, **filters: Any) -> set[str]:
    return set(_uids(web.search_for_studies(search_filters=filters)))


# -- studies --------------------------------------------------------------------------------------------------


def test_attribute_value_keyword_and_tag_queries(web: DICOMwebClient) -> None:
    assert _studies(web, PatientID="11235813", StudyDate="20130509") == {STUDY_A}
    assert _studies(web, **{"00100020": PATIENT_B}) == {STUDY_B}
    assert _studies(web, AccessionNumber="ACC-qido-c") == {STUDY_C}
    assert _studies(web, StudyInstanceUID=STUDY_B) == {STUDY_B}
    assert _studies(web, PatientID="nobody") == set()


def test_wildcard_queries(web: DICOMwebClient) -> None:
    assert _studies(web, StudyDescription="*Nuclear*") == {STUDY_A, STUDY_B}
    assert _studies(web, StudyDescription="Nuclear*") == {STUDY_A}
    assert _studies(web, StudyDescription="*Nuclear") == {STUDY_B}
    assert _studies(web, PatientID="200965981???") == {STUDY_B}
    assert _studies(web, PatientID="200965981??") == set()
    assert _studies(web, PatientName="doe*") == {STUDY_B}  # person names match case-insensitively


def test_range_queries(web: DICOMwebClient) -> None:
    assert _studies(web, StudyDate="20130101-20201231") == {STUDY_A, STUDY_B}
    assert _studies(web, StudyDate="-20130509") == {STUDY_A}
    assert _studies(web, StudyDate="20200101-") == {STUDY_B, STUDY_C}
    assert _studies(web, StudyTime="0700-1000") == {STUDY_B}
    assert _studies(web, StudyTime="22-") == {STUDY_C}
    assert _studies(web, PatientBirthDate="19700101") == {STUDY_A, STUDY_B, STUDY_C}


def test_uid_lists_and_modalities(web: DICOMwebClient) -> None:
    assert _studies(web, StudyInstanceUID=f"{STUDY_A}\\{STUDY_C}") == {STUDY_A, STUDY_C}
    assert _studies(web, StudyInstanceUID=[STUDY_B, STUDY_C]) == {STUDY_B, STUDY_C}  # comma-joined by the client
    assert _studies(web, ModalitiesInStudy="MR") == {STUDY_A}
    assert _studies(web, ModalitiesInStudy="PT\\MR") == {STUDY_A, STUDY_C}


def test_fuzzy_matching_on_person_names(web: DICOMwebClient) -> None:
    fuzzy = {"fuzzymatching": True}
    assert set(_uids(web.search_for_studies(fuzzymatching=True, search_filters={"PatientName": "thomas"}))) == {STUDY_A}
    assert set(_uids(web.search_for_studies(search_filters={"PatientName": '"Thomas^Albert"', **fuzzy}))) == {STUDY_A}
    assert _studies(web, PatientName="alb", fuzzymatching="true") == {STUDY_A}
    assert _studies(web, PatientName="lbert", fuzzymatching="true") == set()
    assert _studies(web, PatientName="mül", fuzzymatching="true") == {STUDY_C}
    assert _studies(web, ReferringPhysicianName="bob", fuzzymatching="true") == {STUDY_B}
    assert _studies(web, PatientName="thomas") == set()  # without fuzzy matching: the whole name


def test_study_counts_defaults_and_retrieve_url(server: ServerProcess, web: DICOMwebClient, corpus: Any) -> None:
    [study] = web.search_for_studies(search_filters={"StudyInstanceUID": STUDY_A})
    assert study["00201206"] == {"vr": "IS", "Value": [2]}
    assert study["00201208"] == {"vr": "IS", "Value": [5]}
    assert study["00080061"] == {"vr": "CS", "Value": ["CT", "MR"]}
    assert study["00100010"]["Value"] == [{"Alphabetic": "Thomas^Albert"}]
    assert study["00081190"]["Value"] == [f"{dicomweb_url(server, corpus['datastore'])}/studies/{STUDY_A}"]
    assert "00101030" not in study


def test_includefield_variants(web: DICOMwebClient) -> None:
    def study(fields: list[str] | None = None, **filters: str) -> dict[str, Any]:
        [found] = web.search_for_studies(fields=fields, search_filters={"StudyInstanceUID": STUDY_A, **filters})
        return found

    found = study(fields=["PatientWeight", "00101010"])
    assert found["00101030"] == {"vr": "DS", "Value": [72.5]}
    assert found["00101010"] == {"vr": "AS", "Value": ["043Y"]}
    found = study(includefield="00101030,00101010")
    assert {"00101030", "00101010"} <= set(found)
    found = study(fields=["all"])
    assert {"00101030", "00101010", "00080090"} <= set(found)
    found = study(fields=["00080096.00080100"])
    assert found["00080096"]["Value"] == [{"00080100": {"vr": "SH", "Value": ["RP-1"]}}]
    found = study(fields=["NoSuchKeyword"])  # guide 2306: silently left out
    assert "00101030" not in found


def test_limit_offset_and_sort_by_last_update(web: DICOMwebClient) -> None:
    everything = _uids(web.search_for_studies())
    assert sorted(everything) == sorted([STUDY_A, STUDY_B, STUDY_C])
    paged = [_uids(web.search_for_studies(limit=1, offset=n)) for n in range(4)]
    assert paged == [[everything[0]], [everything[1]], [everything[2]], []]
    assert _uids(web.search_for_studies(limit=2, offset=1)) == everything[1:]


# -- series and instances -------------------------------------------------------------------------------------


def test_series_sorted_by_series_number_with_filters(web: DICOMwebClient) -> None:
    found = web.search_for_series(STUDY_A)
    assert _uids(found, "0020000E") == [uid("qido-a", "mr"), uid("qido-a", "ct")]
    assert [s["00201209"]["Value"][0] for s in found] == [2, 3]
    assert [s["00080060"]["Value"][0] for s in found] == ["MR", "CT"]
    assert _uids(web.search_for_series(STUDY_A, search_filters={"00080060": "CT"}), "0020000E") == [uid("qido-a", "ct")]
    assert _uids(
        web.search_for_series(STUDY_A, search_filters={"SeriesInstanceUID": uid("qido-a", "mr")}), "0020000E"
    ) == [uid("qido-a", "mr")]
    assert web.search_for_series(STUDY_A, search_filters={"Modality": "PT"}) == []
    assert _uids(web.search_for_series(STUDY_A, limit=1, offset=1), "0020000E") == [uid("qido-a", "ct")]
    assert "00101030" in web.search_for_series(STUDY_A, fields=["all"])[0]  # study attributes too (guide 2484)


def test_instances_sorted_by_instance_number(web: DICOMwebClient, corpus: Any) -> None:
    found = web.search_for_instances(STUDY_A, uid("qido-a", "ct"))
    assert [i["00200013"]["Value"][0] for i in found] == [1, 2, 3]
    sops = corpus["sops"]["a_ct"]
    assert _uids(found, "00080018") == [sops[1], sops[2], sops[0]]
    one = web.search_for_instances(STUDY_A, uid("qido-a", "ct"), search_filters={"SOPInstanceUID": sops[2]})
    assert _uids(one, "00080018") == [sops[2]]
    by_class = web.search_for_instances(
        STUDY_A, uid("qido-a", "ct"), search_filters={"SOPClassUID": "1.2.840.10008.5.1.4.1.1.2"}
    )
    assert len(by_class) == 3
    # the relational query: every instance of the study, series by number first
    every = web.search_for_instances(STUDY_A)
    assert len(every) == 5
    assert _uids(every, "0020000E")[:2] == [uid("qido-a", "mr")] * 2


def test_warning_reason_search_and_private_tags(web: DICOMwebClient, corpus: Any) -> None:
    series = uid("qido-a", "ct")
    warned = web.search_for_instances(STUDY_A, series, search_filters={"WarningReason": "*"})
    assert _uids(warned, "00080018") == [corpus["sops"]["a_ct"][0]]
    assert 45571 in warned[0]["00081196"]["Value"]
    assert web.search_for_instances(STUDY_A, series, search_filters={"WarningReason": "45571"}) == warned
    assert web.search_for_instances(STUDY_A, series, search_filters={"00081196": "4557?"}) == warned
    assert web.search_for_instances(STUDY_A, series, search_filters={"WarningReason": "45056"}) == []
    with_creator = web.search_for_instances(
        STUDY_A, series, fields=["00191001"], search_filters={"00190010": "Philips"}
    )
    assert all(i["00191001"]["Value"] == ["secret"] for i in with_creator)
    assert len(with_creator) == 3
    without = web.search_for_instances(STUDY_A, series, fields=["00191001"])
    assert all("00191001" not in i for i in without)
    everything = web.search_for_instances(STUDY_A, series, fields=["all"], limit=1)
    assert {"00100020", "0020000D", "00280010", "00191001"} <= set(everything[0])
    assert "7FE00010" not in everything[0]


# -- errors ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "query", "message"),
    [
        ("/studies", "Modality=CT", "not searchable in a study search"),
        ("/studies", "NoSuchAttribute=1", "Unknown query parameter"),
        ("/studies", "limit=1001", "limit"),
        ("/studies", "offset=9001", "offset"),
        ("/studies", "StudyDate=2020-01-01", "YYYYMMDD"),
        ("/studies", "fuzzymatching=maybe", "fuzzymatching"),
        ("/studies", "includefield=" + ",".join(f"0010{n:04X}" for n in range(51)), "At most 50"),
        (f"/studies/{STUDY_A}/series", "SeriesNumber=two", "integer"),
        (f"/studies/{STUDY_A}/series/{uid('qido-a', 'ct')}/instances", "WarningReason=x", "WarningReason"),
        ("/studies/not-a-uid/series", "", "not a valid UID"),
    ],
)
def test_bad_queries_are_400_with_a_json_body(
    server: ServerProcess, corpus: Any, path: str, query: str, message: str
) -> None:
    pairs = [tuple(item.split("=", 1)) for item in query.split("&") if item]
    response = signed_session().get(f"{dicomweb_url(server, corpus['datastore'])}{path}", params=pairs)
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["__type"] == "BadRequestException"
    assert message in body["message"]


def test_media_types(server: ServerProcess, corpus: Any) -> None:
    url = f"{dicomweb_url(server, corpus['datastore'])}/studies?PatientID=nobody"
    session = signed_session()
    response = session.get(url, headers={"Accept": "application/dicom+json"})
    assert (response.status_code, response.headers["content-type"], response.json()) == (
        200,
        "application/dicom+json",
        [],
    )
    assert session.get(url, headers={"Accept": "application/json"}).headers["content-type"] == "application/json"
    refused = session.get(url, headers={"Accept": "image/png"})
    assert refused.status_code == 406
    assert refused.json()["__type"] == "NotAcceptableException"
    unknown = session.get(f"{server.endpoint}/datastore/{'e' * 32}/studies")
    assert unknown.status_code == 404


# -- the catalog follows image set writes (run last: they change the corpus) --------------------------------------


def _image_set_of(client: Any, datastore: str, series_uid: str) -> dict[str, Any]:
    found = client.search_image_sets(
        datastoreId=datastore,
        searchCriteria={"filters": [{"values": [{"DICOMSeriesInstanceUID": series_uid}], "operator": "EQUAL"}]},
    )["imageSetsMetadataSummaries"]
    [primary] = [s for s in found if s.get("isPrimary", True)]
    return primary


def test_catalog_follows_update_copy_and_delete(web: DICOMwebClient, corpus: Any) -> None:
    client, datastore = corpus["client"], corpus["datastore"]
    # UpdateImageSetMetadata: a patient name change shows up, and the study becomes the last updated
    b = _image_set_of(client, datastore, uid("qido-b", "ct"))
    updates = {
        "DICOMUpdates": {
            "updatableAttributes": json.dumps(
                {"SchemaVersion": 1.1, "Patient": {"DICOM": {"PatientName": "Renamed^Person"}}}
            ).encode()
        }
    }
    client.update_image_set_metadata(
        datastoreId=datastore,
        imageSetId=b["imageSetId"],
        latestVersionId=str(b["version"]),
        updateImageSetMetadataUpdates=updates,
    )
    assert settled(client, datastore, b["imageSetId"])["imageSetWorkflowStatus"] == "UPDATED"
    assert _studies(web, PatientName="renamed^person") == {STUDY_B}
    assert _studies(web, PatientName="Doe^John") == set()
    assert _uids(web.search_for_studies())[0] == STUDY_B

    # CopyImageSet to a new (non-primary) image set: nothing new is searchable, counts unchanged
    a_ct = _image_set_of(client, datastore, uid("qido-a", "ct"))
    copy = client.copy_image_set(
        datastoreId=datastore,
        sourceImageSetId=a_ct["imageSetId"],
        copyImageSetInformation={"sourceImageSet": {"latestVersionId": str(a_ct["version"])}},
    )["destinationImageSetProperties"]["imageSetId"]
    settled(client, datastore, copy)
    settled(client, datastore, a_ct["imageSetId"])
    [study] = web.search_for_studies(search_filters={"StudyInstanceUID": STUDY_A})
    assert (study["00201206"]["Value"], study["00201208"]["Value"]) == ([2], [5])
    assert len(web.search_for_instances(STUDY_A, uid("qido-a", "ct"))) == 3

    # DeleteImageSet: the study of its only image set is gone
    c = _image_set_of(client, datastore, uid("qido-c", "pt"))
    client.delete_image_set(datastoreId=datastore, imageSetId=c["imageSetId"])
    assert settled(client, datastore, c["imageSetId"])["imageSetState"] == "DELETED"
    assert _studies(web, StudyInstanceUID=STUDY_C) == set()
    assert web.search_for_series(STUDY_C) == []
    assert STUDY_C not in _uids(web.search_for_studies())
