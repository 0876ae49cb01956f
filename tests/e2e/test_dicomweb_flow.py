"""The whole DICOMweb round trip with dicomweb-client, as a viewer or a PACS tool drives it.

Store a small mixed corpus by STOW-RS (a CT series, a multi-frame JPEG-LS instance, an RGB instance, an
instance with a 1.5 MB private OB value), search it at every level with each query type of guide 2235-2260,
then retrieve instances, metadata, frames (stored syntax and Explicit VR Little Endian) and bulk data, and
compare every pixel with pydicom's decoding of the original file (lossless stays bit-exact).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import imagecodecs
import numpy as np
import pydicom
import pytest
import requests
from dicomweb_client.api import DICOMwebClient
from pydicom.dataset import Dataset
from tests.e2e.helpers import wait_for_status
from tests.support import pixel_samples
from tests.support.dicom_corpus import SeriesSpec, ct_dataset, uid
from tests.support.dicomweb import dicomweb_client
from tests.support.server import ServerProcess

STUDY = uid("flow-study")
JPEG_LS_LOSSLESS = "1.2.840.10008.1.2.4.80"
EXPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2.1"
HTJ2K_SYNTAXES = ("1.2.840.10008.1.2.4.201", "1.2.840.10008.1.2.4.202")
PRIVATE_BLOB = bytes(range(256)) * 6000  # 1.5 MB, over the 1 MB bulk data threshold (guide 2145)


def _same_study(ds: Dataset, series_key: str, series_number: int, instance_number: int) -> Dataset:
    ds.StudyInstanceUID = STUDY
    ds.SeriesInstanceUID = uid("flow", series_key)
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = uid("flow", series_key, instance_number)
    ds.PatientID = "FLOW-1"
    ds.PatientName = "DOE^JANE"
    ds.PatientBirthDate = "19700101"
    ds.PatientSex = "F"
    ds.StudyDate = "20240501"
    ds.StudyTime = "083501"
    ds.AccessionNumber = "ACC-FLOW"
    ds.StudyID = "1"
    ds.Modality = ds.get("Modality", "OT")
    ds.SeriesNumber = series_number
    ds.InstanceNumber = instance_number
    return ds


def corpus() -> list[Dataset]:
    """Five CT slices, one multi-frame JPEG-LS, one RGB, one with a large private OB value."""
    spec = SeriesSpec(study="flow-study", series="ct", slices=5, size=64)
    datasets = [ct_dataset(spec, index) for index in range(spec.slices)]
    for ds in datasets:
        _same_study(ds, "ct", 1, int(ds.InstanceNumber))
    multi, _ = pixel_samples.make_dataset(JPEG_LS_LOSSLESS, "u12x3")
    rgb, _ = pixel_samples.make_dataset(EXPLICIT_VR_LITTLE_ENDIAN, "rgb8")
    bulky, _ = pixel_samples.make_dataset(EXPLICIT_VR_LITTLE_ENDIAN, "u16")
    bulky.add_new(0x00090010, "LO", "OPENHI TEST")
    bulky.add_new(0x00091001, "OB", PRIVATE_BLOB)
    datasets += [
        _same_study(multi, "multi", 2, 1),
        _same_study(rgb, "rgb", 3, 1),
        _same_study(bulky, "bulk", 4, 1),
    ]
    return [pixel_samples.roundtrip(ds) for ds in datasets]


@dataclass
class Stored:
    """The data store the corpus was stored in, and the originals."""

    web: DICOMwebClient
    originals: dict[str, Dataset]
    response: Dataset


@pytest.fixture(scope="module")
def stored(server: ServerProcess, client: Any) -> Stored:
    datastore_id = client.create_datastore(datastoreName="dicomweb-flow")["datastoreId"]
    wait_for_status(client, datastore_id, "ACTIVE")
    web = dicomweb_client(server, datastore_id)
    datasets = corpus()
    response = web.store_instances(datasets)
    return Stored(web, {str(ds.SOPInstanceUID): ds for ds in datasets}, response)


def _value(result: dict[str, Any], tag: str) -> Any:
    values = result.get(tag, {}).get("Value", [])
    return values[0] if values else None


def test_stow_references_every_instance_and_fails_none(stored: Stored) -> None:
    referenced = {str(item.ReferencedSOPInstanceUID) for item in stored.response.ReferencedSOPSequence}
    assert referenced == set(stored.originals)
    assert "FailedSOPSequence" not in stored.response or len(stored.response.FailedSOPSequence) == 0


def test_search_studies_counts_series_instances_and_modalities(stored: Stored) -> None:
    studies = stored.web.search_for_studies(search_filters={"StudyInstanceUID": STUDY})
    assert len(studies) == 1
    study = studies[0]
    assert _value(study, "0020000D") == STUDY
    assert _value(study, "00201206") == 4
    assert _value(study, "00201208") == len(stored.originals)
    assert {"CT", "OT"} <= set(study["00080061"]["Value"])


@pytest.mark.parametrize(
    ("filters", "fuzzy"),
    [
        ({"PatientName": "DOE*"}, None),  # wildcard
        ({"PatientName": "D?E^JANE"}, None),  # single-character wildcard
        ({"00100020": "FLOW-1"}, None),  # attribute by tag
        ({"StudyDate": "20240101-20241231"}, None),  # date range
        ({"StudyDate": "-20240501"}, None),  # open range
        ({"StudyInstanceUID": f"1.2.3\\{STUDY}"}, None),  # UID list
        ({"PatientName": "jane"}, True),  # fuzzy matching on a name component
        ({"AccessionNumber": "ACC-FLOW"}, None),
    ],
)
def test_search_studies_query_types(stored: Stored, filters: dict[str, str], fuzzy: bool | None) -> None:
    studies = stored.web.search_for_studies(search_filters=filters, fuzzymatching=fuzzy)
    assert STUDY in {_value(s, "0020000D") for s in studies}


def test_search_studies_misses(stored: Stored) -> None:
    assert stored.web.search_for_studies(search_filters={"PatientName": "ROE*", "StudyInstanceUID": STUDY}) == []
    assert stored.web.search_for_studies(search_filters={"StudyDate": "20250101-", "StudyInstanceUID": STUDY}) == []


def test_search_series_sorted_by_series_number_with_counts(stored: Stored) -> None:
    series = stored.web.search_for_series(STUDY)
    assert [_value(s, "00200011") for s in series] == [1, 2, 3, 4]
    assert _value(series[0], "00201209") == 5
    ct = stored.web.search_for_series(STUDY, search_filters={"Modality": "CT"})
    assert [_value(s, "0020000E") for s in ct] == [uid("flow", "ct")]


def test_search_instances_sorted_by_instance_number(stored: Stored) -> None:
    found = stored.web.search_for_instances(STUDY, uid("flow", "ct"), fields=["Rows"])
    assert [_value(i, "00200013") for i in found] == [1, 2, 3, 4, 5]
    assert all(_value(i, "00280010") == 64 for i in found)
    page = stored.web.search_for_instances(STUDY, uid("flow", "ct"), limit=2, offset=2)
    assert [_value(i, "00200013") for i in page] == [3, 4]


def _location(ds: Dataset) -> tuple[str, str, str]:
    return str(ds.StudyInstanceUID), str(ds.SeriesInstanceUID), str(ds.SOPInstanceUID)


def _expected_frames(ds: Dataset) -> np.ndarray:
    pixels = ds.pixel_array
    frames = int(ds.get("NumberOfFrames", 1))
    return pixels if frames > 1 else pixels[np.newaxis]


def _dtype(ds: Dataset) -> np.dtype[Any]:
    signed = int(ds.PixelRepresentation) == 1
    return np.dtype(f"<{'i' if signed else 'u'}{int(ds.BitsAllocated) // 8}")


def test_frames_in_explicit_vr_little_endian_are_bit_exact(stored: Stored) -> None:
    for ds in stored.originals.values():
        expected = _expected_frames(ds)
        numbers = list(range(1, len(expected) + 1))
        frames = stored.web.retrieve_instance_frames(
            *_location(ds), frame_numbers=numbers, media_types=("application/octet-stream",)
        )
        assert len(frames) == len(numbers)
        for got, want in zip(frames, expected, strict=True):
            assert np.array_equal(np.frombuffer(got, _dtype(ds)).reshape(want.shape), want)


def test_frames_in_the_stored_syntax_decode_to_the_original(stored: Stored) -> None:
    for ds in stored.originals.values():
        expected = _expected_frames(ds)
        frames = stored.web.retrieve_instance_frames(
            *_location(ds), frame_numbers=[1], media_types=(("application/octet-stream", "*"),)
        )
        decoded = imagecodecs.htj2k_decode(frames[0])
        assert np.array_equal(decoded.reshape(expected[0].shape).astype(expected.dtype), expected[0])


@pytest.mark.parametrize("syntax", [EXPLICIT_VR_LITTLE_ENDIAN, "*"])
def test_retrieved_instance_is_a_valid_p10_with_the_same_pixels(stored: Stored, syntax: str) -> None:
    """ELE on request; ``*`` (dicomweb-client's default) is the stored HTJ2K, which pydicom decodes too."""
    for ds in stored.originals.values():
        rebuilt = stored.web.retrieve_instance(*_location(ds), media_types=(("application/dicom", syntax),))
        assert rebuilt.SOPInstanceUID == ds.SOPInstanceUID
        expected_syntaxes = (EXPLICIT_VR_LITTLE_ENDIAN,) if syntax != "*" else HTJ2K_SYNTAXES
        assert rebuilt.file_meta.TransferSyntaxUID in expected_syntaxes
        assert np.array_equal(rebuilt.pixel_array, ds.pixel_array)
        reparsed = pydicom.dcmread(io.BytesIO(_p10_bytes(rebuilt)))
        assert reparsed.PatientID == "FLOW-1"


def _p10_bytes(ds: Dataset) -> bytes:
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def test_series_metadata_and_bulk_data_round_trip(stored: Stored) -> None:
    bulky = next(ds for ds in stored.originals.values() if 0x00091001 in ds)
    study, series, _sop = _location(bulky)
    metadata = stored.web.retrieve_series_metadata(study, series)
    assert len(metadata) == 1
    element = metadata[0]["00091001"]
    assert element["vr"] == "OB"
    uri = element["BulkDataURI"]
    assert stored.web.retrieve_bulkdata(uri)[0] == PRIVATE_BLOB
    ct_metadata = stored.web.retrieve_series_metadata(STUDY, uid("flow", "ct"))
    assert {m["00080018"]["Value"][0] for m in ct_metadata} == {
        sop for sop, ds in stored.originals.items() if ds.SeriesInstanceUID == uid("flow", "ct")
    }


def test_unknown_uids_are_404(stored: Stored) -> None:
    with pytest.raises(requests.HTTPError) as raised:
        stored.web.retrieve_series_metadata(STUDY, "1.2.3.4")
    assert raised.value.response.status_code == 404
    ds = next(iter(stored.originals.values()))
    with pytest.raises(requests.HTTPError) as raised:
        stored.web.retrieve_instance_frames(*_location(ds)[:2], "1.2.3.4", frame_numbers=[1])
    assert raised.value.response.status_code == 404


def test_a_syntax_that_cannot_be_produced_is_406(stored: Stored) -> None:
    ds = next(iter(stored.originals.values()))
    with pytest.raises(requests.HTTPError) as raised:
        stored.web.retrieve_instance(*_location(ds), media_types=(("application/dicom", "1.2.840.10008.1.2.4.50"),))
    assert raised.value.response.status_code == 406
