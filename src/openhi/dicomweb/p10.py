"""A DICOM P10 file rebuilt from an image set document and the stored frames (GetDICOMInstance, guide 1900-1990).

- Attributes: the Patient, Study, Series and Instance ``DICOM`` objects of the document merged (in that order)
  and turned into a dataset with their DICOMVRs (``dicom.json_values.json_to_dataset``); bulk data references
  are read back from their blobs. Ambiguous VRs ("US or SS", "OB or OW") are resolved by pydicom from Pixel
  Representation and Bits Allocated (PS3.5 Annex A.1).
- File meta information (PS3.10 §7.1): version 00 01, Media Storage SOP Class / Instance UID from the dataset,
  the answer's Transfer Syntax UID, OpenHI's Implementation Class UID and Version Name.
- Pixel Data (7FE0,0010) is written by hand, so that frames are read one at a time and never all held:
  native (ELE): ``OW`` (``OB`` for 8-bit and 1-bit data) of defined length, frames concatenated (PS3.5 8.1.1);
  encapsulated: ``OB`` of undefined length, a Basic Offset Table, one fragment per frame, each padded to even
  length, then the Sequence Delimitation Item (PS3.5 A.4). The offset table lists each frame's offset when the
  frame sizes are known beforehand (stored bytes: one ``head`` per frame), and is empty otherwise (allowed by
  PS3.5 A.4 when every frame is one fragment).
- Photometric Interpretation and Planar Configuration follow the frames written (``frames.output_photometric``).
"""

from __future__ import annotations

import struct
import uuid
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import correct_ambiguous_vr, write_dataset, write_file_meta_info
from pydicom.uid import UID

from openhi.codecs.pixels import PixelFormat
from openhi.codecs.syntaxes import lookup
from openhi.dicom.json_values import JsonValue, json_to_dataset
from openhi.dicomweb.cache import LruCache
from openhi.dicomweb.frames import (
    FrameReader,
    native_pixel_data_length,
    output_photometric,
)
from openhi.dicomweb.transfer import Output, StoredPixels, Transcode
from openhi.errors import NotAcceptableError

#: OpenHI's Implementation Class UID (PS3.7 D.3.3.2): a UUID-derived UID under the 2.25 root (PS3.5 B.2).
IMPLEMENTATION_CLASS_UID = f"2.25.{uuid.UUID('6f70656e-6869-4f00-8000-0000000000a1').int}"
IMPLEMENTATION_VERSION_NAME = "OPENHI_1"
PIXEL_TAGS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")
PIXEL_DATA = 0x7FE00010
_SEQUENCE_DELIMITER = struct.pack("<HHI", 0xFFFE, 0xE0DD, 0)


@dataclass(frozen=True)
class InstanceSource:
    """Everything needed to rebuild one instance."""

    attributes: Mapping[str, JsonValue]  # the merged Patient + Study + Series + Instance DICOM objects
    vrs: Mapping[str, str]
    sop_uid: str
    stored: StoredPixels
    frame_ids: Sequence[str]
    cache_key: Hashable | None = None  # names the attributes for good (document key, series, SOP UID), if known


def merged_attributes(document: Mapping[str, Any], series_uid: str, sop_uid: str) -> dict[str, JsonValue]:
    """The instance's attributes from all four levels of the document (the lower level wins)."""
    study = document["Study"]
    series = study["Series"][series_uid]
    merged: dict[str, JsonValue] = {}
    for level in (document["Patient"]["DICOM"], study["DICOM"], series["DICOM"], series["Instances"][sop_uid]["DICOM"]):
        merged.update(level)
    return merged


def _dataset(source: InstanceSource, resolve_bulk: Callable[[str], bytes]) -> Dataset:
    attributes = {key: value for key, value in source.attributes.items() if key not in PIXEL_TAGS}
    try:
        return json_to_dataset(attributes, vrs=source.vrs, resolve_bulk=resolve_bulk)
    except ValueError as exc:
        raise NotAcceptableError(f"instance {source.sop_uid} cannot be encoded as DICOM: {exc}") from exc


def _file_meta(ds: Dataset, syntax: str) -> bytes:
    meta = FileMetaDataset()
    meta.FileMetaInformationVersion = b"\x00\x01"
    meta.MediaStorageSOPClassUID = ds.get("SOPClassUID", "")
    meta.MediaStorageSOPInstanceUID = ds.get("SOPInstanceUID", "")
    meta.TransferSyntaxUID = UID(syntax)
    meta.ImplementationClassUID = UID(IMPLEMENTATION_CLASS_UID)
    meta.ImplementationVersionName = IMPLEMENTATION_VERSION_NAME
    out = DicomBytesIO()
    out.write(b"\x00" * 128 + b"DICM")
    write_file_meta_info(out, meta, enforce_standard=True)
    return out.getvalue()


def _encode(ds: Dataset, encoding: Any) -> bytes:
    out = DicomBytesIO()
    out.is_little_endian, out.is_implicit_VR = True, False
    write_dataset(out, ds, parent_encoding=encoding)
    return out.getvalue()


def _element_header(vr: str, length: int) -> bytes:
    return struct.pack("<HH2sHI", 0x7FE0, 0x0010, vr.encode(), 0, length)


def _fragment(data: bytes) -> Iterator[bytes]:
    padded = len(data) + (len(data) & 1)
    yield struct.pack("<HHI", 0xFFFE, 0xE000, padded)
    yield data
    if len(data) & 1:
        yield b"\x00"


type HeaderCache = LruCache[tuple[bytes, bytes]]
"""Encoded (file meta + elements before Pixel Data, elements after it) by (source cache key, syntax, PI)."""


class P10Writer:
    """Writes instances as P10 byte streams.

    Encoding the attributes (``json_to_dataset`` and pydicom's writer) costs more than reading a frame, so with
    a ``headers`` cache the encoded bytes are kept per instance source key (its immutable document's key,
    series and SOP Instance UID), output transfer syntax and Photometric Interpretation: the only inputs.
    """

    def __init__(
        self, reader: FrameReader, resolve_bulk: Callable[[str], bytes], headers: HeaderCache | None = None
    ) -> None:
        self._reader = reader
        self._resolve_bulk = resolve_bulk
        self._headers = headers

    def chunks(self, source: InstanceSource, output: Output, fmt: PixelFormat | None) -> Iterator[bytes]:
        """The P10 file of ``source`` in ``output``'s syntax, as a few header chunks then one chunk per frame."""
        first = self._reader.stored(source.frame_ids[0]) if source.frame_ids else None
        pi = output_photometric(fmt, source.stored, output, first) if fmt is not None and first is not None else None
        key = None if source.cache_key is None or self._headers is None else (source.cache_key, output.syntax, pi)
        encoded = None if key is None or self._headers is None else self._headers.get(key)
        if encoded is None:
            encoded = self._attributes(source, output, fmt, pi)
            if key is not None and self._headers is not None:
                self._headers.put(key, encoded, len(encoded[0]) + len(encoded[1]) + 256)
        head, tail = encoded
        yield head
        if first is not None:
            yield from self._pixel_data(source, output, fmt, first)
        if tail:
            yield tail

    def _attributes(
        self, source: InstanceSource, output: Output, fmt: PixelFormat | None, pi: str | None
    ) -> tuple[bytes, bytes]:
        """The file meta and the elements before Pixel Data, and the elements after it, encoded."""
        ds = _dataset(source, self._resolve_bulk)
        if fmt is not None and pi is not None:
            ds.PhotometricInterpretation = pi
            if fmt.samples_per_pixel > 1:
                ds.PlanarConfiguration = 0
        correct_ambiguous_vr(ds, True)
        encoding = ds._character_set
        before, after = Dataset(), Dataset()
        for element in ds:
            (before if element.tag < PIXEL_DATA else after).add(element)
        return _file_meta(ds, output.syntax) + _encode(before, encoding), _encode(after, encoding) if len(
            after
        ) else b""

    def _frames(self, source: InstanceSource, output: Output, fmt: PixelFormat | None, first: bytes) -> Iterator[bytes]:
        for index, frame_id in enumerate(source.frame_ids):
            data = first if index == 0 else self._reader.stored(frame_id)
            yield self._reader.convert(data, source.stored, output, fmt)

    def _pixel_data(
        self, source: InstanceSource, output: Output, fmt: PixelFormat | None, first: bytes
    ) -> Iterator[bytes]:
        frames = self._frames(source, output, fmt, first)
        if output.transcode is Transcode.NATIVE or (
            output.transcode is Transcode.NONE and not _encapsulated(output.syntax)
        ):
            if fmt is None:
                raise NotAcceptableError(f"instance {source.sop_uid} lacks a valid Image Pixel description")
            yield from self._native(source, fmt, frames)
            return
        yield _element_header("OB", 0xFFFFFFFF)
        yield self._offset_table(source, output, first)
        for frame in frames:
            yield from _fragment(frame)
        yield _SEQUENCE_DELIMITER

    @staticmethod
    def _native(source: InstanceSource, fmt: PixelFormat, frames: Iterator[bytes]) -> Iterator[bytes]:
        count = len(source.frame_ids)
        length = native_pixel_data_length(fmt, count)
        padded = length + (length & 1)
        yield _element_header("OW" if fmt.bits_allocated > 8 else "OB", padded)
        if fmt.bits_allocated == 1 and count > 1 and fmt.pixels_per_frame % 8:
            yield _repack_bits(list(frames), fmt, length)
        else:
            written = 0
            for frame in frames:
                written += len(frame)
                yield frame
            if written != length:
                raise NotAcceptableError(f"frames of instance {source.sop_uid} do not add up to {length} bytes")
        if length & 1:
            yield b"\x00"

    def _offset_table(self, source: InstanceSource, output: Output, first: bytes) -> bytes:
        count = len(source.frame_ids)
        if count == 1:
            return struct.pack("<HHII", 0xFFFE, 0xE000, 4, 0)
        if output.transcode is not Transcode.NONE:  # sizes are known only once encoded
            return struct.pack("<HHI", 0xFFFE, 0xE000, 0)
        sizes = [len(first)] + [self._reader.stored_size(frame_id) for frame_id in source.frame_ids[1:]]
        offsets, at = [], 0
        for size in sizes:
            offsets.append(at)
            at += 8 + size + (size & 1)
        if at >= 2**32:  # the table cannot express it (PS3.5 A.4): an empty table is allowed
            return struct.pack("<HHI", 0xFFFE, 0xE000, 0)
        return struct.pack("<HHI", 0xFFFE, 0xE000, 4 * count) + struct.pack(f"<{count}I", *offsets)


def _encapsulated(syntax: str) -> bool:
    row = lookup(syntax)
    return row is None or row.encapsulated


def _repack_bits(frames: list[bytes], fmt: PixelFormat, length: int) -> bytes:
    """Bit-packed frames whose size is not a whole number of bytes, packed end to end (PS3.5 8.1.1)."""
    bits = [np.unpackbits(np.frombuffer(f, dtype=np.uint8), bitorder="little")[: fmt.pixels_per_frame] for f in frames]
    packed = np.packbits(np.concatenate(bits), bitorder="little").tobytes()
    return packed[:length]
