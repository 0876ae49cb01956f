"""Which transfer syntax a WADO-RS answer uses: negotiation between what the client accepts and what is stored.

Rules (guide 1955-1975 for GetDICOMInstance, 2110-2135 for GetDICOMInstanceFrames; PS3.18 §8.7.3):

- No ``transfer-syntax`` parameter: Explicit VR Little Endian (ELE, 1.2.840.10008.1.2.1) when the frames are
  stored losslessly and can be decoded ("default for lossless image frames"); otherwise (lossy stored
  syntaxes, frames kept as a blob after warning 0xB100 / 0xB120, video) the stored syntax, untranscoded (guide
  2125: "if transcoding to ELE is not possible, the pixels are returned without transcoding").
- ``transfer-syntax=*``: the stored syntax.
- The stored syntax's UID: the stored bytes. HTJ2K lossless RPCL (.4.202) is also a valid HTJ2K lossless
  (.4.201) codestream (PS3.5 8.2.14), so .4.201 is served from .4.202 frames as they are.
- ELE explicitly: only from lossless, decodable frames (a lossy codestream has no one true decoding, and
  blobs kept after a transcoding failure cannot be decoded): otherwise 406 (guide 2130: retry with ``*``).
- JPEG 2000 Lossless (.4.90) "if the instance is stored losslessly" (guide 1962): decoded and re-encoded.
- Anything else is 406 NotAcceptableException.
- Instances whose pixel data could not be delimited into frames at import (warnings 0xB110, 0xB111, 0xB112,
  guide 22881-22912) have no complete stored pixel data: every pixel representation of them is 406.
- Instances without pixel data answer ELE for absent / ``*`` / ELE (and their stored syntax by UID).

Frame parts are labelled with the DICOMweb media type of their syntax (PS3.18 Table 8.7.3-5): HTJ2K is
``image/jphc`` (the raw codestream; ``image/jph`` names the boxed file format), JPEG 2000 ``image/jp2``, RLE
``image/dicom-rle``; native data ``application/octet-stream``. The aliases clients send (``image/jph``,
``image/j2c``, ``image/x-jls``, ``image/x-dicom-rle``) are accepted on input.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from openhi.codecs import syntaxes as ts
from openhi.codecs.syntaxes import Family, lookup

ELE = ts.EXPLICIT_VR_LITTLE_ENDIAN
WILDCARD = "*"
OCTET_STREAM = "application/octet-stream"
DICOM = "application/dicom"
DEFAULT_STORED_SYNTAX = ts.HTJ2K_LOSSLESS_RPCL  # guide 22570: a missing StoredTransferSyntaxUID is the default

#: Warning codes (decimal, as WarningReason holds them) after which the frames are a blob in the input syntax.
BLOB_WARNINGS = frozenset({45312, 45344})  # 0xB100 TRANSCODING_EXCEPTION, 0xB120 UNSUPPORTED_TRANSFER_SYNTAX
#: Warning codes after which the pixel data could not be split into frames (nothing complete is stored).
UNDELIMITED_WARNINGS = frozenset({45328, 45329, 45330})  # 0xB110, 0xB111, 0xB112

_MEDIA_BY_FAMILY = {
    Family.NATIVE: OCTET_STREAM,
    Family.RLE: "image/dicom-rle",
    Family.JPEG: "image/jpeg",
    Family.JPEG_LOSSLESS: "image/jpeg",
    Family.JPEG_LS: "image/jls",
    Family.JPEG_2000: "image/jp2",
    Family.HTJ2K: "image/jphc",
    Family.JPEG_XL: "image/jxl",
}
_MEDIA_OVERRIDES = {ts.JPEG_2000_MC_LOSSLESS: "image/jpx", ts.JPEG_2000_MC: "image/jpx"}
_ALIASES = {
    "image/jph": "image/jphc",
    "image/j2c": "image/jp2",
    "image/x-jls": "image/jls",
    "image/x-dicom-rle": "image/dicom-rle",
    "video/h265": "video/H265",
}


def media_type(syntax: str) -> str:
    """The DICOMweb media type of content in ``syntax`` (PS3.18 Table 8.7.3-5); unknown syntaxes are octets."""
    row = lookup(syntax)
    if row is None:
        return OCTET_STREAM
    if row.uid in _MEDIA_OVERRIDES:
        return _MEDIA_OVERRIDES[row.uid]
    if row.family is Family.VIDEO:
        number = int(row.uid.split(".")[7])
        return "video/mpeg2" if number <= 101 else "video/mp4" if number <= 106 else "video/H265"
    return _MEDIA_BY_FAMILY[row.family]


def canonical(media: str) -> str:
    """A client's media type with aliases replaced by the name this server uses."""
    lowered = media.lower()
    return _ALIASES.get(lowered, lowered)


def media_type_matches(pattern: str, media_type: str) -> bool:
    """``*/*`` matches everything, ``image/*`` every ``image/...``, anything else only itself (case-insensitive;
    RFC 9110 §12.5.1 media ranges)."""
    pattern, media_type = pattern.lower(), media_type.lower()
    if pattern in ("*/*", media_type):
        return True
    major, _, minor = pattern.partition("/")
    return minor == "*" and media_type.partition("/")[0] == major


def covers(pattern: str, media: str) -> bool:
    """Whether the requested content type ``pattern`` (wildcards allowed, aliases too) covers ``media``."""
    return media_type_matches(canonical(pattern), canonical(media))


class Transcode(StrEnum):
    """How frames become the answer's syntax."""

    NONE = "none"  # the stored bytes
    NATIVE = "native"  # decoded to little-endian native pixels (ELE)
    J2K = "j2k"  # decoded and re-encoded as JPEG 2000 lossless


@dataclass(frozen=True)
class Output:
    """The answer's transfer syntax and how stored frames are turned into it."""

    syntax: str
    transcode: Transcode

    @property
    def media_type(self) -> str:
        """Media type of a frame part in this syntax."""
        return media_type(self.syntax)


@dataclass(frozen=True)
class StoredPixels:
    """What is stored of an instance's pixel data (from its image set document entry)."""

    syntax: str
    frame_count: int
    bits_allocated: int
    warnings: frozenset[int]

    @classmethod
    def of(cls, entry: Mapping[str, Any]) -> StoredPixels:
        """Facts of a document ``Instances`` entry (StoredTransferSyntaxUID, ImageFrames, WarningReason)."""
        dicom = entry.get("DICOM") or {}
        reasons = dicom.get("WarningReason")
        items = reasons if isinstance(reasons, list) else [reasons] if reasons is not None else []
        warnings = frozenset(int(item) for item in items if isinstance(item, int | float) or str(item).isdigit())
        bits = dicom.get("BitsAllocated")
        return cls(
            syntax=str(entry.get("StoredTransferSyntaxUID") or "").strip() or DEFAULT_STORED_SYNTAX,
            frame_count=len(entry.get("ImageFrames") or []),
            bits_allocated=int(bits) if isinstance(bits, int | float) else 0,
            warnings=warnings,
        )

    @property
    def has_pixels(self) -> bool:
        """Whether the instance has pixel data at all (stored frames, or frames lost at import)."""
        return self.frame_count > 0 or self.undelimited

    @property
    def undelimited(self) -> bool:
        """Whether the pixel data could not be split into frames at import (no complete copy is stored)."""
        return bool(self.warnings & UNDELIMITED_WARNINGS)

    @property
    def as_blob(self) -> bool:
        """Whether the frames were kept in their input encoding because they could not be transcoded."""
        return bool(self.warnings & BLOB_WARNINGS)

    @property
    def decodable_losslessly(self) -> bool:
        """Whether the stored frames can be decoded to the exact pixels: a lossless, decodable syntax."""
        row = lookup(self.syntax)
        return row is not None and row.lossless and not self.as_blob and row.family is not Family.VIDEO

    def output(self, requested: str | None) -> Output | None:
        """The answer's syntax for a requested ``transfer-syntax`` (None: absent); None when impossible."""
        if not self.has_pixels:
            if requested in (None, WILDCARD, ELE):
                return Output(ELE, Transcode.NONE)
            return Output(self.syntax, Transcode.NONE) if requested == self.syntax else None
        if self.undelimited:
            return None
        stored = Output(self.syntax, Transcode.NONE)
        native = self._native()
        if requested is None:
            return native or stored
        if requested == WILDCARD or requested == self.syntax:
            return stored
        if requested == ELE:
            return native
        if requested == ts.HTJ2K_LOSSLESS and self.syntax == ts.HTJ2K_LOSSLESS_RPCL:
            return Output(ts.HTJ2K_LOSSLESS, Transcode.NONE)
        if requested == ts.JPEG_2000_LOSSLESS and self.decodable_losslessly and self.bits_allocated > 1:
            return Output(ts.JPEG_2000_LOSSLESS, Transcode.J2K)
        return None

    def _native(self) -> Output | None:
        if not self.decodable_losslessly:
            return None
        row = lookup(self.syntax)
        kept = row is not None and row.family is Family.NATIVE  # ELE kept as is (binary segmentations)
        return Output(ELE, Transcode.NONE if kept else Transcode.NATIVE)

    def refusal(self, requested: str | None) -> str:
        """Why ``output(requested)`` is None, for the 406 message."""
        if self.undelimited:
            return (
                "the pixel data of this instance could not be split into frames at import "
                f"(WarningReason {sorted(self.warnings & UNDELIMITED_WARNINGS)}) and cannot be retrieved"
            )
        asked = "absent" if requested is None else requested
        return (
            f"transfer syntax {asked} cannot be produced from the stored transfer syntax {self.syntax}"
            + (" (kept as a blob after an import warning)" if self.as_blob else "")
            + "; retry with transfer-syntax=*"
        )


class Wanted(Protocol):
    """One acceptable representation, as ``api.dicomweb.accept.MediaRange`` describes it."""

    @property
    def part_type(self) -> str: ...

    @property
    def transfer_syntax(self) -> str | None: ...


def frame_output(stored: StoredPixels, wanted: Wanted) -> Output | None:
    """The frames' syntax for one acceptable range (its content type and ``transfer-syntax``), or None.

    ``application/octet-stream`` without a transfer syntax is the ELE default (stored syntax when ELE cannot be
    made, guide 2125); a compressed content type without one is the stored syntax when it has that type (or
    JPEG 2000 lossless made from lossless frames for ``image/jp2``); ``*/*`` and ``image/*`` without one are the
    stored syntax. ``transfer-syntax=*`` is always the stored syntax (Cornerstone asks
    ``type=application/octet-stream; transfer-syntax=*`` and reads each part's Content-Type).
    """
    part = canonical(wanted.part_type)
    requested = wanted.transfer_syntax
    if requested == WILDCARD:
        return stored.output(WILDCARD)
    if requested is None:
        if part == OCTET_STREAM:
            return stored.output(None)
        stored_output = stored.output(WILDCARD)
        if stored_output is not None and covers(part, stored_output.media_type):
            return stored_output
        if part == "image/jp2":
            return stored.output(ts.JPEG_2000_LOSSLESS)
        return None
    output = stored.output(requested)
    if output is None or not covers(part, output.media_type):
        return None
    return output


def instance_output(stored: StoredPixels, wanted: Wanted) -> Output | None:
    """The P10 syntax for one acceptable range, which must take ``application/dicom``; None when impossible."""
    if not covers(wanted.part_type, DICOM):
        return None
    return stored.output(wanted.transfer_syntax)


def negotiate[W: Wanted](ranges: Iterable[W], choose: Callable[[W], Output | None]) -> tuple[W, Output] | None:
    """The first acceptable range (best first) that ``choose`` can serve, with its output; None when none can."""
    for wanted in ranges:
        output = choose(wanted)
        if output is not None:
            return wanted, output
    return None
