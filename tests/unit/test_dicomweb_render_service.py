"""The rendering service over an in-memory blob store, and the handler's content negotiation and ETags."""

from __future__ import annotations

import base64
from types import SimpleNamespace
from typing import Any

import imagecodecs
import numpy as np
import pytest

from openhi.api.dicomweb.accept import parse_accept
from openhi.api.dicomweb.render import Choice, multipart_body, negotiate, not_modified
from openhi.blobs import keys
from openhi.blobs.memory import MemoryBlobStore
from openhi.codecs.store import prepare_frame
from openhi.codecs.syntaxes import EXPLICIT_VR_LITTLE_ENDIAN
from openhi.datastores.model import LosslessStorageFormat
from openhi.dicomweb.locate import SeriesView
from openhi.dicomweb.render import Renderer, RenderTarget, modality_rescale, pixel_format, stored_window
from openhi.dicomweb.render_image import ImageType
from openhi.dicomweb.render_params import RenderOptions, Viewport, parse_window
from openhi.dicomweb.windowing import VoiFunction, Window
from openhi.errors import NotAcceptableError, NotFoundError
from openhi.ids import new_id

DATASTORE = new_id()
STUDY, SERIES = "1.2.3", "1.2.3.4"

# Stored values 1000 + [0, 64, 128, 192, 256] rescaled by intercept -1000 are [0, 64, 128, 192, 256]; the
# LINEAR_EXACT window 128/256 maps x to x * 255 / 256 (C.11.2.1.3.2), rounded half up.
GREY_ROW = np.array([1000, 1064, 1128, 1192, 1256], dtype=np.uint16)
GREY_EXPECTED = [0, 64, 128, 191, 255]


def grey_dicom(**extra: Any) -> dict[str, Any]:
    return {
        "Rows": 2,
        "Columns": 5,
        "SamplesPerPixel": 1,
        "BitsAllocated": 16,
        "BitsStored": 12,
        "HighBit": 11,
        "PixelRepresentation": 0,
        "PhotometricInterpretation": "MONOCHROME2",
        "RescaleSlope": "1",
        "RescaleIntercept": "-1000",
        "InstanceNumber": "1",
        **extra,
    }


class Store:
    """A document of one series with instances whose frames are stored as HTJ2K in a memory blob store."""

    def __init__(self) -> None:
        self.blobs = MemoryBlobStore()
        self.instances: dict[str, Any] = {}

    def add(self, sop: str, dicom: dict[str, Any], frames: list[np.ndarray]) -> None:
        entries, syntax = [], ""
        if frames:
            fmt = pixel_format({**dicom, "NumberOfFrames": len(frames)})
            for frame in frames:
                payload = frame.astype(fmt.dtype).tobytes()
                prepared = prepare_frame(payload, EXPLICIT_VR_LITTLE_ENDIAN, fmt, LosslessStorageFormat.HTJ2K)
                frame_id = new_id()
                self.blobs.put(keys.frame(DATASTORE, frame_id), prepared.data)
                syntax = prepared.stored_transfer_syntax
                entries.append(
                    {
                        "ID": frame_id,
                        "MinPixelValue": prepared.min_pixel_value,
                        "MaxPixelValue": prepared.max_pixel_value,
                    }
                )
        self.instances[sop] = {"DICOM": dicom, "StoredTransferSyntaxUID": syntax, "ImageFrames": entries}

    def view(self) -> SeriesView:
        document = {
            "Study": {
                "DICOM": {"StudyInstanceUID": STUDY},
                "Series": {SERIES: {"DICOM": {}, "Instances": self.instances}},
            }
        }
        image_set = SimpleNamespace(datastore_id=DATASTORE, image_set_id=new_id(), version_id=1)
        return SeriesView(image_set, document, STUDY, SERIES)  # type: ignore[arg-type]

    def renderer(self) -> Renderer:
        return Renderer(index=None, blobs=self.blobs)  # type: ignore[arg-type]


def render_png(store: Store, sop: str, frame: int = 1, options: RenderOptions | None = None, **kw: Any) -> np.ndarray:
    target = RenderTarget(store.view().instance(sop), frame)
    data = store.renderer().render(target, options or RenderOptions(), ImageType.PNG, **kw)
    decoded: np.ndarray = imagecodecs.png_decode(data)
    return decoded


def grey_frame() -> np.ndarray:
    return np.stack([GREY_ROW, GREY_ROW[::-1]])


def test_window_parameter_is_applied_exactly() -> None:
    store = Store()
    store.add("1", grey_dicom(), [grey_frame()])
    image = render_png(store, "1", options=RenderOptions(window=parse_window("128,256,linear-exact")))
    assert image.tolist() == [GREY_EXPECTED, GREY_EXPECTED[::-1]]


def test_monochrome1_is_inverted() -> None:
    store = Store()
    store.add("1", grey_dicom(PhotometricInterpretation="MONOCHROME1"), [grey_frame()])
    image = render_png(store, "1", options=RenderOptions(window=parse_window("128,256,linear-exact")))
    assert image[0].tolist() == [255, 191, 128, 64, 0]  # 255 - x * 255 / 256, then rounded


def test_instance_window_is_the_default() -> None:
    store = Store()
    dicom = grey_dicom(WindowCenter="128\\50", WindowWidth="256\\10", VOILUTFunction="LINEAR_EXACT")
    store.add("1", dicom, [grey_frame()])
    assert render_png(store, "1")[0].tolist() == GREY_EXPECTED
    # window= takes precedence over the instance's window.
    other = render_png(store, "1", options=RenderOptions(window=Window(0, 2, VoiFunction.LINEAR_EXACT)))
    assert other[0].tolist() == [128, 255, 255, 255, 255]


def test_without_window_the_frame_range_is_used() -> None:
    store = Store()
    store.add("1", grey_dicom(), [grey_frame()])
    assert render_png(store, "1")[0].tolist() == [0, 64, 128, 191, 255]  # 0..256 covered: x * 255 / 256


def test_functional_groups_window_and_rescale() -> None:
    dicom = grey_dicom(
        RescaleIntercept="0",
        WindowCenter="5",
        WindowWidth="10",
        SharedFunctionalGroupsSequence=[
            {"PixelValueTransformationSequence": [{"RescaleSlope": "2", "RescaleIntercept": "-10"}]}
        ],
        PerFrameFunctionalGroupsSequence=[
            {"FrameVOILUTSequence": [{"WindowCenter": "100", "WindowWidth": "50", "VOILUTFunction": "SIGMOID"}]},
            {},
        ],
    )
    assert modality_rescale(dicom, 1) == (2.0, -10.0)
    assert stored_window(dicom, 1) == Window(100, 50, VoiFunction.SIGMOID)
    assert stored_window(dicom, 2) == Window(5, 10, VoiFunction.LINEAR)
    assert stored_window(grey_dicom(WindowCenter="1", WindowWidth="0"), 1) is None


def test_colour_frames_pass_through() -> None:
    rgb = np.arange(2 * 5 * 3, dtype=np.uint8).reshape(2, 5, 3) * 8
    store = Store()
    dicom = grey_dicom(SamplesPerPixel=3, BitsAllocated=8, BitsStored=8, PhotometricInterpretation="RGB")
    store.add("1", dicom, [rgb])
    assert np.array_equal(render_png(store, "1"), rgb)


def test_viewport_and_thumbnail_sizes() -> None:
    frame = np.tile(np.arange(512, dtype=np.uint16), (256, 1))
    store = Store()
    store.add("1", grey_dicom(Rows=256, Columns=512), [frame])
    assert render_png(store, "1", thumbnail=True).shape == (64, 128)
    assert render_png(store, "1", options=RenderOptions(viewport=Viewport(100, 100))).shape == (50, 100)
    assert render_png(store, "1", options=RenderOptions(viewport=Viewport(512, 512)), thumbnail=True).shape == (
        256,
        512,
    )
    flipped = render_png(store, "1", options=RenderOptions(viewport=Viewport(4, 4, 0, 0, -4, 4)))
    assert flipped.shape == (4, 4)
    assert flipped[0].tolist() == sorted(flipped[0].tolist(), reverse=True)


def test_plan_orders_series_and_picks_middles() -> None:
    store = Store()
    for sop, number in (("a", "3"), ("b", "1"), ("c", "2"), ("d", "10")):
        store.add(sop, grey_dicom(InstanceNumber=number), [grey_frame()])
    store.add("sr", {"InstanceNumber": "0"}, [])
    store.add("multi", grey_dicom(NumberOfFrames="3", InstanceNumber="5"), [grey_frame()] * 3)
    renderer, view = store.renderer(), store.view()

    def plan(sop: str | None, frames: str | None = None, thumbnail: bool = False) -> list[tuple[str, int]]:
        import openhi.dicomweb.render as module

        original = module.find_series
        module.find_series = lambda *args: view  # type: ignore[assignment]
        try:
            result = renderer.plan(DATASTORE, STUDY, SERIES, sop, frames, None, thumbnail)
        finally:
            module.find_series = original
        return [(t.instance.sop_uid, t.frame) for t in result.targets]

    assert plan(None) == [("b", 1), ("c", 1), ("a", 1), ("multi", 1), ("d", 1)]
    assert plan(None, thumbnail=True) == [("a", 1)]
    assert plan("multi") == [("multi", 1), ("multi", 2), ("multi", 3)]
    assert plan("multi", thumbnail=True) == [("multi", 2)]
    assert plan("multi", "3,1") == [("multi", 3), ("multi", 1)]
    assert plan("multi", "3,1,2", thumbnail=True) == [("multi", 1)]
    with pytest.raises(NotFoundError, match="Frame 4"):
        plan("multi", "1,4")
    with pytest.raises(NotAcceptableError):
        plan("sr")
    with pytest.raises(NotFoundError):
        plan("sr", "1")
    with pytest.raises(NotFoundError):
        plan("nope")


def test_pixel_format_from_document_values() -> None:
    fmt = pixel_format(grey_dicom(NumberOfFrames="4"))
    assert (fmt.rows, fmt.columns, fmt.bits_stored, fmt.number_of_frames) == (2, 5, 12, 4)
    with pytest.raises(NotAcceptableError, match="Rows"):
        pixel_format({k: v for k, v in grey_dicom().items() if k != "Rows"})
    with pytest.raises(NotAcceptableError):
        pixel_format(grey_dicom(BitsAllocated=12))


# Negotiation, ETags, multipart ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("accept", "single", "multi", "expected"),
    [
        (None, True, True, Choice(ImageType.JPEG, False)),
        ("*/*", False, True, Choice(ImageType.JPEG, True)),
        ("image/*", True, True, Choice(ImageType.JPEG, False)),
        ("image/png", True, True, Choice(ImageType.PNG, False)),
        ("image/jpeg;q=0.5, image/png", True, False, Choice(ImageType.PNG, False)),
        ('multipart/related; type="image/png"', True, True, Choice(ImageType.PNG, True)),
        ("multipart/related", True, True, Choice(ImageType.JPEG, True)),
        ("image/gif, multipart/*", False, True, Choice(ImageType.JPEG, True)),
        ("image/gif, image/png;q=0.1", True, True, Choice(ImageType.PNG, False)),
    ],
)
def test_negotiation(accept: str | None, single: bool, multi: bool, expected: Choice) -> None:
    assert negotiate(parse_accept(accept), single_ok=single, multipart_ok=multi) == expected


@pytest.mark.parametrize(
    ("accept", "single", "multi"),
    [
        ("image/jpeg", False, True),  # several images, single image only
        ('multipart/related; type="image/jpeg"', True, False),  # a thumbnail is one image
        ("image/gif", True, True),
        ("application/dicom", True, True),
        ('multipart/related; type="application/octet-stream"', True, True),
    ],
)
def test_negotiation_refusals(accept: str, single: bool, multi: bool) -> None:
    with pytest.raises(NotAcceptableError):
        negotiate(parse_accept(accept), single_ok=single, multipart_ok=multi)


def test_if_none_match() -> None:
    tag = 'W/"abc"'
    assert not_modified('W/"abc"', tag)
    assert not_modified('"x", "abc"', tag)
    assert not_modified("*", tag)
    assert not not_modified('"abd"', tag)
    assert not not_modified(None, tag)


def test_multipart_body() -> None:
    body = multipart_body([b"one", b"two"], "image/png", "b0")
    assert body == (
        b"--b0\r\nContent-Type: image/png\r\n\r\none\r\n--b0\r\nContent-Type: image/png\r\n\r\ntwo\r\n--b0--\r\n"
    )


def test_palette_colour_through_inline_and_bulk_tables() -> None:

    indexes = np.array([[0, 1, 2, 3, 255], [3, 2, 1, 0, 254]], dtype=np.uint8)
    ramp = (np.arange(256, dtype=np.uint16) * 257).astype("<u2")  # 16-bit entries: i -> i * 257
    red, green, blue = ramp, ramp[::-1].copy(), np.full(256, 65535, dtype="<u2")
    store = Store()
    reference = new_id()
    store.blobs.put(keys.bulk_value(DATASTORE, reference), blue.tobytes())
    dicom = grey_dicom(
        BitsAllocated=8,
        BitsStored=8,
        PhotometricInterpretation="PALETTE COLOR",
        RedPaletteColorLookupTableDescriptor=[256, 0, 16],
        GreenPaletteColorLookupTableDescriptor=[256, 0, 16],
        BluePaletteColorLookupTableDescriptor=[256, 0, 16],
        RedPaletteColorLookupTableData=base64.b64encode(red.tobytes()).decode(),
        GreenPaletteColorLookupTableData=base64.b64encode(green.tobytes()).decode(),
        BluePaletteColorLookupTableData={"BulkDataReference": reference},
    )
    store.add("1", dicom, [indexes])
    image = render_png(store, "1")
    assert image.shape == (2, 5, 3)
    assert image[..., 0].tolist() == indexes.tolist()
    assert image[..., 1].tolist() == (255 - indexes).tolist()
    assert (image[..., 2] == 255).all()
    del dicom["GreenPaletteColorLookupTableData"]
    with pytest.raises(NotAcceptableError, match="Green"):
        render_png(store, "1")
