"""Rendered and thumbnail images of series, instances and frames (PS3.18 §10.4.1.1.3 and the Thumbnail
resources; beyond HealthImaging, for viewers).

What each resource renders (``plan``):

- instance ``/rendered``: every frame (one image for a single-frame instance; for a multi-frame instance the
  handler sends all frames as multipart/related when the client asks for multipart, else the first frame);
- frames ``/frames/{list}/rendered``: the listed frames, in the listed order;
- series ``/rendered``: the first frame of every instance with decodable pixel data (video and other stored
  syntaxes that cannot be decoded are left out), in Instance Number order;
- ``/thumbnail``: one image, 128x128 at most unless ``viewport=`` says otherwise: the middle frame of the
  instance (or of the listed frames), the middle instance (by Instance Number) of a series; "middle" is the
  lower middle for even counts.

Rendering one frame (``render``): the stored frame blob is decoded (``codecs.store.decode_stored_frame``), cut
and scaled by the viewport (``render_image``), monochrome data goes through the Modality LUT, the VOI window
and MONOCHROME1 inversion, colour data is converted to RGB and palette colour through its lookup tables
(``windowing``), then encoded as JPEG or PNG. The window is ``window=`` when given, else the frame's first
Window Center / Width (per-frame functional group, then shared functional group, then the top-level
attributes) with its VOI LUT Function, else the frame's full range (Min/MaxPixelValue of ImageFrames, or
the decoded pixels), rescaled. Instances without pixel data, and stored syntaxes that cannot be decoded
(video, unsupported), are ``NotAcceptableError`` (406: the rendered media types cannot be produced);
unknown frames are ``NotFoundError`` (404).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from openhi.blobs import keys
from openhi.blobs.port import BlobStore
from openhi.codecs.decode import decoded_photometric_interpretation
from openhi.codecs.errors import CodecError
from openhi.codecs.pixels import PixelFormat
from openhi.codecs.store import decode_stored_frame
from openhi.codecs.syntaxes import is_decodable
from openhi.dicomweb.cache import DOCUMENT_CACHE_BYTES, DocumentCache
from openhi.dicomweb.locate import InstanceView, SeriesView, find_series
from openhi.dicomweb.render_image import ImageType, crop, encode, plan_geometry, resample, to_uint8
from openhi.dicomweb.render_params import THUMBNAIL_SIDE, RenderOptions, Viewport, parse_frame_list
from openhi.dicomweb.windowing import (
    VoiFunction,
    Window,
    apply_palette,
    apply_window,
    colour_to_8bit,
    invert,
    rescale,
    ybr_full_to_rgb,
)
from openhi.errors import NotAcceptableError, NotFoundError
from openhi.index.port import Index
from openhi.tiers.access import NO_ACCESS_RECORDING, AccessRecorder

Array = npt.NDArray[Any]
Dicom = Mapping[str, Any]
_PALETTE = "PALETTE COLOR"


@dataclass(frozen=True)
class RenderTarget:
    """One image to produce: frame ``frame`` (one-based) of an instance."""

    instance: InstanceView
    frame: int


@dataclass(frozen=True)
class RenderPlan:
    """The images a request names.

    ``first_frame_fallback`` is set for a multi-frame instance's ``/rendered``: a client that accepts only a
    single image gets the first frame.
    """

    view: SeriesView
    targets: list[RenderTarget]
    first_frame_fallback: bool = False

    @property
    def version_tag(self) -> str:
        """Image set id and version: what the rendered bytes depend on besides the request (for ETags)."""
        return f"{self.view.image_set.image_set_id}:{self.view.image_set.version_id}"


# Reading DICOM values of the metadata document -------------------------------------------------------------


def _values(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, str):
        return value.split("\\")
    if isinstance(value, list):
        return value
    return [value]


def _first_number(value: Any) -> float | None:
    """The first value of a DS / IS / binary number, or None when absent or not a finite number."""
    for item in _values(value)[:1]:
        try:
            number = float(item)
        except (TypeError, ValueError):
            return None
        return number if np.isfinite(number) else None
    return None


def pixel_format(dicom: Dicom) -> PixelFormat:
    """The Image Pixel module (PS3.3 C.7.6.3) of an instance's DICOM values."""
    try:
        return PixelFormat.from_values(dicom)
    except CodecError as exc:
        raise NotAcceptableError(f"The instance cannot be rendered: {exc.message}") from exc


def _functional_item(dicom: Dicom, frame: int, sequence: str) -> Dicom | None:
    """Item 1 of ``sequence`` in the frame's per-frame functional group, else in the shared one (C.7.6.16)."""
    per_frame = dicom.get("PerFrameFunctionalGroupsSequence")
    groups: list[Any] = []
    if isinstance(per_frame, list) and 0 <= frame - 1 < len(per_frame):
        groups.append(per_frame[frame - 1])
    shared = dicom.get("SharedFunctionalGroupsSequence")
    if isinstance(shared, list) and shared:
        groups.append(shared[0])
    for group in groups:
        items = group.get(sequence) if isinstance(group, dict) else None
        if isinstance(items, list) and items and isinstance(items[0], dict):
            item: Dicom = items[0]
            return item
    return None


def modality_rescale(dicom: Dicom, frame: int) -> tuple[float, float]:
    """(slope, intercept) of the Modality LUT (C.11.1.1.2; C.7.6.16.2.9 Pixel Value Transformation)."""
    source = _functional_item(dicom, frame, "PixelValueTransformationSequence") or dicom
    slope = _first_number(source.get("RescaleSlope"))
    intercept = _first_number(source.get("RescaleIntercept"))
    return (slope if slope is not None and slope != 0 else 1.0), (intercept if intercept is not None else 0.0)


def stored_window(dicom: Dicom, frame: int) -> Window | None:
    """The first Window Center / Width of the frame (C.11.2.1.2; C.7.6.16.2.10 Frame VOI LUT), if usable."""
    source = _functional_item(dicom, frame, "FrameVOILUTSequence") or dicom
    center, width = _first_number(source.get("WindowCenter")), _first_number(source.get("WindowWidth"))
    if center is None or width is None:
        return None
    function = VoiFunction.parse(str(source.get("VOILUTFunction") or "LINEAR")) or VoiFunction.LINEAR
    window = Window(center, width, function)
    return window if window.problem() is None else None


# Planning -----------------------------------------------------------------------------------------------------


def _instance_number(instance: InstanceView) -> float:
    number = _first_number(instance.dicom.get("InstanceNumber"))
    return number if number is not None else float("inf")


def _middle(count: int) -> int:
    return (count - 1) // 2


def _image_instances(view: SeriesView) -> list[InstanceView]:
    """Instances with frames of a decodable stored syntax (not video), in Instance Number order (document order
    breaks ties and places unnumbered instances last)."""
    with_frames = [i for i in view.instances() if i.frame_ids and is_decodable(i.stored_transfer_syntax)]
    return sorted(with_frames, key=_instance_number)


class Renderer:
    """Plans and renders the images of the rendered and thumbnail resources."""

    def __init__(
        self,
        index: Index,
        blobs: BlobStore,
        documents: DocumentCache | None = None,
        access: AccessRecorder = NO_ACCESS_RECORDING,
    ) -> None:
        self._index = index
        self._blobs = blobs
        self._documents = documents or DocumentCache(DOCUMENT_CACHE_BYTES)
        self._access = access  # storage tiers: rendering reads the series (an access, locate.py)

    def plan(
        self,
        datastore_id: str,
        study_uid: str,
        series_uid: str,
        sop_uid: str | None,
        frames: str | None,
        image_set_id: str | None,
        thumbnail: bool,
    ) -> RenderPlan:
        """The images a request names (see the module docstring); 404 / 406 as PS3.18 says."""
        numbers = parse_frame_list(frames) if frames is not None else None
        view = find_series(
            self._index,
            self._blobs,
            datastore_id,
            study_uid,
            series_uid,
            image_set_id,
            self._documents.load,
            self._access,
        )
        if sop_uid is None:
            instances = _image_instances(view)
            if not instances:
                raise NotAcceptableError(f"Series {series_uid} has no instance with pixel data to render")
            if thumbnail:
                return RenderPlan(view, [RenderTarget(instances[_middle(len(instances))], 1)])
            return RenderPlan(view, [RenderTarget(instance, 1) for instance in instances])
        instance = view.instance(sop_uid)
        count = len(instance.frame_ids)
        if numbers is not None:
            for number in numbers:
                if number > count:
                    raise NotFoundError(f"Frame {number} does not exist in instance {sop_uid} ({count} frames)")
            chosen = [numbers[_middle(len(numbers))]] if thumbnail else numbers
            return RenderPlan(view, [RenderTarget(instance, number) for number in chosen])
        if count == 0:
            raise NotAcceptableError(f"Instance {sop_uid} has no pixel data to render")
        if thumbnail:
            return RenderPlan(view, [RenderTarget(instance, _middle(count) + 1)])
        targets = [RenderTarget(instance, number) for number in range(1, count + 1)]
        return RenderPlan(view, targets, first_frame_fallback=count > 1)

    def render(
        self, target: RenderTarget, options: RenderOptions, image_type: ImageType, thumbnail: bool = False
    ) -> bytes:
        """The encoded image of one frame."""
        instance = target.instance
        dicom: Dicom = {**instance.series.series.get("DICOM", {}), **instance.dicom}
        fmt = pixel_format(dicom)
        frame_entry = instance.entry["ImageFrames"][target.frame - 1]
        datastore_id = instance.series.image_set.datastore_id
        data = self._blobs.get(keys.frame(datastore_id, frame_entry["ID"]))
        try:
            pixels = decode_stored_frame(data, instance.stored_transfer_syntax, fmt)
        except CodecError as exc:
            message = f"Frame {target.frame} of instance {instance.sop_uid} cannot be rendered: {exc}"
            raise NotAcceptableError(message) from exc
        viewport = options.viewport
        if thumbnail and viewport is None:
            viewport = Viewport(THUMBNAIL_SIDE, THUMBNAIL_SIDE)
        geometry = plan_geometry(fmt.columns, fmt.rows, viewport)
        region = crop(pixels, geometry)
        if fmt.samples_per_pixel == 3:
            levels = self._colour(region, fmt, instance.stored_transfer_syntax)
        elif fmt.photometric_interpretation == _PALETTE:
            levels = apply_palette(region, self._palette(dicom, datastore_id))
        else:
            levels = self._grey(region, pixels, dicom, frame_entry, target.frame, options.window)
            if fmt.photometric_interpretation == "MONOCHROME1":
                levels = invert(levels)
        scaled = resample(levels, geometry.out_width, geometry.out_height)
        return encode(to_uint8(scaled), image_type, options.quality)

    @staticmethod
    def _grey(
        region: Array, pixels: Array, dicom: Dicom, frame_entry: Dicom, frame: int, asked: Window | None
    ) -> npt.NDArray[np.float64]:
        slope, intercept = modality_rescale(dicom, frame)
        window = asked or stored_window(dicom, frame)
        if window is None:
            low, high = frame_entry.get("MinPixelValue"), frame_entry.get("MaxPixelValue")
            if not isinstance(low, int | float) or not isinstance(high, int | float):
                low, high = float(pixels.min()), float(pixels.max())
            window = Window.covering(low * slope + intercept, high * slope + intercept)
        return apply_window(rescale(region, slope, intercept), window)

    @staticmethod
    def _colour(region: Array, fmt: PixelFormat, stored_syntax: str) -> npt.NDArray[np.float64]:
        photometric = decoded_photometric_interpretation(stored_syntax, fmt)
        if photometric in ("RGB", "YBR_RCT", "YBR_ICT"):
            rgb: Array = region
        elif photometric == "YBR_FULL":
            rgb = ybr_full_to_rgb(region, fmt.bits_stored)
        else:
            raise NotAcceptableError(f"Photometric Interpretation {photometric} cannot be rendered")
        return colour_to_8bit(rgb, fmt.bits_stored)

    def _palette(self, dicom: Dicom, datastore_id: str) -> list[tuple[list[int], npt.NDArray[np.uint16]]]:
        """The red, green and blue Palette Color Lookup Tables (C.7.6.3.1.5, C.7.6.3.1.6): descriptor + data."""
        tables = []
        for colour in ("Red", "Green", "Blue"):
            descriptor = [int(v) for v in _values(dicom.get(f"{colour}PaletteColorLookupTableDescriptor"))]
            raw = dicom.get(f"{colour}PaletteColorLookupTableData")
            if len(descriptor) != 3 or raw is None:
                raise NotAcceptableError(f"PALETTE COLOR without a usable {colour} lookup table cannot be rendered")
            tables.append((descriptor, self._lut_words(raw, descriptor, datastore_id)))
        return tables

    def _lut_words(self, raw: Any, descriptor: list[int], datastore_id: str) -> npt.NDArray[np.uint16]:
        if isinstance(raw, dict) and isinstance(raw.get("BulkDataReference"), str):
            data = self._blobs.get(keys.bulk_value(datastore_id, raw["BulkDataReference"]))
        elif isinstance(raw, str):
            try:
                data = base64.b64decode(raw, validate=True)
            except binascii.Error as exc:
                raise NotAcceptableError(f"palette lookup table data is not base64: {exc}") from exc
        else:
            raise NotAcceptableError("palette lookup table data has an unexpected form")
        entries = descriptor[0] or 65536
        if descriptor[2] == 8 and len(data) == entries:
            return np.frombuffer(data, dtype=np.uint8).astype(np.uint16)
        words = np.frombuffer(data[: len(data) // 2 * 2], dtype="<u2")
        if len(words) < entries:
            raise NotAcceptableError("palette lookup table data is shorter than its descriptor says")
        return words[:entries].astype(np.uint16)
