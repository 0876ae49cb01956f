"""Decode one frame payload of any supported transfer syntax to a numpy array in the dataset's layout.

The result is what pydicom's ``pixel_array(ds, index=i, as_rgb=False)`` gives for the frame, in
little-endian ``PixelFormat.dtype``, shape (rows, columns) or (rows, columns, samples) interleaved:

* Native data (PS3.5 8.1.1): unused high bits are masked (unsigned) or sign-extended (signed) from Bits
  Stored, planar data is interleaved, uncompressed YBR_FULL_422 is up-sampled to YBR_FULL (PS3.3
  C.7.6.3.1.2). No colour conversion is applied.
* RLE (PS3.5 G), JPEG lossless and JPEG XL store signed data as its two's-complement bit pattern; the
  pattern is reinterpreted with Pixel Representation and Bits Stored. JPEG-LS likewise when signed.
* JPEG 2000 / HTJ2K (PS3.5 8.2.4, 8.2.14): the inverse RCT / ICT is part of decoding, so YBR_RCT and
  YBR_ICT frames come back as RGB; a codestream whose signedness disagrees with Pixel Representation is
  corrected with its own precision, as pydicom does.
* Lossy JPEG (.50/.51) with three samples comes back as RGB: YBR data (or a stream with a JFIF / Adobe
  YCbCr marker) is converted by libjpeg-turbo; unmarked streams labelled RGB are decoded without a transform.

Compressed frames go to imagecodecs first (it releases the GIL and decodes every syntax, including JPEG
2000 Part 2 and JPEG XL, which pydicom 3.0 cannot); when it fails, pydicom's own pixel decoders are
tried. Video and unknown syntaxes raise ``UnsupportedTransferSyntaxError`` (warning 0xB120); a frame that
no decoder can read raises ``FrameDecodeError`` (0xB100).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import imagecodecs
import numpy as np
import numpy.typing as npt
from pydicom.encaps import encapsulate
from pydicom.pixels.decoders.base import get_decoder

from openhi.codecs.codestream import parse_codestream
from openhi.codecs.errors import CodecError, FrameDecodeError, UnsupportedTransferSyntaxError
from openhi.codecs.pixels import PixelFormat
from openhi.codecs.syntaxes import DECODABLE_FAMILIES, Family, lookup

Array = npt.NDArray[Any]
_J2K_FAMILIES = (Family.JPEG_2000, Family.HTJ2K)


def decoded_photometric_interpretation(transfer_syntax: str, fmt: PixelFormat) -> str:
    """Photometric Interpretation of the array ``decode_frame`` returns for this syntax and format."""
    row = lookup(transfer_syntax)
    pi = fmt.photometric_interpretation
    if fmt.samples_per_pixel != 3 or row is None:
        return pi
    if row.family in _J2K_FAMILIES and pi in ("YBR_RCT", "YBR_ICT"):
        return "RGB"
    if row.family is Family.JPEG and pi.startswith("YBR"):
        return "RGB"
    if pi == "YBR_FULL_422":
        return "YBR_FULL"
    return pi


def decode_frame(payload: bytes, transfer_syntax: str, fmt: PixelFormat) -> Array:
    """Decode one frame (as yielded by ``frames.iter_frame_payloads``) to the dataset's dtype and shape.

    Native payloads must already be little endian (``iter_frame_payloads`` converts big endian data).
    """
    row = lookup(transfer_syntax)
    if row is None or row.family not in DECODABLE_FAMILIES:
        raise UnsupportedTransferSyntaxError(f"transfer syntax {transfer_syntax} cannot be decoded")
    if row.family is Family.NATIVE:
        return _decode_native(bytes(payload), fmt)
    payload = bytes(payload)
    failures: list[str] = []
    for decoder in _ROUTES[row.family]:
        try:
            return _conform(decoder(payload, fmt), fmt, row.family, payload)
        except Exception as exc:  # imagecodecs raises codec-specific RuntimeError/ValueError subclasses
            failures.append(f"{getattr(decoder, '__name__', decoder)}: {exc}")
    try:
        return _decode_with_pydicom(payload, row.uid, row.family, fmt)
    except Exception as exc:  # pydicom raises RuntimeError/ValueError/NotImplementedError per plugin
        failures.append(f"pydicom: {exc}")
    raise FrameDecodeError(f"cannot decode a {row.name} frame: " + "; ".join(failures))


# Native -------------------------------------------------------------------------------------------------


def _decode_native(payload: bytes, fmt: PixelFormat) -> Array:
    if len(payload) < fmt.frame_bytes:
        raise FrameDecodeError(f"native frame has {len(payload)} bytes, {fmt.frame_bytes} are needed")
    if fmt.bits_allocated == 1:
        bits = np.unpackbits(np.frombuffer(payload, dtype=np.uint8), bitorder="little", count=fmt.frame_bits)
        return np.ascontiguousarray(bits.reshape(fmt.shape))
    flat = np.frombuffer(payload, dtype=fmt.dtype, count=fmt.frame_bytes // fmt.dtype.itemsize)
    if fmt.photometric_interpretation == "YBR_FULL_422":
        if fmt.samples_per_pixel != 3 or fmt.columns % 2:
            raise FrameDecodeError("uncompressed YBR_FULL_422 needs three samples and an even number of columns")
        groups = flat.reshape(-1, 4)  # Y1 Y2 Cb Cr per pair of pixels
        full = np.empty((groups.shape[0], 2, 3), dtype=fmt.dtype)
        full[:, 0, 0] = groups[:, 0]
        full[:, 1, 0] = groups[:, 1]
        full[:, :, 1] = groups[:, 2:3]
        full[:, :, 2] = groups[:, 3:4]
        arr = full.reshape(fmt.shape)
    elif fmt.samples_per_pixel > 1 and fmt.planar_configuration == 1:
        arr = flat.reshape(fmt.samples_per_pixel, fmt.rows, fmt.columns).transpose(1, 2, 0)
    else:
        arr = flat.reshape(fmt.shape)
    out = np.array(arr, dtype=fmt.dtype, order="C")
    _shift_correct(out, out.dtype.itemsize * 8 - fmt.bits_stored)
    return out


# Compressed, through imagecodecs ------------------------------------------------------------------------


def _rle(payload: bytes, fmt: PixelFormat) -> Array:
    # imagecodecs needs ``out=`` (it fails on bytes without it) and returns the segments plane by plane.
    out = bytearray(fmt.decoded_frame_bytes)
    imagecodecs.dicomrle_decode(payload, fmt.dtype.str, out=out)
    planes = np.frombuffer(out, dtype=fmt.dtype).reshape(fmt.samples_per_pixel, fmt.rows, fmt.columns)
    return planes[0] if fmt.samples_per_pixel == 1 else planes.transpose(1, 2, 0)


def _jpeg8(payload: bytes, fmt: PixelFormat) -> Array:
    if fmt.samples_per_pixel == 3 and fmt.photometric_interpretation == "RGB" and not _signals_ycbcr(payload):
        # libjpeg-turbo assumes YCbCr for unmarked 3-component streams; the dataset says the samples are RGB.
        return np.asarray(imagecodecs.jpeg8_decode(payload, colorspace="RGB", outcolorspace="RGB"))
    return np.asarray(imagecodecs.jpeg8_decode(payload))


def _signals_ycbcr(payload: bytes) -> bool:
    """Whether the JPEG header has a JFIF APP0 or an Adobe APP14 marker with transform 1 (YCbCr)."""
    at = 2
    while at + 4 <= len(payload) and payload[at] == 0xFF:
        marker, length = payload[at + 1], int.from_bytes(payload[at + 2 : at + 4], "big")
        segment = payload[at + 4 : at + 2 + length]
        if marker == 0xDA:  # start of scan: no more header markers
            break
        if marker == 0xE0 and segment.startswith(b"JFIF\x00"):
            return True
        if marker == 0xEE and segment.startswith(b"Adobe") and len(segment) >= 12:
            return segment[11] == 1
        at += 2 + length
    return False


def _ljpeg(payload: bytes, fmt: PixelFormat) -> Array:
    return np.asarray(imagecodecs.ljpeg_decode(payload))


def _jpegsof3(payload: bytes, fmt: PixelFormat) -> Array:
    return np.asarray(imagecodecs.jpegsof3_decode(payload))


def _jpegls(payload: bytes, fmt: PixelFormat) -> Array:
    return np.asarray(imagecodecs.jpegls_decode(payload))


def _jpeg2k(payload: bytes, fmt: PixelFormat) -> Array:
    return np.asarray(imagecodecs.jpeg2k_decode(payload, planar=False, numthreads=1))


def _htj2k(payload: bytes, fmt: PixelFormat) -> Array:
    return np.asarray(imagecodecs.htj2k_decode(payload, planar=False))


def _jpegxl(payload: bytes, fmt: PixelFormat) -> Array:
    return np.asarray(imagecodecs.jpegxl_decode(payload))


_Decoder = Callable[[bytes, PixelFormat], Array]
_ROUTES: dict[Family, tuple[_Decoder, ...]] = {
    Family.RLE: (_rle,),
    Family.JPEG: (_jpeg8,),
    # ljpeg / jpegsof3 never apply a colour transform; libjpeg-turbo would guess YCbCr for plain RGB.
    Family.JPEG_LOSSLESS: (_ljpeg, _jpegsof3),
    Family.JPEG_LS: (_jpegls,),
    Family.JPEG_2000: (_jpeg2k,),
    Family.HTJ2K: (_htj2k, _jpeg2k),  # OpenJPEG also decodes HT code-blocks
    Family.JPEG_XL: (_jpegxl,),
}


def _decode_with_pydicom(payload: bytes, uid: str, family: Family, fmt: PixelFormat) -> Array:
    decoder = get_decoder(uid)  # NotImplementedError for UIDs pydicom does not know (JPEG XL)
    # pydicom silently keeps only the low bits when a codestream is deeper than Bits Allocated: refuse.
    precision = _codestream_precision(payload, family)
    if precision is not None and precision > max(8, fmt.bits_allocated):
        raise FrameDecodeError(f"codestream precision {precision} exceeds Bits Allocated {fmt.bits_allocated}")
    if not decoder.is_available:
        raise CodecError(f"pydicom has no plugin installed for {uid}")
    options: dict[str, Any] = {
        "rows": fmt.rows,
        "columns": fmt.columns,
        "samples_per_pixel": fmt.samples_per_pixel,
        "bits_allocated": fmt.bits_allocated,
        "bits_stored": fmt.bits_stored,
        "pixel_representation": fmt.pixel_representation,
        "photometric_interpretation": fmt.photometric_interpretation,
        "planar_configuration": fmt.planar_configuration,
        "number_of_frames": 1,
        "as_rgb": family is Family.JPEG,
    }
    arr, _ = decoder.as_array(encapsulate([payload]), **options)
    arr = np.asarray(arr)
    if arr.shape != fmt.shape:
        raise FrameDecodeError(f"pydicom decoded shape {arr.shape}, expected {fmt.shape}")
    _check_range(arr, np.dtype(f"{fmt.dtype.kind}{fmt.dtype.itemsize}"), fmt)
    return np.ascontiguousarray(arr, dtype=fmt.dtype)


# JPEG SOF markers (ITU T.81 B.1.1.3, T.87 for JPEG-LS SOF55): the first byte of the segment is the precision.
_SOF_MARKERS = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF, 0xF7})


def _codestream_precision(payload: bytes, family: Family) -> int | None:
    """Sample precision declared by a J2K SIZ or JPEG / JPEG-LS SOF segment (``None`` when not found)."""
    if family in _J2K_FAMILIES:
        return parse_codestream(payload).precision
    if family not in (Family.JPEG, Family.JPEG_LOSSLESS, Family.JPEG_LS):
        return None
    at = 2
    while at + 5 <= len(payload) and payload[at] == 0xFF:
        marker = payload[at + 1]
        if marker in _SOF_MARKERS:
            return payload[at + 4]
        if marker == 0xDA:
            return None
        at += 2 + int.from_bytes(payload[at + 2 : at + 4], "big")
    return None


# Shape, dtype and sign ----------------------------------------------------------------------------------


def _conform(arr: Array, fmt: PixelFormat, family: Family, payload: bytes) -> Array:
    """Normalise a decoder's output to ``fmt.shape`` and ``fmt.dtype`` with the right signedness."""
    arr = np.asarray(arr)
    samples, rows, columns = fmt.samples_per_pixel, fmt.rows, fmt.columns
    if arr.ndim == 3 and samples == 1 and 1 in (arr.shape[0], arr.shape[2]):
        arr = arr.reshape(arr.shape[1:] if arr.shape[0] == 1 else arr.shape[:2])
    elif arr.ndim == 3 and arr.shape == (samples, rows, columns) and arr.shape != fmt.shape:
        arr = arr.transpose(1, 2, 0)  # planar (S, H, W), e.g. HTJ2K without a colour transform
    if arr.shape != fmt.shape:
        raise FrameDecodeError(f"decoded shape {arr.shape} does not match the dataset's {fmt.shape}")
    if arr.dtype.kind not in "ui":
        raise FrameDecodeError(f"decoded sample type {arr.dtype} is not an integer type")
    target = fmt.dtype
    bits = target.itemsize * 8
    if arr.dtype.itemsize > target.itemsize:
        _check_range(arr, np.dtype(f"{arr.dtype.kind}{target.itemsize}"), fmt)
    # Widen or narrow within the decoder's signedness (value preserving), then reinterpret the bits.
    out = np.array(arr, dtype=np.dtype(f"<{arr.dtype.kind}{target.itemsize}"), order="C").view(target)
    if family in _J2K_FAMILIES:
        info = parse_codestream(payload)
        if samples == 1 and info.signed != bool(fmt.pixel_representation):
            _shift_correct(out, bits - info.precision)
    elif family is Family.JPEG_LS:
        if fmt.pixel_representation:
            _shift_correct(out, bits - fmt.bits_stored)
    else:
        _shift_correct(out, bits - fmt.bits_stored)
    return out


def _check_range(arr: Array, narrower: np.dtype[Any], fmt: PixelFormat) -> None:
    """``FrameDecodeError`` unless every sample of ``arr`` is representable in ``narrower``."""
    limits = np.iinfo(narrower)
    if arr.size and (int(arr.min()) < limits.min or int(arr.max()) > limits.max):
        raise FrameDecodeError(f"decoded {arr.dtype} samples exceed Bits Allocated {fmt.bits_allocated}")


def _shift_correct(arr: Array, shift: int) -> None:
    """Mask (unsigned) or sign-extend (signed) ``arr`` in place to its low ``bits - shift`` bits."""
    if shift > 0:
        np.left_shift(arr, shift, out=arr)
        np.right_shift(arr, shift, out=arr)
