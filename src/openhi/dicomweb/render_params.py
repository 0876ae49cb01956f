"""Query parameters of the rendered and thumbnail resources (PS3.18 §8.3.5.1), parsed and checked.

- ``window=center,width[,function]``: a VOI window in modality units; function ``linear`` (default),
  ``linear-exact`` or ``sigmoid`` (§8.3.5.1.4, PS3.3 C.11.2.1.2); ignored for colour images.
- ``viewport=vw,vh[,sx,sy,sw,sh]``: the output box (either of vw / vh may be empty: the other one and the
  aspect ratio decide) and the source region (offset sx,sy, size sw,sh; a negative size flips that axis;
  absent values mean "to the image edge") (§8.3.5.1.3). The region is scaled to fit the box keeping its
  aspect ratio.
- ``quality=1..100``: JPEG quality (§8.3.5.1.2); ignored for PNG.
- ``annotation`` (§8.3.5.1.1) and ``charset`` are accepted and ignored: OpenHI burns no text into images;
  ``iccprofile`` must be one of PS3.18's values and is ignored (output is untagged, i.e. sRGB).

A bad value is a ``ValidationError`` (400) whose message names the parameter. Frame lists (``1,3,5``) are
parsed here too (PS3.18 §10.4.1.1.2): positive integers; a frame past the instance's end is a 404 later.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from openhi.dicomweb.windowing import VoiFunction, Window
from openhi.errors import ValidationError

DEFAULT_QUALITY = 90
MAX_VIEWPORT_SIDE = 4096
THUMBNAIL_SIDE = 128
_ICC_PROFILES = frozenset({"no", "yes", "srgb", "adobergb", "rommrgb"})


@dataclass(frozen=True)
class Viewport:
    """``viewport=`` values; ``None`` means absent (defaults applied by the geometry)."""

    width: int | None
    height: int | None
    sx: int = 0
    sy: int = 0
    sw: int | None = None
    sh: int | None = None


@dataclass(frozen=True)
class RenderOptions:
    """Everything the query string asks of a rendered image."""

    window: Window | None = None
    viewport: Viewport | None = None
    quality: int = DEFAULT_QUALITY


def _bad(name: str, value: str, why: str) -> ValidationError:
    return ValidationError(f"Invalid value for query parameter '{name}': {value!r} ({why})", field=name)


def _number(name: str, raw: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise _bad(name, raw, f"{text.strip()!r} is not a number") from None
    if not math.isfinite(value):
        raise _bad(name, raw, "values must be finite")
    return value


def _integer(name: str, raw: str, text: str) -> int:
    text = text.strip()
    if not text.lstrip("+-").isdigit():
        raise _bad(name, raw, f"{text!r} is not an integer")
    return int(text)


def parse_window(raw: str) -> Window:
    """``center,width[,function]`` -> Window."""
    parts = raw.split(",")
    if len(parts) not in (2, 3):
        raise _bad("window", raw, "expected center,width,function")
    function = VoiFunction.LINEAR
    if len(parts) == 3:
        parsed = VoiFunction.parse(parts[2])
        if parsed is None:
            raise _bad("window", raw, "function must be linear, linear-exact or sigmoid")
        function = parsed
    window = Window(_number("window", raw, parts[0]), _number("window", raw, parts[1]), function)
    problem = window.problem()
    if problem is not None:
        raise _bad("window", raw, problem)
    return window


def parse_viewport(raw: str) -> Viewport:
    """``vw,vh[,sx,sy,sw,sh]`` -> Viewport (vw / vh / sw / sh may be empty)."""
    parts = [part.strip() for part in raw.split(",")]
    if len(parts) not in (2, 4, 6):
        raise _bad("viewport", raw, "expected vw,vh or vw,vh,sx,sy,sw,sh")

    def side(text: str) -> int | None:
        if not text:
            return None
        value = _integer("viewport", raw, text)
        if not 1 <= value <= MAX_VIEWPORT_SIDE:
            raise _bad("viewport", raw, f"vw and vh must be in 1..{MAX_VIEWPORT_SIDE}")
        return value

    width, height = side(parts[0]), side(parts[1])
    if width is None and height is None:
        raise _bad("viewport", raw, "vw or vh must be given")
    sx = _integer("viewport", raw, parts[2]) if len(parts) > 2 and parts[2] else 0
    sy = _integer("viewport", raw, parts[3]) if len(parts) > 3 and parts[3] else 0
    if sx < 0 or sy < 0:
        raise _bad("viewport", raw, "sx and sy must not be negative")
    sw = _integer("viewport", raw, parts[4]) if len(parts) > 4 and parts[4] else None
    sh = _integer("viewport", raw, parts[5]) if len(parts) > 5 and parts[5] else None
    if sw == 0 or sh == 0:
        raise _bad("viewport", raw, "sw and sh must not be 0")
    return Viewport(width, height, sx, sy, sw, sh)


def parse_quality(raw: str) -> int:
    """``1..100``."""
    value = _integer("quality", raw, raw)
    if not 1 <= value <= 100:
        raise _bad("quality", raw, "must be an integer in 1..100")
    return value


def parse_options(query: Callable[[str], str | None]) -> RenderOptions:
    """Read the rendered-resource parameters through ``query(name)`` (the last value of a repeated name)."""
    window, viewport, quality = query("window"), query("viewport"), query("quality")
    icc = query("iccprofile")
    if icc is not None and icc.strip().lower() not in _ICC_PROFILES:
        raise _bad("iccprofile", icc, "must be no, yes, srgb, adobergb or rommrgb")
    return RenderOptions(
        window=parse_window(window) if window is not None else None,
        viewport=parse_viewport(viewport) if viewport is not None else None,
        quality=parse_quality(quality) if quality is not None else DEFAULT_QUALITY,
    )


def parse_frame_list(raw: str) -> list[int]:
    """``1,3,5`` -> [1, 3, 5] (PS3.18 §10.4.1.1.2: one-based frame numbers, comma separated)."""
    numbers = []
    for part in raw.split(","):
        text = part.strip()
        if not text.isdigit() or int(text) < 1:
            raise _bad("frames", raw, "frame numbers are positive integers separated by commas")
        numbers.append(int(text))
    return numbers
