"""Image Frame Resolution Checksums (IFRC): CRC32 of each resolution level, base to full (guide 22817-22880).

``PixelDataChecksumFromBaseToFullResolution`` lists, for a frame stored as a JPEG 2000 family codestream,
one entry per resolution level from the lowest (all decompositions skipped) to the full image. Each
checksum is ``zlib.crc32`` over the decoded level's samples as native little-endian bytes in the frame's
dtype (signed data sign-extended), rows first, samples interleaved. Frames kept in their original encoding
get a single entry computed over the original bytes instead (see ``store``).

Levels are decoded with imagecodecs' ``skipres`` (OpenJPH for HTJ2K, OpenJPEG for JPEG 2000), which
reconstructs a lower resolution from the first resolution tile-parts only.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import imagecodecs
import numpy as np
import numpy.typing as npt

from openhi.codecs.codestream import parse_codestream
from openhi.codecs.errors import FrameDecodeError, UnsupportedTransferSyntaxError
from openhi.codecs.syntaxes import Family, lookup

Array = npt.NDArray[Any]


@dataclass(frozen=True)
class ChecksumLevel:
    """One entry of PixelDataChecksumFromBaseToFullResolution."""

    width: int
    height: int
    checksum: int

    def as_metadata(self) -> dict[str, int]:
        """The JSON shape of the metadata document: ``{"Width": .., "Height": .., "Checksum": ..}``."""
        return {"Width": self.width, "Height": self.height, "Checksum": self.checksum}


def frame_crc32(frame: Array) -> int:
    """CRC32 of a decoded frame's samples as contiguous little-endian bytes in its own dtype."""
    arr = np.asarray(frame)
    if arr.dtype.byteorder == ">":
        arr = arr.astype(arr.dtype.newbyteorder("<"))
    return zlib.crc32(np.ascontiguousarray(arr).data) & 0xFFFFFFFF


def bytes_crc32(data: bytes) -> int:
    """CRC32 of raw bytes (kept-as-is frames, video objects and blobs)."""
    return zlib.crc32(data) & 0xFFFFFFFF


def decode_levels(codestream: bytes, syntax: str, dtype: np.dtype[Any] | None = None) -> Iterator[Array]:
    """Yield every resolution level of a J2K / HTJ2K codestream, lowest first, full resolution last.

    Arrays are interleaved (rows, columns[, samples]) and cast to ``dtype`` when given (value preserving:
    the decoder's dtype comes from the codestream's precision and signedness).
    """
    row = lookup(syntax)
    if row is None or row.family not in (Family.HTJ2K, Family.JPEG_2000):
        raise UnsupportedTransferSyntaxError(f"resolution levels need a JPEG 2000 family codestream, not {syntax}")
    data = bytes(codestream)
    levels = parse_codestream(data).decompositions
    for skip in range(levels, -1, -1):
        try:
            if row.family is Family.HTJ2K:
                arr = imagecodecs.htj2k_decode(data, planar=False, skipres=skip)
            else:
                arr = imagecodecs.jpeg2k_decode(data, planar=False, skipres=skip, numthreads=1)
        except Exception as exc:  # imagecodecs.Htj2kError / Jpeg2kError
            raise FrameDecodeError(f"cannot decode resolution level {levels - skip}: {exc}") from exc
        arr = np.asarray(arr)
        if arr.ndim == 3 and arr.shape[2] == 1:
            arr = arr[:, :, 0]
        if dtype is not None and arr.dtype != dtype:
            arr = arr.astype(dtype)
        yield arr


def resolution_checksums(codestream: bytes, syntax: str, dtype: np.dtype[Any] | None = None) -> list[ChecksumLevel]:
    """CRC32 per resolution level of ``codestream``, from the base resolution to the full resolution."""
    return [
        ChecksumLevel(width=arr.shape[1], height=arr.shape[0], checksum=frame_crc32(arr))
        for arr in decode_levels(codestream, syntax, dtype)
    ]
