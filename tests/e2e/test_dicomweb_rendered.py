"""Rendered and thumbnail resources (PS3.18 §10.4.1.1.3, Thumbnail resources) against ``openhi serve``.

One import job (``file://`` input) loads a study of two series: a CT series of three 128x128 slices (stored
values HU + 1000 with Rescale Intercept -1000, Window 40/400 and -600/1500, Instance Numbers in reverse
slice order) and a series of odd instances (a 3-frame 12-bit instance without a window, MONOCHROME1, native
RGB, JPEG baseline YBR_FULL_422 kept as is, an H.264 video and an instance without pixel data). Every
rendered and thumbnail route is read with dicomweb-client and with SigV4-signed requests; PNG answers are
compared pixel for pixel with the window formulas of PS3.3 C.11.2.1.2 / C.11.2.1.3 applied to pydicom's
decoding of the original files, on both backends.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import imagecodecs
import numpy as np
import numpy.typing as npt
import pytest
import requests
from pydicom.dataset import Dataset
from tests.e2e.helpers import wait_for_status
from tests.e2e.import_helpers import run_job
from tests.support import pixel_samples
from tests.support.dicom_corpus import SeriesSpec, ct_dataset, uid
from tests.support.dicomweb import dicomweb_client, dicomweb_url, signed_session
from tests.support.server import ServerProcess

from openhi.codecs import syntaxes as ts

Array = npt.NDArray[Any]
STUDY = uid("render-study")
CT_SERIES = uid("render-study", "ct")
ODD_SERIES = uid("render-study", "odd")
CT_SIZE = 128


def _common(ds: Dataset, series_uid: str, number: int) -> Dataset:
    ds.StudyInstanceUID = STUDY
    ds.SeriesInstanceUID = series_uid
    ds.PatientID = "RENDER-1"
    ds.PatientName = "RENDER^ME"
    ds.StudyDate = "20240501"
    ds.Modality = "OT"
    ds.InstanceNumber = number
    return ds


def _ct_slice(index: int) -> Dataset:
    spec = SeriesSpec(study="render-study", series="ct", slices=3, size=CT_SIZE)
    ds = ct_dataset(spec, index)
    hu = ds.pixel_array.astype(np.int16)
    ds.PixelData = (hu + 1000).astype(np.int16).tobytes()
    ds.RescaleIntercept = -1000
    ds.WindowCenter = [40, -600]
    ds.WindowWidth = [400, 1500]
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = uid("render-study", "ct", index)
    return _common(ds, CT_SERIES, 3 - index)  # Instance Numbers 3, 2, 1: the reverse of the slice order


def _odd(kind: str, syntax: str, number: int, name: str) -> Dataset:
    ds, _ = pixel_samples.make_dataset(syntax, kind)
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = uid("render-study", "odd", name)
    return _common(ds, ODD_SERIES, number)


def corpus() -> dict[str, Dataset]:
    datasets = {f"ct{i}": _ct_slice(i) for i in range(3)}
    datasets["multi"] = _odd("u12x3", ts.EXPLICIT_VR_LITTLE_ENDIAN, 1, "multi")
    mono1 = _odd("u8", ts.EXPLICIT_VR_LITTLE_ENDIAN, 2, "mono1")
    mono1.PhotometricInterpretation = "MONOCHROME1"
    datasets["mono1"] = mono1
    datasets["rgb"] = _odd("rgb8", ts.EXPLICIT_VR_LITTLE_ENDIAN, 3, "rgb")
    datasets["jpeg"] = _odd("rgb8", ts.JPEG_BASELINE_8BIT, 4, "jpeg")
    video = pixel_samples.video_dataset()
    video.SOPInstanceUID = video.file_meta.MediaStorageSOPInstanceUID = uid("render-study", "odd", "video")
    datasets["video"] = _common(video, ODD_SERIES, 5)
    text = _odd("u8", ts.EXPLICIT_VR_LITTLE_ENDIAN, 6, "text")
    for keyword in ("PixelData", "Rows", "Columns", "BitsAllocated", "BitsStored", "HighBit", "SamplesPerPixel"):
        delattr(text, keyword)
    datasets["text"] = text
    return datasets


@pytest.fixture(scope="module")
def originals(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Dataset]]:
    folder = tmp_path_factory.mktemp("render-in")
    datasets = corpus()
    for name, ds in datasets.items():
        ds.save_as(folder / f"{name}.dcm", enforce_file_format=True)
    return folder, datasets


@pytest.fixture(scope="module")
def datastore(
    server: ServerProcess, client: Any, originals: tuple[Path, dict[str, Dataset]], tmp_path_factory: Any
) -> str:
    datastore_id: str = client.create_datastore(datastoreName="rendered")["datastoreId"]
    wait_for_status(client, datastore_id, "ACTIVE")
    output = tmp_path_factory.mktemp("render-out")
    job = run_job(client, datastore_id, f"file://{originals[0]}/", f"file://{output}/")
    assert job["jobStatus"] == "COMPLETED", job
    return datastore_id


@pytest.fixture(scope="module")
def session() -> Iterator[requests.Session]:
    with signed_session() as s:
        yield s


@pytest.fixture(scope="module")
def dicomweb(server: ServerProcess, datastore: str) -> Any:
    return dicomweb_client(server, datastore)


class Urls:
    def __init__(self, base: str, datasets: dict[str, Dataset]) -> None:
        self.base, self.datasets = base, datasets

    def series(self, series: str = CT_SERIES, study: str = STUDY) -> str:
        return f"{self.base}/studies/{study}/series/{series}"

    def instance(self, name: str) -> str:
        ds = self.datasets[name]
        return f"{self.series(ds.SeriesInstanceUID)}/instances/{ds.SOPInstanceUID}"


@pytest.fixture(scope="module")
def urls(server: ServerProcess, datastore: str, originals: tuple[Path, dict[str, Dataset]]) -> Urls:
    return Urls(dicomweb_url(server, datastore), originals[1])


def get(session: requests.Session, url: str, accept: str | None = None, **params: str) -> requests.Response:
    headers = {"Accept": accept} if accept else {}
    return session.get(url, params=params or None, headers=headers, timeout=60)


def png(response: requests.Response) -> Array:
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"] == "image/png"
    image: Array = imagecodecs.png_decode(response.content)
    return image


def jpeg(data: bytes) -> Array:
    assert data[:2] == b"\xff\xd8"
    image: Array = imagecodecs.jpeg8_decode(data)
    return image


def parts(response: requests.Response) -> tuple[str, list[bytes]]:
    """(part media type, part bodies) of a multipart/related answer."""
    content_type = response.headers["Content-Type"]
    assert content_type.startswith("multipart/related"), content_type
    boundary = re.search(r"boundary=\"?([^\";]+)", content_type)
    part_type = re.search(r"type=\"?([^\";]+)", content_type)
    assert boundary is not None
    assert part_type is not None
    bodies = []
    for chunk in response.content.split(b"--" + boundary.group(1).encode())[1:-1]:
        head, _, body = chunk.partition(b"\r\n\r\n")
        assert f"Content-Type: {part_type.group(1)}".encode() in head
        bodies.append(body.removesuffix(b"\r\n"))
    return part_type.group(1), bodies


# Reference rendering (PS3.3 C.11), written independently of the server ------------------------------------------


def linear(x: Array, c: float, w: float) -> Array:
    with np.errstate(divide="ignore", invalid="ignore"):  # w == 1: the ramp is empty
        y = ((x - (c - 0.5)) / (w - 1) + 0.5) * 255
    return np.where(x <= c - 0.5 - (w - 1) / 2, 0, np.where(x > c - 0.5 + (w - 1) / 2, 255, y))


def linear_exact(x: Array, c: float, w: float) -> Array:
    y = ((x - c) / w + 0.5) * 255
    return np.where(x <= c - w / 2, 0, np.where(x > c + w / 2, 255, y))


def sigmoid(x: Array, c: float, w: float) -> Array:
    return 255 / (1 + np.exp(-4 * (x - c) / w))


def to8(levels: Array) -> Array:
    return np.clip(np.floor(levels + 0.5), 0, 255).astype(np.uint8)


def hu(ds: Dataset) -> Array:
    values: Array = ds.pixel_array.astype(np.float64) * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    return values


# Windowing ----------------------------------------------------------------------------------------------------------


def test_instance_window_is_the_default(session: requests.Session, urls: Urls) -> None:
    image = png(get(session, urls.instance("ct0") + "/rendered", "image/png"))
    assert image.shape == (CT_SIZE, CT_SIZE)
    assert np.array_equal(image, to8(linear(hu(urls.datasets["ct0"]), 40, 400)))


@pytest.mark.parametrize(
    ("window", "reference"),
    [
        ("-600,1500,linear", lambda x: linear(x, -600, 1500)),
        ("40,400,linear-exact", lambda x: linear_exact(x, 40, 400)),
        ("300,1200,sigmoid", lambda x: sigmoid(x, 300, 1200)),
        ("0,1", lambda x: linear(x, 0, 1)),
    ],
)
def test_window_parameter(session: requests.Session, urls: Urls, window: str, reference: Any) -> None:
    image = png(get(session, urls.instance("ct1") + "/rendered", "image/png", window=window))
    expected = to8(reference(hu(urls.datasets["ct1"])))
    assert np.abs(image.astype(int) - expected).max() <= (1 if "sigmoid" in window else 0)
    default = png(get(session, urls.instance("ct1") + "/rendered", "image/png"))
    assert not np.array_equal(image, default)  # the parameter changed the output


def test_without_window_the_frame_range_is_used(session: requests.Session, urls: Urls) -> None:
    frames = urls.datasets["multi"].pixel_array.astype(np.float64)
    for number in (1, 2, 3):
        frame = frames[number - 1]
        image = png(get(session, urls.instance("multi") + f"/frames/{number}/rendered", "image/png"))
        low, high = frame.min(), frame.max()
        assert np.array_equal(image, to8(linear_exact(frame, (low + high) / 2, high - low)))


def test_monochrome1_is_inverted(session: requests.Session, urls: Urls) -> None:
    frame = urls.datasets["mono1"].pixel_array.astype(np.float64)
    image = png(get(session, urls.instance("mono1") + "/rendered", "image/png"))
    low, high = frame.min(), frame.max()
    assert np.array_equal(image, to8(255 - linear_exact(frame, (low + high) / 2, high - low)))
    assert image[0, 0] == 255  # the minimum value is white


def test_colour_images(session: requests.Session, urls: Urls) -> None:
    rgb = urls.datasets["rgb"].pixel_array
    image = png(get(session, urls.instance("rgb") + "/rendered", "image/png", window="10,20"))
    assert np.array_equal(image, rgb)  # window= is ignored for colour
    original = urls.datasets["jpeg"].pixel_array  # pydicom converts YBR_FULL_422 JPEG to RGB
    image = png(get(session, urls.instance("jpeg") + "/rendered", "image/png"))
    assert image.shape == original.shape
    assert np.abs(image.astype(int) - original.astype(int)).mean() < 2


# Media types, viewports, multi-frame and series -----------------------------------------------------------------------


def test_dicomweb_client_instance_rendered(dicomweb: Any, urls: Urls) -> None:
    ct0 = urls.datasets["ct0"]
    data = dicomweb.retrieve_instance_rendered(STUDY, CT_SERIES, ct0.SOPInstanceUID)
    image = jpeg(data)
    assert image.shape == (CT_SIZE, CT_SIZE)
    expected = to8(linear(hu(ct0), 40, 400)).astype(int)
    assert np.abs(image.astype(int) - expected).mean() < 3
    data = dicomweb.retrieve_instance_rendered(
        STUDY, CT_SERIES, ct0.SOPInstanceUID, media_types=("image/png",), params={"viewport": "64,64"}
    )
    assert imagecodecs.png_decode(data).shape == (64, 64)
    low, high = (
        dicomweb.retrieve_instance_rendered(
            STUDY, CT_SERIES, ct0.SOPInstanceUID, media_types=("image/jpeg",), params={"quality": quality}
        )
        for quality in ("5", "95")
    )
    assert jpeg(low).shape == jpeg(high).shape == (CT_SIZE, CT_SIZE)
    assert len(low) < len(high)


def test_viewport(session: requests.Session, urls: Urls) -> None:
    url = urls.instance("ct2") + "/rendered"
    full = png(get(session, url, "image/png"))
    assert png(get(session, url, "image/png", viewport="64,32")).shape == (32, 32)
    assert png(get(session, url, "image/png", viewport="256,256")).shape == (256, 256)
    region = png(get(session, url, "image/png", viewport="32,32,16,8,32,32"))
    assert np.array_equal(region, full[8:40, 16:48])
    flipped = png(get(session, url, "image/png", viewport="32,32,16,8,-32,32"))
    assert np.array_equal(flipped, full[8:40, 16:48][:, ::-1])
    half = png(get(session, url, "image/png", viewport="64,64"))
    blocks = full.astype(np.float64).reshape(64, 2, 64, 2)
    assert np.abs(half.astype(int) - blocks.mean(axis=(1, 3))).max() <= 1  # area averaging


def test_multi_frame_instance(session: requests.Session, urls: Urls, dicomweb: Any) -> None:
    url = urls.instance("multi")
    first = png(get(session, url + "/frames/1/rendered", "image/png"))
    assert np.array_equal(png(get(session, url + "/rendered", "image/png")), first)  # single image: frame 1
    part_type, bodies = parts(get(session, url + "/rendered", 'multipart/related; type="image/png"'))
    assert part_type == "image/png"
    assert len(bodies) == 3
    frames = [png(get(session, url + f"/frames/{n}/rendered", "image/png")) for n in (1, 2, 3)]
    for body, frame in zip(bodies, frames, strict=True):
        assert np.array_equal(imagecodecs.png_decode(body), frame)
    response = get(session, url + "/frames/3,1/rendered", 'multipart/related; type="image/png"')
    assert [imagecodecs.png_decode(b).tolist() for b in parts(response)[1]] == [frames[2].tolist(), frames[0].tolist()]
    raw = dicomweb.retrieve_instance_frames_rendered(STUDY, ODD_SERIES, urls.datasets["multi"].SOPInstanceUID, [2])
    assert jpeg(raw).shape == frames[1].shape
    assert get(session, url + "/frames/1,2/rendered", "image/jpeg").status_code == 406


def test_series_rendered(session: requests.Session, urls: Urls, dicomweb: Any) -> None:
    part_type, bodies = parts(get(session, urls.series() + "/rendered", 'multipart/related; type="image/png"'))
    assert part_type == "image/png"
    expected = [to8(linear(hu(urls.datasets[f"ct{i}"]), 40, 400)) for i in (2, 1, 0)]  # Instance Number order
    for body, image in zip(bodies, expected, strict=True):
        assert np.array_equal(imagecodecs.png_decode(body), image)
    raw = dicomweb.retrieve_series_rendered(STUDY, CT_SERIES)  # Accept */*: multipart of JPEG
    assert raw.count(b"Content-Type: image/jpeg") == 3
    odd = get(session, urls.series(ODD_SERIES) + "/rendered")
    assert parts(odd)[0] == "image/jpeg"
    assert len(parts(odd)[1]) == 4  # multi, mono1, rgb, jpeg: the video cannot be rendered, the text has no pixels
    assert get(session, urls.series() + "/rendered", "image/jpeg").status_code == 406


def test_thumbnails(session: requests.Session, urls: Urls) -> None:
    instance = get(session, urls.instance("ct0") + "/thumbnail")
    assert instance.status_code == 200
    assert instance.headers["Content-Type"] == "image/jpeg"
    assert jpeg(instance.content).shape == (CT_SIZE, CT_SIZE)  # 128x128 already fits
    small = png(get(session, urls.instance("ct0") + "/thumbnail", "image/png", viewport="32,32"))
    assert small.shape == (32, 32)
    # The series thumbnail is the middle instance by Instance Number (ct1, number 2).
    series = png(get(session, urls.series() + "/thumbnail", "image/png"))
    assert np.array_equal(series, png(get(session, urls.instance("ct1") + "/rendered", "image/png")))
    middle = png(get(session, urls.instance("multi") + "/thumbnail", "image/png"))
    frame2 = png(get(session, urls.instance("multi") + "/frames/2/rendered", "image/png", viewport="128,128"))
    assert middle.shape == (95, 128)  # 50x37 enlarged to fit 128x128 (37 * 128 / 50 = 94.7)
    assert np.array_equal(middle, frame2)
    listed = png(get(session, urls.instance("multi") + "/frames/3/thumbnail", "image/png", viewport="50,37"))
    assert np.array_equal(listed, png(get(session, urls.instance("multi") + "/frames/3/rendered", "image/png")))
    assert get(session, urls.instance("ct0") + "/thumbnail", 'multipart/related; type="image/jpeg"').status_code == 406


def test_accept_query_parameter_and_head(session: requests.Session, urls: Urls) -> None:
    url = urls.instance("ct0") + "/thumbnail"
    # PS3.18 §8.3.3.1: the accept query parameter takes the place of the header.
    by_query = session.get(url, params={"accept": "image/png"}, headers={"Accept": "image/jpeg"}, timeout=60)
    assert png(by_query).shape == (CT_SIZE, CT_SIZE)
    head = session.head(url, headers={"Accept": "image/png"}, timeout=60)
    assert head.status_code == 200
    assert head.headers["Content-Type"] == "image/png"
    assert head.content == b""


# Caching headers ------------------------------------------------------------------------------------------------------


def test_etag_cache_control_and_corp(session: requests.Session, urls: Urls) -> None:
    url = urls.instance("ct0") + "/rendered"
    response = get(session, url, "image/png")
    etag = response.headers["ETag"]
    assert response.headers["Cache-Control"] == "private, no-cache"
    assert response.headers["Cross-Origin-Resource-Policy"] == "cross-origin"
    assert "Accept" in response.headers["Vary"]
    again = session.get(url, headers={"Accept": "image/png", "If-None-Match": etag}, timeout=60)
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["ETag"] == etag
    windowed = get(session, url, "image/png", window="0,100")
    assert windowed.headers["ETag"] != etag
    assert get(session, url, "image/jpeg").headers["ETag"] != etag
    changed = session.get(url, headers={"Accept": "image/png", "If-None-Match": '"other"'}, timeout=60)
    assert changed.status_code == 200


# Errors -------------------------------------------------------------------------------------------------------------


def error(response: requests.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["Content-Type"].startswith("application/json")
    body: dict[str, Any] = json.loads(response.content)
    assert set(body) == {"__type", "message"}
    return body


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("window", "40"),
        ("window", "40,0,linear"),
        ("window", "40,400,gamma"),
        ("viewport", "0,10"),
        ("viewport", "abc"),
        ("viewport", "10,10,500,0"),
        ("quality", "0"),
        ("quality", "best"),
    ],
)
def test_bad_parameters_are_400(session: requests.Session, urls: Urls, name: str, value: str) -> None:
    body = error(get(session, urls.instance("ct0") + "/rendered", **{name: value}), 400)
    assert name in body["message"]


def test_unknown_resources_are_404(session: requests.Session, urls: Urls) -> None:
    unknown = uid("nothing")
    error(get(session, urls.series(study=unknown) + "/rendered"), 404)
    error(get(session, urls.series(unknown) + "/thumbnail"), 404)
    error(get(session, f"{urls.series()}/instances/{unknown}/rendered"), 404)
    error(get(session, urls.instance("ct0") + "/frames/2/rendered"), 404)
    error(get(session, urls.instance("multi") + "/frames/1,4/thumbnail"), 404)
    error(get(session, urls.instance("text") + "/frames/1/rendered"), 404)
    assert "frames" in error(get(session, urls.instance("ct0") + "/frames/0/rendered"), 400)["message"]


def test_unrenderable_is_406(session: requests.Session, urls: Urls) -> None:
    assert "cannot be rendered" in error(get(session, urls.instance("video") + "/rendered"), 406)["message"]
    error(get(session, urls.instance("video") + "/thumbnail"), 406)
    error(get(session, urls.instance("text") + "/rendered"), 406)
    error(get(session, urls.instance("ct0") + "/rendered", "image/gif"), 406)
    error(get(session, urls.instance("ct0") + "/rendered", "application/dicom"), 406)
