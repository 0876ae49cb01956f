"""Viewport geometry, resampling and consumer-format encoding of a rendered image (PS3.18 §8.3.5.1.3, §8.7.4).

The source region (``sx,sy,sw,sh``; a negative ``sw`` / ``sh`` flips that axis over the region
``[sx, sx + |sw|)``) is cut from the frame, then scaled to fit the viewport box keeping its aspect ratio
(with only one of vw / vh given, that side decides). Scaling is area averaging: each output pixel is the
mean of the source area it covers, with fractional coverage at its edges (exact box filtering for
downscaling; a box interpolation when enlarging), computed separably, rows then columns. Grey levels are rounded
to 8 bits only after scaling. JPEG (libjpeg-turbo, 4:2:0 for colour) and PNG (lossless) come from
imagecodecs.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import imagecodecs
import numpy as np
import numpy.typing as npt

from openhi.dicomweb.render_params import Viewport
from openhi.errors import ValidationError

FloatArray = npt.NDArray[np.float64]
Array = npt.NDArray[Any]


class ImageType(StrEnum):
    """The rendered media types OpenHI produces (PS3.18 Table 8.7.4-1 rendered media types)."""

    JPEG = "image/jpeg"
    PNG = "image/png"


@dataclass(frozen=True)
class Geometry:
    """Where the output comes from and how large it is."""

    x0: int
    y0: int
    x1: int
    y1: int
    flip_x: bool
    flip_y: bool
    out_width: int
    out_height: int


def _span(start: int, size: int | None, limit: int, axis: str) -> tuple[int, int, bool]:
    if start >= limit:
        raise ValidationError(
            f"Invalid value for query parameter 'viewport': s{axis} {start} lies outside the image ({limit} pixels)",
            field="viewport",
        )
    if size is None:
        return start, limit, False
    return start, min(limit, start + abs(size)), size < 0


def plan_geometry(columns: int, rows: int, viewport: Viewport | None) -> Geometry:
    """Source region and output size of a ``columns`` x ``rows`` frame under ``viewport``."""
    if viewport is None:
        return Geometry(0, 0, columns, rows, False, False, columns, rows)
    x0, x1, flip_x = _span(viewport.sx, viewport.sw, columns, "x")
    y0, y1, flip_y = _span(viewport.sy, viewport.sh, rows, "y")
    width, height = x1 - x0, y1 - y0
    scales = [box / side for box, side in ((viewport.width, width), (viewport.height, height)) if box is not None]
    scale = min(scales)
    out_w = max(1, round(width * scale))
    out_h = max(1, round(height * scale))
    return Geometry(x0, y0, x1, y1, flip_x, flip_y, out_w, out_h)


def crop(pixels: Array, geometry: Geometry) -> Array:
    """The source region of a frame (a view, flipped as asked)."""
    region = pixels[geometry.y0 : geometry.y1, geometry.x0 : geometry.x1]
    if geometry.flip_x:
        region = region[:, ::-1]
    if geometry.flip_y:
        region = region[::-1]
    return region


def _area_axis(values: FloatArray, size: int, axis: int) -> FloatArray:
    """Area-average ``values`` along ``axis`` to ``size`` samples.

    Output sample i covers the input interval [i * n / size, (i + 1) * n / size); it is the sum of the input
    samples it overlaps, each weighted by the overlapping length, divided by the interval's length. The
    overlapped samples of every output are gathered K at a time (K = the most any output overlaps).
    """
    n = values.shape[axis]
    if n == size:
        return values
    moved = np.ascontiguousarray(np.moveaxis(values, axis, 0))
    edges = np.linspace(0.0, float(n), size + 1)
    start, stop = edges[:-1], edges[1:]
    first = np.floor(start).astype(np.intp)
    last = np.minimum(np.ceil(stop).astype(np.intp), n)
    reach = int((last - first).max())
    averaged = np.zeros((size, *moved.shape[1:]), dtype=np.float64)
    trailing = (1,) * (moved.ndim - 1)
    for k in range(reach):
        index = np.minimum(first + k, n - 1)
        overlap = np.clip(np.minimum(stop, index + 1) - np.maximum(start, index), 0.0, None)
        overlap[first + k >= last] = 0.0
        averaged += (overlap / (n / size)).reshape(size, *trailing) * moved[index]
    return np.moveaxis(averaged, 0, axis)


def resample(grey: FloatArray, width: int, height: int) -> FloatArray:
    """Scale an (h, w) or (h, w, 3) float image to ``width`` x ``height`` by area averaging."""
    return _area_axis(_area_axis(grey, height, 0), width, 1)


def to_uint8(grey: FloatArray) -> npt.NDArray[np.uint8]:
    """Round 0..255 levels to 8-bit samples (half away from zero, clipped)."""
    return np.clip(np.floor(grey + 0.5), 0, 255).astype(np.uint8)


def encode(image: npt.NDArray[np.uint8], image_type: ImageType, quality: int) -> bytes:
    """JPEG (at ``quality``) or PNG bytes of an (h, w) grey or (h, w, 3) RGB 8-bit image."""
    image = np.ascontiguousarray(image)
    if image_type is ImageType.PNG:
        return bytes(imagecodecs.png_encode(image))
    return bytes(imagecodecs.jpeg8_encode(image, level=quality))
