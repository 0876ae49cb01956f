"""Generated phantoms in every syntax the stack can encode, through ``prepare_frame`` to both targets.

Lossless inputs must come back bit-exactly (equal to the source frames, and to pydicom's ``pixel_array``
wherever pydicom 3.0 can decode the syntax); lossy inputs that are transcoded must come back exactly as
decoded from the input; kept-as-is syntaxes must keep their bytes.
"""

from __future__ import annotations

import imagecodecs
import numpy as np
import pytest
from pydicom.pixels import pixel_array
from tests.support.pixel_samples import ROWS, cases, make_dataset, video_dataset

from openhi.codecs import decode as decode_module
from openhi.codecs import syntaxes as ts
from openhi.codecs.checksum import ChecksumLevel, bytes_crc32, frame_crc32
from openhi.codecs.codestream import parse_codestream
from openhi.codecs.decode import decode_frame, decoded_photometric_interpretation
from openhi.codecs.frames import iter_frame_payloads
from openhi.codecs.pixels import PixelFormat
from openhi.codecs.store import decode_stored_frame, prepare_frame
from openhi.datastores.model import LosslessStorageFormat

#: Syntaxes pydicom 3.0.2 has no decoder for (imagecodecs decodes them).
NO_PYDICOM_DECODER = {ts.JPEG_2000_MC_LOSSLESS, ts.JPEG_2000_MC, ts.JPEG_XL_LOSSLESS, ts.JPEG_XL}
#: Minimum PSNR of a lossy input against the source phantom.
LOSSY_PSNR = 28.0


def _psnr(a: np.ndarray, b: np.ndarray, bits: int) -> float:
    error = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if error == 0 else float(10 * np.log10(((1 << bits) - 1) ** 2 / error))


@pytest.mark.parametrize(
    ("syntax", "kind"),
    cases(),
    ids=[f"{s.rsplit('.', 2)[-2]}.{s.rsplit('.', 1)[-1]}-{k}" for s, k in cases()],
)
def test_sample_through_prepare_frame(syntax: str, kind: str) -> None:
    ds, source = make_dataset(syntax, kind)
    fmt = PixelFormat.from_dataset(ds)
    payloads = list(iter_frame_payloads(ds))
    assert len(payloads) == len(source) == fmt.number_of_frames
    row = ts.lookup(syntax)
    assert row is not None
    for index, payload in enumerate(payloads):
        reference = None if syntax in NO_PYDICOM_DECODER else pixel_array(ds, index=index, as_rgb=False)
        for target in LosslessStorageFormat:
            prepared = prepare_frame(payload, syntax, fmt, target)
            assert prepared.warning is None
            stored = decode_stored_frame(prepared.data, prepared.stored_transfer_syntax, fmt)
            assert stored.shape == fmt.shape
            assert stored.dtype == fmt.dtype
            if ts.kept_as_is(syntax, fmt.bits_allocated):
                assert prepared.data == payload
                assert prepared.stored_transfer_syntax == syntax
                assert [(c.width, c.height) for c in prepared.checksums] == [(fmt.columns, fmt.rows)]
                assert prepared.checksums[0].checksum == bytes_crc32(payload)
                assert prepared.min_pixel_value is None
                assert prepared.frame_size_in_bytes == len(payload)
                assert _psnr(stored, source[index], fmt.bits_stored) > LOSSY_PSNR
                continue
            decoded = decode_frame(payload, syntax, fmt)
            assert np.array_equal(stored, decoded)
            assert prepared.checksums[-1].checksum == frame_crc32(decoded)
            _check_levels(prepared.checksums, fmt.columns, fmt.rows)
            assert prepared.min_pixel_value == int(decoded.min())
            assert prepared.max_pixel_value == int(decoded.max())
            assert prepared.frame_size_in_bytes == decoded.nbytes
            if row.lossless:
                assert np.array_equal(stored, source[index]), "lossless input must survive bit-exactly"
                assert prepared.min_pixel_value == int(source[index].min())
            else:
                assert _psnr(stored, source[index], fmt.bits_stored) > LOSSY_PSNR
            if reference is not None:
                if row.lossless:
                    assert np.array_equal(stored, reference)
                else:
                    assert np.abs(stored.astype(np.int64) - reference.astype(np.int64)).max() <= 2


def _check_levels(checksums: list[ChecksumLevel], columns: int, rows: int) -> None:
    """Base resolution (<= 64 px) first, full resolution last; level k is ceil(size / 2**k)."""
    sizes = [(c.width, c.height) for c in checksums]
    count = len(sizes)
    assert sizes == [(-(-columns // 2**k), -(-rows // 2**k)) for k in range(count - 1, -1, -1)]
    assert max(sizes[0]) <= 64


def test_colour_frames_record_the_stored_photometric_interpretation() -> None:
    ds, _ = make_dataset(ts.EXPLICIT_VR_LITTLE_ENDIAN, "rgb8")
    fmt = PixelFormat.from_dataset(ds)
    payload = next(iter_frame_payloads(ds))
    prepared = prepare_frame(payload, ts.EXPLICIT_VR_LITTLE_ENDIAN, fmt, LosslessStorageFormat.HTJ2K)
    assert prepared.photometric_interpretation == "YBR_RCT"
    assert parse_codestream(prepared.data).multiple_component_transform
    grey, _ = make_dataset(ts.EXPLICIT_VR_LITTLE_ENDIAN, "s16")
    grey_fmt = PixelFormat.from_dataset(grey)
    prepared = prepare_frame(
        next(iter_frame_payloads(grey)), ts.EXPLICIT_VR_LITTLE_ENDIAN, grey_fmt, LosslessStorageFormat.HTJ2K
    )
    assert prepared.photometric_interpretation == "MONOCHROME2"
    assert decoded_photometric_interpretation(ts.JPEG_2000_LOSSLESS, fmt) == "RGB"


def test_ybr_full_422_native_is_upsampled_and_stored_without_colour_transform() -> None:
    ds, _ = make_dataset(ts.EXPLICIT_VR_LITTLE_ENDIAN, "rgb8")
    frame = pixel_array(ds)
    ds.PhotometricInterpretation = "YBR_FULL_422"
    pairs = frame.reshape(ROWS, -1, 2, 3)  # (rows, columns / 2, 2, samples)
    packed = np.concatenate([pairs[:, :, 0, :1], pairs[:, :, 1, :1], pairs[:, :, 0, 1:]], axis=-1)
    ds.PixelData = packed.tobytes()
    fmt = PixelFormat.from_dataset(ds)
    payload = next(iter_frame_payloads(ds))
    assert len(payload) == fmt.frame_bytes
    for target in LosslessStorageFormat:
        prepared = prepare_frame(payload, ts.EXPLICIT_VR_LITTLE_ENDIAN, fmt, target)
        assert prepared.photometric_interpretation == "YBR_FULL"
        assert not parse_codestream(prepared.data).multiple_component_transform
        stored = decode_stored_frame(prepared.data, prepared.stored_transfer_syntax, fmt)
        assert np.array_equal(stored, pixel_array(ds, as_rgb=False))


def test_video_is_kept_with_one_checksum_over_the_stream() -> None:
    ds = video_dataset()
    fmt = PixelFormat.from_dataset(ds)
    (payload,) = iter_frame_payloads(ds)
    prepared = prepare_frame(payload, ds.file_meta.TransferSyntaxUID, fmt, LosslessStorageFormat.HTJ2K)
    assert prepared.data == payload
    assert prepared.warning is None
    assert [(c.width, c.height, c.checksum) for c in prepared.checksums] == [(16, 16, bytes_crc32(payload))]
    assert prepared.frame_size_in_bytes == len(payload)


def test_every_sample_decodes_without_the_pydicom_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    """imagecodecs (GIL released) must serve every generated syntax; pydicom is only a fallback."""

    def refuse(*args: object, **kwargs: object) -> np.ndarray:
        raise AssertionError("pydicom fallback used")

    monkeypatch.setattr(decode_module, "_decode_with_pydicom", refuse)
    for syntax, kind in cases():
        row = ts.lookup(syntax)
        assert row is not None
        ds, _ = make_dataset(syntax, kind)
        fmt = PixelFormat.from_dataset(ds)
        for payload in iter_frame_payloads(ds):
            assert decode_frame(payload, syntax, fmt).shape == fmt.shape


@pytest.mark.parametrize(
    ("syntax", "kind"),
    [
        (ts.JPEG_2000_LOSSLESS, "s12"),
        (ts.JPEG_LS_LOSSLESS, "s16"),
        (ts.RLE_LOSSLESS, "rgb8"),
        (ts.JPEG_LOSSLESS_SV1, "u12"),
    ],
)
def test_pydicom_fallback_decodes_when_imagecodecs_fails(
    syntax: str, kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object, **kwargs: object) -> np.ndarray:
        raise RuntimeError("decoder unavailable")

    for name in ("jpeg2k_decode", "jpegls_decode", "dicomrle_decode", "ljpeg_decode", "jpegsof3_decode"):
        monkeypatch.setattr(imagecodecs, name, broken)
    ds, source = make_dataset(syntax, kind)
    fmt = PixelFormat.from_dataset(ds)
    payload = next(iter_frame_payloads(ds))
    assert np.array_equal(decode_frame(payload, syntax, fmt), source[0])
