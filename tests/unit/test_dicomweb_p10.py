"""P10 files rebuilt from a document and stored frames (GetDICOMInstance): they parse and keep the pixels.

The document and frames are made the way an import makes them (``dicom.normalize``, ``codecs.prepare_frame``
into an in-memory blob store), then rebuilt in each output syntax and read back with pydicom.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pydicom
import pytest
from pydicom.filebase import DicomBytesIO
from tests.support import pixel_samples

from openhi.blobs import keys
from openhi.blobs.memory import MemoryBlobStore
from openhi.codecs import syntaxes as ts
from openhi.codecs.frames import iter_frame_payloads
from openhi.codecs.pixels import PixelFormat
from openhi.codecs.store import prepare_frame
from openhi.datastores.model import LosslessStorageFormat
from openhi.dicom.normalize import normalize
from openhi.dicomweb.cache import LruCache
from openhi.dicomweb.frames import FrameReader, pixel_format
from openhi.dicomweb.p10 import IMPLEMENTATION_CLASS_UID, HeaderCache, InstanceSource, P10Writer, merged_attributes
from openhi.dicomweb.transfer import ELE, Output, StoredPixels, Transcode

DATASTORE = "0" * 31 + "1"


def _imported(kind: str, syntax: str = ELE) -> tuple[MemoryBlobStore, dict[str, Any], pydicom.Dataset]:
    original, _ = pixel_samples.make_dataset(syntax, kind)
    original.StudyInstanceUID, original.SeriesInstanceUID = "1.2.3", "1.2.3.4"
    original.PatientName = "P10^TEST"
    normalized = normalize(original)
    blobs = MemoryBlobStore()
    fmt = PixelFormat.from_dataset(original)
    frames, stored_syntax = [], syntax
    for number, payload in enumerate(iter_frame_payloads(original)):
        prepared = prepare_frame(payload, syntax, fmt, LosslessStorageFormat.HTJ2K)
        frame_id = f"{number + 1:032x}"
        blobs.put(keys.frame(DATASTORE, frame_id), prepared.data)
        frames.append({"ID": frame_id})
        stored_syntax = prepared.stored_transfer_syntax
    sop = normalized.sop_instance_uid
    document = {
        "Patient": {"DICOM": normalized.patient},
        "Study": {
            "DICOM": normalized.study,
            "Series": {
                "1.2.3.4": {
                    "DICOM": normalized.series,
                    "Instances": {
                        sop: {
                            "DICOM": normalized.instance,
                            "DICOMVRs": normalized.instance_vrs,
                            "StoredTransferSyntaxUID": stored_syntax,
                            "ImageFrames": frames,
                        }
                    },
                }
            },
        },
    }
    return blobs, document, original


def _rebuild(blobs: MemoryBlobStore, document: dict[str, Any], output: Output | None = None) -> pydicom.Dataset:
    series = document["Study"]["Series"]["1.2.3.4"]
    [(sop, entry)] = series["Instances"].items()
    attributes = merged_attributes(document, "1.2.3.4", sop)
    stored = StoredPixels.of({**entry, "DICOM": attributes})
    source = InstanceSource(attributes, entry["DICOMVRs"], sop, stored, [f["ID"] for f in entry["ImageFrames"]])
    writer = P10Writer(FrameReader(blobs, DATASTORE), lambda ref: blobs.get(keys.bulk_value(DATASTORE, ref)))
    chosen = output or stored.output(None)
    assert chosen is not None
    data = b"".join(writer.chunks(source, chosen, pixel_format(attributes)))
    return pydicom.dcmread(DicomBytesIO(data))


@pytest.mark.parametrize("kind", ["u16", "s12", "u12x3", "rgb8", "u8"])
def test_ele_rebuild_has_the_original_pixels(kind: str) -> None:
    blobs, document, original = _imported(kind)
    rebuilt = _rebuild(blobs, document)
    assert rebuilt.file_meta.TransferSyntaxUID == ELE
    assert rebuilt.file_meta.ImplementationClassUID == IMPLEMENTATION_CLASS_UID
    assert rebuilt.file_meta.MediaStorageSOPInstanceUID == original.SOPInstanceUID
    assert rebuilt.PatientName == "P10^TEST"
    assert np.array_equal(rebuilt.pixel_array, original.pixel_array)
    assert rebuilt.PhotometricInterpretation == original.PhotometricInterpretation


@pytest.mark.parametrize("kind", ["u12x3", "rgb8"])
def test_stored_rebuild_has_an_offset_table_and_decodes(kind: str) -> None:
    blobs, document, original = _imported(kind)
    rebuilt = _rebuild(blobs, document, Output(ts.HTJ2K_LOSSLESS_RPCL, Transcode.NONE))
    frames = int(original.get("NumberOfFrames", 1))
    offsets = pydicom.encaps.parse_basic_offsets(rebuilt.PixelData)
    fragments = list(pydicom.encaps.generate_fragments(rebuilt.PixelData))[1:]  # the first item is the table
    assert len(offsets) == len(fragments) == frames
    sizes = [8 + len(fragment) for fragment in fragments]
    assert offsets == [sum(sizes[:i]) for i in range(frames)]
    assert np.array_equal(rebuilt.pixel_array, original.pixel_array)
    if kind == "rgb8":
        assert rebuilt.PhotometricInterpretation == "YBR_RCT"


def test_jpeg_2000_lossless_transcode() -> None:
    blobs, document, original = _imported("u12x3")
    rebuilt = _rebuild(blobs, document, Output(ts.JPEG_2000_LOSSLESS, Transcode.J2K))
    assert rebuilt.file_meta.TransferSyntaxUID == ts.JPEG_2000_LOSSLESS
    assert np.array_equal(rebuilt.pixel_array, original.pixel_array)


def test_lossy_kept_frames_are_the_original_fragments() -> None:
    blobs, document, original = _imported("u8", ts.JPEG_BASELINE_8BIT)
    rebuilt = _rebuild(blobs, document)
    assert rebuilt.file_meta.TransferSyntaxUID == ts.JPEG_BASELINE_8BIT
    assert list(pydicom.encaps.generate_fragments(rebuilt.PixelData)) == list(
        pydicom.encaps.generate_fragments(original.PixelData)
    )


def test_cached_headers_give_the_same_file_and_are_kept_per_output_syntax() -> None:
    blobs, document, original = _imported("rgb8")
    series = document["Study"]["Series"]["1.2.3.4"]
    [(sop, entry)] = series["Instances"].items()
    attributes = merged_attributes(document, "1.2.3.4", sop)
    stored = StoredPixels.of({**entry, "DICOM": attributes})
    frame_ids = [f["ID"] for f in entry["ImageFrames"]]
    headers: HeaderCache = LruCache(1024 * 1024)
    cached = InstanceSource(attributes, entry["DICOMVRs"], sop, stored, frame_ids, ("doc-key", "1.2.3.4", sop))
    uncached = InstanceSource(attributes, entry["DICOMVRs"], sop, stored, frame_ids)
    writer = P10Writer(FrameReader(blobs, DATASTORE), lambda ref: blobs.get(keys.bulk_value(DATASTORE, ref)), headers)
    fmt = pixel_format(attributes)
    files = {}
    for output in (Output(ELE, Transcode.NATIVE), Output(ts.HTJ2K_LOSSLESS_RPCL, Transcode.NONE)):
        fresh = b"".join(writer.chunks(uncached, output, fmt))
        first = b"".join(writer.chunks(cached, output, fmt))
        size = headers.size
        again = b"".join(writer.chunks(cached, output, fmt))
        assert fresh == first == again
        assert headers.size == size > 0  # the second file came from the cache
        files[output.syntax] = pydicom.dcmread(DicomBytesIO(again))
    assert files[ELE].file_meta.TransferSyntaxUID == ELE
    assert files[ELE].PhotometricInterpretation == "RGB"
    assert files[ts.HTJ2K_LOSSLESS_RPCL].file_meta.TransferSyntaxUID == ts.HTJ2K_LOSSLESS_RPCL
    assert files[ts.HTJ2K_LOSSLESS_RPCL].PhotometricInterpretation == "YBR_RCT"
    for rebuilt in files.values():
        assert np.array_equal(rebuilt.pixel_array, original.pixel_array)
