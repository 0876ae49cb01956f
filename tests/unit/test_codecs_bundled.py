"""Every pydicom bundled test file with Pixel Data goes through the import path, both storage formats.

Only files shipped inside the pydicom wheel are used (``get_testdata_files()`` never downloads). Lossless
inputs must decode, after storage, to exactly pydicom's ``pixel_array`` of the original frame; kept-as-is
syntaxes must keep their bytes; a handful of deliberately broken files must fail with the right error.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_files
from pydicom.pixels import pixel_array

from openhi.codecs.checksum import bytes_crc32
from openhi.codecs.decode import decode_frame
from openhi.codecs.errors import CodecError, FrameDecodeError, FrameExtractionError
from openhi.codecs.frames import iter_frame_payloads, transfer_syntax_of
from openhi.codecs.pixels import PixelFormat
from openhi.codecs.store import PreparedFrame, decode_stored_frame, prepare_frame
from openhi.codecs.syntaxes import kept_as_is, lookup
from openhi.datastores.model import LosslessStorageFormat


def _pixel_files() -> list[str]:
    found = []
    for path in sorted(get_testdata_files()):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ds = pydicom.dcmread(path, defer_size=1024)
        except (OSError, pydicom.errors.InvalidDicomError):  # json, dumps, icc profiles, no preamble
            continue
        if "PixelData" in ds:
            found.append(path)
    return found


PIXEL_FILES = _pixel_files()

#: Deliberately broken files of pydicom's test suite and the error each one must raise.
EXPECTED_ERRORS: dict[str, type[CodecError]] = {
    "MR_truncated.dcm": FrameExtractionError,  # 8130 of 8192 pixel bytes
    "badVR.dcm": CodecError,  # Number of Frames "1A"
    "meta_missing_tsyntax.dcm": FrameExtractionError,  # no Transfer Syntax UID
    "nested_priv_SQ.dcm": CodecError,  # Pixel Data without an Image Pixel module
}
#: Lossy inputs that pydicom's plugins cannot decode (imagecodecs can, so they are still transcoded).
NO_PYDICOM_REFERENCE = {"JPEG-lossy.dcm"}
#: Corrupt kept-as-is codestreams: stored untouched, but no decoder can read them back.
UNDECODABLE_KEPT = {"JPEG2000-embedded-sequence-delimiter.dcm"}
#: Lossy JPEG decoders may differ by an IDCT rounding step.
LOSSY_TOLERANCE = 2


def _read(path: str) -> pydicom.Dataset:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pydicom.dcmread(path)


def test_the_bundled_corpus_is_there() -> None:
    assert len(PIXEL_FILES) >= 80
    assert set(EXPECTED_ERRORS) <= {Path(p).name for p in PIXEL_FILES}


@pytest.mark.filterwarnings("ignore::UserWarning")  # pydicom warns about the corpus' padding and bad VRs
@pytest.mark.parametrize("path", PIXEL_FILES, ids=lambda p: os.path.relpath(p, Path(p).parents[1]))
def test_bundled_file_through_prepare_frame(path: str) -> None:
    name = Path(path).name
    ds = _read(path)
    if name in EXPECTED_ERRORS:
        with pytest.raises(EXPECTED_ERRORS[name]):
            iter_frame_payloads(ds)  # validates the transfer syntax and the Image Pixel module first
        return
    syntax = transfer_syntax_of(ds)
    fmt = PixelFormat.from_dataset(ds)
    payloads = list(iter_frame_payloads(ds))
    assert len(payloads) == fmt.number_of_frames
    for index, payload in enumerate(payloads):
        for target in LosslessStorageFormat:
            prepared = prepare_frame(payload, syntax, fmt, target)
            if kept_as_is(syntax, fmt.bits_allocated):
                _check_kept(prepared, payload, syntax, fmt, ds, index, name)
            else:
                _check_transcoded(prepared, payload, syntax, fmt, ds, index, name, target)


def _check_kept(
    prepared: PreparedFrame,
    payload: bytes,
    syntax: str,
    fmt: PixelFormat,
    ds: pydicom.Dataset,
    index: int,
    name: str,
) -> None:
    assert prepared.data == payload
    assert prepared.stored_transfer_syntax == syntax
    assert [(c.width, c.height, c.checksum) for c in prepared.checksums] == [
        (fmt.columns, fmt.rows, bytes_crc32(payload))
    ]
    assert (prepared.min_pixel_value, prepared.max_pixel_value, prepared.warning) == (None, None, None)
    assert prepared.frame_size_in_bytes == len(payload)
    if name in UNDECODABLE_KEPT:
        with pytest.raises(FrameDecodeError):
            decode_stored_frame(prepared.data, prepared.stored_transfer_syntax, fmt)
        return
    decoded = decode_stored_frame(prepared.data, prepared.stored_transfer_syntax, fmt)
    reference = pixel_array(ds, index=index)  # as_rgb: lossy YBR is compared in RGB
    assert decoded.shape == reference.shape
    assert _psnr(decoded, reference, fmt.bits_stored) > 50


def _check_transcoded(
    prepared: PreparedFrame,
    payload: bytes,
    syntax: str,
    fmt: PixelFormat,
    ds: pydicom.Dataset,
    index: int,
    name: str,
    target: LosslessStorageFormat,
) -> None:
    if prepared.warning is not None:
        # OpenJPEG codes at most 25 bits losslessly: full-range 32-bit RGB cannot be stored as .4.90.
        assert name.startswith("SC_rgb_rle_32bit")
        assert target is LosslessStorageFormat.JPEG_2000_LOSSLESS
        assert prepared.warning == 0xB100
        assert prepared.data == payload
        return
    expected_syntax = "1.2.840.10008.1.2.4.202" if target is LosslessStorageFormat.HTJ2K else "1.2.840.10008.1.2.4.90"
    assert prepared.stored_transfer_syntax == expected_syntax
    stored = decode_stored_frame(prepared.data, prepared.stored_transfer_syntax, fmt)
    original = decode_frame(payload, syntax, fmt)
    assert np.array_equal(stored, original)
    assert stored.dtype == fmt.dtype
    assert prepared.checksums[-1].checksum == bytes_crc32(np.ascontiguousarray(original).tobytes())
    assert (prepared.checksums[-1].width, prepared.checksums[-1].height) == (fmt.columns, fmt.rows)
    assert max(prepared.checksums[0].width, prepared.checksums[0].height) <= 64
    assert prepared.min_pixel_value == int(original.min())
    assert prepared.max_pixel_value == int(original.max())
    assert prepared.frame_size_in_bytes == fmt.decoded_frame_bytes
    if name in NO_PYDICOM_REFERENCE:
        return
    row = lookup(syntax)
    assert row is not None
    reference = pixel_array(ds, index=index, as_rgb=False)
    if row.lossless:
        assert np.array_equal(stored, reference), "lossless input must survive bit-exactly"
    else:
        assert np.abs(stored.astype(np.int64) - reference.astype(np.int64)).max() <= LOSSY_TOLERANCE


def _psnr(a: np.ndarray, b: np.ndarray, bits: int) -> float:
    error = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if error == 0 else float(10 * np.log10(((1 << bits) - 1) ** 2 / error))
