"""The pixel layout a frame is decoded to: the Image Pixel module attributes (DICOM PS3.3 C.7.6.3).

``PixelFormat`` is read once per instance and passed to every per-frame function. Native frame lengths
follow PS3.5 section 8.1.1 (bit-packed data for Bits Allocated 1) and PS3.3 C.7.6.3.1.2 (uncompressed
YBR_FULL_422 keeps two luminance and one pair of chrominance samples per two pixels).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from math import ceil
from typing import Any

import numpy as np
import pydicom

from openhi.codecs.errors import CodecError

_BITS_ALLOCATED = (1, 8, 16, 32)


def _read_int(ds: pydicom.Dataset, keyword: str, default: int | None = None) -> int:
    """Attribute ``keyword`` as an int; ``CodecError`` when missing (without default) or not a number."""
    try:
        value: Any = ds.get(keyword)
    except (ValueError, TypeError, OverflowError) as exc:  # pydicom converts IS/US values on access
        raise CodecError(f"pixel attribute {keyword} is not a valid number: {exc}") from exc
    if value is None or value == "":
        if default is None:
            raise CodecError(f"required pixel attribute {keyword} is missing")
        return default
    if isinstance(value, list | tuple | pydicom.multival.MultiValue):
        raise CodecError(f"pixel attribute {keyword} must have one value, got {len(value)}")
    try:
        return int(value)
    except (ValueError, TypeError) as exc:
        raise CodecError(f"pixel attribute {keyword} is not a valid number: {value!r}") from exc


def _first_value(value: Any) -> Any:
    """The first value of a document value: a list's first item, a ``\\``-joined string's first part."""
    if isinstance(value, list | tuple):
        return value[0] if value else None
    if isinstance(value, str):
        return value.split("\\")[0].strip()
    return value


def _value_int(values: Mapping[str, Any], keyword: str, default: int | None = None) -> int:
    """First value of ``keyword`` in a keyword-keyed mapping as an int (IS text or a binary number).

    ``CodecError`` when missing (without default) or not an integer; IS text such as ``"16.0"`` is accepted.
    """
    value = _first_value(values.get(keyword))
    if value is None or value == "":
        if default is None:
            raise CodecError(f"required pixel attribute {keyword} is missing")
        return default
    try:
        return int(str(value).strip())
    except ValueError:
        pass
    try:
        number = float(value)
    except (TypeError, ValueError) as exc:
        raise CodecError(f"pixel attribute {keyword} is not a valid number: {value!r}") from exc
    if not number.is_integer():
        raise CodecError(f"pixel attribute {keyword} is not a whole number: {value!r}")
    return int(number)


@dataclass(frozen=True)
class PixelFormat:
    """Image Pixel attributes of one instance (all frames share them)."""

    rows: int
    columns: int
    samples_per_pixel: int
    bits_allocated: int
    bits_stored: int
    high_bit: int
    pixel_representation: int
    photometric_interpretation: str
    planar_configuration: int = 0
    number_of_frames: int = 1

    def __post_init__(self) -> None:
        """Reject layouts no codec can represent, with a message naming the attribute."""
        if self.rows < 1 or self.columns < 1:
            raise CodecError(f"Rows and Columns must be positive, got {self.rows}x{self.columns}")
        if self.samples_per_pixel not in (1, 3):
            raise CodecError(f"Samples per Pixel must be 1 or 3, got {self.samples_per_pixel}")
        if self.bits_allocated not in _BITS_ALLOCATED:
            raise CodecError(f"Bits Allocated must be one of {_BITS_ALLOCATED}, got {self.bits_allocated}")
        if not 1 <= self.bits_stored <= self.bits_allocated:
            raise CodecError(f"Bits Stored {self.bits_stored} must be in 1..Bits Allocated {self.bits_allocated}")
        if self.pixel_representation not in (0, 1):
            raise CodecError(f"Pixel Representation must be 0 or 1, got {self.pixel_representation}")
        if self.bits_allocated == 1 and (self.pixel_representation or self.samples_per_pixel != 1):
            raise CodecError("Bits Allocated 1 requires unsigned single-sample data")
        if self.planar_configuration not in (0, 1):
            raise CodecError(f"Planar Configuration must be 0 or 1, got {self.planar_configuration}")
        if self.number_of_frames < 1:
            raise CodecError(f"Number of Frames must be at least 1, got {self.number_of_frames}")
        if not self.photometric_interpretation:
            raise CodecError("required pixel attribute PhotometricInterpretation is missing")

    @classmethod
    def from_dataset(cls, ds: pydicom.Dataset) -> PixelFormat:
        """Read the Image Pixel module of ``ds``; ``CodecError`` names a missing or invalid attribute.

        High Bit defaults to Bits Stored - 1, Planar Configuration to 0 and Number of Frames to 1 (all
        three are commonly omitted by otherwise readable files).
        """
        bits_stored = _read_int(ds, "BitsStored")
        samples = _read_int(ds, "SamplesPerPixel")
        try:
            photometric = ds.get("PhotometricInterpretation")
        except (ValueError, TypeError) as exc:
            raise CodecError(f"pixel attribute PhotometricInterpretation is invalid: {exc}") from exc
        if not isinstance(photometric, str) or not photometric.strip():
            raise CodecError("required pixel attribute PhotometricInterpretation is missing")
        return cls(
            rows=_read_int(ds, "Rows"),
            columns=_read_int(ds, "Columns"),
            samples_per_pixel=samples,
            bits_allocated=_read_int(ds, "BitsAllocated"),
            bits_stored=bits_stored,
            high_bit=_read_int(ds, "HighBit", bits_stored - 1),
            pixel_representation=_read_int(ds, "PixelRepresentation"),
            photometric_interpretation=photometric.strip().upper(),
            planar_configuration=_read_int(ds, "PlanarConfiguration", 0) if samples > 1 else 0,
            number_of_frames=_read_int(ds, "NumberOfFrames", 1),
        )

    @classmethod
    def from_values(cls, values: Mapping[str, Any]) -> PixelFormat:
        """Read the Image Pixel module from keyword-keyed document values (an image set's ``DICOM`` objects).

        Same defaults as ``from_dataset``, and Samples per Pixel defaults to 1 and Pixel Representation to 0.
        Number of Frames below 1 counts as 1: the frames of a stored instance are its ``ImageFrames``, so the
        attribute only matters when it describes several frames. ``CodecError`` names a missing or invalid
        attribute.
        """
        bits_stored = _value_int(values, "BitsStored")
        samples = _value_int(values, "SamplesPerPixel", 1)
        return cls(
            rows=_value_int(values, "Rows"),
            columns=_value_int(values, "Columns"),
            samples_per_pixel=samples,
            bits_allocated=_value_int(values, "BitsAllocated"),
            bits_stored=bits_stored,
            high_bit=_value_int(values, "HighBit", bits_stored - 1),
            pixel_representation=_value_int(values, "PixelRepresentation", 0),
            photometric_interpretation=str(_first_value(values.get("PhotometricInterpretation")) or "").strip().upper(),
            planar_configuration=_value_int(values, "PlanarConfiguration", 0) if samples > 1 else 0,
            number_of_frames=max(1, _value_int(values, "NumberOfFrames", 1)),
        )

    @property
    def dtype(self) -> np.dtype[Any]:
        """Little-endian numpy dtype of a decoded frame (Bits Allocated 1 decodes to one uint8 per pixel)."""
        size = max(1, self.bits_allocated // 8)
        kind = "i" if self.pixel_representation else "u"
        return np.dtype(f"<{kind}{size}")

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of a decoded frame: (rows, columns) or (rows, columns, samples), samples interleaved."""
        if self.samples_per_pixel == 1:
            return (self.rows, self.columns)
        return (self.rows, self.columns, self.samples_per_pixel)

    @property
    def pixels_per_frame(self) -> int:
        """Rows x Columns."""
        return self.rows * self.columns

    @property
    def frame_bits(self) -> int:
        """Length of one native frame in bits (PS3.5 8.1.1; frames of 1-bit data need not be byte aligned)."""
        samples = self.samples_per_pixel
        if self.photometric_interpretation == "YBR_FULL_422":
            # PS3.3 C.7.6.3.1.2: Y1 Y2 Cb Cr for every two pixels, i.e. two samples per pixel.
            samples = 2
        return self.pixels_per_frame * samples * self.bits_allocated

    @property
    def frame_bytes(self) -> int:
        """Length of one native frame in bytes, as stored in a native Pixel Data element."""
        return ceil(self.frame_bits / 8)

    @property
    def decoded_frame_bytes(self) -> int:
        """Size of one decoded frame in ``dtype`` (rows x columns x samples x bytes per sample)."""
        return self.pixels_per_frame * self.samples_per_pixel * self.dtype.itemsize
