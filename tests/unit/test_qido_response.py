"""QIDO-RS answers: default attributes, includefield (keywords, all, dotted SQ paths, private tags with their
creator), counts and RetrieveURL (guide 2290-2540, PS3.18 Table 6.7.1-2), over the memory index."""

from __future__ import annotations

import pytest
from tests.support.catalog_docs import DS, catalog_index, document, instance, series

from openhi.dicomweb.qido.service import QidoSearch
from openhi.errors import NotFoundError

BASE = f"http://h/datastore/{DS}"
STUDY = "1.2.3"


@pytest.fixture
def search() -> QidoSearch:
    private = {"00190010": "Philips", "00191001": "secret", "00191101": "other block"}
    doc = document(
        STUDY,
        [
            series(
                "1.2.3.1",
                [
                    instance("1.2.3.1.1", 2, warnings=[1, 5], extra=private, vrs={"00191001": "LO"}),
                    instance("1.2.3.1.2", 1, extra={"ImageComments": "x", "00291010": {"BulkDataReference": "b1"}}),
                ],
                modality="CT",
                number=2,
            ),
            series("1.2.3.2", [instance("1.2.3.2.1", 1)], modality="MR", number=1),
        ],
        patient={"PatientName": "Doe^John", "PatientID": "P1", "PatientWeight": "70", "BranchOfService": "Navy"},
        study={
            "StudyDate": "20200101",
            "ReferringPhysicianIdentificationSequence": [
                {"CodeValue": "C1", "CodeMeaning": "M1"},
                {"CodeValue": "C2", "CodeMeaning": "M2"},
            ],
        },
    )
    index = catalog_index([doc])
    return QidoSearch(index)


def test_study_defaults_counts_and_retrieve_url(search: QidoSearch) -> None:
    [study] = search.studies(DS, [], BASE)
    assert study["00201206"] == {"vr": "IS", "Value": [2]}
    assert study["00201208"] == {"vr": "IS", "Value": [3]}
    assert study["00080061"] == {"vr": "CS", "Value": ["CT", "MR"]}
    assert study["00081190"] == {"vr": "UR", "Value": [f"{BASE}/studies/{STUDY}"]}
    assert study["00100010"] == {"vr": "PN", "Value": [{"Alphabetic": "Doe^John"}]}
    assert "00101030" not in study  # PatientWeight only with includefield
    assert list(study) == sorted(study)


def test_includefield_keyword_tag_all_and_dotted_paths(search: QidoSearch) -> None:
    [study] = search.studies(DS, [("includefield", "PatientWeight,00101081")], BASE)
    assert study["00101030"] == {"vr": "DS", "Value": [70]}
    assert study["00101081"] == {"vr": "LO", "Value": ["Navy"]}
    [study] = search.studies(DS, [("includefield", "00080096.00080100")], BASE)
    items = study["00080096"]["Value"]
    assert items == [{"00080100": {"vr": "SH", "Value": ["C1"]}}, {"00080100": {"vr": "SH", "Value": ["C2"]}}]
    [study] = search.studies(DS, [("includefield", "all")], BASE)
    assert {"00101030", "00101081"} <= set(study)
    assert "00080096" not in study  # not in the guide's study list (2347-2480)
    [study] = search.studies(DS, [("includefield", "all"), ("includefield", "00080096.00080100")], BASE)
    assert len(study["00080096"]["Value"][0]) == 1


def test_series_sorted_by_series_number_with_counts(search: QidoSearch) -> None:
    found = search.series(DS, STUDY, [], BASE)
    assert [s["0020000E"]["Value"][0] for s in found] == ["1.2.3.2", "1.2.3.1"]
    assert [s["00201209"]["Value"][0] for s in found] == [1, 2]
    assert search.series(DS, STUDY, [("Modality", "CT")], BASE)[0]["00080060"]["Value"] == ["CT"]
    # includefield=all at the series level also carries study attributes (guide 2484)
    assert "00100020" in search.series(DS, STUDY, [("includefield", "all")], BASE)[0]


def test_instances_sorted_by_instance_number_and_warning_reason_search(search: QidoSearch) -> None:
    found = search.instances(DS, STUDY, "1.2.3.1", [], BASE)
    assert [i["00080018"]["Value"][0] for i in found] == ["1.2.3.1.2", "1.2.3.1.1"]
    assert found[1]["00081196"] == {"vr": "US", "Value": [1, 5]}
    warned = search.instances(DS, STUDY, "1.2.3.1", [("WarningReason", "*")], BASE)
    assert [i["00080018"]["Value"][0] for i in warned] == ["1.2.3.1.1"]
    assert search.instances(DS, STUDY, "1.2.3.1", [("WarningReason", "5")], BASE) == warned
    assert search.instances(DS, STUDY, "1.2.3.1", [("WarningReason", "2")], BASE) == []
    # the relational study-level search: series by number, then instances by number
    every = search.instances(DS, STUDY, None, [], BASE)
    assert [i["00080018"]["Value"][0] for i in every] == ["1.2.3.2.1", "1.2.3.1.2", "1.2.3.1.1"]


def test_private_tags_need_their_creator(search: QidoSearch) -> None:
    asked = [("includefield", "00191001"), ("SOPInstanceUID", "1.2.3.1.1")]
    [without] = search.instances(DS, STUDY, "1.2.3.1", asked, BASE)
    assert "00191001" not in without
    [right] = search.instances(DS, STUDY, "1.2.3.1", [*asked, ("00190010", "Philips")], BASE)
    assert right["00191001"] == {"vr": "LO", "Value": ["secret"]}
    [wrong] = search.instances(DS, STUDY, "1.2.3.1", [*asked, ("00190010", "GEMS")], BASE)
    assert "00191001" not in wrong
    [creator] = search.instances(DS, STUDY, "1.2.3.1", [("includefield", "00190010"), asked[1]], BASE)
    assert creator["00190010"] == {"vr": "LO", "Value": ["Philips"]}
    assert "00191001" not in creator
    assert "00191101" not in creator


def test_instance_all_is_every_attribute_with_bulk_data_uris(search: QidoSearch) -> None:
    [found] = search.instances(DS, STUDY, "1.2.3.1", [("SOPInstanceUID", "1.2.3.1.2"), ("includefield", "all")], BASE)
    assert found["00204000"] == {"vr": "LT", "Value": ["x"]}
    assert found["00100020"]["Value"] == ["P1"]  # patient level too
    url = f"{BASE}/studies/{STUDY}/series/1.2.3.1/instances/1.2.3.1.2"
    assert found["00291010"]["BulkDataURI"] == f"{url}/bulkdata/b1"
    assert found["00081190"]["Value"] == [url]


def test_unknown_datastore_is_404_and_no_match_is_empty(search: QidoSearch) -> None:
    with pytest.raises(NotFoundError):
        search.studies("e" * 32, [], BASE)
    assert search.studies(DS, [("PatientID", "nobody")], BASE) == []
    assert search.series(DS, "9.9.9", [], BASE) == []
