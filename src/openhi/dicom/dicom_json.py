"""Image set metadata (keyword-keyed JSON values) -> the DICOM JSON Model of PS3.18 §F.2.

The DICOMweb surface answers metadata and search results in ``application/dicom+json`` (guide 1990-2080,
2220-2330). This converts one ``DICOM`` object of an image set document (plus its DICOMVRs) directly, without
building a pydicom dataset, so that series metadata of thousands of instances stays cheap:

- keys become 8-hex tags, objects are ordered by tag (F.2.1), each attribute is ``{"vr": VR, "Value": [...]}``
  with ``Value`` absent for an empty attribute (F.2.5);
- multi-valued text is split on backslash (F.2.4); PN values become ``{"Alphabetic", "Ideographic",
  "Phonetic"}`` objects from their ``=``-separated component groups (F.2.2); IS and DS become JSON numbers
  when they parse, AT a hex string (F.2.3);
- SQ values are arrays of objects converted the same way (F.2.6);
- bytes become ``InlineBinary`` (base64, F.2.7); a ``{"BulkDataReference": id}`` value becomes
  ``{"BulkDataURI": bulk_uri(id)}`` (F.2.7, guide 2145-2160: values over 1 MB are served as BulkDataURIs).

The VR of an element comes from DICOMVRs (its dotted hex path) else the PS3.6 dictionary; for dictionary
entries with several VRs ("US or SS", "OB or OW") the first fitting one is chosen: SS for a negative number,
OW for bytes of "OB or OW" pixel-like elements (PS3.5 8.2), else the first listed.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

from openhi.dicom.json_values import (
    BULK_REFERENCE_KEY,
    JsonValue,
    dictionary_vrs,
    key_to_tag,
    tag_key,
)

type BulkUri = Callable[[str], str]
type DicomJson = dict[str, dict[str, Any]]

_NUMERIC_TEXT = {"IS": int, "DS": float}
_PN_GROUPS = ("Alphabetic", "Ideographic", "Phonetic")


def _choose_vr(tag: int, path: str, vrs: Mapping[str, str] | None, value: JsonValue) -> str:
    given = (vrs or {}).get(path)
    if given:
        return given
    allowed = dictionary_vrs(tag)
    if not allowed:
        return "UN"
    if len(allowed) == 1:
        return allowed[0]
    if "SS" in allowed and _has_negative(value):
        return "SS"
    if "OW" in allowed and isinstance(value, str | dict):
        return "OW"
    return allowed[0]


def _has_negative(value: JsonValue) -> bool:
    items = value if isinstance(value, list) else [value]
    return any(isinstance(item, int | float) and not isinstance(item, bool) and item < 0 for item in items)


def _person_name(text: str) -> dict[str, str]:
    groups = text.split("=")
    return {name: group for name, group in zip(_PN_GROUPS, groups, strict=False) if group}


def _text_number(vr: str, text: str) -> int | float | str:
    stripped = text.strip()
    try:
        number: int | float = _NUMERIC_TEXT[vr](stripped)
    except ValueError:
        return stripped  # kept as received: a value that is not a number is not invented (PS3.18 F.2.3)
    if isinstance(number, float) and not math.isfinite(number):
        return stripped
    if isinstance(number, float) and number.is_integer() and "." not in stripped and "e" not in stripped.lower():
        return int(number)
    return number


def _values(vr: str, value: JsonValue, path: str, vrs: Mapping[str, str] | None, bulk_uri: BulkUri) -> dict[str, Any]:
    if vr == "SQ":
        items = value if isinstance(value, list) else []
        return {
            "Value": [
                convert(item, vrs=vrs, prefix=path, bulk_uri=bulk_uri) for item in items if isinstance(item, dict)
            ]
        }
    if isinstance(value, dict):
        reference = value.get(BULK_REFERENCE_KEY)
        return {"BulkDataURI": bulk_uri(str(reference))} if isinstance(reference, str) else {}
    if isinstance(value, str) and vr in ("OB", "OD", "OF", "OL", "OV", "OW", "UN"):
        return {"InlineBinary": value}
    if isinstance(value, str):
        parts = [value] if vr in ("LT", "ST", "UT", "UR") else value.split("\\")
        if vr == "PN":
            return {"Value": [_person_name(part) if part else None for part in parts]}
        if vr in _NUMERIC_TEXT:
            return {"Value": [_text_number(vr, part) if part.strip() else None for part in parts]}
        return {"Value": parts}
    items = value if isinstance(value, list) else [value]
    if vr == "AT":
        return {"Value": [tag_key(int(item)) for item in items if isinstance(item, int | float)]}
    return {"Value": items}  # numbers; FL/FD values JSON cannot carry stay "NaN" / "Infinity" / "-Infinity"


def convert(
    obj: Mapping[str, JsonValue],
    *,
    vrs: Mapping[str, str] | None = None,
    prefix: str = "",
    bulk_uri: BulkUri = lambda reference: reference,
) -> DicomJson:
    """One ``DICOM`` object (or sequence item) of an image set document as a PS3.18 F.2 dataset object."""
    out: list[tuple[str, dict[str, Any]]] = []
    for key, value in obj.items():
        tag = key_to_tag(key)
        hex_key = tag_key(tag)
        path = f"{prefix}.{hex_key}" if prefix else hex_key
        vr = _choose_vr(tag, path, vrs, value)
        attribute: dict[str, Any] = {"vr": vr}
        if value is not None and value != "" and value != []:
            attribute.update(_values(vr, value, path, vrs, bulk_uri))
        out.append((hex_key, attribute))
    out.sort(key=lambda pair: pair[0])
    return dict(out)


def instance_dicom_json(
    document: Mapping[str, Any],
    series_uid: str,
    sop_uid: str,
    *,
    bulk_uri: BulkUri = lambda reference: reference,
) -> DicomJson:
    """Everything an image set document holds of one instance (Patient, Study, Series and Instance levels)."""
    study = document["Study"]
    series = study["Series"][series_uid]
    instance = series["Instances"][sop_uid]
    vrs = instance.get("DICOMVRs")
    merged: dict[str, JsonValue] = {}
    for level in (document["Patient"]["DICOM"], study["DICOM"], series["DICOM"], instance["DICOM"]):
        merged.update(level)
    return convert(merged, vrs=vrs, bulk_uri=bulk_uri)
