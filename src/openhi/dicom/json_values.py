"""DICOM element values <-> the JSON values of HealthImaging image set metadata, both ways.

The metadata example of the guide (4330-4395) fixes the shapes: ``"PatientID": "2178309"``,
``"PatientName": "MISTER^CT"``, ``"HighBit": 15``, ``"Exposure": "40"``, ``"RescaleSlope": "1"``,
``"PatientBirthDate": null``, ``"PixelData": null``. OpenHI's rules, by value representation (PS3.5 6.2):

- text VRs (AE AS CS DA DS DT IS LO LT PN SH ST TM UC UI UR UT): the value as a string, as stored minus its
  padding; several values are joined with ``\\`` as in the encoded value; DS and IS keep their own text
  ("1.50" stays "1.50"), PN is the raw name string ("MISTER^CT", component groups joined with ``=``);
- binary numbers (US SS UL SL FL FD SV UV AT): a number, or a list of numbers when there are several; AT is
  the tag as a 32-bit integer; FL/FD values JSON cannot carry are the strings "NaN", "Infinity", "-Infinity";
- bytes (OB OD OF OL OV OW UN, and ambiguous VRs such as "OB or OW" holding bytes): base64 (RFC 4648);
  :mod:`.normalize` replaces large ones by ``{"BulkDataReference": "<32 hex>"}``;
- SQ: a list of objects keyed like the top level (recursively);
- an empty value (zero length, no items) is ``null``.

Keys are PS3.6 keywords; private elements, elements of repeating groups and unknown elements use 8 uppercase
hex digits (``"001910F9"``, guide 7100-7130). The VR of those, and of any element whose VR differs from the
dictionary's, goes into DICOMVRs (``{"001910F9": "DS"}``) keyed by the dotted hex path of the element
(``"00091001.00191010"`` inside a sequence; item indices are not part of the key).
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from collections.abc import Callable, Mapping, MutableSequence
from functools import lru_cache
from typing import Any

from pydicom.datadict import dictionary_has_tag, dictionary_keyword, dictionary_VR, tag_for_keyword
from pydicom.dataelem import DataElement, RawDataElement, empty_value_for_VR
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.valuerep import PersonName

type JsonValue = bool | int | float | str | list[JsonValue] | dict[str, JsonValue] | None
type Path = tuple[int, ...]
"""Where an element sits: (tag,) at the top level, (sequence tag, item index, tag, ...) when nested."""

TEXT_VRS = frozenset(
    {"AE", "AS", "CS", "DA", "DS", "DT", "IS", "LO", "LT", "PN", "SH", "ST", "TM", "UC", "UI", "UR", "UT"}
)
SINGLE_VALUED_TEXT_VRS = frozenset({"LT", "ST", "UT", "UR"})
NUMBER_VRS = frozenset({"US", "SS", "UL", "SL", "FL", "FD", "SV", "UV", "AT"})
FLOAT_VRS = frozenset({"FL", "FD"})
BULK_VRS = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "UN"})
BULK_REFERENCE_KEY = "BulkDataReference"

_HEX_KEY = re.compile(r"[0-9A-Fa-f]{8}")
_NON_FINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}

type BulkResolver = Callable[[str], bytes]


# -- keys ---------------------------------------------------------------------------------------------------


# Key <-> tag lookups are pure and run tens of times per instance when DICOM JSON is built (QIDO-RS, WADO-RS
# metadata); a bounded memo keeps them O(1) without growing with odd private keys.
_KEY_MEMO = 16384


@lru_cache(maxsize=_KEY_MEMO)
def tag_key(tag: int) -> str:
    """The 8-uppercase-hex key of a tag: 0x001910F9 -> "001910F9"."""
    return f"{int(tag):08X}"


def is_private(tag: int) -> bool:
    """Private data elements and private creators have an odd group number (PS3.5 7.8)."""
    return (int(tag) >> 16) % 2 == 1


def element_key(tag: int) -> str:
    """The metadata key: the PS3.6 keyword of a public dictionary element, else the 8-hex tag."""
    if not is_private(tag) and dictionary_has_tag(int(tag)):
        keyword = dictionary_keyword(int(tag))
        if keyword:
            return keyword
    return tag_key(tag)


@lru_cache(maxsize=_KEY_MEMO)
def key_to_tag(key: str) -> int:
    """The tag of a metadata key (keyword or 8 hex digits); ValueError for anything else."""
    if _HEX_KEY.fullmatch(key):
        return int(key, 16)
    tag = tag_for_keyword(key)
    if tag is None:
        raise ValueError(f"{key!r} is neither a DICOM keyword nor an 8-hex-digit tag")
    return tag


def vr_key(path: Path) -> str:
    """The DICOMVRs key of an element: the dotted hex tags of its path, without item indices."""
    return ".".join(tag_key(tag) for tag in path[::2])


@lru_cache(maxsize=_KEY_MEMO)
def dictionary_vrs(tag: int) -> tuple[str, ...]:
    """The VRs PS3.6 allows for ``tag`` ("US or SS" -> ("US", "SS")); empty for private and unknown tags."""
    if is_private(tag):
        return ("LO",) if 0x10 <= (int(tag) & 0xFFFF) <= 0xFF else ()
    try:
        return tuple(dictionary_VR(int(tag)).split(" or "))
    except KeyError:
        return ()


def needs_vr_record(tag: int, vr: str) -> bool:
    """True when the VR cannot be found from the key alone, so it must be written into DICOMVRs."""
    if is_private(tag) or not dictionary_has_tag(int(tag)):
        return True
    allowed = dictionary_vrs(tag)
    return vr not in allowed and vr != " or ".join(allowed)


# -- values -------------------------------------------------------------------------------------------------


def _is_multi(value: object) -> bool:
    return isinstance(value, list | tuple | MutableSequence) and not isinstance(value, str | bytes | bytearray)


def _is_empty(value: object) -> bool:
    if value is None:
        return True
    if isinstance(value, str | bytes | bytearray) or _is_multi(value):
        return len(value) == 0  # type: ignore[arg-type]
    return isinstance(value, PersonName) and str(value) == ""


def _text_item(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("latin-1")
    return str(value)


def _number(vr: str, value: Any) -> int | float | str:
    if vr in FLOAT_VRS:
        number = float(value)
        if math.isnan(number):
            return "NaN"
        if math.isinf(number):
            return "Infinity" if number > 0 else "-Infinity"
        return number
    if isinstance(value, float) and not value.is_integer():
        raise ValueError(f"{value!r} is not an integer, as VR {vr} requires")
    return int(value)


def is_ambiguous(vr: str) -> bool:
    """True for the dictionary's unresolved VRs such as "US or SS" and "OB or OW"."""
    return " or " in vr


def value_to_json(vr: str, value: Any) -> JsonValue:
    """The JSON value of a non-sequence element value of VR ``vr`` (rules in the module docstring)."""
    if vr == "SQ":
        raise ValueError("a sequence is a list of datasets: encode it with DatasetEncoder")
    if _is_empty(value):
        return None
    if vr in TEXT_VRS:
        if _is_multi(value):
            return "\\".join(_text_item(item) for item in value)
        return _text_item(value)
    if isinstance(value, bytes | bytearray):
        if vr in BULK_VRS or is_ambiguous(vr):
            return base64.b64encode(bytes(value)).decode("ascii")
        raise ValueError(f"undecoded bytes for VR {vr}")
    if vr in NUMBER_VRS or is_ambiguous(vr):
        if _is_multi(value):
            return [_number(vr, item) for item in value]
        return _number(vr, value)
    raise ValueError(f"cannot convert a {type(value).__name__} value of VR {vr!r}")


def _json_number(vr: str, value: JsonValue) -> int | float:
    if vr in FLOAT_VRS:
        if isinstance(value, str) and value in _NON_FINITE:
            return _NON_FINITE[value]
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    elif isinstance(value, int) and not isinstance(value, bool):
        return value
    elif isinstance(value, float) and value.is_integer():
        return int(value)
    raise ValueError(f"{value!r} is not a valid value of VR {vr}")


def json_to_element_value(
    vr: str,
    value: JsonValue,
    *,
    vrs: Mapping[str, str] | None = None,
    path: str = "",
    resolve_bulk: BulkResolver | None = None,
) -> Any:
    """The pydicom element value for a JSON value of VR ``vr`` (the inverse of :func:`value_to_json`).

    For SQ, items are built with :func:`json_to_dataset`; ``vrs`` (DICOMVRs) and ``path`` (the dotted hex
    path of this element) give the VRs of private elements inside. ``{"BulkDataReference": id}`` is resolved
    with ``resolve_bulk``. Raises ValueError when the JSON value does not fit the VR.
    """
    if vr == "SQ":
        if value is None:
            return Sequence()
        if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
            raise ValueError(f"a sequence must be a list of objects, not {value!r}")
        return Sequence(
            [json_to_dataset(item, vrs=vrs, prefix=path, resolve_bulk=resolve_bulk) for item in value]  # type: ignore[arg-type]
        )
    if value is None:
        return empty_value_for_VR(vr)
    if vr in TEXT_VRS:
        if isinstance(value, str):
            return value
        if vr in ("DS", "IS") and isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
        raise ValueError(f"a value of VR {vr} must be a string, not {value!r}")
    if isinstance(value, dict):
        reference = value.get(BULK_REFERENCE_KEY)
        if not isinstance(reference, str):
            raise ValueError(f"an object value of VR {vr} must be a bulk data reference, not {value!r}")
        if resolve_bulk is None:
            raise ValueError(f"bulk data reference {reference} cannot be resolved here")
        return resolve_bulk(reference)
    if isinstance(value, str) and (vr in BULK_VRS or (is_ambiguous(vr) and value not in _NON_FINITE)):
        try:
            return base64.b64decode(value, validate=True)
        except binascii.Error as exc:
            raise ValueError(f"a value of VR {vr} must be base64: {exc}") from exc
    if vr in NUMBER_VRS or is_ambiguous(vr):
        if isinstance(value, list):
            return [_json_number(vr, item) for item in value]
        return _json_number(vr, value)
    raise ValueError(f"{value!r} is not a valid value of VR {vr!r}")


def json_to_dataset(
    obj: Mapping[str, JsonValue],
    *,
    vrs: Mapping[str, str] | None = None,
    prefix: str = "",
    resolve_bulk: BulkResolver | None = None,
) -> Dataset:
    """A dataset from a ``DICOM`` object (or a sequence item); VRs from ``vrs`` else the dictionary."""
    ds = Dataset()
    for key, value in obj.items():
        tag = key_to_tag(key)
        path = f"{prefix}.{tag_key(tag)}" if prefix else tag_key(tag)
        vr = (vrs or {}).get(path)
        if vr is None:
            allowed = dictionary_vrs(tag)
            if not allowed:
                raise ValueError(f"no VR is known for {key}: give it in DICOMVRs")
            vr = " or ".join(allowed)
        element_value = json_to_element_value(vr, value, vrs=vrs, path=path, resolve_bulk=resolve_bulk)
        ds.add(make_element(tag, vr, element_value))
    return ds


def make_element(tag: int, vr: str, value: Any) -> DataElement:
    """``DataElement(tag, vr, value)``, except that DS / IS text pydicom cannot parse (e.g. IS "1A", which
    pydicom itself keeps when reading) is kept as it is rather than refused, so such values round-trip."""
    try:
        return DataElement(tag, vr, value)
    except ValueError:
        if vr not in ("DS", "IS") or not isinstance(value, str):
            raise
        kept: str | list[str] = value.split("\\") if "\\" in value else value
        return DataElement(tag, vr, kept, already_converted=True)


# -- datasets -----------------------------------------------------------------------------------------------


class DatasetEncoder:
    """Encodes datasets into metadata objects, collecting DICOMVRs in ``vrs``.

    Subclasses refine three hooks: :meth:`encode_bytes` (e.g. bulk extraction), :meth:`inspect` (checks on
    each encoded element) and :meth:`coerced` (an element had to be kept as raw UN bytes).
    """

    def __init__(self) -> None:
        self.vrs: dict[str, str] = {}

    def skip(self, tag: int, path: Path) -> bool:
        """Left out: group lengths (gggg,0000; retired, PS3.5 7.2) and trailing padding (FFFC,FFFC)."""
        return (int(tag) & 0xFFFF) == 0 or int(tag) == 0xFFFCFFFC

    def encode_dataset(self, ds: Dataset, path: Path = ()) -> dict[str, JsonValue]:
        """The metadata object of a dataset (or a sequence item at ``path``)."""
        out: dict[str, JsonValue] = {}
        for tag in sorted(ds.keys()):
            if self.skip(tag, path):
                continue
            element_path = (*path, int(tag))
            out[element_key(tag)] = self.encode_element(self.read_element(ds, tag, element_path), element_path)
        return out

    def read_element(self, ds: Dataset, tag: int, path: Path) -> DataElement:
        """``ds[tag]``; a value pydicom cannot decode is kept as its raw bytes with VR UN."""
        try:
            return ds[tag]
        except Exception as exc:  # pydicom raises many types on malformed values
            raw = ds.get_item(tag)
            if not isinstance(raw, RawDataElement) or not isinstance(raw.value, bytes):
                raise
            self.coerced(path, f"could not be decoded as {raw.VR} ({exc}); kept as UN bytes")
            elem = DataElement(tag, "UN", raw.value)
            elem.VR = "UN"  # pydicom swaps UN for the dictionary VR of known tags
            return elem

    def encode_element(self, elem: DataElement, path: Path) -> JsonValue:
        """The JSON value of one element at ``path`` (whose last entry is the element's tag)."""
        vr = str(elem.VR)
        if vr == "SQ":
            items: list[JsonValue] = [
                self.encode_dataset(item, (*path, index)) for index, item in enumerate(elem.value or [])
            ]
            encoded: JsonValue = items or None
        elif isinstance(elem.value, bytes | bytearray) and vr not in TEXT_VRS and len(elem.value) > 0:
            if vr not in BULK_VRS and not is_ambiguous(vr):
                self.coerced(path, f"has an undecoded value of VR {vr}; kept as UN bytes")
                vr = "UN"
            encoded = self.encode_bytes(vr, bytes(elem.value), path)
        else:
            encoded = value_to_json(vr, elem.value)
        if needs_vr_record(path[-1], vr):
            self.vrs.setdefault(vr_key(path), vr)
        self.inspect(vr, path, encoded)
        return encoded

    def encode_bytes(self, vr: str, data: bytes, path: Path) -> JsonValue:
        """A non-empty bytes value: base64."""
        return base64.b64encode(data).decode("ascii")

    def inspect(self, vr: str, path: Path, value: JsonValue) -> None:
        """Called with every encoded element; the base encoder checks nothing."""

    def coerced(self, path: Path, message: str) -> None:
        """Called when an element is kept in another form than its VR (raw bytes as UN)."""


def dataset_to_json(ds: Dataset) -> tuple[dict[str, JsonValue], dict[str, str]]:
    """The metadata object of a whole dataset (every value inline) and its DICOMVRs."""
    encoder = DatasetEncoder()
    return encoder.encode_dataset(ds), encoder.vrs
