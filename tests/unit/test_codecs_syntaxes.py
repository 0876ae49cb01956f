"""Transfer syntax table (guide 22563-22619), GetImageFrame content types, and PixelFormat."""

from __future__ import annotations

import numpy as np
import pytest
from pydicom.dataset import Dataset

from openhi.codecs import syntaxes as ts
from openhi.codecs.errors import (
    CodecError,
    FrameCountMismatchError,
    FrameExtractionError,
    FrameVerificationError,
    InvalidOffsetTableError,
    UnsupportedTransferSyntaxError,
)
from openhi.codecs.pixels import PixelFormat
from openhi.errors import OpenHIError

GUIDE_UIDS = [
    "1.2.840.10008.1.2",
    "1.2.840.10008.1.2.1",
    "1.2.840.10008.1.2.1.99",
    "1.2.840.10008.1.2.2",
    "1.2.840.10008.1.2.4.50",
    "1.2.840.10008.1.2.4.51",
    "1.2.840.10008.1.2.4.57",
    "1.2.840.10008.1.2.4.70",
    "1.2.840.10008.1.2.4.80",
    "1.2.840.10008.1.2.4.81",
    "1.2.840.10008.1.2.4.90",
    "1.2.840.10008.1.2.4.91",
    "1.2.840.10008.1.2.4.92",
    "1.2.840.10008.1.2.4.93",
    "1.2.840.10008.1.2.4.112",
    "1.2.840.10008.1.2.4.201",
    "1.2.840.10008.1.2.4.202",
    "1.2.840.10008.1.2.4.203",
    "1.2.840.10008.1.2.5",
    *[f"1.2.840.10008.1.2.4.{n}{suffix}" for n in range(100, 107) for suffix in ("", ".1")],
    "1.2.840.10008.1.2.4.107",
    "1.2.840.10008.1.2.4.108",
]
STARRED = {
    "1.2.840.10008.1.2.4.50",
    "1.2.840.10008.1.2.4.91",
    "1.2.840.10008.1.2.4.112",
    "1.2.840.10008.1.2.4.203",
    *[f"1.2.840.10008.1.2.4.{n}{suffix}" for n in range(100, 107) for suffix in ("", ".1")],
    "1.2.840.10008.1.2.4.107",
    "1.2.840.10008.1.2.4.108",
}


@pytest.mark.parametrize("uid", GUIDE_UIDS)
def test_every_guide_syntax_is_in_the_table_with_its_star(uid: str) -> None:
    row = ts.lookup(uid)
    assert row is not None
    assert ts.kept_as_is(uid, 16) is (uid in STARRED)
    assert row.encapsulated is (uid not in GUIDE_UIDS[:4])


def test_explicit_little_endian_is_kept_only_for_binary_segmentation() -> None:
    assert ts.kept_as_is(ts.EXPLICIT_VR_LITTLE_ENDIAN, 1)
    for bits in (8, 16, 32):
        assert not ts.kept_as_is(ts.EXPLICIT_VR_LITTLE_ENDIAN, bits)
    for uid in (
        ts.IMPLICIT_VR_LITTLE_ENDIAN,
        ts.EXPLICIT_VR_BIG_ENDIAN,
        ts.DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN,
    ):
        assert not ts.kept_as_is(uid, 1)


def test_unknown_uids_are_not_kept_and_not_decodable() -> None:
    for uid in ("1.2.840.10008.1.2.1.98", "1.2.840.10008.1.2.4.94", "1.2.3.4"):
        assert ts.lookup(uid) is None
        assert not ts.kept_as_is(uid, 8)
        assert not ts.is_decodable(uid)
    assert ts.is_video("1.2.840.10008.1.2.4.102.1")
    assert not ts.is_decodable("1.2.840.10008.1.2.4.108")
    assert ts.is_decodable(ts.JPEG_XL_LOSSLESS)
    assert ts.lookup("1.2.840.10008.1.2.4.90\x00") is not None  # padded UIDs from the wire


@pytest.mark.parametrize(
    ("uid", "content_type"),
    [
        (None, "image/jph"),
        ("", "image/jph"),
        ("1.2.840.10008.1.2.4.202", "image/jph"),
        ("1.2.840.10008.1.2.4.203", "image/jphc"),
        ("1.2.840.10008.1.2.4.90", "image/j2c"),
        ("1.2.840.10008.1.2.4.91", "image/j2c"),
        ("1.2.840.10008.1.2.4.50", "image/jpeg"),
        ("1.2.840.10008.1.2.1", "application/octet-stream"),
        ("1.2.840.10008.1.2.4.100", "video/mpeg"),
        ("1.2.840.10008.1.2.4.101.1", "video/mpeg"),
        ("1.2.840.10008.1.2.4.102", "video/mp4"),
        ("1.2.840.10008.1.2.4.106.1", "video/mp4"),
        ("1.2.840.10008.1.2.4.107", "video/H256"),
        ("1.2.840.10008.1.2.4.108", "video/H256"),
        ("1.2.840.10008.1.2.4.112", "image/jxl"),
        ("1.2.3.4", "application/octet-stream"),
    ],
)
def test_get_image_frame_content_type(uid: str | None, content_type: str) -> None:
    assert ts.content_type(uid) == content_type


def test_errors_carry_their_warning_codes() -> None:
    assert issubclass(CodecError, OpenHIError)
    assert CodecError.warning_code == 0xB100
    assert FrameVerificationError.warning_code == 0xB100
    assert FrameExtractionError.warning_code == 0xB110
    assert FrameCountMismatchError.warning_code == 0xB111
    assert InvalidOffsetTableError.warning_code == 0xB112
    assert UnsupportedTransferSyntaxError.warning_code == 0xB120 == 45344


def _pixel_ds(**overrides: object) -> Dataset:
    ds = Dataset()
    values: dict[str, object] = {
        "Rows": 4,
        "Columns": 6,
        "SamplesPerPixel": 1,
        "PhotometricInterpretation": "MONOCHROME2",
        "BitsAllocated": 16,
        "BitsStored": 12,
        "HighBit": 11,
        "PixelRepresentation": 1,
    }
    values.update(overrides)
    for keyword, value in values.items():
        if value is not None:
            setattr(ds, keyword, value)
    return ds


def test_pixel_format_reads_the_image_pixel_module() -> None:
    fmt = PixelFormat.from_dataset(_pixel_ds(NumberOfFrames="3"))
    assert (fmt.rows, fmt.columns, fmt.number_of_frames) == (4, 6, 3)
    assert fmt.dtype == np.dtype("<i2")
    assert fmt.shape == (4, 6)
    assert fmt.frame_bytes == 48
    assert fmt.decoded_frame_bytes == 48


@pytest.mark.parametrize(
    ("bits", "signed", "dtype"),
    [
        (8, 0, "u1"),
        (8, 1, "i1"),
        (16, 0, "<u2"),
        (16, 1, "<i2"),
        (32, 0, "<u4"),
        (32, 1, "<i4"),
        (1, 0, "u1"),
    ],
)
def test_pixel_format_dtype(bits: int, signed: int, dtype: str) -> None:
    fmt = PixelFormat.from_dataset(
        _pixel_ds(BitsAllocated=bits, BitsStored=bits, HighBit=bits - 1, PixelRepresentation=signed)
    )
    assert fmt.dtype == np.dtype(dtype)


def test_pixel_format_frame_lengths_for_bit_packed_and_ybr_422() -> None:
    binary = PixelFormat.from_dataset(
        _pixel_ds(Rows=5, Columns=5, BitsAllocated=1, BitsStored=1, HighBit=0, PixelRepresentation=0)
    )
    assert binary.frame_bits == 25
    assert binary.frame_bytes == 4
    assert binary.decoded_frame_bytes == 25
    ybr = PixelFormat.from_dataset(
        _pixel_ds(
            SamplesPerPixel=3,
            PhotometricInterpretation="YBR_FULL_422",
            BitsAllocated=8,
            BitsStored=8,
            HighBit=7,
            PixelRepresentation=0,
            PlanarConfiguration=0,
        )
    )
    assert ybr.frame_bytes == 4 * 6 * 2
    assert ybr.shape == (4, 6, 3)
    assert ybr.decoded_frame_bytes == 4 * 6 * 3


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"Rows": None}, "Rows"),
        ({"BitsStored": None}, "BitsStored"),
        ({"PhotometricInterpretation": None}, "PhotometricInterpretation"),
        ({"PixelRepresentation": None}, "PixelRepresentation"),
        ({"NumberOfFrames": "0"}, "Number of Frames"),
        ({"BitsStored": 17}, "Bits Stored"),
        ({"BitsAllocated": 12}, "Bits Allocated"),
        ({"SamplesPerPixel": 2}, "Samples per Pixel"),
        ({"Columns": 0}, "Rows and Columns"),
    ],
)
def test_pixel_format_rejects_missing_or_invalid_attributes(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(CodecError, match=message):
        PixelFormat.from_dataset(_pixel_ds(**overrides))


def test_pixel_format_defaults_high_bit_and_planar_configuration() -> None:
    fmt = PixelFormat.from_dataset(_pixel_ds(HighBit=None))
    assert fmt.high_bit == 11
    assert fmt.planar_configuration == 0
    assert fmt.number_of_frames == 1


def test_pixel_format_from_document_values() -> None:
    values = {
        "Rows": 4,
        "Columns": [6],
        "BitsAllocated": 16,
        "BitsStored": "12.0",
        "PhotometricInterpretation": "monochrome2 ",
        "NumberOfFrames": "3\\4",
    }
    fmt = PixelFormat.from_values(values)
    assert (fmt.rows, fmt.columns, fmt.bits_stored, fmt.high_bit) == (4, 6, 12, 11)
    assert (fmt.samples_per_pixel, fmt.pixel_representation, fmt.number_of_frames) == (1, 0, 3)
    assert fmt.photometric_interpretation == "MONOCHROME2"
    assert PixelFormat.from_values({**values, "NumberOfFrames": "0"}).number_of_frames == 1
    with pytest.raises(CodecError, match="Rows"):
        PixelFormat.from_values({k: v for k, v in values.items() if k != "Rows"})
    with pytest.raises(CodecError, match="HighBit"):
        PixelFormat.from_values({**values, "HighBit": "eleven"})
    with pytest.raises(CodecError, match="BitsStored"):
        PixelFormat.from_values({**values, "BitsStored": "11.5"})
