"""The transfer syntaxes the import understands, and what happens to each.

Rules: guide lines 22563-22619 (supported transfer syntaxes; the ``*`` entries are stored in their original
encoding, everything else is transcoded to the data store's lossless storage format). Explicit VR Little
Endian is kept as is only for binary segmentations (Bits Allocated 1); other native data is transcoded.
The GetImageFrame Content-Type per stored syntax follows shared/spec/aws-wire-api.md section 8b.

Beyond the guide's table, OpenHI also decodes JPEG XL Lossless (.4.110, transcoded like every other
lossless syntax) and keeps JPEG XL JPEG Recompression (.4.111) as is (its pixels come from a lossy JPEG and
decoders may differ in the last bit, exactly like .4.112). Every other UID (JPIP, Encapsulated Uncompressed,
private syntaxes) is unsupported: warning 0xB120, stored as a blob.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Family(StrEnum):
    """Decoder family of a transfer syntax (selects the decoding route)."""

    NATIVE = "native"
    RLE = "rle"
    JPEG = "jpeg"
    JPEG_LOSSLESS = "jpeg-lossless"
    JPEG_LS = "jpeg-ls"
    JPEG_2000 = "jpeg-2000"
    HTJ2K = "htj2k"
    JPEG_XL = "jpeg-xl"
    VIDEO = "video"


IMPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2"
EXPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2.1"
DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2.1.99"
EXPLICIT_VR_BIG_ENDIAN = "1.2.840.10008.1.2.2"
JPEG_BASELINE_8BIT = "1.2.840.10008.1.2.4.50"
JPEG_EXTENDED_12BIT = "1.2.840.10008.1.2.4.51"
JPEG_LOSSLESS = "1.2.840.10008.1.2.4.57"
JPEG_LOSSLESS_SV1 = "1.2.840.10008.1.2.4.70"
JPEG_LS_LOSSLESS = "1.2.840.10008.1.2.4.80"
JPEG_LS_NEAR_LOSSLESS = "1.2.840.10008.1.2.4.81"
JPEG_2000_LOSSLESS = "1.2.840.10008.1.2.4.90"
JPEG_2000 = "1.2.840.10008.1.2.4.91"
JPEG_2000_MC_LOSSLESS = "1.2.840.10008.1.2.4.92"
JPEG_2000_MC = "1.2.840.10008.1.2.4.93"
JPEG_XL_LOSSLESS = "1.2.840.10008.1.2.4.110"
JPEG_XL_JPEG_RECOMPRESSION = "1.2.840.10008.1.2.4.111"
JPEG_XL = "1.2.840.10008.1.2.4.112"
HTJ2K_LOSSLESS = "1.2.840.10008.1.2.4.201"
HTJ2K_LOSSLESS_RPCL = "1.2.840.10008.1.2.4.202"
HTJ2K = "1.2.840.10008.1.2.4.203"
RLE_LOSSLESS = "1.2.840.10008.1.2.5"


@dataclass(frozen=True)
class TransferSyntax:
    """One row of the table.

    ``kept`` means always stored in the original encoding (the guide's ``*``); ``lossless`` means the
    encoding cannot lose information (lossy-capable syntaxes are ``False`` even when a given stream is
    lossless); ``content_type`` is GetImageFrame's Content-Type when frames are stored in this syntax.
    """

    uid: str
    name: str
    family: Family
    lossless: bool
    kept: bool
    content_type: str

    @property
    def encapsulated(self) -> bool:
        """Whether Pixel Data is a sequence of fragments (PS3.5 A.4) rather than native bytes."""
        return self.family is not Family.NATIVE


_OCTETS = "application/octet-stream"
_J2C = "image/j2c"
_JPH = "image/jph"
_JXL = "image/jxl"


def _video(uid: str, name: str, content_type: str) -> TransferSyntax:
    return TransferSyntax(uid, name, Family.VIDEO, False, True, content_type)


_ROWS: tuple[TransferSyntax, ...] = (
    TransferSyntax(IMPLICIT_VR_LITTLE_ENDIAN, "Implicit VR Little Endian", Family.NATIVE, True, False, _OCTETS),
    TransferSyntax(EXPLICIT_VR_LITTLE_ENDIAN, "Explicit VR Little Endian", Family.NATIVE, True, False, _OCTETS),
    TransferSyntax(
        DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN,
        "Deflated Explicit VR Little Endian",
        Family.NATIVE,
        True,
        False,
        _OCTETS,
    ),
    TransferSyntax(EXPLICIT_VR_BIG_ENDIAN, "Explicit VR Big Endian", Family.NATIVE, True, False, _OCTETS),
    TransferSyntax(JPEG_BASELINE_8BIT, "JPEG Baseline (Process 1)", Family.JPEG, False, True, "image/jpeg"),
    TransferSyntax(JPEG_EXTENDED_12BIT, "JPEG Extended (Process 2 & 4)", Family.JPEG, False, False, "image/jpeg"),
    TransferSyntax(
        JPEG_LOSSLESS,
        "JPEG Lossless, Non-Hierarchical (Process 14)",
        Family.JPEG_LOSSLESS,
        True,
        False,
        "image/jpeg",
    ),
    TransferSyntax(
        JPEG_LOSSLESS_SV1,
        "JPEG Lossless, Non-Hierarchical, First-Order Prediction",
        Family.JPEG_LOSSLESS,
        True,
        False,
        "image/jpeg",
    ),
    TransferSyntax(JPEG_LS_LOSSLESS, "JPEG-LS Lossless", Family.JPEG_LS, True, False, "image/jls"),
    TransferSyntax(JPEG_LS_NEAR_LOSSLESS, "JPEG-LS Lossy (Near-Lossless)", Family.JPEG_LS, False, False, "image/jls"),
    TransferSyntax(JPEG_2000_LOSSLESS, "JPEG 2000 (Lossless Only)", Family.JPEG_2000, True, False, _J2C),
    TransferSyntax(JPEG_2000, "JPEG 2000", Family.JPEG_2000, False, True, _J2C),
    TransferSyntax(
        JPEG_2000_MC_LOSSLESS,
        "JPEG 2000 Part 2 Multi-component (Lossless Only)",
        Family.JPEG_2000,
        True,
        False,
        _J2C,
    ),
    TransferSyntax(JPEG_2000_MC, "JPEG 2000 Part 2 Multi-component", Family.JPEG_2000, False, False, _J2C),
    TransferSyntax(JPEG_XL_LOSSLESS, "JPEG XL Lossless", Family.JPEG_XL, True, False, _JXL),
    TransferSyntax(JPEG_XL_JPEG_RECOMPRESSION, "JPEG XL JPEG Recompression", Family.JPEG_XL, False, True, _JXL),
    TransferSyntax(JPEG_XL, "JPEG XL", Family.JPEG_XL, False, True, _JXL),
    TransferSyntax(HTJ2K_LOSSLESS, "HTJ2K (Lossless Only)", Family.HTJ2K, True, False, _JPH),
    TransferSyntax(HTJ2K_LOSSLESS_RPCL, "HTJ2K with RPCL Options (Lossless Only)", Family.HTJ2K, True, False, _JPH),
    TransferSyntax(HTJ2K, "HTJ2K", Family.HTJ2K, False, True, "image/jphc"),
    TransferSyntax(RLE_LOSSLESS, "RLE Lossless", Family.RLE, True, False, _OCTETS),
    _video("1.2.840.10008.1.2.4.100", "MPEG2 Main Profile / Main Level", "video/mpeg"),
    _video("1.2.840.10008.1.2.4.100.1", "Fragmentable MPEG2 Main Profile / Main Level", "video/mpeg"),
    _video("1.2.840.10008.1.2.4.101", "MPEG2 Main Profile / High Level", "video/mpeg"),
    _video("1.2.840.10008.1.2.4.101.1", "Fragmentable MPEG2 Main Profile / High Level", "video/mpeg"),
    _video("1.2.840.10008.1.2.4.102", "MPEG-4 AVC/H.264 High Profile / Level 4.1", "video/mp4"),
    _video("1.2.840.10008.1.2.4.102.1", "Fragmentable MPEG-4 AVC/H.264 High Profile / Level 4.1", "video/mp4"),
    _video("1.2.840.10008.1.2.4.103", "MPEG-4 AVC/H.264 BD-compatible High Profile / Level 4.1", "video/mp4"),
    _video(
        "1.2.840.10008.1.2.4.103.1",
        "Fragmentable MPEG-4 AVC/H.264 BD-compatible High Profile / Level 4.1",
        "video/mp4",
    ),
    _video("1.2.840.10008.1.2.4.104", "MPEG-4 AVC/H.264 High Profile / Level 4.2 For 2D Video", "video/mp4"),
    _video(
        "1.2.840.10008.1.2.4.104.1",
        "Fragmentable MPEG-4 AVC/H.264 High Profile / Level 4.2 For 2D Video",
        "video/mp4",
    ),
    _video("1.2.840.10008.1.2.4.105", "MPEG-4 AVC/H.264 High Profile / Level 4.2 For 3D Video", "video/mp4"),
    _video(
        "1.2.840.10008.1.2.4.105.1",
        "Fragmentable MPEG-4 AVC/H.264 High Profile / Level 4.2 For 3D Video",
        "video/mp4",
    ),
    _video("1.2.840.10008.1.2.4.106", "MPEG-4 AVC/H.264 Stereo High Profile / Level 4.2", "video/mp4"),
    _video(
        "1.2.840.10008.1.2.4.106.1",
        "Fragmentable MPEG-4 AVC/H.264 Stereo High Profile / Level 4.2",
        "video/mp4",
    ),
    _video("1.2.840.10008.1.2.4.107", "HEVC/H.265 Main Profile / Level 5.1", "video/H256"),
    _video("1.2.840.10008.1.2.4.108", "HEVC/H.265 Main 10 Profile / Level 5.1", "video/H256"),
)

TRANSFER_SYNTAXES: dict[str, TransferSyntax] = {row.uid: row for row in _ROWS}

#: Families this room can decode to pixels (video and unknown UIDs are stored as blobs).
DECODABLE_FAMILIES = frozenset(Family) - {Family.VIDEO}


def lookup(uid: str) -> TransferSyntax | None:
    """The table row of ``uid`` or ``None`` when the UID is not supported."""
    return TRANSFER_SYNTAXES.get(str(uid).strip().rstrip("\x00"))


def kept_as_is(uid: str, bits_allocated: int) -> bool:
    """Whether frames of ``uid`` are stored in their original encoding (guide 22563-22619).

    The ``*`` syntaxes always; Explicit VR Little Endian only for binary segmentations (Bits Allocated 1).
    Unknown UIDs answer ``False``: they are not "kept", they are stored as a blob with warning 0xB120.
    """
    row = lookup(uid)
    if row is None:
        return False
    return row.kept or (row.uid == EXPLICIT_VR_LITTLE_ENDIAN and bits_allocated == 1)


def is_decodable(uid: str) -> bool:
    """Whether this room can decode frames of ``uid`` to pixels."""
    row = lookup(uid)
    return row is not None and row.family in DECODABLE_FAMILIES


def is_video(uid: str) -> bool:
    """Whether ``uid`` is an MPEG-2 / H.264 / HEVC video syntax (whole stream is one payload)."""
    row = lookup(uid)
    return row is not None and row.family is Family.VIDEO


def content_type(uid: str | None) -> str:
    """GetImageFrame's Content-Type for frames stored in ``uid`` (wire api section 8b).

    A missing stored syntax means the data store's default (HTJ2K .4.202): ``image/jph``. Syntaxes the
    table does not know (blobs with warning 0xB120) are ``application/octet-stream``.
    """
    if uid is None or not str(uid).strip():
        return _JPH
    row = lookup(uid)
    return row.content_type if row is not None else _OCTETS
