"""WADO-RS transfer syntax negotiation (guide 1955-1975, 2110-2135; PS3.18 §8.7.3)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from openhi.codecs import syntaxes as ts
from openhi.dicomweb.transfer import (
    ELE,
    Output,
    StoredPixels,
    Transcode,
    frame_output,
    instance_output,
    media_type,
    negotiate,
)

HTJ2K = ts.HTJ2K_LOSSLESS_RPCL


@dataclass(frozen=True)
class Wanted:
    part_type: str
    transfer_syntax: str | None = None


def stored(syntax: str = HTJ2K, frames: int = 1, warnings: frozenset[int] = frozenset()) -> StoredPixels:
    return StoredPixels(syntax, frames, 16, warnings)


def test_media_types_follow_ps3_18() -> None:
    assert media_type(HTJ2K) == "image/jphc"
    assert media_type(ts.JPEG_2000_LOSSLESS) == "image/jp2"
    assert media_type(ts.RLE_LOSSLESS) == "image/dicom-rle"
    assert media_type(ELE) == "application/octet-stream"
    assert media_type("1.2.840.10008.1.2.4.102") == "video/mp4"
    assert media_type("1.2.3.4") == "application/octet-stream"


def test_instance_defaults_to_ele_for_lossless_and_stored_for_lossy() -> None:
    assert instance_output(stored(), Wanted("application/dicom")) == Output(ELE, Transcode.NATIVE)
    lossy = stored(ts.JPEG_BASELINE_8BIT)
    assert instance_output(lossy, Wanted("application/dicom")) == Output(ts.JPEG_BASELINE_8BIT, Transcode.NONE)
    assert instance_output(lossy, Wanted("application/dicom", ELE)) is None


def test_wildcard_and_stored_uid_give_the_stored_bytes() -> None:
    for asked in ("*", HTJ2K):
        assert instance_output(stored(), Wanted("application/dicom", asked)) == Output(HTJ2K, Transcode.NONE)
    assert instance_output(stored(), Wanted("application/dicom", ts.HTJ2K_LOSSLESS)) == Output(
        ts.HTJ2K_LOSSLESS, Transcode.NONE
    )
    assert instance_output(stored(), Wanted("application/dicom", ts.JPEG_2000_LOSSLESS)) == Output(
        ts.JPEG_2000_LOSSLESS, Transcode.J2K
    )
    assert instance_output(stored(), Wanted("application/dicom", ts.JPEG_LS_LOSSLESS)) is None
    assert instance_output(stored(), Wanted("image/jphc")) is None


def test_blob_warnings_fall_back_to_stored_and_refuse_ele() -> None:
    blob = stored(ts.RLE_LOSSLESS, warnings=frozenset({45312}))
    assert instance_output(blob, Wanted("application/dicom")) == Output(ts.RLE_LOSSLESS, Transcode.NONE)
    assert instance_output(blob, Wanted("application/dicom", ELE)) is None
    assert frame_output(blob, Wanted("application/octet-stream")) == Output(ts.RLE_LOSSLESS, Transcode.NONE)


@pytest.mark.parametrize("code", [45328, 45329, 45330])
def test_undelimited_pixel_data_is_never_served(code: int) -> None:
    broken = stored(frames=0, warnings=frozenset({code}))
    for asked in (None, "*", ELE):
        assert instance_output(broken, Wanted("application/dicom", asked)) is None
    assert "could not be split into frames" in broken.refusal(None)


def test_instances_without_pixels_are_ele() -> None:
    report = stored(ELE, frames=0)
    assert instance_output(report, Wanted("application/dicom", "*")) == Output(ELE, Transcode.NONE)


def test_frames_by_media_type() -> None:
    s = stored()
    assert frame_output(s, Wanted("application/octet-stream")) == Output(ELE, Transcode.NATIVE)
    assert frame_output(s, Wanted("application/octet-stream", "*")) == Output(HTJ2K, Transcode.NONE)
    assert frame_output(s, Wanted("application/octet-stream", HTJ2K)) is None  # mismatched type and syntax
    assert frame_output(s, Wanted("image/jphc")) == Output(HTJ2K, Transcode.NONE)
    assert frame_output(s, Wanted("image/jph")) == Output(HTJ2K, Transcode.NONE)  # HealthImaging's label
    assert frame_output(s, Wanted("image/jp2")) == Output(ts.JPEG_2000_LOSSLESS, Transcode.J2K)
    assert frame_output(s, Wanted("*/*")) == Output(HTJ2K, Transcode.NONE)
    assert frame_output(s, Wanted("image/jls")) is None
    assert frame_output(stored(ELE), Wanted("image/*")) is None


def test_negotiate_takes_the_first_servable_range() -> None:
    ranges = [Wanted("image/jls"), Wanted("application/octet-stream", ELE)]
    chosen = negotiate(ranges, lambda wanted: frame_output(stored(), wanted))
    assert chosen == (ranges[1], Output(ELE, Transcode.NATIVE))
    assert negotiate([Wanted("image/jls")], lambda wanted: frame_output(stored(), wanted)) is None


def test_stored_pixels_from_a_document_entry() -> None:
    entry = {
        "DICOM": {"BitsAllocated": 8, "WarningReason": [45312]},
        "StoredTransferSyntaxUID": None,
        "ImageFrames": [{"ID": "a"}, {"ID": "b"}],
    }
    facts = StoredPixels.of(entry)
    assert (facts.syntax, facts.frame_count, facts.bits_allocated, facts.as_blob) == (HTJ2K, 2, 8, True)
