"""Lossless encoders for the two storage formats of a data store (guide lines 645-700, 22563-22619).

* HTJ2K with RPCL Options, lossless (1.2.840.10008.1.2.4.202, PS3.5 8.2.14): raw codestream, reversible
  5/3 wavelet, RPCL progression, TLM marker, one tile-part per resolution, and enough decompositions that
  the lowest resolution is at most 64 pixels: ``max(5, ceil(log2(max(rows, columns) / 64)))``, e.g. 6 for
  a 4096-pixel mammogram. Three-sample RGB uses the reversible colour transform (RCT).
* JPEG 2000 Image Compression (Lossless Only) (1.2.840.10008.1.2.4.90, PS3.5 8.2.4): raw J2K codestream
  (never the JP2 file format, PS3.5 A.4.4), reversible 5/3, RCT for RGB, the same decomposition rule.

Both go through imagecodecs (OpenJPH and OpenJPEG), which releases the GIL; pylibjpeg-openjpeg's encoder
is never used because it crashes when called from several threads.

Decompositions and imagecodecs 2026.10.10 (measured): an explicit ``resolutions=`` is silently clamped to
``floor(log2(min(rows, columns)))`` and, when that clamp reaches 0 (an image one pixel high or wide), OpenJPH
writes a stream whose first sample decodes wrongly. Without ``resolutions=`` OpenJPH uses 5 decompositions
for any size (an 8x8 or 1x1 image simply has empty high bands), which is valid and lossless. So 5 is requested
by passing nothing, and a larger count only when the short side allows it; an extremely elongated image
(e.g. 4096x16) keeps the largest count the short side permits and its base resolution may exceed 64 pixels.
OpenJPEG clamps its resolution count likewise (to ``floor(log2(min side / 8))`` decompositions) and codes
at most 25 bits per sample losslessly, so 32-bit frames are given the smallest precision that holds their
values and are refused beyond 25 bits (``FrameEncodeError``).
"""

from __future__ import annotations

from math import ceil, floor, log2
from typing import Any

import imagecodecs
import numpy as np
import numpy.typing as npt

from openhi.codecs.errors import FrameEncodeError

Array = npt.NDArray[Any]
BASE_RESOLUTION_MAX = 64
DEFAULT_DECOMPOSITIONS = 5
_OPENJPEG_MAX_LOSSLESS_BITS = 25


def htj2k_decompositions(rows: int, columns: int) -> int:
    """Decompositions PS3.5 8.2.14 asks for: at least 5, and a lowest resolution of <= 64 pixels."""
    longest = max(rows, columns)
    needed = ceil(log2(longest / BASE_RESOLUTION_MAX)) if longest > BASE_RESOLUTION_MAX else 0
    return max(DEFAULT_DECOMPOSITIONS, needed)


def _decompositions_for(rows: int, columns: int) -> int | None:
    """The ``resolutions=`` value to pass to imagecodecs (``None`` = library default of 5 decompositions)."""
    wanted = htj2k_decompositions(rows, columns)
    allowed = floor(log2(min(rows, columns)))
    chosen = min(wanted, allowed)
    return chosen if chosen > DEFAULT_DECOMPOSITIONS else None


def _check_frame(frame: Array) -> Array:
    arr = np.ascontiguousarray(frame)
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (1, 3)):
        raise FrameEncodeError(f"cannot encode a frame of shape {arr.shape}; expected (rows, cols[, 3])")
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = np.ascontiguousarray(arr[:, :, 0])
    if arr.dtype.kind not in "ui" or arr.dtype.itemsize not in (1, 2, 4):
        raise FrameEncodeError(f"cannot encode samples of type {arr.dtype}")
    if arr.dtype.byteorder == ">":
        arr = arr.astype(arr.dtype.newbyteorder("<"))
    return arr


def encode_htj2k(frame: Array, *, colour_transform: bool | None = None) -> bytes:
    """Encode ``frame`` as a conformant HTJ2K lossless RPCL (.4.202) codestream.

    ``frame`` is (rows, columns) or (rows, columns, 3) in the dataset's dtype; signed dtypes give a signed
    SIZ. ``colour_transform`` selects the RCT for three samples (default: on, as for RGB); pass ``False``
    for YBR_FULL samples, which must be stored without a colour transform.
    """
    arr = _check_frame(frame)
    rgb = None if colour_transform is None or arr.ndim == 2 else bool(colour_transform)
    try:
        data = imagecodecs.htj2k_encode(
            arr,
            reversible=True,
            resolutions=_decompositions_for(arr.shape[0], arr.shape[1]),
            tlm=True,
            tilepart=1,
            prog_order="RPCL",
            rgb=rgb,
        )
    except Exception as exc:  # imagecodecs.Htj2kError / ValueError
        raise FrameEncodeError(f"HTJ2K encoding failed: {exc}") from exc
    return bytes(data)


def encode_j2k_lossless(frame: Array, *, colour_transform: bool | None = None) -> bytes:
    """Encode ``frame`` as a JPEG 2000 lossless (.4.90) raw codestream (single-threaded OpenJPEG)."""
    arr = _check_frame(frame)
    bits = _j2k_precision(arr)
    try:
        data = imagecodecs.jpeg2k_encode(
            arr,
            codecformat="J2K",
            reversible=True,
            resolutions=htj2k_decompositions(arr.shape[0], arr.shape[1]) + 1,
            mct=True if colour_transform is None else bool(colour_transform),
            bitspersample=bits,
            numthreads=1,
        )
    except Exception as exc:  # imagecodecs.Jpeg2kError / ValueError
        raise FrameEncodeError(f"JPEG 2000 encoding failed: {exc}") from exc
    return bytes(data)


def _j2k_precision(arr: Array) -> int | None:
    """Precision for OpenJPEG: the container size up to 16 bits, the smallest sufficient one for 32 bits."""
    if arr.dtype.itemsize < 4:
        return None
    if arr.size == 0:
        return 17
    low, high = int(arr.min()), int(arr.max())
    if arr.dtype.kind == "i":
        needed = max((-low - 1).bit_length() if low < 0 else 0, high.bit_length()) + 1
    else:
        needed = high.bit_length()
    if needed > _OPENJPEG_MAX_LOSSLESS_BITS:
        raise FrameEncodeError(
            f"JPEG 2000 (OpenJPEG) codes at most {_OPENJPEG_MAX_LOSSLESS_BITS} bits losslessly; "
            f"this frame needs {needed}"
        )
    return max(17, needed)
