"""Turn one input frame into the frame the archive stores, with its verification facts.

Rules (guide lines 22563-22619 and 22817-22880):

* Kept-as-is syntaxes (the ``*`` entries: .4.50, .4.91, .4.203, .4.112, video; Explicit VR Little Endian
  only for Bits Allocated 1): the original payload is stored in its original syntax. The single checksum
  is the CRC32 of the original bytes with Width/Height = Columns/Rows; Min/MaxPixelValue are null and
  FrameSizeInBytes is the payload length.
* Everything else, lossless or lossy (.4.51, .4.81, .4.93 are transcoded too): decode, take the CRC32 and
  min/max of the decoded frame, encode to the data store's format (HTJ2K .4.202 by default, or JPEG 2000
  lossless .4.90), decode the new codestream at every resolution level, and require the full resolution to
  reproduce the decoded frame exactly; otherwise ``FrameVerificationError`` is raised, never ignored.
  The checksums are those of the new codestream, base to full; FrameSizeInBytes is the decoded size.
* A syntax that cannot be decoded (video is kept; unknown UIDs): the payload is stored as is with warning
  0xB120. A frame of a supported syntax that no decoder can read, or that the storage encoder cannot code
  losslessly, is stored as is with warning 0xB100 (transcoding exception; retrievable as a blob).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from openhi.codecs import encode as _encode
from openhi.codecs.checksum import ChecksumLevel, bytes_crc32, decode_levels, frame_crc32
from openhi.codecs.decode import decode_frame, decoded_photometric_interpretation
from openhi.codecs.errors import (
    FrameDecodeError,
    FrameEncodeError,
    FrameVerificationError,
    UnsupportedTransferSyntaxError,
)
from openhi.codecs.pixels import PixelFormat
from openhi.codecs.syntaxes import HTJ2K_LOSSLESS_RPCL, JPEG_2000_LOSSLESS, is_decodable, kept_as_is
from openhi.datastores.model import LosslessStorageFormat

Array = npt.NDArray[Any]

STORED_SYNTAX: dict[LosslessStorageFormat, str] = {
    LosslessStorageFormat.HTJ2K: HTJ2K_LOSSLESS_RPCL,
    LosslessStorageFormat.JPEG_2000_LOSSLESS: JPEG_2000_LOSSLESS,
}


@dataclass(frozen=True)
class PreparedFrame:
    """What the import stores for one frame and records in the image set metadata.

    ``photometric_interpretation`` is the value the stored frame implies (PS3.5 8.2.4 / 8.2.14): RGB
    transcoded with the reversible colour transform becomes ``YBR_RCT``; up-sampled YBR_FULL_422 becomes
    ``YBR_FULL`` (stored without a colour transform); kept-as-is frames keep the dataset's value.
    """

    data: bytes
    stored_transfer_syntax: str
    checksums: list[ChecksumLevel]
    min_pixel_value: int | None
    max_pixel_value: int | None
    frame_size_in_bytes: int
    warning: int | None
    photometric_interpretation: str = field(default="")


def _as_is(payload: bytes, syntax: str, fmt: PixelFormat, warning: int | None) -> PreparedFrame:
    return PreparedFrame(
        data=payload,
        stored_transfer_syntax=syntax,
        checksums=[ChecksumLevel(width=fmt.columns, height=fmt.rows, checksum=bytes_crc32(payload))],
        min_pixel_value=None,
        max_pixel_value=None,
        frame_size_in_bytes=len(payload),
        warning=warning,
        photometric_interpretation=fmt.photometric_interpretation,
    )


def prepare_frame(
    payload: bytes, transfer_syntax: str, fmt: PixelFormat, target: LosslessStorageFormat
) -> PreparedFrame:
    """Prepare one frame payload (from ``frames.iter_frame_payloads``) for storage in ``target`` format."""
    payload = bytes(payload)
    if kept_as_is(transfer_syntax, fmt.bits_allocated):
        return _as_is(payload, transfer_syntax, fmt, None)
    if not is_decodable(transfer_syntax):
        return _as_is(payload, transfer_syntax, fmt, UnsupportedTransferSyntaxError.warning_code)
    try:
        frame = decode_frame(payload, transfer_syntax, fmt)
    except UnsupportedTransferSyntaxError as exc:
        return _as_is(payload, transfer_syntax, fmt, exc.warning_code)
    except FrameDecodeError as exc:
        return _as_is(payload, transfer_syntax, fmt, exc.warning_code)
    photometric = decoded_photometric_interpretation(transfer_syntax, fmt)
    colour_transform = frame.ndim == 3 and photometric == "RGB"
    stored_syntax = STORED_SYNTAX[LosslessStorageFormat(target)]
    try:
        data = _encode_for(target, frame, colour_transform)
    except FrameEncodeError as exc:
        return _as_is(payload, transfer_syntax, fmt, exc.warning_code)
    checksums = _verified_checksums(data, stored_syntax, frame)
    if frame.ndim == 3 and photometric == "RGB":
        photometric = "YBR_RCT"
    return PreparedFrame(
        data=data,
        stored_transfer_syntax=stored_syntax,
        checksums=checksums,
        min_pixel_value=int(frame.min()),
        max_pixel_value=int(frame.max()),
        frame_size_in_bytes=int(frame.nbytes),
        warning=None,
        photometric_interpretation=photometric,
    )


def _encode_for(target: LosslessStorageFormat, frame: Array, colour_transform: bool) -> bytes:
    """Encode with the module-level encoders (looked up at call time, so tests can substitute them)."""
    if LosslessStorageFormat(target) is LosslessStorageFormat.JPEG_2000_LOSSLESS:
        return _encode.encode_j2k_lossless(frame, colour_transform=colour_transform)
    return _encode.encode_htj2k(frame, colour_transform=colour_transform)


def _verified_checksums(data: bytes, stored_syntax: str, frame: Array) -> list[ChecksumLevel]:
    """Checksums of every level of ``data``; the full resolution must decode back to ``frame`` exactly."""
    original_crc = frame_crc32(frame)
    checksums: list[ChecksumLevel] = []
    full: Array | None = None
    try:
        for level in decode_levels(data, stored_syntax, frame.dtype):
            checksums.append(ChecksumLevel(width=level.shape[1], height=level.shape[0], checksum=frame_crc32(level)))
            full = level
    except FrameDecodeError as exc:
        raise FrameVerificationError(f"the stored codestream does not decode: {exc}") from exc
    if full is None or full.shape != frame.shape or not np.array_equal(full, frame):
        decoded_crc = checksums[-1].checksum if checksums else None
        raise FrameVerificationError(
            f"the stored codestream decodes to a different frame (CRC32 {decoded_crc} != {original_crc})"
        )
    if checksums[-1].checksum != original_crc:  # pragma: no cover - equal arrays have equal CRCs
        raise FrameVerificationError("full-resolution checksum differs from the original frame's CRC32")
    return checksums


def decode_stored_frame(data: bytes, stored_syntax: str, fmt: PixelFormat) -> Array:
    """Decode a stored frame (transcoded or kept as is) to the dataset's dtype and shape.

    ``fmt`` is the instance's original pixel format; transcoded colour frames come back as RGB (YBR_RCT)
    or YBR_FULL, as ``PreparedFrame.photometric_interpretation`` says.
    """
    return decode_frame(data, stored_syntax, fmt)
