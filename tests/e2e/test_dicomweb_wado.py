"""WADO-RS against ``openhi serve`` on both backends, driven by dicomweb-client and SigV4-signed requests.

Data is loaded by import jobs (not STOW): one CT series (signed 16-bit), one mixed series (unsigned 16-bit,
a 3-frame 12-bit instance, RGB, JPEG-LS and RLE inputs, a lossy JPEG baseline kept as is, and an instance with
a private OB value over 1 MB), and a second job that puts one more instance of the CT series in a non-primary
image set (its Accession Number differs). Every check compares with pydicom's decoding of the original files:
frames bit-exact (ELE and the stored HTJ2K), rebuilt P10 files parse and give the same pixels, metadata is
valid DICOM JSON (PS3.18 F.2), bulk data round-trips; error cases, ETag / If-None-Match and Range.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import imagecodecs
import numpy as np
import pydicom
import pytest
import requests
from dicomweb_client.api import DICOMwebClient
from tests.e2e.helpers import wait_for_status
from tests.e2e.import_helpers import run_job
from tests.support import pixel_samples
from tests.support.dicom_corpus import SeriesSpec, uid, write_series
from tests.support.dicomweb import dicomweb_client, dicomweb_url, signed_session
from tests.support.dicomweb_conformance import check_dataset
from tests.support.multipart import stdlib_parts
from tests.support.server import ServerProcess

from openhi.codecs import syntaxes as ts

ELE = ts.EXPLICIT_VR_LITTLE_ENDIAN
HTJ2K = ts.HTJ2K_LOSSLESS_RPCL
STUDY_UID = uid("wado-study")
CT_SERIES = uid("wado-study", "ct")
MIXED_SERIES = uid("wado-study", "mixed")
PRIVATE_BULK = b"".join(bytes([i % 251]) for i in range(256)) * 5000  # 1,280,000 bytes (> 1 MB)
#: Mixed series: (transfer syntax, kind of pixel_samples) -> stored lossless (HTJ2K) unless noted.
MIXED = [
    (ELE, "u16"),
    (ELE, "u12x3"),
    (ELE, "rgb8"),
    (ts.JPEG_LS_LOSSLESS, "s12"),
    (ts.RLE_LOSSLESS, "u8"),
    (ts.JPEG_BASELINE_8BIT, "u8"),
]


@dataclass
class Loaded:
    """What the module's imports produced."""

    datastore_id: str
    originals: dict[str, Path] = field(default_factory=dict)  # SOP Instance UID -> original file
    series_of: dict[str, str] = field(default_factory=dict)  # SOP Instance UID -> Series Instance UID
    lossy_sop: str = ""
    multiframe_sop: str = ""
    rgb_sop: str = ""
    bulk_sop: str = ""
    non_primary_sop: str = ""
    non_primary_image_set: str = ""
    primary_ct_image_set: str = ""
    mixed_image_set: str = ""


def _write_mixed(folder: Path) -> dict[str, tuple[str, str]]:
    written: dict[str, tuple[str, str]] = {}
    for number, (syntax, kind) in enumerate(MIXED, start=1):
        ds, _ = pixel_samples.make_dataset(syntax, kind)
        sop = uid("wado-study", "mixed", number)
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID = pydicom.uid.UID(sop)
        ds.StudyInstanceUID, ds.SeriesInstanceUID = STUDY_UID, MIXED_SERIES
        ds.PatientID, ds.PatientName, ds.StudyDate, ds.AccessionNumber = "PAT-WADO", "WADO^TEST", "20240501", "ACC-W"
        ds.StudyID, ds.SeriesNumber, ds.InstanceNumber, ds.Modality = "1", 2, number, "OT"
        if number == 1:
            ds.add_new(0x00090010, "LO", "OPENHI TEST")
            ds.add_new(0x00091001, "OB", PRIVATE_BULK)
        ds.save_as(folder / f"mixed-{number}.dcm", enforce_file_format=True)
        written[sop] = (syntax, kind)
    return written


def _ct_spec(**changes: Any) -> SeriesSpec:
    return SeriesSpec(**{"study": "wado-study", "series": "ct", "slices": 3, "size": 64, **changes})


@pytest.fixture(scope="module")
def loaded(server: ServerProcess, client: Any, tmp_path_factory: pytest.TempPathFactory) -> Loaded:
    folder = tmp_path_factory.mktemp("wado-input")
    ct_paths = write_series(folder, _ct_spec())
    for path in ct_paths:  # same study as the mixed series
        ds = pydicom.dcmread(path)
        ds.StudyInstanceUID, ds.PatientID, ds.PatientName = STUDY_UID, "PAT-WADO", "WADO^TEST"
        ds.AccessionNumber, ds.StudyID, ds.StudyDate = "ACC-W", "1", "20240501"
        ds.SeriesInstanceUID = CT_SERIES
        ds.save_as(path, enforce_file_format=True)
    mixed = _write_mixed(folder)
    datastore_id = client.create_datastore(datastoreName=f"wado-{uuid.uuid4().hex[:6]}")["datastoreId"]
    wait_for_status(client, datastore_id, "ACTIVE")
    output = tmp_path_factory.mktemp("wado-output")
    job = run_job(client, datastore_id, f"file://{folder}/", f"file://{output}/", timeout=300)
    assert job["jobStatus"] == "COMPLETED", job

    # A second job: one more CT instance whose Accession Number conflicts -> a non-primary image set.
    second = tmp_path_factory.mktemp("wado-input-2")
    extra = write_series(second, _ct_spec(first_instance=10, slices=1))[0]
    ds = pydicom.dcmread(extra)
    ds.StudyInstanceUID, ds.SeriesInstanceUID = STUDY_UID, CT_SERIES
    ds.PatientID, ds.PatientName, ds.AccessionNumber, ds.StudyID = "PAT-WADO", "WADO^TEST", "ACC-OTHER", "1"
    ds.StudyDate = "20240501"
    ds.save_as(extra, enforce_file_format=True)
    job2 = run_job(client, datastore_id, f"file://{second}/", f"file://{tmp_path_factory.mktemp('out2')}/")
    assert job2["jobStatus"] == "COMPLETED", job2

    result = Loaded(datastore_id)
    for path in [*ct_paths, *(folder / f"mixed-{n}.dcm" for n in range(1, len(MIXED) + 1))]:
        original = pydicom.dcmread(path)
        result.originals[str(original.SOPInstanceUID)] = path
        result.series_of[str(original.SOPInstanceUID)] = str(original.SeriesInstanceUID)
    for sop, (syntax, kind) in mixed.items():
        if syntax == ts.JPEG_BASELINE_8BIT:
            result.lossy_sop = sop
        if kind == "u12x3":
            result.multiframe_sop = sop
        if kind == "rgb8":
            result.rgb_sop = sop
    result.bulk_sop = uid("wado-study", "mixed", 1)
    result.non_primary_sop = str(ds.SOPInstanceUID)
    sets = client.search_image_sets(datastoreId=datastore_id)["imageSetsMetadataSummaries"]
    for summary in sets:
        got = client.get_image_set(datastoreId=datastore_id, imageSetId=summary["imageSetId"])
        tags = summary.get("DICOMTags", {})
        if tags.get("DICOMSeriesInstanceUID") == MIXED_SERIES:
            result.mixed_image_set = summary["imageSetId"]
        if tags.get("DICOMSeriesInstanceUID") == CT_SERIES:
            if got["isPrimary"]:
                result.primary_ct_image_set = summary["imageSetId"]
            else:
                result.non_primary_image_set = summary["imageSetId"]
    assert result.non_primary_image_set, sets
    assert result.primary_ct_image_set, sets
    return result


@pytest.fixture(scope="module")
def dw(server: ServerProcess, loaded: Loaded) -> DICOMwebClient:
    return dicomweb_client(server, loaded.datastore_id)


@pytest.fixture(scope="module")
def http(server: ServerProcess, loaded: Loaded) -> Any:
    session = signed_session()
    base = dicomweb_url(server, loaded.datastore_id)

    def get(path: str, **headers: str) -> requests.Response:
        return session.get(base + path, headers=headers)

    return get


def _frames_of(path: Path) -> np.ndarray[Any, Any]:
    """pydicom's decoding of the original file, as (frames, rows, columns[, samples])."""
    original = pydicom.dcmread(path)
    pixels = original.pixel_array
    frames = int(original.get("NumberOfFrames", 1) or 1)
    return pixels if frames > 1 else pixels[np.newaxis]


def _instance_path(loaded: Loaded, sop: str) -> str:
    return f"/studies/{STUDY_UID}/series/{loaded.series_of[sop]}/instances/{sop}"


def _lossless(loaded: Loaded) -> list[str]:
    return [sop for sop in loaded.originals if sop != loaded.lossy_sop]


def _multipart(response: requests.Response) -> list[tuple[dict[str, str], bytes]]:
    """Parts of a multipart/related answer (headers, content), parsed with the standard library."""
    content_type = response.headers["Content-Type"]
    assert content_type.startswith("multipart/related"), content_type
    return stdlib_parts(content_type, response.content)


# -- instances -------------------------------------------------------------------------------------------------


def test_instance_default_is_explicit_vr_little_endian_with_original_pixels(dw: DICOMwebClient, loaded: Loaded) -> None:
    for sop in _lossless(loaded):
        ds = dw.retrieve_instance(STUDY_UID, loaded.series_of[sop], sop, media_types=(("application/dicom", ELE),))
        original = pydicom.dcmread(loaded.originals[sop])
        assert ds.file_meta.TransferSyntaxUID == ELE
        assert ds.file_meta.MediaStorageSOPInstanceUID == sop
        assert ds.file_meta.MediaStorageSOPClassUID == original.SOPClassUID
        assert ds.file_meta.ImplementationClassUID.startswith("2.25.")
        assert (ds.PatientName, ds.StudyInstanceUID, ds.Rows, ds.Columns) == (
            "WADO^TEST",
            STUDY_UID,
            original.Rows,
            original.Columns,
        )
        assert np.array_equal(ds.pixel_array, original.pixel_array), sop
        assert ds.PhotometricInterpretation == original.PhotometricInterpretation


def test_instance_in_stored_syntax_with_offset_table(dw: DICOMwebClient, loaded: Loaded) -> None:
    for sop in loaded.originals:
        ds = dw.retrieve_instance(STUDY_UID, loaded.series_of[sop], sop)  # dicomweb-client asks transfer-syntax=*
        expected = ts.JPEG_BASELINE_8BIT if sop == loaded.lossy_sop else HTJ2K
        assert ds.file_meta.TransferSyntaxUID == expected
        original = pydicom.dcmread(loaded.originals[sop])
        if sop == loaded.lossy_sop:
            assert ds.PixelData == original.PixelData  # kept as is: the same fragments
            continue
        frames = list(pydicom.encaps.generate_frames(ds.PixelData, number_of_frames=int(ds.get("NumberOfFrames", 1))))
        offsets = pydicom.encaps.parse_basic_offsets(ds.PixelData)
        assert len(offsets) == len(frames)
        assert offsets[0] == 0
        assert np.array_equal(ds.pixel_array, original.pixel_array), sop
        if sop == loaded.rgb_sop:
            assert ds.PhotometricInterpretation == "YBR_RCT"  # PS3.5 8.2.14: RGB coded with the RCT


def test_instance_single_part_as_the_guide_example(http: Any, loaded: Loaded) -> None:
    sop = next(iter(loaded.originals))
    response = http(f"{_instance_path(loaded, sop)}", Accept=f"application/dicom; transfer-syntax={ELE}")
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"] == f"application/dicom; transfer-syntax={ELE}"
    ds = pydicom.dcmread(pydicom.filebase.DicomBytesIO(response.content))
    assert np.array_equal(ds.pixel_array, pydicom.dcmread(loaded.originals[sop]).pixel_array)


def test_lossy_instance_serves_its_stored_syntax_and_refuses_ele(http: Any, loaded: Loaded) -> None:
    path = _instance_path(loaded, loaded.lossy_sop)
    default = http(path, Accept='multipart/related; type="application/dicom"')
    assert default.status_code == 200
    [(headers, _content)] = _multipart(default)
    assert headers["Content-Type"] == f"application/dicom; transfer-syntax={ts.JPEG_BASELINE_8BIT}"
    refused = http(path, Accept=f'multipart/related; type="application/dicom"; transfer-syntax={ELE}')
    assert refused.status_code == 406
    assert refused.json()["__type"] == "NotAcceptableException"


def test_series_and_study_retrieval(dw: DICOMwebClient, loaded: Loaded) -> None:
    series = dw.retrieve_series(STUDY_UID, MIXED_SERIES, media_types=(("application/dicom", "*"),))
    assert sorted(str(ds.SOPInstanceUID) for ds in series) == sorted(
        sop for sop, s in loaded.series_of.items() if s == MIXED_SERIES
    )
    study = dw.retrieve_study(STUDY_UID, media_types=(("application/dicom", "*"),))
    assert sorted(str(ds.SOPInstanceUID) for ds in study) == sorted(loaded.originals)  # primary image sets only
    for ds in study:
        original = pydicom.dcmread(loaded.originals[str(ds.SOPInstanceUID)])
        assert np.array_equal(ds.pixel_array, original.pixel_array)


def test_series_in_ele_leaves_out_the_lossy_instance_with_206(http: Any, loaded: Loaded) -> None:
    response = http(
        f"/studies/{STUDY_UID}/series/{MIXED_SERIES}",
        Accept=f'multipart/related; type="application/dicom"; transfer-syntax={ELE}',
    )
    assert response.status_code == 206
    assert "Warning" in response.headers
    parts = _multipart(response)
    assert len(parts) == len(MIXED) - 1
    assert all(headers["Content-Type"] == f"application/dicom; transfer-syntax={ELE}" for headers, _ in parts)
    assert all(headers["Content-Location"].startswith("http") for headers, _ in parts)


# -- metadata --------------------------------------------------------------------------------------------------


def test_metadata_is_valid_dicom_json(dw: DICOMwebClient, loaded: Loaded) -> None:
    series = dw.retrieve_series_metadata(STUDY_UID, CT_SERIES)
    assert len(series) == 3
    study = dw.retrieve_study_metadata(STUDY_UID)
    assert len(study) == len(loaded.originals)
    for item in study:
        assert check_dataset(item) == []
        sop = item["00080018"]["Value"][0]
        original = pydicom.dcmread(loaded.originals[sop])
        assert item["00280010"]["Value"] == [original.Rows]
        assert item["00280011"]["Value"] == [original.Columns]
        assert "7FE00010" not in item
        expected = ts.JPEG_BASELINE_8BIT if sop == loaded.lossy_sop else HTJ2K
        assert item["00020010"] == {"vr": "UI", "Value": [expected]}
    instance = dw.retrieve_instance_metadata(STUDY_UID, MIXED_SERIES, loaded.multiframe_sop)
    assert instance["00280008"]["Value"] == [3]


def test_bulk_data_round_trips(dw: DICOMwebClient, http: Any, loaded: Loaded) -> None:
    instance = dw.retrieve_instance_metadata(STUDY_UID, MIXED_SERIES, loaded.bulk_sop)
    attribute = instance["00091001"]
    assert attribute["vr"] == "OB"
    assert set(attribute) == {"vr", "BulkDataURI"}
    uri = attribute["BulkDataURI"]
    assert "/instances/" + loaded.bulk_sop + "/bulkdata/" in uri
    assert dw.retrieve_bulkdata(uri) == [PRIVATE_BULK]
    path = uri.split(loaded.datastore_id, 1)[1]
    single = http(path, Accept="application/octet-stream")
    assert single.status_code == 200
    assert single.headers["Content-Type"] == "application/octet-stream"
    assert single.content == PRIVATE_BULK
    ranged = http(path, Accept="application/octet-stream", Range="bytes=1000-1999")
    assert ranged.status_code == 206
    assert ranged.headers["Content-Range"] == f"bytes 1000-1999/{len(PRIVATE_BULK)}"
    assert ranged.content == PRIVATE_BULK[1000:2000]
    # the P10 carries the value too
    ds = dw.retrieve_instance(STUDY_UID, MIXED_SERIES, loaded.bulk_sop)
    assert ds[0x00091001].value == PRIVATE_BULK
    # a reference of another instance is not this instance's
    other = _instance_path(loaded, uid("wado-study", "mixed", 2))
    reference = path.rsplit("/", 1)[1]
    assert http(f"{other}/bulkdata/{reference}").status_code == 404
    assert http(f"{_instance_path(loaded, loaded.bulk_sop)}/bulkdata/{'0' * 32}").status_code == 404


def test_metadata_etag_and_not_modified(http: Any, loaded: Loaded) -> None:
    for path in (
        f"/studies/{STUDY_UID}/series/{CT_SERIES}/metadata",
        f"/studies/{STUDY_UID}/metadata",
        f"{_instance_path(loaded, loaded.rgb_sop)}/metadata",
    ):
        first = http(path, Accept="application/dicom+json")
        assert first.status_code == 200
        assert first.headers["Content-Type"] == "application/dicom+json"
        tag = first.headers["ETag"]
        assert tag.startswith('"') or tag.startswith('W/"')
        again = http(path, **{"If-None-Match": tag, "Accept": "application/dicom+json"})
        assert again.status_code == 304
        assert again.content == b""
        assert http(path, **{"If-None-Match": '"other"'}).status_code == 200
    assert http(f"/studies/{STUDY_UID}/metadata", Accept="application/dicom+xml").status_code == 406


# -- frames ----------------------------------------------------------------------------------------------------


def test_frames_ele_are_bit_exact(dw: DICOMwebClient, loaded: Loaded) -> None:
    for sop in _lossless(loaded):
        expected = _frames_of(loaded.originals[sop])
        numbers = list(range(1, len(expected) + 1))
        got = dw.retrieve_instance_frames(
            STUDY_UID, loaded.series_of[sop], sop, numbers, media_types=(("application/octet-stream", ELE),)
        )
        assert len(got) == len(expected)
        for frame, original in zip(got, expected, strict=True):
            assert frame == np.ascontiguousarray(original).astype(original.dtype.newbyteorder("<")).tobytes(), sop


def test_frames_in_stored_syntax_decode_to_the_original(dw: DICOMwebClient, loaded: Loaded) -> None:
    for sop in _lossless(loaded):
        expected = _frames_of(loaded.originals[sop])
        numbers = list(range(len(expected), 0, -1))  # any order
        got = dw.retrieve_instance_frames(STUDY_UID, loaded.series_of[sop], sop, numbers, media_types=(("*/*", "*"),))
        for frame, number in zip(got, numbers, strict=True):
            assert np.array_equal(imagecodecs.htj2k_decode(frame), expected[number - 1]), (sop, number)


def test_frame_parts_name_their_media_type_and_location(http: Any, loaded: Loaded) -> None:
    path = _instance_path(loaded, loaded.multiframe_sop)
    for accept, content_type in (
        ("multipart/related; type=image/jphc", f"image/jphc; transfer-syntax={HTJ2K}"),
        ("multipart/related; type=application/octet-stream; transfer-syntax=*", f"image/jphc; transfer-syntax={HTJ2K}"),
        ("multipart/related; type=application/octet-stream", f"application/octet-stream; transfer-syntax={ELE}"),
    ):
        response = http(f"{path}/frames/2,3", Accept=accept)
        assert response.status_code == 200, response.text
        parts = _multipart(response)
        assert [headers["Content-Type"] for headers, _ in parts] == [content_type] * 2
        assert [headers["Content-Location"].rsplit("/", 2)[1:] for headers, _ in parts] == [
            ["frames", "2"],
            ["frames", "3"],
        ]
    lossy = http(f"{_instance_path(loaded, loaded.lossy_sop)}/frames/1", Accept="multipart/related; type=image/jpeg")
    assert _multipart(lossy)[0][0]["Content-Type"] == f"image/jpeg; transfer-syntax={ts.JPEG_BASELINE_8BIT}"


def test_single_frame_range_for_progressive_htj2k(http: Any, loaded: Loaded) -> None:
    path = f"{_instance_path(loaded, next(iter(loaded.originals)))}/frames/1"
    accept = "multipart/related; type=application/octet-stream; transfer-syntax=*"
    whole = _multipart(http(path, Accept=accept))[0][1]
    ranged = http(path, Accept=accept, Range="bytes=0-99")
    assert ranged.status_code == 206
    assert ranged.headers["Content-Range"] == f"bytes 0-99/{len(whole)}"
    assert ranged.headers["Content-Type"] == f"image/jphc; transfer-syntax={HTJ2K}"
    assert ranged.content == whole[:100]
    rest = http(path, Accept=accept, Range="bytes=100-")
    assert ranged.content + rest.content == whole
    assert http(path, Accept=accept, Range=f"bytes={len(whole)}-").status_code == 416
    ele = http(path, Accept="application/octet-stream", Range="bytes=-10")
    assert ele.status_code == 206
    assert len(ele.content) == 10


def test_error_answers(http: Any, loaded: Loaded) -> None:
    sop = loaded.multiframe_sop
    path = _instance_path(loaded, sop)
    unknown = "1.2.3.999"
    cases = {
        f"/studies/{unknown}/metadata": 404,
        f"/studies/{STUDY_UID}/series/{unknown}/metadata": 404,
        f"/studies/{STUDY_UID}/series/{MIXED_SERIES}/instances/{unknown}": 404,
        f"{path}/frames/4": 404,
        f"{path}/frames/0": 400,
        f"{path}/frames/1,a": 400,
        f"{path}/frames/1,1": 400,
        f"{path}/metadata?imageSetId={'f' * 32}": 404,
    }
    for url, status in cases.items():
        response = http(url)
        assert response.status_code == status, (url, response.status_code, response.text)
        assert response.json()["__type"]
    for accept in (
        f"multipart/related; type=application/octet-stream; transfer-syntax={ts.JPEG_LS_LOSSLESS}",
        "multipart/related; type=image/jls",
        "multipart/related; type=application/dicom",  # not a frame media type
    ):
        response = http(f"{path}/frames/1", Accept=accept)
        assert response.status_code == 406, (accept, response.text)
    assert http(path, Accept=f"application/dicom; transfer-syntax={ts.JPEG_LS_LOSSLESS}").status_code == 406
    lossy = _instance_path(loaded, loaded.lossy_sop)
    assert (
        http(
            f"{lossy}/frames/1", Accept=f"multipart/related; type=application/octet-stream; transfer-syntax={ELE}"
        ).status_code
        == 406
    )


def test_image_set_id_reaches_non_primary_image_sets(dw: DICOMwebClient, http: Any, loaded: Loaded) -> None:
    sop = loaded.non_primary_sop
    path = f"/studies/{STUDY_UID}/series/{CT_SERIES}/instances/{sop}"
    assert http(f"{path}/metadata").status_code == 404  # primary image sets only without imageSetId
    query = f"?imageSetId={loaded.non_primary_image_set}"
    [instance] = http(f"{path}/metadata{query}").json()
    assert instance["00080050"]["Value"] == ["ACC-OTHER"]
    params = {"imageSetId": loaded.non_primary_image_set}
    ds = dw.retrieve_instance(
        STUDY_UID, CT_SERIES, sop, media_types=(("application/dicom", ELE),), additional_params=params
    )
    assert ds.AccessionNumber == "ACC-OTHER"
    frames = dw.retrieve_instance_frames(
        STUDY_UID, CT_SERIES, sop, [1], media_types=(("application/octet-stream", ELE),), additional_params=params
    )
    assert frames[0] == ds.PixelData
    series = http(f"/studies/{STUDY_UID}/series/{CT_SERIES}/metadata{query}").json()
    assert [item["00080018"]["Value"][0] for item in series] == [sop]
    primary = http(f"/studies/{STUDY_UID}/series/{CT_SERIES}/metadata?imageSetId={loaded.primary_ct_image_set}")
    assert len(primary.json()) == 3
    mixed = http(f"{_instance_path(loaded, loaded.bulk_sop)}/metadata?imageSetId={loaded.mixed_image_set}").json()
    uri = mixed[0]["00091001"]["BulkDataURI"]
    assert uri.endswith(f"?imageSetId={loaded.mixed_image_set}")
    assert http(uri.split(loaded.datastore_id, 1)[1]).status_code == 200
