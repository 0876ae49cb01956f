"""``prepare_frame`` rules beyond the per-syntax matrix: verification, warnings, concurrency."""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from typing import Any

import numpy as np
import pytest
from pydicom.dataset import Dataset
from tests.support.pixel_samples import Kind, base_dataset, make_dataset, phantom

from openhi.codecs import encode, store
from openhi.codecs import syntaxes as ts
from openhi.codecs.checksum import bytes_crc32
from openhi.codecs.codestream import EOC, parse_codestream
from openhi.codecs.decode import decode_frame
from openhi.codecs.errors import FrameVerificationError, UnsupportedTransferSyntaxError
from openhi.codecs.frames import iter_frame_payloads
from openhi.codecs.pixels import PixelFormat
from openhi.codecs.store import PreparedFrame, decode_stored_frame, prepare_frame
from openhi.datastores.model import LosslessStorageFormat

TARGETS = list(LosslessStorageFormat)


def _first(syntax: str, kind: str) -> tuple[bytes, PixelFormat]:
    ds, _ = make_dataset(syntax, kind)
    return next(iter_frame_payloads(ds)), PixelFormat.from_dataset(ds)


def _drop_last_tile_part(data: bytes) -> bytes:
    return data[: parse_codestream(data).tile_parts[-1].offset] + EOC.to_bytes(2, "big")


@pytest.mark.parametrize("target", TARGETS)
def test_corrupted_encoder_output_is_caught_by_verification(
    target: LosslessStorageFormat, monkeypatch: pytest.MonkeyPatch
) -> None:
    payload, fmt = _first(ts.EXPLICIT_VR_LITTLE_ENDIAN, "s16")
    real_htj2k, real_j2k = encode.encode_htj2k, encode.encode_j2k_lossless
    monkeypatch.setattr(encode, "encode_htj2k", lambda frame, **kw: _drop_last_tile_part(real_htj2k(frame, **kw)))
    monkeypatch.setattr(encode, "encode_j2k_lossless", lambda frame, **kw: _drop_last_tile_part(real_j2k(frame, **kw)))
    with pytest.raises(FrameVerificationError) as caught:
        prepare_frame(payload, ts.EXPLICIT_VR_LITTLE_ENDIAN, fmt, target)
    assert caught.value.warning_code == 0xB100


def test_encoder_output_that_does_not_decode_fails_verification(monkeypatch: pytest.MonkeyPatch) -> None:
    payload, fmt = _first(ts.EXPLICIT_VR_LITTLE_ENDIAN, "u8")
    monkeypatch.setattr(encode, "encode_htj2k", lambda frame, **kw: b"\xff\x4f\xff\x51 not a codestream")
    with pytest.raises(FrameVerificationError, match="does not decode"):
        prepare_frame(payload, ts.EXPLICIT_VR_LITTLE_ENDIAN, fmt, LosslessStorageFormat.HTJ2K)


def test_unknown_syntax_is_stored_as_is_with_warning_0xb120() -> None:
    payload, fmt = _first(ts.JPEG_2000_LOSSLESS, "u8")
    prepared = prepare_frame(payload, "1.2.840.10008.1.2.4.94", fmt, LosslessStorageFormat.HTJ2K)
    assert prepared.warning == 0xB120 == 45344
    assert prepared.data == payload
    assert prepared.stored_transfer_syntax == "1.2.840.10008.1.2.4.94"
    assert prepared.checksums[0].checksum == bytes_crc32(payload)
    assert (prepared.min_pixel_value, prepared.max_pixel_value) == (None, None)
    with pytest.raises(UnsupportedTransferSyntaxError):
        decode_frame(payload, "1.2.840.10008.1.2.4.94", fmt)


def test_undecodable_frame_of_a_supported_syntax_is_stored_as_is_with_warning_0xb100() -> None:
    _, fmt = _first(ts.JPEG_2000_LOSSLESS, "u8")
    garbage = b"\xff\x4f\xff\x51" + bytes(range(200))
    prepared = prepare_frame(garbage, ts.JPEG_2000_LOSSLESS, fmt, LosslessStorageFormat.HTJ2K)
    assert prepared.warning == 0xB100
    assert prepared.data == garbage
    assert prepared.stored_transfer_syntax == ts.JPEG_2000_LOSSLESS


def test_codestream_larger_than_the_dataset_says_is_undecodable() -> None:
    payload, fmt = _first(ts.HTJ2K_LOSSLESS, "u16")
    narrower = PixelFormat(fmt.rows, fmt.columns, 1, 8, 8, 7, 0, "MONOCHROME2")
    prepared = prepare_frame(payload, ts.HTJ2K_LOSSLESS, narrower, LosslessStorageFormat.HTJ2K)
    assert prepared.warning == 0xB100


def _binary_dataset(syntax: str) -> Dataset:
    kind = Kind("bits", 8, 1, False)
    ds = base_dataset(kind, syntax, rows=16, columns=24)
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 1, 1, 0
    mask = phantom(Kind("b", 8, 8, False), 16, 24)[0] > 128
    ds.PixelData = np.packbits(mask.ravel(), bitorder="little").tobytes()
    ds["PixelData"].VR = "OB"
    return ds


def test_binary_segmentation_is_kept_in_explicit_little_endian_only() -> None:
    ds = _binary_dataset(ts.EXPLICIT_VR_LITTLE_ENDIAN)
    fmt = PixelFormat.from_dataset(ds)
    (payload,) = iter_frame_payloads(ds)
    prepared = prepare_frame(payload, ts.EXPLICIT_VR_LITTLE_ENDIAN, fmt, LosslessStorageFormat.HTJ2K)
    assert prepared.data == payload
    assert prepared.stored_transfer_syntax == ts.EXPLICIT_VR_LITTLE_ENDIAN
    assert prepared.frame_size_in_bytes == 16 * 24 // 8
    implicit = _binary_dataset(ts.IMPLICIT_VR_LITTLE_ENDIAN)
    (payload,) = iter_frame_payloads(implicit)
    transcoded = prepare_frame(payload, ts.IMPLICIT_VR_LITTLE_ENDIAN, fmt, LosslessStorageFormat.HTJ2K)
    assert transcoded.stored_transfer_syntax == ts.HTJ2K_LOSSLESS_RPCL
    assert (transcoded.min_pixel_value, transcoded.max_pixel_value) == (0, 1)
    assert transcoded.frame_size_in_bytes == 16 * 24
    assert np.array_equal(
        decode_stored_frame(transcoded.data, transcoded.stored_transfer_syntax, fmt),
        decode_stored_frame(prepared.data, prepared.stored_transfer_syntax, fmt),
    )


def _workload() -> list[tuple[bytes, str, PixelFormat, LosslessStorageFormat]]:
    jobs = []
    combos = [
        (ts.EXPLICIT_VR_LITTLE_ENDIAN, "s16"),
        (ts.JPEG_2000_LOSSLESS, "rgb8"),
        (ts.JPEG_LS_LOSSLESS, "s12"),
        (ts.RLE_LOSSLESS, "u16"),
        (ts.HTJ2K_LOSSLESS, "u12"),
        (ts.JPEG_LOSSLESS_SV1, "rgb8"),
        (ts.JPEG_XL_LOSSLESS, "u8"),
        (ts.JPEG_BASELINE_8BIT, "rgb8"),
        (ts.EXPLICIT_VR_BIG_ENDIAN, "u12"),
        (ts.JPEG_2000_MC_LOSSLESS, "s8"),
    ]
    for syntax, kind in combos:
        payload, fmt = _first(syntax, kind)
        for target in TARGETS:
            jobs.append((payload, syntax, fmt, target))
    assert len(jobs) == 20
    return jobs


def _run(jobs: list[tuple[bytes, str, PixelFormat, LosslessStorageFormat]]) -> list[PreparedFrame]:
    return [prepare_frame(*job) for job in jobs]


def test_four_threads_times_twenty_calls_give_identical_results() -> None:
    jobs = _workload()
    expected = _run(jobs)
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(_run, [jobs] * 4))
    assert all(result == expected for result in results)


def _run_in_process(jobs: list[Any]) -> list[PreparedFrame]:
    return _run(jobs)


def test_processes_give_identical_results() -> None:
    jobs = _workload()[:6]
    expected = _run(jobs)
    with ProcessPoolExecutor(max_workers=2, mp_context=multiprocessing.get_context("spawn")) as pool:
        results = list(pool.map(_run_in_process, [jobs] * 2))
    assert all(result == expected for result in results)


def test_prepare_frame_uses_the_module_encoders(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    real = encode.encode_htj2k

    def spy(frame: np.ndarray, **kw: Any) -> bytes:
        calls.append("htj2k")
        return real(frame, **kw)

    monkeypatch.setattr(encode, "encode_htj2k", spy)
    payload, fmt = _first(ts.EXPLICIT_VR_LITTLE_ENDIAN, "u8")
    store.prepare_frame(payload, ts.EXPLICIT_VR_LITTLE_ENDIAN, fmt, LosslessStorageFormat.HTJ2K)
    assert calls == ["htj2k"]
