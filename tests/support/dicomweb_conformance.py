"""Checkers for DICOMweb answers: media types, multipart framing, the DICOM JSON Model, errors and headers.

Pure functions over what came off the wire (status, headers, bytes). Each returns a list of problems, empty
when the answer conforms, so a test can show every problem of an answer at once. The rules:

- **Media type negotiation** (RFC 9110 §12.5.1, PS3.18 §8.7): the answer's ``Content-Type`` is one of the
  media ranges the ``Accept`` header allowed (q > 0), and for ``multipart/related`` the ``type`` parameter
  matches the range's ``type`` when the range gave one.
- **Multipart framing** (RFC 2046 §5.1.1, RFC 2387 §3, PS3.18 §8.6.1.2): ``boundary`` present (1-70 characters
  of the bchars set, not ending in a space) and used; a ``type`` parameter (mandatory for multipart/related)
  equal to the media type of the parts; delimiters at the start of a line and preceded by CRLF, header lines
  ended by CRLF, a blank line before every part body, a close delimiter; no part contains the boundary string;
  every part has a ``Content-Type``.
- **DICOM JSON Model** (PS3.18 §F.2): an array of objects where the route answers several data sets; every
  key is 8 uppercase hex digits, keys in ascending order (F.2.1.1); every attribute has a ``vr`` from PS3.5
  Table 6.2-1 and at most one of ``Value`` / ``BulkDataURI`` / ``InlineBinary`` (F.2.2, none for an empty
  value: F.2.5); ``Value`` is a non-empty array; PN values are objects with only ``Alphabetic``,
  ``Ideographic``, ``Phonetic`` (F.2.2); SQ items are data sets, checked recursively (F.2.6); IS/DS and the
  binary-number VRs are JSON numbers (F.2.3.1); AT values are 8 hex digits, UI values UIDs (PS3.5 §9.1);
  binary VRs carry no ``Value`` and ``InlineBinary`` is base64 (F.2.7).
- **Errors**: the status of the case, ``application/json`` with ``{"__type", "message"}`` strings and a matching
  ``x-amzn-ErrorType`` (HealthImaging's error shape, guide 2080-2100).
- **Headers**: ``x-amzn-RequestId`` on every answer; ``Access-Control-Allow-Origin`` (and the exposed headers a
  viewer reads) on every answer to a request with ``Origin``.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

# --- media types -----------------------------------------------------------------------------------------

_TOKEN = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_QUOTED = r'"(?:[^"\\]|\\.)*"'
_MEDIA_TYPE = re.compile(rf"^\s*({_TOKEN})/({_TOKEN})\s*(.*)$", re.DOTALL)
_PARAMETER = re.compile(rf"^\s*;\s*({_TOKEN})\s*=\s*({_TOKEN}|{_QUOTED})\s*")
# Lenient form for request headers: clients send type=application/dicom unquoted although "/" is a tspecial.
_LENIENT_PARAMETER = re.compile(rf"^\s*;\s*({_TOKEN})\s*=\s*([!#$%&'*+./^_`|~0-9A-Za-z-]+|{_QUOTED})\s*")


@dataclass(frozen=True)
class MediaType:
    """``type/subtype`` (lowercase) and its parameters (names lowercase, values unquoted)."""

    essence: str
    params: Mapping[str, str] = field(default_factory=dict)

    @property
    def quality(self) -> float:
        try:
            return float(self.params.get("q", "1"))
        except ValueError:
            return 0.0


def parse_media_type(value: str, *, lenient: bool = False) -> MediaType:
    """RFC 9110 §8.3.1 ``media-type``; ValueError when the syntax is wrong.

    A parameter value with a ``/`` must be quoted (RFC 2045 §5.1 tspecials); ``lenient`` accepts it bare, as
    DICOMweb clients write it in ``Accept``.
    """
    found = _MEDIA_TYPE.match(value)
    if found is None:
        raise ValueError(f"not a media type: {value!r}")
    params: dict[str, str] = {}
    rest = found.group(3)
    while rest.strip():
        parameter = (_LENIENT_PARAMETER if lenient else _PARAMETER).match(rest)
        if parameter is None:
            raise ValueError(f"malformed parameters {rest!r} in {value!r}")
        raw = parameter.group(2)
        params[parameter.group(1).lower()] = re.sub(r"\\(.)", r"\1", raw[1:-1]) if raw.startswith('"') else raw
        rest = rest[parameter.end() :]
    return MediaType(f"{found.group(1)}/{found.group(2)}".lower(), params)


def _split_commas(value: str) -> list[str]:
    """Split a header list on commas outside quoted strings."""
    items, current, quoted, escaped = [], [], False, False
    for char in value:
        if escaped:
            escaped = False
        elif char == "\\" and quoted:
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == "," and not quoted:
            items.append("".join(current))
            current = []
            continue
        current.append(char)
    items.append("".join(current))
    return [item.strip() for item in items if item.strip()]


def parse_accept(value: str) -> list[MediaType]:
    """The media ranges of an ``Accept`` header (``*/*`` when empty, RFC 9110 §12.5.1)."""
    return [parse_media_type(item, lenient=True) for item in _split_commas(value)] or [MediaType("*/*")]


def _essence_matches(accepted: str, answer: str) -> bool:
    kind, _, subtype = accepted.partition("/")
    if accepted == "*/*":
        return True
    if subtype == "*":
        return answer.startswith(f"{kind}/")
    return accepted == answer


def _range_matches(accepted: MediaType, answer: MediaType) -> bool:
    if not _essence_matches(accepted.essence, answer.essence):
        return False
    wanted_type = accepted.params.get("type")
    if answer.essence == "multipart/related" and wanted_type:
        given = answer.params.get("type")
        if given is None:
            return False
        return _essence_matches(parse_media_type(wanted_type).essence, parse_media_type(given).essence)
    return True


def check_negotiated(accept: str, content_type: str | None) -> list[str]:
    """The answer's Content-Type is one of the acceptable media ranges (q > 0)."""
    if not content_type:
        return ["the answer has no Content-Type"]
    try:
        answer = parse_media_type(content_type)
        ranges = parse_accept(accept)
    except ValueError as exc:
        return [str(exc)]
    acceptable = [r for r in ranges if r.quality > 0]
    if any(_range_matches(r, answer) for r in acceptable):
        return []
    return [f"Content-Type {content_type!r} is not acceptable for Accept {accept!r}"]


# --- multipart/related ------------------------------------------------------------------------------------

_BCHARS = re.compile(r"^[0-9A-Za-z'()+_,\-./:=? ]{0,69}[0-9A-Za-z'()+_,\-./:=?]$")
_CRLF = b"\r\n"


@dataclass(frozen=True)
class Part:
    """One body part: its headers (names lowercase) and its bytes."""

    headers: Mapping[str, str]
    body: bytes

    @property
    def content_type(self) -> str | None:
        return self.headers.get("content-type")


def _parse_part(index: int, raw: bytes, problems: list[str]) -> Part:
    if raw.startswith(_CRLF):
        header_block, body = b"", raw[2:]
    else:
        header_block, separator, body = raw.partition(b"\r\n\r\n")
        if not separator:
            problems.append(f"part {index}: no blank line (CRLF CRLF) between headers and body")
            return Part({}, raw)
    if re.search(rb"(?<!\r)\n", header_block) or re.search(rb"\r(?!\n)", header_block):
        problems.append(f"part {index}: header lines not ended by CRLF")
    headers: dict[str, str] = {}
    for line in header_block.decode("latin-1").replace("\r\n", "\n").split("\n"):
        if not line:
            continue
        name, colon, value = line.partition(":")
        if not colon or not name.strip() or name != name.strip():
            problems.append(f"part {index}: malformed header line {line!r}")
            continue
        headers[name.lower()] = value.strip()
    return Part(headers, body)


def split_multipart(boundary: str, body: bytes) -> tuple[list[str], list[Part]]:
    """The parts of a multipart body and the framing problems found (RFC 2046 §5.1.1)."""
    problems: list[str] = []
    dash = b"--" + boundary.encode("latin-1")
    if body.startswith(dash):
        position = 0
    else:
        found = body.find(_CRLF + dash)
        if found < 0:
            return [f"the boundary {boundary!r} is never used as a delimiter"], []
        position = found + 2
    parts: list[Part] = []
    while True:
        position += len(dash)
        if body[position : position + 2] == b"--":
            break  # close delimiter; what follows is the epilogue
        line_end = body.find(_CRLF, position)
        if line_end < 0 or body[position:line_end].strip(b" \t"):
            problems.append(f"delimiter {len(parts) + 1} is not followed by CRLF")
            if line_end < 0:
                return problems, parts
        start = line_end + 2
        following = body.find(_CRLF + dash, start)
        if following < 0:
            problems.append("no close delimiter (--boundary--) at the end of the body")
            parts.append(_parse_part(len(parts) + 1, body[start:], problems))
            return problems, parts
        parts.append(_parse_part(len(parts) + 1, body[start:following], problems))
        position = following + 2
    if not parts:
        problems.append("the multipart body has no part")
    for index, part in enumerate(parts, 1):
        if dash in part.body or dash[2:] in part.body:
            problems.append(f"part {index} contains the boundary string")
    return problems, parts


def check_multipart(
    content_type: str | None, body: bytes, *, part_type: str | None = None
) -> tuple[list[str], list[Part]]:
    """Framing and typing of a multipart/related answer; ``part_type`` is the media type every part must have."""
    if not content_type:
        return ["the answer has no Content-Type"], []
    try:
        media = parse_media_type(content_type)
    except ValueError as exc:
        return [str(exc)], []
    if media.essence != "multipart/related":
        return [f"Content-Type {content_type!r} is not multipart/related"], []
    problems: list[str] = []
    boundary = media.params.get("boundary")
    if not boundary:
        return ["multipart/related without a boundary parameter"], []
    if not _BCHARS.match(boundary):
        problems.append(f"boundary {boundary!r} is not 1-70 bchars (RFC 2046 §5.1.1)")
    declared = media.params.get("type")
    if not declared:
        problems.append("multipart/related without the mandatory type parameter (RFC 2387 §3.1)")
    framing, parts = split_multipart(boundary, body)
    problems += framing
    for index, part in enumerate(parts, 1):
        if not part.content_type:
            problems.append(f"part {index} has no Content-Type")
            continue
        try:
            essence = parse_media_type(part.content_type).essence
        except ValueError as exc:
            problems.append(f"part {index}: {exc}")
            continue
        if declared and essence != parse_media_type(declared).essence:
            problems.append(f"part {index} is {essence}, the type parameter says {declared}")
        if part_type and essence != parse_media_type(part_type).essence:
            problems.append(f"part {index} is {essence}, expected {part_type}")
    return problems, parts


# --- the DICOM JSON Model (PS3.18 §F.2) -------------------------------------------------------------------

VRS = frozenset(
    {
        "AE",
        "AS",
        "AT",
        "CS",
        "DA",
        "DS",
        "DT",
        "FD",
        "FL",
        "IS",
        "LO",
        "LT",
        "OB",
        "OD",
        "OF",
        "OL",
        "OV",
        "OW",
        "PN",
        "SH",
        "SL",
        "SQ",
        "SS",
        "ST",
        "SV",
        "TM",
        "UC",
        "UI",
        "UL",
        "UN",
        "UR",
        "US",
        "UT",
        "UV",
    }
)
_TEXT_VRS = frozenset({"AE", "AS", "CS", "DA", "DT", "LO", "LT", "SH", "ST", "TM", "UC", "UR", "UT"})
_SINGLE_VALUED = frozenset({"LT", "ST", "UT", "UR"})
_BINARY_VRS = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "UN"})
_INTEGER_RANGES = {"US": (0, 2**16 - 1), "SS": (-(2**15), 2**15 - 1), "UL": (0, 2**32 - 1), "SL": (-(2**31), 2**31 - 1)}
_BIG_INTEGERS = {"UV": (0, 2**64 - 1), "SV": (-(2**63), 2**63 - 1)}
_SPECIAL_FLOATS = frozenset({"NaN", "Infinity", "-Infinity"})
_TAG = re.compile(r"^[0-9A-F]{8}$")
_UID = re.compile(r"^(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*$")
_PN_GROUPS = frozenset({"Alphabetic", "Ideographic", "Phonetic"})
_ATTRIBUTE_KEYS = frozenset({"vr", "Value", "BulkDataURI", "InlineBinary"})


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _check_value(vr: str, item: object, where: str) -> list[str]:
    if vr == "SQ":
        if not isinstance(item, dict):
            return [f"{where}: an SQ item must be an object, got {type(item).__name__}"]
        return check_dataset(item, where)
    if item is None:
        return []
    if vr == "PN":
        if not isinstance(item, dict):
            return [f"{where}: a PN value must be an object, got {item!r}"]
        wrong = set(item) - _PN_GROUPS
        if wrong:
            return [f"{where}: PN keys {sorted(wrong)} are not Alphabetic/Ideographic/Phonetic"]
        return [f"{where}: PN {key} must be a string" for key, text in item.items() if not isinstance(text, str)]
    if vr in ("IS", "DS"):
        if not _is_number(item):
            return [f"{where}: an {vr} value must be a JSON number, got {item!r}"]
        if vr == "IS" and isinstance(item, float) and not item.is_integer():
            return [f"{where}: an IS value must be an integer, got {item!r}"]
        return []
    if vr in _INTEGER_RANGES:
        low, high = _INTEGER_RANGES[vr]
        if not isinstance(item, int) or isinstance(item, bool) or not low <= item <= high:
            return [f"{where}: a {vr} value must be an integer in {low}..{high}, got {item!r}"]
        return []
    if vr in _BIG_INTEGERS:
        low, high = _BIG_INTEGERS[vr]
        number = int(item) if isinstance(item, str) and re.fullmatch(r"-?\d+", item) else item
        if not isinstance(number, int) or isinstance(number, bool) or not low <= number <= high:
            return [f"{where}: a {vr} value must be an integer (number or string) in range, got {item!r}"]
        return []
    if vr in ("FL", "FD"):
        if not (_is_number(item) or item in _SPECIAL_FLOATS):
            return [f"{where}: a {vr} value must be a JSON number, got {item!r}"]
        return []
    if vr == "AT":
        if not isinstance(item, str) or not _TAG.match(item):
            return [f"{where}: an AT value must be 8 uppercase hex digits, got {item!r}"]
        return []
    if vr == "UI":
        if not isinstance(item, str) or len(item) > 64 or not _UID.match(item):
            return [f"{where}: not a UID: {item!r}"]
        return []
    if vr in _TEXT_VRS:
        return [] if isinstance(item, str) else [f"{where}: a {vr} value must be a string, got {item!r}"]
    return [f"{where}: no Value is allowed for VR {vr}"]


def check_attribute(tag: str, attribute: object, where: str = "") -> list[str]:
    """One attribute object of a data set (PS3.18 F.2.2-F.2.7)."""
    here = f"{where}/{tag}" if where else tag
    if not isinstance(attribute, dict):
        return [f"{here}: an attribute must be an object, got {type(attribute).__name__}"]
    problems = [f"{here}: unknown member {key!r}" for key in sorted(set(attribute) - _ATTRIBUTE_KEYS)]
    vr = attribute.get("vr")
    if vr not in VRS:
        return [*problems, f"{here}: 'vr' {vr!r} is not a PS3.5 VR"]
    carriers = [key for key in ("Value", "BulkDataURI", "InlineBinary") if key in attribute]
    if len(carriers) > 1:
        problems.append(f"{here}: more than one of Value / BulkDataURI / InlineBinary: {carriers}")
    if "Value" in attribute:
        values = attribute["Value"]
        if vr in _BINARY_VRS:
            problems.append(f"{here}: VR {vr} carries InlineBinary or BulkDataURI, never Value")
        elif not isinstance(values, list) or not values:
            problems.append(f"{here}: 'Value' must be a non-empty array, got {values!r}")
        else:
            if vr in _SINGLE_VALUED and len(values) > 1:
                problems.append(f"{here}: VR {vr} has exactly one value, got {len(values)}")
            for index, item in enumerate(values):
                problems += _check_value(vr, item, f"{here}[{index}]")
    if "InlineBinary" in attribute:
        inline = attribute["InlineBinary"]
        if vr not in _BINARY_VRS:
            problems.append(f"{here}: InlineBinary on VR {vr}")
        try:
            base64.b64decode(inline, validate=True)
        except (binascii.Error, TypeError, ValueError):
            problems.append(f"{here}: InlineBinary is not base64")
    if "BulkDataURI" in attribute:
        uri = attribute["BulkDataURI"]
        if not isinstance(uri, str) or not uri or any(c.isspace() for c in uri):
            problems.append(f"{here}: BulkDataURI must be a URI string, got {uri!r}")
    return problems


def check_dataset(dataset: object, where: str = "") -> list[str]:
    """One data set object: 8-hex keys in ascending order, each attribute conforming."""
    if not isinstance(dataset, dict):
        return [f"{where or 'data set'}: a data set must be an object, got {type(dataset).__name__}"]
    problems: list[str] = []
    keys = list(dataset)
    for key in keys:
        if not isinstance(key, str) or not _TAG.match(key):
            problems.append(f"{where}: key {key!r} is not 8 uppercase hex digits")
    if keys != sorted(keys):
        problems.append(f"{where or 'data set'}: keys are not in ascending tag order")
    for key, attribute in dataset.items():
        problems += check_attribute(str(key), attribute, where)
    return problems


def check_dicom_json(document: object, *, array: bool = True, required: Sequence[str] = ()) -> list[str]:
    """A DICOM JSON answer: an array of data sets (``array``) or one data set; ``required`` tags in each."""
    if array and not isinstance(document, list):
        return [f"the answer must be a JSON array of data sets, got {type(document).__name__}"]
    datasets = document if isinstance(document, list) else [document]
    problems: list[str] = []
    for index, dataset in enumerate(datasets):
        where = f"[{index}]" if array else ""
        problems += check_dataset(dataset, where)
        if isinstance(dataset, dict):
            problems += [f"{where or 'data set'}: required {tag} is missing" for tag in required if tag not in dataset]
    return problems


def check_dicom_json_body(body: bytes, *, array: bool = True, required: Sequence[str] = ()) -> list[str]:
    """``check_dicom_json`` over the raw bytes (which must be UTF-8 JSON, PS3.18 §F.2)."""
    try:
        document = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return [f"the answer is not UTF-8 JSON: {exc}"]
    return check_dicom_json(document, array=array, required=required)


# --- errors and headers -----------------------------------------------------------------------------------

ERROR_CODES = {
    400: {"ValidationException", "BadRequestException"},
    403: {"AccessDeniedException", "MissingAuthenticationTokenException", "InvalidSignatureException"},
    404: {"ResourceNotFoundException"},
    405: {"MethodNotAllowedException"},
    406: {"NotAcceptableException"},
    409: {"ConflictException"},
    413: {"RequestEntityTooLarge"},
    415: {"UnsupportedMediaTypeException"},
    416: {"RequestedRangeNotSatisfiableException", "RequestedRangeNotSatisfiableError"},
}


def check_error(status: int, headers: Mapping[str, str], body: bytes, expected_status: int) -> list[str]:
    """An error answer: the expected status, JSON ``{"__type", "message"}``, a matching ``x-amzn-ErrorType``."""
    problems: list[str] = []
    if status != expected_status:
        problems.append(f"status {status}, expected {expected_status}")
    lowered = {k.lower(): v for k, v in headers.items()}
    media = lowered.get("content-type", "")
    if media.split(";")[0].strip().lower() != "application/json":
        problems.append(f"an error answer must be application/json, got {media!r}")
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return [*problems, f"the error body is not JSON: {body[:200]!r}"]
    if not isinstance(document, dict):
        return [*problems, "the error body must be a JSON object"]
    code, message = document.get("__type"), document.get("message")
    if not isinstance(code, str) or not code:
        problems.append("the error body has no '__type' string")
    if not isinstance(message, str) or not message:
        problems.append("the error body has no 'message' string")
    if lowered.get("x-amzn-errortype") != code:
        problems.append(f"x-amzn-ErrorType {lowered.get('x-amzn-errortype')!r} differs from __type {code!r}")
    if expected_status in ERROR_CODES and code not in ERROR_CODES[expected_status]:
        problems.append(f"__type {code!r} is not an error code for status {expected_status}")
    if "Traceback" in body.decode(errors="replace"):
        problems.append("the error body carries a traceback")
    return problems


VIEWER_EXPOSED_HEADERS = frozenset({"etag", "content-range", "content-location", "x-amzn-requestid"})


def check_common_headers(headers: Mapping[str, str], origin: str | None) -> list[str]:
    """``x-amzn-RequestId`` always; CORS allowance and exposed headers when the request had an ``Origin``."""
    lowered = {k.lower(): v for k, v in headers.items()}
    problems: list[str] = []
    if not lowered.get("x-amzn-requestid"):
        problems.append("no x-amzn-RequestId")
    if origin is not None:
        allowed = lowered.get("access-control-allow-origin")
        if allowed not in ("*", origin):
            problems.append(f"Access-Control-Allow-Origin {allowed!r} does not allow {origin!r}")
        exposed = {h.strip().lower() for h in lowered.get("access-control-expose-headers", "").split(",")}
        missing = VIEWER_EXPOSED_HEADERS - exposed
        if missing:
            problems.append(f"headers not exposed to a page: {sorted(missing)}")
    return problems


def json_of(body: bytes) -> Any:
    """The JSON document of a body (for tests that read what they checked)."""
    return json.loads(body)
