"""Conformance of the stored codestreams (PS3.5 8.2.14 for .4.202, 8.2.4 for .4.90) and the checksums."""

from __future__ import annotations

import imagecodecs
import numpy as np
import pytest
from tests.support.pixel_samples import KINDS, phantom

from openhi.codecs import syntaxes as ts
from openhi.codecs.checksum import frame_crc32, resolution_checksums
from openhi.codecs.codestream import EOC, parse_codestream
from openhi.codecs.encode import encode_htj2k, encode_j2k_lossless, htj2k_decompositions
from openhi.codecs.errors import FrameDecodeError, FrameEncodeError, UnsupportedTransferSyntaxError

S16 = phantom(KINDS["s16"])[0]
RGB = phantom(KINDS["rgb8"])[0]


def _markers(codestream: bytes) -> list[int]:
    """Marker codes of the main header, in order, up to the first SOT."""
    found, at = [int.from_bytes(codestream[:2], "big")], 2
    while True:
        marker = int.from_bytes(codestream[at : at + 2], "big")
        found.append(marker)
        if marker == 0xFF90:
            return found
        at += 2 + int.from_bytes(codestream[at + 2 : at + 4], "big")


@pytest.mark.parametrize(
    ("rows", "columns", "decompositions"),
    [
        (1, 1, 5),
        (8, 8, 5),
        (512, 512, 5),
        (2048, 2048, 5),
        (2049, 100, 6),
        (4096, 4096, 6),
        (3328, 4096, 6),
        (8192, 8192, 7),
    ],
)
def test_decomposition_rule(rows: int, columns: int, decompositions: int) -> None:
    assert htj2k_decompositions(rows, columns) == decompositions
    assert -(-max(rows, columns) // 2**decompositions) <= 64


def test_htj2k_stream_is_rpcl_with_tlm_reversible_and_signed() -> None:
    data = encode_htj2k(S16)
    info = parse_codestream(data)
    markers = _markers(data)
    assert markers[:2] == [0xFF4F, 0xFF51]  # SOC then SIZ: a raw codestream, no JPH boxes
    assert {0xFF52, 0xFF55, 0xFF50} <= set(markers)  # COD, TLM, CAP (HT)
    assert info.progression_order == "RPCL"
    assert info.reversible  # 5/3 wavelet
    assert info.has_tlm
    assert info.has_cap
    assert info.decompositions == 5
    assert (info.signed, info.precision) == (True, 16)
    assert (info.width, info.height, info.components) == (S16.shape[1], S16.shape[0], 1)
    assert [part.part for part in info.tile_parts] == list(range(6))  # one tile-part per resolution
    assert data.endswith(EOC.to_bytes(2, "big"))
    assert np.array_equal(imagecodecs.htj2k_decode(data), S16)


def test_htj2k_unsigned_and_rgb_streams() -> None:
    unsigned = parse_codestream(encode_htj2k(phantom(KINDS["u12"])[0]))
    assert (unsigned.signed, unsigned.precision) == (False, 16)
    rgb = parse_codestream(encode_htj2k(RGB))
    assert rgb.components == 3
    assert rgb.multiple_component_transform
    plain = parse_codestream(encode_htj2k(RGB, colour_transform=False))
    assert not plain.multiple_component_transform


def test_large_images_get_six_decompositions_and_a_64_pixel_base() -> None:
    frame = np.tile(np.arange(4096, dtype=np.uint16)[None, :] % 4000, (64, 1))
    data = encode_htj2k(frame)
    info = parse_codestream(data)
    assert info.decompositions == 6
    assert len(info.tile_parts) == 7
    levels = resolution_checksums(data, ts.HTJ2K_LOSSLESS_RPCL)
    assert (levels[0].width, levels[0].height) == (64, 1)
    assert (levels[-1].width, levels[-1].height) == (4096, 64)
    assert levels[-1].checksum == frame_crc32(frame)


@pytest.mark.parametrize("shape", [(1, 1), (1, 7), (7, 1), (2, 2), (3, 5), (8, 8), (17, 5)])
def test_tiny_images_are_lossless(shape: tuple[int, int]) -> None:
    frame = (np.arange(shape[0] * shape[1], dtype=np.int32) * 977 - 3000).astype(np.int16).reshape(shape)
    for encoded, decode in (
        (encode_htj2k(frame), imagecodecs.htj2k_decode),
        (encode_j2k_lossless(frame), imagecodecs.jpeg2k_decode),
    ):
        assert np.array_equal(decode(encoded), frame)
    assert parse_codestream(encode_htj2k(frame)).decompositions == 5


def test_j2k_lossless_stream_is_a_raw_reversible_codestream() -> None:
    data = encode_j2k_lossless(S16)
    assert data[:4] == b"\xff\x4f\xff\x51"  # not a JP2 file
    info = parse_codestream(data)
    assert info.reversible
    assert info.signed
    assert np.array_equal(imagecodecs.jpeg2k_decode(data), S16)
    assert parse_codestream(encode_j2k_lossless(RGB)).multiple_component_transform
    assert np.array_equal(imagecodecs.jpeg2k_decode(encode_j2k_lossless(RGB)), RGB)


def test_j2k_lossless_handles_32_bit_up_to_25_bits_and_refuses_more() -> None:
    dose = np.arange(256, dtype=np.uint32).reshape(16, 16) * 120_001
    assert np.array_equal(imagecodecs.jpeg2k_decode(encode_j2k_lossless(dose)), dose)
    signed = dose.astype(np.int32) - 15_000_000
    assert np.array_equal(imagecodecs.jpeg2k_decode(encode_j2k_lossless(signed)), signed)
    with pytest.raises(FrameEncodeError, match="25 bits"):
        encode_j2k_lossless(np.array([[0, 2**32 - 1]], dtype=np.uint32))
    full = np.array([[0, 2**32 - 1], [2**31, 7]], dtype=np.uint32)
    assert np.array_equal(imagecodecs.htj2k_decode(encode_htj2k(full)), full)


def test_encoders_reject_what_they_cannot_code() -> None:
    with pytest.raises(FrameEncodeError):
        encode_htj2k(np.zeros((4, 4), dtype=np.float32))
    with pytest.raises(FrameEncodeError):
        encode_htj2k(np.zeros((4, 4, 2), dtype=np.uint8))


def test_checksums_go_from_base_to_full_resolution() -> None:
    for syntax, data in (
        (ts.HTJ2K_LOSSLESS_RPCL, encode_htj2k(S16)),
        (ts.JPEG_2000_LOSSLESS, encode_j2k_lossless(S16)),
    ):
        levels = resolution_checksums(data, syntax)
        assert levels[-1].checksum == frame_crc32(S16)
        assert (levels[-1].width, levels[-1].height) == (S16.shape[1], S16.shape[0])
        widths = [level.width for level in levels]
        assert widths == sorted(widths)
        assert max(levels[0].width, levels[0].height) <= 64
    assert levels[0].as_metadata().keys() == {"Width", "Height", "Checksum"}
    with pytest.raises(UnsupportedTransferSyntaxError):
        resolution_checksums(b"", ts.JPEG_LS_LOSSLESS)
    with pytest.raises(FrameDecodeError):
        resolution_checksums(b"\x00\x00garbage", ts.HTJ2K_LOSSLESS_RPCL)


def test_crc32_is_over_little_endian_samples_in_the_frame_dtype() -> None:
    assert frame_crc32(S16) == frame_crc32(S16.astype(">i2"))
    assert frame_crc32(S16) != frame_crc32(S16.astype(np.int32))


def test_leading_tile_parts_decode_exactly_to_lower_resolutions() -> None:
    data = encode_htj2k(S16)
    info = parse_codestream(data)
    levels = resolution_checksums(data, ts.HTJ2K_LOSSLESS_RPCL)
    for count in range(1, len(info.tile_parts)):
        cut = info.tile_parts[count].offset
        partial = data[:cut] + EOC.to_bytes(2, "big")
        skip = len(info.tile_parts) - count
        level = imagecodecs.htj2k_decode(partial, skipres=skip)
        assert frame_crc32(level) == levels[count - 1].checksum


def test_dropping_the_last_tile_part_still_decodes_without_error_but_differs() -> None:
    """Why verification is mandatory: decoders do not notice a missing resolution."""
    data = encode_htj2k(S16)
    info = parse_codestream(data)
    truncated = data[: info.tile_parts[-1].offset] + EOC.to_bytes(2, "big")
    decoded = imagecodecs.htj2k_decode(truncated)
    assert decoded.shape == S16.shape
    assert not np.array_equal(decoded, S16)
