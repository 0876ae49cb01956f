"""Frames of an instance in the representation a WADO-RS answer uses (guide 2080-2140, PS3.18 §10.4.1.1.5).

- Frame lists (guide 2090-2100): ``1`` or ``1,2,3``, 1-based, distinct, any order. Anything that is not a
  comma-separated list of positive integers is a malformed request (400); a number beyond the instance's
  frames names a resource that does not exist (404).
- A stored frame (one blob per frame) becomes the answer's syntax (``transfer.Output``): the stored bytes as
  they are; or decoded with ``codecs.store.decode_stored_frame`` and written as native little-endian pixels
  (ELE; PS3.5 8.1.1: samples interleaved, Bits Allocated 1 bit-packed); or decoded and re-encoded as JPEG 2000
  lossless. Decoding is bit-exact for the lossless stored syntaxes (import verified every frame).
- The Image Pixel module a decoder needs comes from the document (Rows, Columns, Bits..., Number of Frames).
- Photometric Interpretation of the answer: a colour frame that OpenHI coded with the reversible colour
  transform (RGB -> YBR_RCT, PS3.5 8.2.14) decodes back to RGB; one coded without a transform from
  up-sampled YBR_FULL_422 is YBR_FULL (``codecs.store`` explains both).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from math import ceil
from typing import Any

import numpy as np

from openhi.blobs import keys
from openhi.blobs.port import BlobStore
from openhi.codecs.codestream import parse_codestream
from openhi.codecs.encode import encode_j2k_lossless
from openhi.codecs.errors import CodecError
from openhi.codecs.pixels import PixelFormat
from openhi.codecs.store import decode_stored_frame
from openhi.codecs.syntaxes import Family, lookup
from openhi.dicomweb.transfer import Output, StoredPixels, Transcode
from openhi.errors import BadRequestError, NotAcceptableError, NotFoundError

_FRAME_LIST = re.compile(r"^[0-9]+(,[0-9]+)*$")
_TRANSCODED_FAMILIES = (Family.JPEG_2000, Family.HTJ2K)


def parse_frame_list(text: str) -> list[int]:
    """``"1,2,3"`` -> [1, 2, 3]; 400 for anything else than distinct positive integers."""
    cleaned = text.replace("%2C", ",").replace("%2c", ",").strip()
    if not _FRAME_LIST.match(cleaned):
        raise BadRequestError(f"frame list {text!r} is not a comma-separated list of frame numbers")
    numbers = [int(part) for part in cleaned.split(",")]
    if any(number < 1 for number in numbers):
        raise BadRequestError(f"frame list {text!r}: frame numbers start at 1")
    if len(set(numbers)) != len(numbers):
        raise BadRequestError(f"frame list {text!r} repeats a frame number")
    return numbers


def frame_ids(entry: Mapping[str, Any], numbers: list[int], sop_uid: str) -> list[str]:
    """Blob ids of frames ``numbers`` of a document instance entry; 404 for a frame the instance lacks."""
    frames = entry.get("ImageFrames") or []
    for number in numbers:
        if number > len(frames):
            raise NotFoundError(f"Instance {sop_uid} has {len(frames)} frame(s); frame {number} does not exist")
    return [str(frames[number - 1]["ID"]) for number in numbers]


def pixel_format(dicom: Mapping[str, Any]) -> PixelFormat:
    """The Image Pixel module of an instance's merged ``DICOM`` object (406 when it cannot describe frames)."""
    try:
        return PixelFormat.from_values(dicom)
    except CodecError as exc:
        raise NotAcceptableError(f"the instance's pixel description is invalid: {exc.message}") from exc


def _colour_transformed(stored: StoredPixels, first_frame: bytes | None) -> bool:
    """Whether OpenHI coded the (colour) frames with the reversible colour transform."""
    row = lookup(stored.syntax)
    if first_frame is None or row is None or row.family not in _TRANSCODED_FAMILIES or not row.lossless:
        return False
    try:
        return parse_codestream(first_frame).multiple_component_transform
    except CodecError:
        return False


def output_photometric(fmt: PixelFormat, stored: StoredPixels, output: Output, first_frame: bytes | None) -> str:
    """Photometric Interpretation of frames in ``output`` (see the module docstring)."""
    pi = fmt.photometric_interpretation
    row = lookup(stored.syntax)
    if fmt.samples_per_pixel != 3 or row is None or row.family not in _TRANSCODED_FAMILIES or not row.lossless:
        return pi
    if _colour_transformed(stored, first_frame):
        return "RGB" if output.transcode is Transcode.NATIVE else "YBR_RCT"
    return "YBR_FULL" if pi == "YBR_FULL_422" else pi


def native_frame_length(fmt: PixelFormat) -> int:
    """Bytes of one decoded native frame (samples interleaved; Bits Allocated 1 packed per frame)."""
    if fmt.bits_allocated == 1:
        return ceil(fmt.pixels_per_frame / 8)
    return fmt.pixels_per_frame * fmt.samples_per_pixel * (fmt.bits_allocated // 8)


def native_pixel_data_length(fmt: PixelFormat, frames: int) -> int:
    """Length of a native Pixel Data value of ``frames`` frames (before padding to even length)."""
    if fmt.bits_allocated == 1:
        return ceil(fmt.pixels_per_frame * frames / 8)
    return native_frame_length(fmt) * frames


def _native_bytes(frame: np.ndarray[Any, Any], fmt: PixelFormat) -> bytes:
    if fmt.bits_allocated == 1:
        return np.packbits(frame.astype(np.uint8).ravel(), bitorder="little").tobytes()
    return np.ascontiguousarray(frame, dtype=fmt.dtype).tobytes()


class FrameReader:
    """Reads an instance's stored frames and turns them into an output syntax."""

    def __init__(self, blobs: BlobStore, datastore_id: str) -> None:
        self._blobs = blobs
        self._datastore_id = datastore_id

    def stored(self, frame_id: str) -> bytes:
        """The stored frame as it is."""
        return self._blobs.get(keys.frame(self._datastore_id, frame_id))

    def stored_range(self, frame_id: str, offset: int, length: int) -> bytes:
        """Bytes ``offset`` .. ``offset + length`` of the stored frame (HTTP Range on stored frames)."""
        return self._blobs.get_range(keys.frame(self._datastore_id, frame_id), offset, length)

    def stored_size(self, frame_id: str) -> int:
        """Length of the stored frame; 404 when the blob is gone."""
        info = self._blobs.head(keys.frame(self._datastore_id, frame_id))
        if info is None:
            raise NotFoundError(f"frame {frame_id} is not stored")
        return info.size

    def convert(self, data: bytes, stored: StoredPixels, output: Output, fmt: PixelFormat | None) -> bytes:
        """A stored frame in ``output``'s syntax (decoding needs the pixel format; 406 without one)."""
        if output.transcode is Transcode.NONE:
            return data
        if fmt is None:
            raise NotAcceptableError("the instance lacks a valid Image Pixel description; retry with transfer-syntax=*")
        try:
            frame = decode_stored_frame(data, stored.syntax, fmt)
        except CodecError as exc:
            raise NotAcceptableError(f"a stored frame cannot be decoded: {exc.message}") from exc
        if output.transcode is Transcode.NATIVE:
            return _native_bytes(frame, fmt)
        return encode_j2k_lossless(frame, colour_transform=_colour_transformed(stored, data))

    def frame(self, frame_id: str, stored: StoredPixels, output: Output, fmt: PixelFormat | None) -> bytes:
        """One frame in ``output``'s syntax."""
        return self.convert(self.stored(frame_id), stored, output, fmt)
