"""Grey-scale and colour pixel transforms for rendered images (DICOM PS3.3 C.11.1, C.11.2, C.7.6.3.1.2).

The pipeline for monochrome data is Modality LUT (Rescale Slope / Intercept, C.11.1.1.2), then the VOI LUT
function (Window Center / Width with VOI LUT Function LINEAR, LINEAR_EXACT or SIGMOID, C.11.2.1.2, to an
output range of 0..255), then the Presentation LUT shape implied by MONOCHROME1 (inverted, C.7.6.3.1.2).
Colour data is converted to RGB (YBR_FULL per C.7.6.3.1.2) and scaled to 8 bits. Every function is pure
numpy and returns float64 (grey levels 0..255, not yet rounded) so that resampling happens before rounding.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[Any]
FloatArray = npt.NDArray[np.float64]

Y_MIN, Y_MAX = 0.0, 255.0


class VoiFunction(StrEnum):
    """VOI LUT Function (0028,1056) values, with the ``window=`` spellings of PS3.18 §8.3.5.1.4."""

    LINEAR = "linear"
    LINEAR_EXACT = "linear-exact"
    SIGMOID = "sigmoid"

    @classmethod
    def parse(cls, text: str) -> VoiFunction | None:
        """``LINEAR`` / ``LINEAR_EXACT`` / ``SIGMOID`` (DICOM) or ``linear`` / ``linear-exact`` / ``sigmoid``."""
        normalized = text.strip().lower().replace("_", "-")
        try:
            return cls(normalized)
        except ValueError:
            return None


@dataclass(frozen=True)
class Window:
    """A VOI window: center and width in modality units (after rescale) and the function to apply."""

    center: float
    width: float
    function: VoiFunction = VoiFunction.LINEAR

    def problem(self) -> str | None:
        """Why this window cannot be applied (C.11.2.1.2: width >= 1 for LINEAR, > 0 otherwise), or None."""
        if not (np.isfinite(self.center) and np.isfinite(self.width)):
            return "center and width must be finite numbers"
        if self.function is VoiFunction.LINEAR and self.width < 1:
            return "width must be at least 1 for the linear function"
        if self.width <= 0:
            return "width must be greater than 0"
        return None

    @classmethod
    def covering(cls, low: float, high: float) -> Window:
        """The LINEAR_EXACT window mapping ``low`` to black and ``high`` to white (the fallback window)."""
        low, high = min(low, high), max(low, high)
        width = max(high - low, 1e-6)
        return cls(center=low + width / 2, width=width, function=VoiFunction.LINEAR_EXACT)


def rescale(pixels: Array, slope: float, intercept: float) -> FloatArray:
    """Modality LUT by Rescale Slope and Intercept (PS3.3 C.11.1.1.2): ``slope * stored + intercept``."""
    values = pixels.astype(np.float64)
    if slope != 1.0:
        values *= slope
    if intercept != 0.0:
        values += intercept
    return values


def apply_window(values: FloatArray, window: Window) -> FloatArray:
    """The VOI LUT function to 0..255: linear (PS3.3 C.11.2.1.2.1), linear exact and sigmoid (C.11.2.1.3)."""
    c, w = window.center, window.width
    span = Y_MAX - Y_MIN
    if window.function is VoiFunction.SIGMOID:
        return span / (1.0 + np.exp(-4.0 * (values - c) / w)) + Y_MIN
    if window.function is VoiFunction.LINEAR and w <= 1:
        # Width 1: the ramp is empty; x <= c - 0.5 is the minimum, anything above the maximum.
        return np.where(values <= c - 0.5, Y_MIN, Y_MAX)
    # Both ramps reach exactly Y_MIN / Y_MAX at their ends (x = c - 0.5 -/+ (w - 1) / 2 for LINEAR,
    # x = c -/+ w / 2 for LINEAR_EXACT), so clipping the ramp equals the piecewise definition. The ramp is
    # evaluated in the order of the standard's formula so that results match it to the last bit.
    if window.function is VoiFunction.LINEAR_EXACT:
        out = values - c
        out /= w
    else:
        out = values - (c - 0.5)
        out /= w - 1
    out += 0.5
    out *= span
    out += Y_MIN
    return np.clip(out, Y_MIN, Y_MAX, out=out)


def invert(grey: FloatArray) -> FloatArray:
    """MONOCHROME1: the minimum sample value is displayed white (PS3.3 C.7.6.3.1.2)."""
    return Y_MAX - grey + Y_MIN


def ybr_full_to_rgb(pixels: Array, bits_stored: int) -> FloatArray:
    """YBR_FULL -> RGB with the PS3.3 C.7.6.3.1.2 (ITU-R BT.601 full range) equations, centred at 2^(n-1)."""
    ybr = pixels.astype(np.float64)
    half = float(1 << (bits_stored - 1))
    y, cb, cr = ybr[..., 0], ybr[..., 1] - half, ybr[..., 2] - half
    rgb = np.stack(
        (y + 1.402 * cr, y - 0.344136 * cb - 0.714136 * cr, y + 1.772 * cb),
        axis=-1,
    )
    return np.clip(rgb, 0.0, float((1 << bits_stored) - 1))


def colour_to_8bit(rgb: Array, bits_stored: int) -> FloatArray:
    """RGB samples of ``bits_stored`` bits scaled to 0..255."""
    values = rgb.astype(np.float64)
    if bits_stored == 8:
        return values
    return values * (Y_MAX / float((1 << bits_stored) - 1))


def apply_palette(pixels: Array, tables: list[tuple[list[int], npt.NDArray[np.uint16]]]) -> FloatArray:
    """PALETTE COLOR -> RGB levels 0..255 through the red, green and blue lookup tables (PS3.3 C.7.6.3.1.5).

    Each table is (descriptor, entries): descriptor = (number of entries, 0 meaning 65536; first mapped
    value; bits per entry). Values below the first mapped value use entry 0, values past the end the last.
    """
    channels = []
    for descriptor, words in tables:
        entries, first, bits = descriptor[0] or 65536, descriptor[1], descriptor[2]
        index = np.clip(pixels.astype(np.int64) - first, 0, min(entries, len(words)) - 1)
        top = (1 << bits) - 1 if bits in (8, 16) else 65535
        if words.size and int(words.max()) > top:
            top = 65535
        channels.append(words[index].astype(np.float64) * (Y_MAX / top))
    return np.stack(channels, axis=-1)
