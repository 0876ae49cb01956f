"""Split a dataset's Pixel Data into per-frame payloads.

Native syntaxes (PS3.5 8.1.1, A.1-A.5): frames are consecutive runs of ``PixelFormat.frame_bits`` bits;
each payload is returned in little-endian native layout (Explicit VR Big Endian words are byte-swapped,
8-bit data encoded as OW is swapped pairwise as pydicom does; Deflated data was already inflated by
pydicom). Bit-packed frames (Bits Allocated 1) that do not start on a byte boundary are re-packed so
every payload starts at bit 0.

Encapsulated syntaxes (PS3.5 A.4): the frame boundaries come from the Extended Offset Table (PS3.3
C.7.6.3.1.8), else the Basic Offset Table, else Number of Frames (one fragment per frame, all fragments
for one frame, or JPEG EOI / J2K EOC markers when there are more fragments than frames). Offsets that do
not point at fragments raise ``InvalidOffsetTableError`` (warning 0xB112) unless the caller asks for
leniency; a frame count that disagrees with Number of Frames raises ``FrameCountMismatchError`` (0xB111);
unreadable items raise ``FrameExtractionError`` (0xB110). Video syntaxes yield the whole stream as one
payload (guide 22817-22880, item 4: checksums are computed over the original video object).
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import pairwise
from struct import unpack_from

import numpy as np
import pydicom

from openhi.codecs.errors import (
    FrameCountMismatchError,
    FrameExtractionError,
    InvalidOffsetTableError,
    UnsupportedTransferSyntaxError,
)
from openhi.codecs.pixels import PixelFormat
from openhi.codecs.syntaxes import EXPLICIT_VR_BIG_ENDIAN, Family, lookup

_ITEM = 0xE000FFFE  # (FFFE,E000) read as a little-endian uint32
_SEQUENCE_DELIMITER = 0xE0DDFFFE
# Families whose frames end with an EOI / EOC marker (FF D9), usable to group fragments into frames.
_MARKER_TERMINATED = (Family.JPEG, Family.JPEG_LOSSLESS, Family.JPEG_LS, Family.JPEG_2000, Family.HTJ2K)


def transfer_syntax_of(ds: pydicom.Dataset) -> str:
    """The Transfer Syntax UID of ``ds`` (file meta); ``FrameExtractionError`` when absent."""
    meta = getattr(ds, "file_meta", None)
    uid = meta.get("TransferSyntaxUID") if meta is not None else None
    if not uid:
        raise FrameExtractionError("the dataset has no (0002,0010) Transfer Syntax UID")
    return str(uid)


def iter_frame_payloads(ds: pydicom.Dataset, *, lenient_offset_table: bool = False) -> Iterator[bytes]:
    """Yield the stored payload of every frame of ``ds``, in order.

    Native frames come back as little-endian native bytes, encapsulated frames as their codestream
    (fragments joined). With ``lenient_offset_table`` a Basic / Extended Offset Table that does not match
    the fragments is ignored and the frames are delimited as if it were empty.
    The dataset is validated when this is called (errors raise here, not halfway through iteration).
    """
    uid = transfer_syntax_of(ds)
    if "PixelData" not in ds:
        raise FrameExtractionError("the dataset has no (7FE0,0010) Pixel Data (float pixel data is not supported)")
    fmt = PixelFormat.from_dataset(ds)
    pixel_data = ds.PixelData
    if not isinstance(pixel_data, bytes | bytearray):
        raise FrameExtractionError("Pixel Data has no value")
    row = lookup(uid)
    if row is None:
        if not _looks_encapsulated(pixel_data):
            raise UnsupportedTransferSyntaxError(f"unsupported transfer syntax {uid} with native pixel data")
        return _encapsulated_frames(ds, bytes(pixel_data), fmt.number_of_frames, None, lenient_offset_table)
    if row.family is Family.NATIVE:
        be_ow = uid == EXPLICIT_VR_BIG_ENDIAN and ds["PixelData"].VR == "OW"
        return _native_frames(bytes(pixel_data), fmt, big_endian=uid == EXPLICIT_VR_BIG_ENDIAN, swap_ow=be_ow)
    if row.family is Family.VIDEO:
        fragments = _walk_items(bytes(pixel_data))
        data = bytes(pixel_data)
        return iter([b"".join(data[start:end] for start, end in fragments[1:])])
    return _encapsulated_frames(ds, bytes(pixel_data), fmt.number_of_frames, row.family, lenient_offset_table)


def _looks_encapsulated(data: bytes | bytearray) -> bool:
    return len(data) >= 8 and unpack_from("<I", data, 0)[0] == _ITEM


# Native -------------------------------------------------------------------------------------------------


def _native_frames(data: bytes, fmt: PixelFormat, *, big_endian: bool, swap_ow: bool) -> Iterator[bytes]:
    needed_bits = fmt.frame_bits * fmt.number_of_frames
    if len(data) * 8 < needed_bits:
        raise FrameExtractionError(
            f"Pixel Data holds {len(data)} bytes, {(needed_bits + 7) // 8} are needed for "
            f"{fmt.number_of_frames} frame(s) of {fmt.rows}x{fmt.columns}x{fmt.samples_per_pixel} "
            f"at {fmt.bits_allocated} bits"
        )
    if big_endian and fmt.bits_allocated == 8 and swap_ow:
        # 8-bit data in an OW element: the bytes of each 16-bit word are swapped (PS3.5 A.3; as pydicom).
        padded = data + b"\x00" * (len(data) % 2)
        data = np.frombuffer(padded, dtype=">u2").astype("<u2").tobytes()
    return _native_frame_iterator(data, fmt, big_endian=big_endian)


def _native_frame_iterator(data: bytes, fmt: PixelFormat, *, big_endian: bool) -> Iterator[bytes]:
    if fmt.bits_allocated == 1:
        yield from _bit_packed_frames(data, fmt)
        return
    size = fmt.frame_bytes
    for index in range(fmt.number_of_frames):
        frame = data[index * size : (index + 1) * size]
        if big_endian and fmt.bits_allocated > 8:
            word = f">u{fmt.bits_allocated // 8}"
            frame = np.frombuffer(frame, dtype=word).astype(word.replace(">", "<")).tobytes()
        yield frame


def _bit_packed_frames(data: bytes, fmt: PixelFormat) -> Iterator[bytes]:
    bits = fmt.frame_bits
    for index in range(fmt.number_of_frames):
        start = index * bits
        if start % 8 == 0 and bits % 8 == 0:
            yield data[start // 8 : (start + bits) // 8]
            continue
        first, last = start // 8, (start + bits + 7) // 8
        unpacked = np.unpackbits(np.frombuffer(data[first:last], dtype=np.uint8), bitorder="little")
        offset = start - first * 8
        yield np.packbits(unpacked[offset : offset + bits], bitorder="little").tobytes()


# Encapsulated -------------------------------------------------------------------------------------------


def _walk_items(data: bytes) -> list[tuple[int, int]]:
    """(start, end) of the value of every item: the Basic Offset Table first, then each fragment."""
    items: list[tuple[int, int]] = []
    at = 0
    while at + 8 <= len(data):
        tag, length = unpack_from("<II", data, at)
        if tag == _SEQUENCE_DELIMITER:
            break
        if tag != _ITEM:
            raise FrameExtractionError(f"encapsulated Pixel Data has tag {tag:#010x} at byte {at}, not an item")
        if length == 0xFFFFFFFF or at + 8 + length > len(data):
            raise FrameExtractionError(f"encapsulated Pixel Data item at byte {at} runs past the end of the data")
        items.append((at + 8, at + 8 + length))
        at += 8 + length
    if not items:
        raise FrameExtractionError("encapsulated Pixel Data has no Basic Offset Table item")
    return items


def _encapsulated_frames(
    ds: pydicom.Dataset, data: bytes, number_of_frames: int, family: Family | None, lenient: bool
) -> Iterator[bytes]:
    items = _walk_items(data)
    bot_start, bot_end = items[0]
    fragments = items[1:]
    if not fragments:
        raise FrameExtractionError("encapsulated Pixel Data has no fragments")
    first_item = bot_end  # offsets are measured from the first byte of the first fragment's item tag
    starts = [start - 8 - first_item for start, _ in fragments]
    groups: list[list[int]] | None = None
    try:
        extended = _extended_offsets(ds)
        if extended is not None:
            groups = _groups_from_extended(extended, starts, fragments)
        elif bot_end > bot_start:
            if (bot_end - bot_start) % 4:
                raise InvalidOffsetTableError("Basic Offset Table length is not a multiple of 4")
            count = (bot_end - bot_start) // 4
            offsets = list(unpack_from(f"<{count}I", data, bot_start))
            groups = _groups_from_offsets(offsets, starts)
    except InvalidOffsetTableError:
        if not lenient:
            raise
        groups = None
    if groups is None:
        groups = _groups_without_table(data, fragments, number_of_frames, family)
    if len(groups) != number_of_frames:
        raise FrameCountMismatchError(
            f"Number of Frames is {number_of_frames} but the encapsulated Pixel Data holds {len(groups)} frame(s)"
        )
    return (b"".join(data[fragments[i][0] : fragments[i][1]] for i in group) for group in groups)


def _extended_offsets(ds: pydicom.Dataset) -> tuple[list[int], list[int]] | None:
    if "ExtendedOffsetTable" not in ds:
        return None
    table, lengths = ds.get("ExtendedOffsetTable"), ds.get("ExtendedOffsetTableLengths")
    if not isinstance(table, bytes) or not isinstance(lengths, bytes) or len(table) % 8 or len(lengths) % 8:
        raise InvalidOffsetTableError("Extended Offset Table or its lengths are missing or malformed")
    offsets = list(unpack_from(f"<{len(table) // 8}Q", table))
    sizes = list(unpack_from(f"<{len(lengths) // 8}Q", lengths))
    if len(offsets) != len(sizes):
        raise InvalidOffsetTableError("Extended Offset Table and Extended Offset Table Lengths differ in length")
    return offsets, sizes


def _groups_from_extended(
    extended: tuple[list[int], list[int]], starts: list[int], fragments: list[tuple[int, int]]
) -> list[list[int]]:
    """PS3.3 C.7.6.3.1.8: one fragment per frame, offsets of item tags, lengths of the fragment values."""
    index_of = {start: i for i, start in enumerate(starts)}
    groups = []
    for offset, length in zip(*extended, strict=True):
        index = index_of.get(offset)
        if index is None:
            raise InvalidOffsetTableError(f"Extended Offset Table entry {offset} does not point at a fragment")
        start, end = fragments[index]
        if end - start != length:
            raise InvalidOffsetTableError(
                f"Extended Offset Table length {length} differs from the fragment length {end - start}"
            )
        groups.append([index])
    return groups


def _groups_from_offsets(offsets: list[int], starts: list[int]) -> list[list[int]]:
    """PS3.5 A.4: each Basic Offset Table entry is the offset of a frame's first fragment item."""
    if offsets[0] != 0 or any(b <= a for a, b in pairwise(offsets)):
        raise InvalidOffsetTableError(f"Basic Offset Table {offsets[:8]} does not start at 0 and increase")
    index_of = {start: i for i, start in enumerate(starts)}
    first_indexes = []
    for offset in offsets:
        index = index_of.get(offset)
        if index is None:
            raise InvalidOffsetTableError(f"Basic Offset Table entry {offset} does not point at a fragment")
        first_indexes.append(index)
    bounds = [*first_indexes, len(starts)]
    return [list(range(bounds[i], bounds[i + 1])) for i in range(len(first_indexes))]


def _groups_without_table(
    data: bytes, fragments: list[tuple[int, int]], number_of_frames: int, family: Family | None
) -> list[list[int]]:
    count = len(fragments)
    if count == number_of_frames:
        return [[i] for i in range(count)]
    if number_of_frames == 1:
        return [list(range(count))]
    if count < number_of_frames:
        raise FrameCountMismatchError(
            f"Number of Frames is {number_of_frames} but the encapsulated Pixel Data has only {count} fragment(s)"
        )
    if family not in _MARKER_TERMINATED:
        raise FrameExtractionError(
            f"{count} fragments for {number_of_frames} frames and no offset table: the frame boundaries are unknown"
        )
    groups: list[list[int]] = []
    current: list[int] = []
    for index, (start, end) in enumerate(fragments):
        current.append(index)
        if data[start:end].rstrip(b"\x00").endswith(b"\xff\xd9"):
            groups.append(current)
            current = []
    if current:
        groups.append(current)
    return groups
