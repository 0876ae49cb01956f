"""read_p10(): DICOM P10 files in, clear DicomInputError messages for everything else."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
from pydicom.data import get_testdata_files
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian

from openhi.dicom.errors import DicomInputError
from openhi.dicom.normalize import normalize
from openhi.dicom.reader import read_p10

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

BUNDLED = {os.path.basename(path): path for path in get_testdata_files()}


def bundled(name: str) -> str:
    assert name in BUNDLED, f"{name} is not among pydicom's bundled test files"
    return BUNDLED[name]


def content(name: str) -> bytes:
    return Path(bundled(name)).read_bytes()


def test_reads_from_path_pathlike_and_file_object() -> None:
    expected = read_p10(bundled("CT_small.dcm")).SOPInstanceUID
    assert read_p10(Path(bundled("CT_small.dcm"))).SOPInstanceUID == expected
    with open(bundled("CT_small.dcm"), "rb") as fp:
        assert read_p10(fp).SOPInstanceUID == expected
    stream = io.BytesIO(b"junk" + content("CT_small.dcm"))
    stream.seek(4)
    assert read_p10(stream).SOPInstanceUID == expected


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.dcm"
    path.write_bytes(b"")
    with pytest.raises(DicomInputError, match=r"^not a DICOM P10 file: .*empty\.dcm: the file is empty$") as caught:
        read_p10(path)
    assert caught.value.code == "ValidationException"


@pytest.mark.parametrize(
    "data",
    [
        b"hello, this is a text file\n" * 20,
        b"%PDF-1.4\n" + bytes(range(256)) * 4,
        b"\x00" * 132,
    ],
)
def test_not_dicom(data: bytes) -> None:
    with pytest.raises(DicomInputError, match=r"^not a DICOM P10 file: <stream>: "):
        read_p10(io.BytesIO(data))


def test_bundled_non_dicom_files() -> None:
    for name in ("test1.json", "crayons.icc", "rtplan.dump"):
        with pytest.raises(DicomInputError, match="not a DICOM P10 file"):
            read_p10(bundled(name))


@pytest.mark.parametrize("name", ["MR_truncated.dcm", "rtplan_truncated.dcm"])
def test_bundled_truncated_files(name: str) -> None:
    with pytest.raises(DicomInputError, match=rf"^truncated DICOM file: .*{name}: .* declares \d+ bytes"):
        read_p10(bundled(name))


@pytest.mark.parametrize(
    ("name", "cut", "detail"),
    [
        ("CT_small.dcm", 200, "ends inside|declares"),  # inside the file meta
        ("CT_small.dcm", 345, "declares"),  # inside a value
        ("CT_small.dcm", 1001, "ends inside an element header|declares"),
        ("CT_small.dcm", -1, "element \\(FFFC,FFFC\\) declares 126 bytes"),  # trailing padding
        ("CT_small.dcm", -1000, "element \\(7FE0,0010\\) declares 32768 bytes"),  # pixel data
        ("CT_small.dcm", -20000, "element \\(7FE0,0010\\) declares 32768 bytes"),
        ("JPEG2000.dcm", -10, "items of element \\(7FE0,0010\\)|an item of element \\(7FE0,0010\\)"),
        ("rtplan.dcm", 1700, ""),  # inside nested sequences
        ("MR_small_bigendian.dcm", -3, "7FE0,0010"),
        ("MR_small_implicit.dcm", 2000, ""),
    ],
)
def test_truncated_bytes(name: str, cut: int, detail: str) -> None:
    data = content(name)[:cut]
    with pytest.raises(DicomInputError, match=f"^truncated DICOM file: <stream>: .*({detail})"):
        read_p10(io.BytesIO(data))


def test_header_without_data_set() -> None:
    data = content("CT_small.dcm")
    meta_end = 132 + 12 + int.from_bytes(data[140:144], "little")
    with pytest.raises(DicomInputError, match="no data set after the file meta information"):
        read_p10(io.BytesIO(data[:meta_end]))


def test_every_cut_is_refused_or_a_whole_element_shorter() -> None:
    data = content("MR_small.dcm")
    accepted, messages = [], []
    for cut in range(132, len(data), 7):
        try:
            read_p10(io.BytesIO(data[:cut]))
        except DicomInputError as exc:
            messages.append(exc.message)
        else:
            accepted.append(cut)
    assert all(message.startswith(("truncated DICOM file", "not a DICOM P10 file")) for message in messages)
    # a cut exactly between two elements leaves a valid, shorter data set; no cut inside pixel data passes
    assert all(cut < len(data) - 8192 for cut in accepted)


def test_file_without_preamble_but_with_file_meta() -> None:
    ds = read_p10(io.BytesIO(content("CT_small.dcm")[132:]))
    ni = normalize(ds)
    assert ni.transfer_syntax_uid == "1.2.840.10008.1.2.1"
    with pytest.raises(DicomInputError, match="truncated DICOM file"):
        read_p10(io.BytesIO(content("CT_small.dcm")[132:-100]))


@pytest.mark.parametrize("name", ["ExplVR_LitEndNoMeta.dcm", "ExplVR_BigEndNoMeta.dcm"])
def test_file_without_file_meta_is_read_but_has_no_transfer_syntax(name: str) -> None:
    ds = read_p10(bundled(name))
    assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.481.8"
    with pytest.raises(DicomInputError, match=r"^DICOM attribute TransferSyntaxUID does not exist$"):
        normalize(ds)


def test_missing_path_is_not_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        read_p10(tmp_path / "absent.dcm")


def test_deferred_values_load_from_an_open_file_object(tmp_path: Path) -> None:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID, ds.SOPInstanceUID = "1.2.840.10008.5.1.4.1.1.7", "1.2.3.4"
    ds.StudyInstanceUID, ds.SeriesInstanceUID = "1.2.3.5", "1.2.3.6"
    ds.BitsAllocated = 8
    ds.PixelData = b"\x01" * 3_000_000
    path = tmp_path / "big.dcm"
    ds.save_as(path, enforce_file_format=True)
    with open(path, "rb") as fp:
        loaded = read_p10(fp)
        assert normalize(loaded).instance["PixelData"] is None
        assert len(loaded.PixelData) == 3_000_000
    path.write_bytes(path.read_bytes()[:-1])
    with pytest.raises(DicomInputError, match=r"truncated DICOM file: .*big\.dcm: element \(7FE0,0010\)"):
        read_p10(path)
