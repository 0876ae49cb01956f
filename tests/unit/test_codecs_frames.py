"""Frame extraction: native layouts, offset tables, fragment grouping and the 0xB110/0xB111/0xB112 errors."""

from __future__ import annotations

from struct import pack

import imagecodecs
import numpy as np
import pytest
from pydicom.dataset import Dataset
from pydicom.encaps import encapsulate, encapsulate_extended
from pydicom.pixels import pixel_array
from tests.support.pixel_samples import (
    KINDS,
    Kind,
    base_dataset,
    make_dataset,
    phantom,
    roundtrip,
    video_dataset,
)

from openhi.codecs import syntaxes as ts
from openhi.codecs.decode import decode_frame
from openhi.codecs.errors import (
    FrameCountMismatchError,
    FrameExtractionError,
    InvalidOffsetTableError,
    UnsupportedTransferSyntaxError,
)
from openhi.codecs.frames import iter_frame_payloads
from openhi.codecs.pixels import PixelFormat

U12X3 = KINDS["u12x3"]


def _j2k_frames() -> list[bytes]:
    """Three J2K codestreams, padded to even length as DICOM items are (payloads keep that padding)."""
    frames = [
        bytes(imagecodecs.jpeg2k_encode(frame, codecformat="J2K", reversible=True, numthreads=1))
        for frame in phantom(U12X3)
    ]
    return [frame + b"\x00" * (len(frame) % 2) for frame in frames]


def _encapsulated(pixel_data: bytes, frames: int = 3, syntax: str = ts.JPEG_2000_LOSSLESS) -> Dataset:
    ds = base_dataset(Kind("x", 16, 12, False, frames=frames), syntax)
    ds.PixelData = pixel_data
    ds["PixelData"].VR = "OB"
    ds["PixelData"].is_undefined_length = True
    return ds


@pytest.mark.parametrize(
    "syntax", [ts.EXPLICIT_VR_LITTLE_ENDIAN, ts.EXPLICIT_VR_BIG_ENDIAN, ts.DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN]
)
def test_native_frames_come_back_little_endian(syntax: str) -> None:
    ds, frames = make_dataset(syntax, "u12x3")
    payloads = list(iter_frame_payloads(ds))
    assert payloads == [frame.astype("<u2").tobytes() for frame in frames]


def test_big_endian_8bit_ow_is_swapped_pairwise_like_pydicom() -> None:
    kind = Kind("u8odd", 8, 8, False, samples=3, frames=3)
    frames = phantom(kind, rows=3, columns=3)  # 27-byte frames: odd, so frames straddle swapped words
    ds = base_dataset(kind, ts.EXPLICIT_VR_BIG_ENDIAN, rows=3, columns=3)
    data = frames.tobytes() + b"\x00"
    ds.PixelData = np.frombuffer(data, ">u2").astype("<u2").tobytes()
    ds["PixelData"].VR = "OW"
    ds = roundtrip(ds)
    fmt = PixelFormat.from_dataset(ds)
    for index, payload in enumerate(iter_frame_payloads(ds)):
        assert payload == frames[index].tobytes()
        assert np.array_equal(decode_frame(payload, ts.EXPLICIT_VR_BIG_ENDIAN, fmt), pixel_array(ds, index=index))


@pytest.mark.parametrize("syntax", [ts.EXPLICIT_VR_LITTLE_ENDIAN, ts.IMPLICIT_VR_LITTLE_ENDIAN])
def test_bit_packed_frames_that_are_not_byte_aligned_are_repacked(syntax: str) -> None:
    kind = Kind("bits", 8, 1, False, frames=5)
    rows, columns = 3, 3  # 9 bits per frame
    bits = (phantom(Kind("b", 8, 8, False, frames=5), rows, columns) > 127).astype(np.uint8)
    ds = base_dataset(kind, syntax, rows=rows, columns=columns)
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 1, 1, 0
    ds.PixelData = np.packbits(bits.ravel(), bitorder="little").tobytes()
    ds["PixelData"].VR = "OB"
    ds = roundtrip(ds)
    fmt = PixelFormat.from_dataset(ds)
    payloads = list(iter_frame_payloads(ds))
    assert [len(p) for p in payloads] == [2] * 5
    for index, payload in enumerate(payloads):
        decoded = decode_frame(payload, syntax, fmt)
        assert np.array_equal(decoded, bits[index])
        assert np.array_equal(decoded, pixel_array(ds, index=index))


def test_truncated_native_pixel_data_is_a_frame_extraction_failure() -> None:
    ds, _ = make_dataset(ts.EXPLICIT_VR_LITTLE_ENDIAN, "u12x3")
    ds.PixelData = ds.PixelData[:-10]
    with pytest.raises(FrameExtractionError, match="needed"):
        iter_frame_payloads(ds)  # raised at call time, before iteration


def test_basic_offset_table_with_several_fragments_per_frame() -> None:
    frames = _j2k_frames()
    ds = _encapsulated(encapsulate(frames, fragments_per_frame=3, has_bot=True))
    assert list(iter_frame_payloads(ds)) == frames


def test_empty_offset_table_one_fragment_per_frame() -> None:
    frames = _j2k_frames()
    ds = _encapsulated(encapsulate(frames, has_bot=False))
    assert list(iter_frame_payloads(ds)) == frames


def test_empty_offset_table_groups_fragments_at_end_of_codestream_markers() -> None:
    frames = _j2k_frames()
    ds = _encapsulated(encapsulate(frames, fragments_per_frame=2, has_bot=False))
    assert list(iter_frame_payloads(ds)) == frames


def test_single_frame_in_many_fragments() -> None:
    frames = _j2k_frames()[:1]
    ds = _encapsulated(encapsulate(frames, fragments_per_frame=4, has_bot=False), frames=1)
    assert list(iter_frame_payloads(ds)) == frames


def test_extended_offset_table_is_preferred() -> None:
    frames = _j2k_frames()
    pixel_data, offsets, lengths = encapsulate_extended(frames)
    ds = _encapsulated(pixel_data)
    ds.ExtendedOffsetTable = offsets
    ds.ExtendedOffsetTableLengths = lengths
    ds = roundtrip(ds)
    assert list(iter_frame_payloads(ds)) == frames


def test_extended_offset_table_with_a_wrong_length_is_invalid() -> None:
    frames = _j2k_frames()
    pixel_data, offsets, _ = encapsulate_extended(frames)
    ds = _encapsulated(pixel_data)
    ds.ExtendedOffsetTable = offsets
    ds.ExtendedOffsetTableLengths = pack("<3Q", 1, 2, 3)
    with pytest.raises(InvalidOffsetTableError):
        iter_frame_payloads(ds)
    assert list(iter_frame_payloads(ds, lenient_offset_table=True)) == frames


def _with_bot(frames: list[bytes], offsets: list[int]) -> bytes:
    body = encapsulate(frames, has_bot=False)[8:]  # drop the empty BOT item
    table = pack(f"<{len(offsets)}I", *offsets)
    return pack("<HHI", 0xFFFE, 0xE000, len(table)) + table + body


@pytest.mark.parametrize("offsets", [[0, 5, 900], [0, 0, 0], [4, 8, 12]])
def test_offset_table_that_misses_the_fragments_is_invalid(offsets: list[int]) -> None:
    frames = _j2k_frames()
    ds = _encapsulated(_with_bot(frames, offsets))
    with pytest.raises(InvalidOffsetTableError) as caught:
        iter_frame_payloads(ds)
    assert caught.value.warning_code == 0xB112
    assert list(iter_frame_payloads(ds, lenient_offset_table=True)) == frames


def test_offset_table_with_fewer_entries_than_frames_is_a_count_mismatch() -> None:
    frames = _j2k_frames()
    first, second = 0, len(frames[0]) + 8 + (len(frames[0]) % 2)
    ds = _encapsulated(_with_bot(frames, [first, second]))
    with pytest.raises(FrameCountMismatchError) as caught:
        iter_frame_payloads(ds)
    assert caught.value.warning_code == 0xB111


def test_number_of_frames_above_the_fragment_count_is_a_count_mismatch() -> None:
    frames = _j2k_frames()[:2]
    with pytest.raises(FrameCountMismatchError):
        iter_frame_payloads(_encapsulated(encapsulate(frames, has_bot=False), frames=3))


def test_number_of_frames_below_the_marker_delimited_frames_is_a_count_mismatch() -> None:
    frames = _j2k_frames()
    ds = _encapsulated(encapsulate(frames, fragments_per_frame=2, has_bot=False), frames=2)
    with pytest.raises(FrameCountMismatchError):
        iter_frame_payloads(ds)


def test_rle_fragments_without_offset_table_cannot_be_delimited() -> None:
    ds, _ = make_dataset(ts.RLE_LOSSLESS, "u12x3")
    frames = list(iter_frame_payloads(ds))
    split = encapsulate(frames, fragments_per_frame=2, has_bot=False)
    ds = _encapsulated(split, syntax=ts.RLE_LOSSLESS)
    with pytest.raises(FrameExtractionError, match="boundaries"):
        iter_frame_payloads(ds)


@pytest.mark.parametrize("damage", ["tag", "length"])
def test_malformed_items_are_a_frame_extraction_failure(damage: str) -> None:
    data = bytearray(encapsulate(_j2k_frames(), has_bot=True))
    first_fragment = 8 + 12  # BOT item header + three offsets
    if damage == "tag":
        data[first_fragment : first_fragment + 4] = b"\x10\x00\x10\x00"
    else:
        data[first_fragment + 4 : first_fragment + 8] = pack("<I", 10**6)
    with pytest.raises(FrameExtractionError):
        iter_frame_payloads(_encapsulated(bytes(data)))


def test_video_is_one_payload_holding_the_whole_stream() -> None:
    ds = video_dataset(fragments=3)
    payloads = list(iter_frame_payloads(ds))
    assert len(payloads) == 1
    assert payloads[0].startswith(b"\x00\x00\x00\x01\x67")
    assert len(payloads[0]) == 1005 + 3  # three odd fragments, each padded to even length


def test_unknown_encapsulated_syntax_is_split_and_unknown_native_is_refused() -> None:
    frames = _j2k_frames()
    ds = _encapsulated(encapsulate(frames), syntax="1.2.840.10008.1.2.4.94")
    assert list(iter_frame_payloads(ds)) == frames
    native, _ = make_dataset(ts.EXPLICIT_VR_LITTLE_ENDIAN, "u8")
    native.file_meta.TransferSyntaxUID = "1.2.3.4.5"
    with pytest.raises(UnsupportedTransferSyntaxError):
        iter_frame_payloads(native)


def test_missing_pixel_data_or_transfer_syntax_is_a_frame_extraction_failure() -> None:
    ds, _ = make_dataset(ts.EXPLICIT_VR_LITTLE_ENDIAN, "u8")
    del ds.file_meta.TransferSyntaxUID
    with pytest.raises(FrameExtractionError, match="Transfer Syntax"):
        iter_frame_payloads(ds)
    ds, _ = make_dataset(ts.EXPLICIT_VR_LITTLE_ENDIAN, "u8")
    del ds.PixelData
    with pytest.raises(FrameExtractionError, match="Pixel Data"):
        iter_frame_payloads(ds)
