"""Read one DICOM P10 file (PS3.10 7.1) into a pydicom dataset, or say clearly why it is not one.

``read_p10`` calls ``pydicom.dcmread(source, defer_size="1 MB", force=False)``: values over 1 MB (pixel data,
mostly) stay in the file until asked for, so the source must stay readable while the dataset is used (a path
is reopened by pydicom; a file object must stay open).

- No 128-byte preamble + "DICM": the file is read again with ``force=True`` and accepted only when it then
  has a file meta TransferSyntaxUID or a SOPClassUID, i.e. when it is recognizably DICOM (files written
  without the Part 10 header by older software). Anything else is "not a DICOM P10 file". A dataset without a
  transfer syntax is accepted here and refused by :func:`.normalize.normalize` with the guide's message
  "DICOM attribute TransferSyntaxUID does not exist" (guide 3316-3324).
- pydicom stops quietly at the end of the data, so truncation is checked apart: a light scan of the element
  headers (tags, VRs, lengths; values are skipped) must find every value, item and delimiter inside the file.
  A file cut inside an element is "truncated DICOM file". The scan gives up silently (no verdict) on encodings
  it does not follow (deflated data sets, explicit VR data switching to implicit VR); a file cut exactly
  between two elements is indistinguishable from a shorter file and is left to the attribute checks.
- Empty files, files with a header and no data set, and files pydicom cannot parse are refused as well.
  Every refusal is a :class:`DicomInputError`; errors opening a path (missing, permissions) propagate as is.
"""

from __future__ import annotations

import io
import os
import struct
from collections.abc import Callable
from typing import BinaryIO

import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError

from openhi.dicom.errors import DicomInputError

DEFER_SIZE = "1 MB"
UNDEFINED_LENGTH = 0xFFFFFFFF
ITEM, ITEM_END, SEQUENCE_END = 0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD
LONG_LENGTH_VRS = frozenset(b"OB OD OF OL OV OW SQ SV UC UN UR UT UV".split())
DEFLATED = frozenset({"1.2.840.10008.1.2.1.99", "1.2.840.10008.1.2.8.1"})
MAX_DEPTH = 64
TRANSFER_SYNTAX_UID = 0x00020010
IMPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2"
EXPLICIT_VR_BIG_ENDIAN = "1.2.840.10008.1.2.2"


class _TruncatedError(Exception):
    """The structure runs past the end of the file."""


class _GiveUpError(Exception):
    """The scanner cannot follow this encoding; no verdict."""


def read_p10(source: str | os.PathLike[str] | BinaryIO) -> Dataset:
    """Read a DICOM P10 file from a path or a seekable binary file object (read from its current position)."""
    if isinstance(source, str | os.PathLike):
        path = os.fspath(source)
        size = os.path.getsize(path)  # OSError for a missing path propagates
        with open(path, "rb") as fp:
            head = fp.read(132)
        return _read(path, path, size, head)
    start = source.tell()
    size = source.seek(0, io.SEEK_END) - start
    source.seek(start)
    head = source.read(132)
    source.seek(start)
    return _read(source, str(getattr(source, "name", "<stream>")), size, head)


def _dcmread(source: str | BinaryIO, start: int, force: bool) -> Dataset:
    if not isinstance(source, str):
        source.seek(start)
    return pydicom.dcmread(source, defer_size=DEFER_SIZE, force=force)


def _read(source: str | BinaryIO, name: str, size: int, head: bytes) -> Dataset:
    start = 0 if isinstance(source, str) else source.tell()
    if size == 0:
        raise DicomInputError(f"not a DICOM P10 file: {name}: the file is empty")
    has_header = head[128:132] == b"DICM"
    try:
        try:
            ds = _dcmread(source, start, force=False)
        except InvalidDicomError:
            ds = _dcmread(source, start, force=True)
            if not _looks_like_dicom(ds):
                raise DicomInputError(
                    f"not a DICOM P10 file: {name}: no 'DICM' prefix after the 128-byte preamble, and the "
                    "content has neither a TransferSyntaxUID nor a SOPClassUID"
                ) from None
    except DicomInputError:
        raise
    except (FileNotFoundError, PermissionError, IsADirectoryError):
        raise
    except Exception as exc:  # pydicom raises many types on malformed input
        problem = (
            _with_file(source, start, lambda fp: _scan(fp, start + 132, start + size, "meta")) if has_header else None
        )
        if problem is not None:
            raise DicomInputError(f"truncated DICOM file: {name}: {problem}") from exc
        raise DicomInputError(f"not a DICOM P10 file: {name}: it cannot be parsed ({exc})") from exc
    problem = _check_structure(source, start, size, has_header, ds)
    if problem is not None:
        raise DicomInputError(f"truncated DICOM file: {name}: {problem}")
    if len(ds) == 0:
        if has_header:
            raise DicomInputError(f"truncated DICOM file: {name}: no data set after the file meta information")
        raise DicomInputError(f"not a DICOM P10 file: {name}: no data elements")
    return ds


def _looks_like_dicom(ds: Dataset) -> bool:
    try:
        meta = getattr(ds, "file_meta", None)
        if meta is not None and meta.get("TransferSyntaxUID"):
            return True
        return bool(ds.get("SOPClassUID"))
    except Exception:  # garbage parsed by force=True may not even decode
        return False


def _with_file(source: str | BinaryIO, start: int, work: Callable[[BinaryIO], str | None]) -> str | None:
    if not isinstance(source, str):
        try:
            return work(source)
        finally:
            source.seek(start)
    with open(source, "rb") as fp:
        return work(fp)


def _check_structure(source: str | BinaryIO, start: int, size: int, has_header: bool, ds: Dataset) -> str | None:
    """None when the element structure fits in the file (or cannot be followed), else what is cut."""
    meta = getattr(ds, "file_meta", None)
    syntax = str(meta.get("TransferSyntaxUID", "")) if meta is not None else ""
    if syntax in DEFLATED:
        return None
    implicit, little = ds.original_encoding
    encoding = (implicit is not False, little is not False)
    offset = start + (132 if has_header else 0)
    return _with_file(source, start, lambda fp: _scan(fp, offset, start + size, encoding))


def _scan(fp: BinaryIO, offset: int, end: int, encoding: tuple[bool, bool] | str) -> str | None:
    """Scan the file meta, then the data set with ``encoding``: (implicit VR?, little endian?) or "meta" for
    the one the file meta's TransferSyntaxUID names (used when pydicom could not parse the file)."""
    fp.seek(offset)
    scanner = _Scanner(fp, end)
    try:
        syntax = scanner.skip_file_meta()
        if encoding == "meta":
            if syntax is None or syntax in DEFLATED:
                return None
            encoding = (syntax == IMPLICIT_VR_LITTLE_ENDIAN, syntax != EXPLICIT_VR_BIG_ENDIAN)
        if isinstance(encoding, tuple):
            scanner.scan_dataset(*encoding, depth=0, in_item=False)
    except _TruncatedError as cut:
        return str(cut)
    except (_GiveUpError, struct.error):
        return None
    return None


class _Scanner:
    """Walks element headers (PS3.5 7.1, 7.5), seeking over values, and checks all of it is in the file."""

    def __init__(self, fp: BinaryIO, end: int) -> None:
        self.fp = fp
        self.end = end
        self.last_value = (0, 0)  # offset and length of the last element's value

    def _read(self, count: int, what: str) -> bytes:
        position = self.fp.tell()
        data = self.fp.read(count)
        if len(data) < count:
            raise _TruncatedError(f"the file ends inside {what} at offset {position}")
        return data

    def _skip(self, length: int, what: str) -> None:
        position = self.fp.tell()
        if position + length > self.end:
            raise _TruncatedError(
                f"{what} declares {length} bytes at offset {position} but the file ends at offset {self.end}"
            )
        self.fp.seek(position + length)

    def _at_end(self) -> bool:
        """At the end of the file, or before nothing but zero bytes (padding some tools append)."""
        position = self.fp.tell()
        if self.end - position >= 8:
            return False
        rest = self.fp.read(self.end - position)
        self.fp.seek(position)
        return not rest.strip(b"\0")

    def skip_file_meta(self) -> str | None:
        """Skip the group 0002 elements (explicit VR LE, PS3.10 7.1); return their TransferSyntaxUID."""
        syntax: str | None = None
        while True:
            position = self.fp.tell()
            peek = self.fp.read(2)
            self.fp.seek(position)
            if len(peek) < 2 or struct.unpack("<H", peek)[0] != 0x0002:
                return syntax
            if self._element(implicit=False, little=True, depth=0) == TRANSFER_SYNTAX_UID:
                end = self.fp.tell()
                self.fp.seek(self.last_value[0])
                syntax = self.fp.read(self.last_value[1]).rstrip(b"\0 ").decode("ascii", "replace")
                self.fp.seek(end)

    def scan_dataset(self, implicit: bool, little: bool, depth: int, in_item: bool) -> None:
        """Elements up to the end of the file (top level) or to the item delimiter (undefined-length item)."""
        if depth > MAX_DEPTH:
            raise _GiveUpError
        while True:
            if not in_item and self._at_end():
                return
            if self._element(implicit, little, depth) == ITEM_END:
                if in_item:
                    return
                raise _GiveUpError

    def _element(self, implicit: bool, little: bool, depth: int) -> int:
        endian = "<" if little else ">"
        header = self._read(8, "an element header")
        group, number = struct.unpack(f"{endian}HH", header[:4])
        tag = int(group) << 16 | int(number)
        nested_implicit = implicit
        what = f"element ({group:04X},{number:04X})"
        if group == 0xFFFE:
            if tag != ITEM_END:
                raise _GiveUpError
            return tag
        if implicit:
            (length,) = struct.unpack(f"{endian}L", header[4:])
        else:
            vr = header[4:6]
            if not (vr.isalpha() and vr.isupper()):
                raise _GiveUpError
            if vr in LONG_LENGTH_VRS:
                (length,) = struct.unpack(f"{endian}L", self._read(4, f"the header of {what}"))
            else:
                (length,) = struct.unpack(f"{endian}H", header[6:])
            nested_implicit = vr == b"UN"  # an undefined-length UN holds implicit VR LE items (PS3.5 6.2.2)
        self.last_value = (self.fp.tell(), int(length))
        if length == UNDEFINED_LENGTH:
            self._items(nested_implicit, little or nested_implicit, depth + 1, what)
        else:
            self._skip(length, what)
        return tag

    def _items(self, implicit: bool, little: bool, depth: int, what: str) -> None:
        """The items of an undefined-length sequence or of encapsulated pixel data, up to its delimiter."""
        endian = "<" if little else ">"
        while True:
            group, number, length = struct.unpack(f"{endian}HHL", self._read(8, f"the items of {what}"))
            tag = int(group) << 16 | int(number)
            if tag == SEQUENCE_END:
                return
            if tag != ITEM:
                raise _GiveUpError
            if length == UNDEFINED_LENGTH:
                self.scan_dataset(implicit, little, depth, in_item=True)
            else:
                self._skip(length, f"an item of {what}")
