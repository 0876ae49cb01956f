"""Pure rendering math: VOI windows (PS3.3 C.11.2.1.2 / C.11.2.1.3), Modality LUT, MONOCHROME1, colour,
query parameters (PS3.18 §8.3.5.1), viewport geometry, area resampling and JPEG / PNG encoding."""

from __future__ import annotations

import math

import imagecodecs
import numpy as np
import pytest

from openhi.dicomweb.render_image import Geometry, ImageType, crop, encode, plan_geometry, resample, to_uint8
from openhi.dicomweb.render_params import (
    DEFAULT_QUALITY,
    Viewport,
    parse_frame_list,
    parse_options,
    parse_quality,
    parse_viewport,
    parse_window,
)
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
from openhi.errors import ValidationError


def window_at(x: float, center: float, width: float, function: VoiFunction) -> float:
    return float(apply_window(np.array([x], dtype=np.float64), Window(center, width, function))[0])


# VOI windows -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("x", "expected"),
    [
        (-1000.0, 0.0),
        (-160.0, 0.0),  # x <= c - 0.5 - (w - 1) / 2
        (-159.0, ((-159 - 39.5) / 399 + 0.5) * 255),
        (40.0, ((40 - 39.5) / 399 + 0.5) * 255),
        (239.0, ((239 - 39.5) / 399 + 0.5) * 255),  # still on the ramp: x == c - 0.5 + (w - 1) / 2
        (239.5, 255.0),
        (3000.0, 255.0),
    ],
)
def test_linear_window_follows_c_11_2_1_2_1(x: float, expected: float) -> None:
    assert window_at(x, 40, 400, VoiFunction.LINEAR) == pytest.approx(expected)


def test_linear_window_of_width_one_is_a_threshold() -> None:
    assert window_at(9.5, 10, 1, VoiFunction.LINEAR) == 0
    assert window_at(9.6, 10, 1, VoiFunction.LINEAR) == 255


@pytest.mark.parametrize(
    ("x", "expected"),
    [(-160.0, 0.0), (-159.0, (1 / 400) * 255), (140.0, 0.75 * 255), (240.0, 255.0), (240.5, 255.0)],
)
def test_linear_exact_window_follows_c_11_2_1_3_2(x: float, expected: float) -> None:
    assert window_at(x, 40, 400, VoiFunction.LINEAR_EXACT) == pytest.approx(expected)


@pytest.mark.parametrize("x", [-500.0, -60.0, 40.0, 140.0, 900.0])
def test_sigmoid_window_follows_c_11_2_1_3_1(x: float) -> None:
    expected = 255 / (1 + math.exp(-4 * (x - 40) / 400))
    assert window_at(x, 40, 400, VoiFunction.SIGMOID) == pytest.approx(expected)
    assert window_at(40, 40, 400, VoiFunction.SIGMOID) == pytest.approx(127.5)


def test_window_validity() -> None:
    assert Window(0, 0.5, VoiFunction.LINEAR).problem() is not None
    assert Window(0, 0.5, VoiFunction.LINEAR_EXACT).problem() is None
    assert Window(0, 0, VoiFunction.SIGMOID).problem() is not None
    assert Window(math.nan, 10).problem() is not None


def test_covering_window_maps_the_range_to_black_and_white() -> None:
    window = Window.covering(-1024, 3071)
    values = apply_window(np.array([-1024.0, 1023.5, 3071.0]), window)
    assert values.tolist() == pytest.approx([0.0, 127.5, 255.0])
    flat = apply_window(np.array([7.0]), Window.covering(7, 7))  # a constant frame stays defined
    assert np.isfinite(flat).all()


def test_voi_function_names() -> None:
    assert VoiFunction.parse("LINEAR_EXACT") is VoiFunction.LINEAR_EXACT
    assert VoiFunction.parse("Sigmoid") is VoiFunction.SIGMOID
    assert VoiFunction.parse("gamma") is None


# Modality LUT, MONOCHROME1, colour ----------------------------------------------------------------------------


def test_rescale_slope_and_intercept() -> None:
    stored = np.array([0, 1024, 4095], dtype=np.uint16)
    assert rescale(stored, 1.0, -1024.0).tolist() == [-1024.0, 0.0, 3071.0]
    assert rescale(stored, 0.5, 10.0).tolist() == [10.0, 522.0, 2057.5]
    assert rescale(np.array([-5], dtype=np.int16), 1.0, 0.0).tolist() == [-5.0]


def test_monochrome1_inverts() -> None:
    assert invert(np.array([0.0, 100.0, 255.0])).tolist() == [255.0, 155.0, 0.0]


def test_ybr_full_to_rgb() -> None:
    grey = ybr_full_to_rgb(np.array([[[128, 128, 128]]], dtype=np.uint8), 8)
    assert grey[0, 0].tolist() == pytest.approx([128, 128, 128])
    # Pure red encoded with the BT.601 full-range equations of C.7.6.3.1.2.
    y = 0.299 * 255
    cb = -0.168736 * 255 + 128
    cr = 0.5 * 255 + 128
    red = ybr_full_to_rgb(np.array([[[y, cb, cr]]]), 8)
    assert red[0, 0].tolist() == pytest.approx([255, 0, 0], abs=0.6)


def test_colour_to_8bit_scales_deep_samples() -> None:
    assert colour_to_8bit(np.array([0, 4095], dtype=np.uint16), 12).tolist() == pytest.approx([0, 255])
    assert colour_to_8bit(np.array([3, 200], dtype=np.uint8), 8).tolist() == [3, 200]


def test_palette_lookup() -> None:
    red = np.array([0, 65535, 32768], dtype=np.uint16)
    green = np.array([65535, 0, 0], dtype=np.uint16)
    blue = np.array([0, 0, 65535], dtype=np.uint16)
    tables = [([3, 10, 16], red), ([3, 10, 16], green), ([3, 10, 16], blue)]
    rgb = apply_palette(np.array([[9, 10, 11, 12, 99]], dtype=np.uint16), tables)
    assert to_uint8(rgb)[0].tolist() == [[0, 255, 0], [0, 255, 0], [255, 0, 0], [128, 0, 255], [128, 0, 255]]


# Query parameters ---------------------------------------------------------------------------------------------


def test_parse_window() -> None:
    assert parse_window("40,400,linear") == Window(40, 400, VoiFunction.LINEAR)
    assert parse_window("-600,1500") == Window(-600, 1500, VoiFunction.LINEAR)
    assert parse_window("0.5,0.25,LINEAR-EXACT") == Window(0.5, 0.25, VoiFunction.LINEAR_EXACT)
    assert parse_window("1,2,sigmoid").function is VoiFunction.SIGMOID


@pytest.mark.parametrize("raw", ["40", "40,400,gamma", "a,400", "40,0", "40,0.5,linear", "1,2,3,4", "nan,4", ""])
def test_bad_window_names_the_parameter(raw: str) -> None:
    with pytest.raises(ValidationError, match="'window'"):
        parse_window(raw)


def test_parse_viewport() -> None:
    assert parse_viewport("128,64") == Viewport(128, 64)
    assert parse_viewport(",64") == Viewport(None, 64)
    assert parse_viewport("100,100,10,20,30,-40") == Viewport(100, 100, 10, 20, 30, -40)
    assert parse_viewport("100,100,10,20") == Viewport(100, 100, 10, 20)
    assert parse_viewport("100,100,,,50,") == Viewport(100, 100, 0, 0, 50, None)


@pytest.mark.parametrize("raw", ["128", ",", "0,10", "10,-1", "9999,10", "a,b", "10,10,-1,0", "10,10,0,0,0,5", "1,2,3"])
def test_bad_viewport_names_the_parameter(raw: str) -> None:
    with pytest.raises(ValidationError, match="'viewport'"):
        parse_viewport(raw)


def test_parse_quality() -> None:
    assert parse_quality("1") == 1
    assert parse_quality("100") == 100
    for raw in ("0", "101", "high", "50.5", ""):
        with pytest.raises(ValidationError, match="'quality'"):
            parse_quality(raw)


def test_parse_options_defaults_and_ignored_parameters() -> None:
    given = {"annotation": "patient,technique", "charset": "UTF-8", "iccprofile": "no"}
    options = parse_options(given.get)
    assert options.window is None
    assert options.viewport is None
    assert options.quality == DEFAULT_QUALITY
    with pytest.raises(ValidationError, match="'iccprofile'"):
        parse_options({"iccprofile": "cmyk"}.get)


def test_parse_frame_list() -> None:
    assert parse_frame_list("1") == [1]
    assert parse_frame_list("3,1,2") == [3, 1, 2]
    for raw in ("0", "1,,2", "a", "-1", "1.5"):
        with pytest.raises(ValidationError, match="'frames'"):
            parse_frame_list(raw)


# Geometry and resampling --------------------------------------------------------------------------------------


def size(geometry: Geometry) -> tuple[int, int]:
    return geometry.out_width, geometry.out_height


def test_geometry_keeps_the_aspect_ratio() -> None:
    assert size(plan_geometry(512, 256, None)) == (512, 256)
    assert size(plan_geometry(512, 256, Viewport(128, 128))) == (128, 64)
    assert size(plan_geometry(512, 256, Viewport(None, 64))) == (128, 64)
    assert size(plan_geometry(512, 256, Viewport(64, None))) == (64, 32)
    assert size(plan_geometry(50, 37, Viewport(100, 100))) == (100, 74)  # enlarged to fit


def test_geometry_source_region_and_flips() -> None:
    pixels = np.arange(6 * 8).reshape(6, 8)
    geometry = plan_geometry(8, 6, Viewport(4, 4, 2, 1, 4, -2))
    assert (geometry.out_width, geometry.out_height) == (4, 2)
    region = crop(pixels, geometry)
    assert region.tolist() == [pixels[2, 2:6].tolist(), pixels[1, 2:6].tolist()]
    clipped = plan_geometry(8, 6, Viewport(100, 100, 6, 0, 50, None))  # region clipped at the right edge
    assert (clipped.x0, clipped.x1, clipped.y1) == (6, 8, 6)
    with pytest.raises(ValidationError, match="'viewport'"):
        plan_geometry(8, 6, Viewport(4, 4, 8, 0))


def test_area_resampling() -> None:
    image = np.arange(16, dtype=np.float64).reshape(4, 4)
    assert resample(image, 2, 2).tolist() == [[2.5, 4.5], [10.5, 12.5]]
    assert resample(np.array([[0.0, 3.0, 6.0]]), 2, 1)[0].tolist() == pytest.approx([1.0, 5.0])
    constant = np.full((2, 3, 3), 7.0)
    assert np.allclose(resample(constant, 7, 5), 7.0)
    assert resample(constant, 7, 5).shape == (5, 7, 3)
    assert resample(image, 4, 4) is image


def test_to_uint8_rounds_and_clips() -> None:
    assert to_uint8(np.array([-3.0, 0.49, 0.5, 127.5, 254.6, 300.0])).tolist() == [0, 0, 1, 128, 255, 255]


# Encoding -------------------------------------------------------------------------------------------------------


def test_png_is_lossless() -> None:
    grey = (np.arange(37 * 50) % 256).astype(np.uint8).reshape(37, 50)
    assert np.array_equal(imagecodecs.png_decode(encode(grey, ImageType.PNG, 90)), grey)
    rgb = np.stack([grey, 255 - grey, grey // 2], axis=-1)
    assert np.array_equal(imagecodecs.png_decode(encode(rgb, ImageType.PNG, 10)), rgb)


def test_jpeg_quality_changes_size_and_keeps_dimensions() -> None:
    y, x = np.mgrid[0:64, 0:80]
    grey = ((np.sin(x / 3) * np.cos(y / 5) + 1) * 127).astype(np.uint8)
    small, large = encode(grey, ImageType.JPEG, 10), encode(grey, ImageType.JPEG, 95)
    assert small[:2] == b"\xff\xd8"
    assert len(small) < len(large)
    decoded = imagecodecs.jpeg8_decode(large)
    assert decoded.shape == (64, 80)
    assert np.abs(decoded.astype(int) - grey).mean() < 2


def test_area_resampling_matches_the_dense_definition() -> None:
    """Every output sample is the overlap-weighted mean of the inputs its interval covers (any ratio)."""

    def weights(n: int, size: int) -> np.ndarray:
        edges = np.linspace(0, n, size + 1)
        j = np.arange(n)
        overlap = np.minimum(edges[1:, None], j + 1) - np.maximum(edges[:-1, None], j)
        return np.clip(overlap, 0, None) / (n / size)

    image = np.random.default_rng(1).random((37, 50, 3))
    for height, width in ((5, 7), (36, 51), (80, 100), (200, 13), (1, 1)):
        expected = np.einsum("kj,ijc->ikc", weights(50, width), np.einsum("ij,jkc->ikc", weights(37, height), image))
        assert np.allclose(resample(image, width, height), expected, rtol=0, atol=1e-12)
