"""Deterministic pixel-data samples in every transfer syntax the installed stack can encode.

Frames are smooth phantoms (sinusoids plus an ellipse, not random noise) that also hit the exact minimum
and maximum of their range, so sign handling and the extreme code values are exercised. ``make_dataset``
wraps them as a DICOM dataset with file meta, encoded with: pydicom (native, RLE), imagecodecs
(JPEG lossless and baseline/extended, JPEG-LS, JPEG 2000, HTJ2K, JPEG XL). Datasets are written to bytes
and read back with ``pydicom.dcmread`` whenever pydicom 3.0 can write the syntax (it cannot write JPEG XL
UIDs, which stay in memory).
"""

from __future__ import annotations

import io
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import imagecodecs
import numpy as np
import numpy.typing as npt
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.uid import RLELossless

from openhi.codecs import syntaxes as ts

Array = npt.NDArray[Any]
ROWS, COLUMNS = 37, 50


@dataclass(frozen=True)
class Kind:
    """A pixel layout: bits, signedness, samples and number of frames."""

    name: str
    bits_allocated: int
    bits_stored: int
    signed: bool
    samples: int = 1
    frames: int = 1

    @property
    def dtype(self) -> np.dtype[Any]:
        return np.dtype(f"<{'i' if self.signed else 'u'}{self.bits_allocated // 8}")

    @property
    def low(self) -> int:
        return -(1 << (self.bits_stored - 1)) if self.signed else 0

    @property
    def high(self) -> int:
        return (1 << (self.bits_stored - 1)) - 1 if self.signed else (1 << self.bits_stored) - 1


KINDS = {
    kind.name: kind
    for kind in (
        Kind("u8", 8, 8, False),
        Kind("s8", 8, 8, True),
        Kind("u12", 16, 12, False),
        Kind("s12", 16, 12, True),
        Kind("u16", 16, 16, False),
        Kind("s16", 16, 16, True),
        Kind("rgb8", 8, 8, False, samples=3),
        Kind("u12x3", 16, 12, False, frames=3),
    )
}


def phantom(kind: Kind, rows: int = ROWS, columns: int = COLUMNS) -> Array:
    """Frames of ``kind``: shape (frames, rows, columns[, samples]) in ``kind.dtype``."""
    y, x = np.mgrid[0:rows, 0:columns].astype(np.float64)
    planes = []
    for frame in range(kind.frames):
        channels = []
        for channel in range(kind.samples):
            phase = 0.7 * frame + 1.9 * channel
            wave = np.sin(x / 6.0 + phase) * np.cos(y / 8.5 - phase)
            inside = ((x - columns * 0.55) / (columns * 0.3)) ** 2 + ((y - rows * 0.45) / (rows * 0.35)) ** 2 < 1
            unit = 0.5 + 0.35 * wave + 0.12 * inside  # in (0, 1)
            values = np.round(kind.low + unit * (kind.high - kind.low)).astype(np.int64)
            values[0, 0], values[-1, -1] = kind.low, kind.high
            channels.append(values)
        planes.append(np.stack(channels, axis=-1) if kind.samples > 1 else channels[0])
    return np.stack(planes).astype(kind.dtype)


def _pattern(frame: Array, kind: Kind) -> Array:
    """Two's-complement bit pattern of signed data as unsigned Bits Stored-bit values (JPEG, JPEG-LS, JXL)."""
    unsigned = frame.view(np.dtype(f"<u{kind.dtype.itemsize}"))
    return (unsigned & ((1 << kind.bits_stored) - 1)).astype(unsigned.dtype)


def _bps(kind: Kind) -> int:
    return kind.bits_stored


Encoder = Callable[[Array, Kind], bytes]

ENCODERS: dict[str, Encoder] = {
    ts.JPEG_BASELINE_8BIT: lambda f, k: imagecodecs.jpeg8_encode(f, level=90, subsampling="422"),
    ts.JPEG_EXTENDED_12BIT: lambda f, k: imagecodecs.jpeg8_encode(f, level=90, bitspersample=12),
    ts.JPEG_LOSSLESS: lambda f, k: imagecodecs.jpeg8_encode(
        _pattern(f, k), lossless=True, predictor=6, bitspersample=_bps(k)
    ),
    ts.JPEG_LOSSLESS_SV1: lambda f, k: imagecodecs.jpeg8_encode(
        _pattern(f, k), lossless=True, predictor=1, bitspersample=_bps(k)
    ),
    ts.JPEG_LS_LOSSLESS: lambda f, k: imagecodecs.jpegls_encode(_pattern(f, k), bitspersample=_bps(k)),
    ts.JPEG_LS_NEAR_LOSSLESS: lambda f, k: imagecodecs.jpegls_encode(_pattern(f, k), level=2, bitspersample=_bps(k)),
    ts.JPEG_2000_LOSSLESS: lambda f, k: imagecodecs.jpeg2k_encode(f, codecformat="J2K", reversible=True, numthreads=1),
    ts.JPEG_2000: lambda f, k: imagecodecs.jpeg2k_encode(
        f, codecformat="J2K", level=60, reversible=False, numthreads=1
    ),
    ts.JPEG_2000_MC_LOSSLESS: lambda f, k: imagecodecs.jpeg2k_encode(
        f, codecformat="J2K", reversible=True, bitspersample=_bps(k), numthreads=1
    ),
    ts.JPEG_2000_MC: lambda f, k: imagecodecs.jpeg2k_encode(
        f, codecformat="J2K", level=60, reversible=False, numthreads=1
    ),
    ts.HTJ2K_LOSSLESS: lambda f, k: imagecodecs.htj2k_encode(f, reversible=True),
    ts.HTJ2K_LOSSLESS_RPCL: lambda f, k: imagecodecs.htj2k_encode(
        f, reversible=True, tlm=True, tilepart=1, prog_order="RPCL"
    ),
    ts.HTJ2K: lambda f, k: imagecodecs.htj2k_encode(f, level=0.002, reversible=False),
    ts.JPEG_XL_LOSSLESS: lambda f, k: imagecodecs.jpegxl_encode(
        _pattern(f, k), lossless=True, usecontainer=False, bitspersample=_bps(k)
    ),
    ts.JPEG_XL: lambda f, k: imagecodecs.jpegxl_encode(f, distance=1.0, usecontainer=False),
}

NATIVE = (
    ts.EXPLICIT_VR_LITTLE_ENDIAN,
    ts.IMPLICIT_VR_LITTLE_ENDIAN,
    ts.DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN,
    ts.EXPLICIT_VR_BIG_ENDIAN,
)
ALL_KINDS = tuple(KINDS)
LOSSY_KINDS = ("u8", "s16", "rgb8")

#: Which sample kinds each syntax is generated for (what the encoders can represent).
MATRIX: dict[str, tuple[str, ...]] = {
    **dict.fromkeys(NATIVE, ALL_KINDS),
    ts.RLE_LOSSLESS: ALL_KINDS,
    ts.JPEG_LOSSLESS: ALL_KINDS,
    ts.JPEG_LOSSLESS_SV1: ALL_KINDS,
    ts.JPEG_LS_LOSSLESS: ALL_KINDS,
    ts.JPEG_LS_NEAR_LOSSLESS: ("u8", "u12", "s12", "rgb8"),
    ts.JPEG_2000_LOSSLESS: ALL_KINDS,
    ts.JPEG_2000_MC_LOSSLESS: ALL_KINDS,
    ts.HTJ2K_LOSSLESS: ALL_KINDS,
    ts.HTJ2K_LOSSLESS_RPCL: ALL_KINDS,
    ts.JPEG_XL_LOSSLESS: ("u8", "s8", "u12", "s12", "u16", "rgb8", "u12x3"),
    ts.JPEG_2000: LOSSY_KINDS,
    ts.JPEG_2000_MC: LOSSY_KINDS,
    ts.HTJ2K: LOSSY_KINDS,
    ts.JPEG_BASELINE_8BIT: ("u8", "rgb8"),
    ts.JPEG_EXTENDED_12BIT: ("u12",),
    ts.JPEG_XL: ("u8", "rgb8"),
}


def cases() -> list[tuple[str, str]]:
    """Every (transfer syntax, kind name) pair of ``MATRIX``."""
    return [(syntax, kind) for syntax, kinds in MATRIX.items() for kind in kinds]


def base_dataset(kind: Kind, syntax: str, rows: int = ROWS, columns: int = COLUMNS) -> Dataset:
    """A Secondary Capture dataset with the Image Pixel module of ``kind`` and no Pixel Data yet."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = syntax
    ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    ds.file_meta.MediaStorageSOPInstanceUID = f"2.25.{zlib.crc32(f'{kind.name}|{syntax}'.encode())}"
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
    ds.Rows, ds.Columns = rows, columns
    ds.SamplesPerPixel = kind.samples
    ds.PhotometricInterpretation = "RGB" if kind.samples == 3 else "MONOCHROME2"
    if kind.samples == 3:
        ds.PlanarConfiguration = 0
        if syntax == ts.JPEG_BASELINE_8BIT:
            ds.PhotometricInterpretation = "YBR_FULL_422"
        elif syntax in (
            ts.JPEG_2000_LOSSLESS,
            ts.HTJ2K_LOSSLESS,
            ts.HTJ2K_LOSSLESS_RPCL,
            ts.JPEG_2000_MC_LOSSLESS,
        ):
            ds.PhotometricInterpretation = "YBR_RCT"
        elif syntax in (ts.JPEG_2000, ts.HTJ2K, ts.JPEG_2000_MC):
            ds.PhotometricInterpretation = "YBR_ICT"
    ds.BitsAllocated = kind.bits_allocated
    ds.BitsStored = kind.bits_stored
    ds.HighBit = kind.bits_stored - 1
    ds.PixelRepresentation = int(kind.signed)
    if kind.frames > 1:
        ds.NumberOfFrames = kind.frames
    return ds


def make_dataset(syntax: str, kind_name: str) -> tuple[Dataset, Array]:
    """The dataset of ``kind_name`` frames encoded in ``syntax``, and the source frames."""
    kind = KINDS[kind_name]
    frames = phantom(kind)
    ds = base_dataset(kind, syntax)
    if syntax in NATIVE:
        big = syntax == ts.EXPLICIT_VR_BIG_ENDIAN
        ds.PixelData = frames.astype(kind.dtype.newbyteorder(">" if big else "<")).tobytes()
        ds["PixelData"].VR = "OW" if kind.bits_allocated > 8 else "OB"
    elif syntax == RLELossless:
        ds.file_meta.TransferSyntaxUID = ts.EXPLICIT_VR_LITTLE_ENDIAN
        ds.compress(RLELossless, frames if kind.frames > 1 else frames[0], encoding_plugin="pydicom")
    else:
        ds.PixelData = encapsulate([ENCODERS[syntax](frame, kind) for frame in frames])
        ds["PixelData"].VR = "OB"
        ds["PixelData"].is_undefined_length = True
    return roundtrip(ds), frames


def roundtrip(ds: Dataset) -> Dataset:
    """Write ``ds`` as a DICOM file in memory and read it back (datasets pydicom cannot write stay as is)."""
    if not pydicom.uid.UID(ds.file_meta.TransferSyntaxUID).is_transfer_syntax:
        return ds
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return pydicom.dcmread(io.BytesIO(buffer.getvalue()))


def video_dataset(syntax: str = "1.2.840.10008.1.2.4.102", fragments: int = 2) -> Dataset:
    """An H.264-labelled dataset whose 'stream' is deterministic bytes split into ``fragments`` items."""
    kind = Kind("video", 8, 8, False, samples=3, frames=30)
    ds = base_dataset(kind, syntax, rows=16, columns=16)
    ds.PhotometricInterpretation = "YBR_PARTIAL_420"
    stream = b"\x00\x00\x00\x01\x67" + bytes((i * 7 + 3) % 251 for i in range(1000))
    size = -(-len(stream) // fragments)
    ds.PixelData = encapsulate([stream[i : i + size] for i in range(0, len(stream), size)], has_bot=False)
    ds["PixelData"].VR = "OB"
    ds["PixelData"].is_undefined_length = True
    return ds
