"""Server-side validation of every input against the model (aws-wire-api.md §2 "Client-side validation").

botocore checks only required members, ``min`` and union exclusivity; ``max``, ``pattern`` and ``enum``
arrive unchecked, so this module checks every constraint the model states, refuses members the model
does not know, and converts wire values to Python ones (timestamps to aware datetimes, blobs to bytes).
Failures are reported all at once in the service's own wording ("2 validation errors detected: Value
'x' at 'datastoreName' failed to satisfy constraint: ...") as one ValidationException that names the
first offending field.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from datetime import UTC, datetime
from functools import cache
from typing import Any

from botocore.model import ListShape, MapShape, Shape, StringShape, StructureShape

from openhi.errors import ValidationError

# Java regex classes used by the model that Python's re spells differently.
_JAVA_CLASSES = {r"\p{ASCII}": r"[\x00-\x7F]"}

# OpenHI extensions to the model's patterns, by shape name: import jobs also read and write local folders
# (``file:///absolute/path/``), documented in docs/compatibility.md.
PATTERN_EXTENSIONS = {"S3Uri": r"(s3://[a-z0-9][\.\-a-z0-9]{1,61}[a-z0-9](/.*)?)|(file:///.*)"}


@cache
def compiled_pattern(pattern: str) -> re.Pattern[str]:
    """The model's (Java-flavoured) pattern as a Python regex, matched against the whole value."""
    for java, python in _JAVA_CLASSES.items():
        pattern = pattern.replace(java, python)
    return re.compile(pattern)


def _shown(value: object) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= 120 else text[:117] + "..."


class _Checker:
    def __init__(self) -> None:
        self.errors: list[tuple[str, str]] = []

    def fail(self, path: str, value: object, constraint: str) -> None:
        shown = "null" if value is None else f"'{_shown(value)}'"
        self.errors.append((path, f"Value {shown} at '{path}' failed to satisfy constraint: {constraint}"))

    def length(self, shape: Shape, value: Any, path: str) -> None:
        low, high = shape.metadata.get("min"), shape.metadata.get("max")
        if low is not None and len(value) < low:
            self.fail(path, value, f"Member must have length greater than or equal to {low}")
        if high is not None and len(value) > high:
            self.fail(path, value, f"Member must have length less than or equal to {high}")

    def check(self, shape: Shape, value: Any, path: str) -> Any:
        kind = shape.type_name
        handler = getattr(self, f"_{kind}", None)
        if handler is None:
            self.fail(path, value, f"Member of type {kind} is not accepted on input")
            return value
        return handler(shape, value, path)

    def _structure(self, shape: StructureShape, value: Any, path: str) -> Any:
        if not isinstance(value, dict):
            self.fail(path or "body", value, "Member must be a JSON object")
            return value
        prefix = f"{path}." if path else ""
        out: dict[str, Any] = {}
        for key in value:
            if key not in shape.members:
                self.fail(f"{prefix}{key}", value[key], "Member is not a known member of " + shape.name)
        for name, member in shape.members.items():
            if value.get(name) is not None:
                out[name] = self.check(member, value[name], f"{prefix}{name}")
        for name in shape.required_members:
            if value.get(name) is None:
                self.fail(f"{prefix}{name}", None, "Member must not be null")
        if shape.metadata.get("union") and len(out) != 1:
            self.fail(path or shape.name, value, "Exactly one member of the union must be set")
        return out

    def _list(self, shape: ListShape, value: Any, path: str) -> Any:
        if not isinstance(value, list):
            self.fail(path, value, "Member must be a list")
            return value
        self.length(shape, value, path)
        return [self.check(shape.member, item, f"{path}.{i + 1}.member") for i, item in enumerate(value)]

    def _map(self, shape: MapShape, value: Any, path: str) -> Any:
        if not isinstance(value, dict):
            self.fail(path, value, "Member must be a map")
            return value
        self.length(shape, value, path)
        return {
            self.check(shape.key, key, f"{path}.key"): self.check(shape.value, item, f"{path}.{key}")
            for key, item in value.items()
        }

    def _string(self, shape: StringShape, value: Any, path: str) -> Any:
        if not isinstance(value, str):
            self.fail(path, value, "Member must be a string")
            return value
        self.length(shape, value, path)
        enum = shape.enum
        if enum and value not in enum:
            self.fail(path, value, f"Member must satisfy enum value set: [{', '.join(enum)}]")
        pattern = PATTERN_EXTENSIONS.get(shape.name) or shape.metadata.get("pattern")
        if pattern and compiled_pattern(pattern).fullmatch(value) is None:
            self.fail(path, value, f"Member must satisfy regular expression pattern: {pattern}")
        return value

    def _integer(self, shape: Shape, value: Any, path: str) -> Any:
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(path, value, "Member must be an integer")
            return value
        low, high = shape.metadata.get("min"), shape.metadata.get("max")
        if low is not None and value < low:
            self.fail(path, value, f"Member must have value greater than or equal to {low}")
        if high is not None and value > high:
            self.fail(path, value, f"Member must have value less than or equal to {high}")
        return value

    _long = _integer

    def _boolean(self, shape: Shape, value: Any, path: str) -> Any:
        if not isinstance(value, bool):
            self.fail(path, value, "Member must be a boolean")
        return value

    def _timestamp(self, shape: Shape, value: Any, path: str) -> Any:
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            self.fail(path, value, "Member must be a timestamp in epoch seconds")
            return value
        try:
            return datetime.fromtimestamp(value, UTC)
        except (OverflowError, OSError, ValueError):
            self.fail(path, value, "Member must be a timestamp within years 1..9999")
            return value

    def _blob(self, shape: Shape, value: Any, path: str) -> Any:
        if not isinstance(value, str):
            self.fail(path, value, "Member must be a base64-encoded string")
            return value
        try:
            decoded = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            self.fail(path, value, "Member must be a base64-encoded string")
            return value
        self.length(shape, decoded, path)
        return decoded


def validate_input(shape: StructureShape | None, params: dict[str, Any]) -> dict[str, Any]:
    """Check ``params`` against the operation's input ``shape``; return them converted, or raise."""
    if shape is None:
        return {}
    checker = _Checker()
    converted: dict[str, Any] = checker.check(shape, params, "")
    if checker.errors:
        count = len(checker.errors)
        noun = "error" if count == 1 else "errors"
        detail = "; ".join(message for _, message in checker.errors)
        raise ValidationError(f"{count} validation {noun} detected: {detail}", field=checker.errors[0][0])
    return converted
