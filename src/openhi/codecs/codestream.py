"""Read the main header of a JPEG 2000 / HTJ2K codestream (ISO/IEC 15444-1 Annex A, 15444-15).

Only what the archive needs: image size, component precision and signedness (SIZ), progression order,
number of decompositions, wavelet and multiple component transform (COD), whether TLM markers are present,
and the tile-part layout (SOT). Used to sign-correct decoded frames (PS3.5 8.2.4), to walk resolution
levels for the checksums and to check the .4.202 conformance rules (PS3.5 8.2.14: RPCL, TLM, base
resolution <= 64 pixels).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from openhi.codecs.errors import FrameDecodeError

SOC = 0xFF4F
SIZ = 0xFF51
COD = 0xFF52
TLM = 0xFF55
CAP = 0xFF50
SOT = 0xFF90
EOC = 0xFFD9

PROGRESSION_ORDERS = ("LRCP", "RLCP", "RPCL", "PCRL", "CPRL")
_JP2_SIGNATURE = b"\x00\x00\x00\x0cjP  \r\n\x87\n"


@dataclass(frozen=True)
class TilePart:
    """One tile-part: its offset in the codestream, length (Psot), tile index, part index and count."""

    offset: int
    length: int
    tile: int
    part: int
    parts: int


@dataclass(frozen=True)
class CodestreamInfo:
    """Main-header facts of a J2K / HTJ2K codestream."""

    width: int
    height: int
    components: int
    precision: int
    signed: bool
    progression_order: str
    decompositions: int
    reversible: bool
    multiple_component_transform: bool
    has_tlm: bool
    has_cap: bool
    tile_parts: tuple[TilePart, ...] = field(default=())


def _u16(data: bytes, at: int) -> int:
    return int.from_bytes(data[at : at + 2], "big")


def _u32(data: bytes, at: int) -> int:
    return int.from_bytes(data[at : at + 4], "big")


def _unwrap_jp2(data: bytes) -> bytes:
    """The contiguous codestream box of a JP2 file, else ``data`` unchanged.

    PS3.5 A.4.4 forbids the JP2 header in DICOM, but some writers (old GDCM) embed whole JP2 files; the
    decoders accept them, so the header reader does too.
    """
    if not data.startswith(_JP2_SIGNATURE):
        return data
    at = 0
    while at + 8 <= len(data):
        length, kind = _u32(data, at), data[at + 4 : at + 8]
        header = 8
        if length == 1:  # extended length
            length, header = int.from_bytes(data[at + 8 : at + 16], "big"), 16
        end = len(data) if length == 0 else at + length
        if kind == b"jp2c":
            return data[at + header : end]
        if length < header:
            break
        at = end
    return data


def parse_codestream(data: bytes) -> CodestreamInfo:
    """Parse the main header (and the SOT chain) of ``data``; ``FrameDecodeError`` when it is no codestream.

    Offsets in ``tile_parts`` are relative to the codestream (inside the ``jp2c`` box for a JP2 file).

    Only the first component's SIZ entry is reported (the archive encodes all components alike).
    """
    data = _unwrap_jp2(bytes(data))
    if len(data) < 4 or _u16(data, 0) != SOC:
        raise FrameDecodeError("not a JPEG 2000 codestream (no SOC marker)")
    at = 2
    siz: bytes | None = None
    cod: bytes | None = None
    has_tlm = has_cap = False
    while at + 4 <= len(data):
        marker = _u16(data, at)
        if marker == SOT:
            break
        length = _u16(data, at + 2)
        segment = data[at + 4 : at + 2 + length]
        if marker == SIZ:
            siz = segment
        elif marker == COD:
            cod = segment
        elif marker == TLM:
            has_tlm = True
        elif marker == CAP:
            has_cap = True
        at += 2 + length
    if siz is None or cod is None or len(siz) < 39 or len(cod) < 10:
        raise FrameDecodeError("JPEG 2000 codestream without a complete SIZ and COD main header")
    tile_parts = []
    while at + 12 <= len(data) and _u16(data, at) == SOT:
        psot = _u32(data, at + 6)
        tile_parts.append(TilePart(at, psot, _u16(data, at + 4), data[at + 10], data[at + 11]))
        if psot == 0:  # last tile-part runs to EOC
            break
        at += psot
    width = _u32(siz, 2) - _u32(siz, 10)
    height = _u32(siz, 6) - _u32(siz, 14)
    ssiz = siz[36]
    progression = cod[1]
    return CodestreamInfo(
        width=width,
        height=height,
        components=_u16(siz, 34),
        precision=(ssiz & 0x7F) + 1,
        signed=bool(ssiz & 0x80),
        progression_order=PROGRESSION_ORDERS[progression] if progression < 5 else f"unknown({progression})",
        decompositions=cod[5],
        reversible=cod[9] == 1,
        multiple_component_transform=bool(cod[4]),
        has_tlm=has_tlm,
        has_cap=has_cap,
        tile_parts=tuple(tile_parts),
    )
