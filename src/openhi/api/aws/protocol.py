"""rest-json as botocore speaks it: request -> operation parameters, result -> response (aws-wire-api.md §2).

Inputs come from four places the model names per member: URI labels, the query string (lists repeat the
key, booleans are ``true``/``false``), headers, and the JSON body, where a ``payload`` member *is* the
whole body. Outputs go to headers or the JSON body, with timestamps as epoch-second floats (ms
precision, like the real service). Type conversion of query strings happens here; constraints are
checked by ``validation``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl

from botocore.model import ListShape, OperationModel, Shape, StructureShape

from openhi.errors import ValidationError


def _from_text(shape: Shape, text: str) -> object:
    """Query-string and header text converted to the member's type when it can be; else left as text."""
    if shape.type_name in ("integer", "long"):
        try:
            return int(text)
        except ValueError:
            return text
    if shape.type_name == "boolean":
        return {"true": True, "false": False}.get(text, text)
    return text


def _body_document(body: bytes) -> object:
    if not body.strip():
        return None
    try:
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValidationError(f"Request body is not valid JSON: {exc}", field="body") from exc


def parse_request(
    operation: OperationModel,
    labels: Mapping[str, str],
    raw_query: str,
    headers: Mapping[str, str],
    body: bytes,
) -> dict[str, Any]:
    """The operation's parameters, typed but not yet validated."""
    shape: StructureShape | None = operation.input_shape
    params: dict[str, Any] = {}
    if shape is None:
        return params
    query = parse_qsl(raw_query, keep_blank_values=True)
    body_members: dict[str, Shape] = {}
    payload_name = shape.serialization.get("payload")
    for name, member in shape.members.items():
        location = member.serialization.get("location")
        wire = member.serialization.get("name", name)
        if location == "uri":
            if wire in labels:
                params[name] = labels[wire]
        elif location == "querystring":
            values = [value for key, value in query if key == wire]
            if values and isinstance(member, ListShape):
                params[name] = [_from_text(member.member, v) for v in values]
            elif values:
                params[name] = _from_text(member, values[0])
        elif location == "header":
            if wire.lower() in headers:
                params[name] = _from_text(member, headers[wire.lower()])
        elif name != payload_name:
            body_members[name] = member
    document = _body_document(body)
    if payload_name is not None:
        if document is not None:
            params[payload_name] = document
        return params
    if document is None:
        return params
    if not isinstance(document, dict):
        raise ValidationError("Request body must be a JSON object", field="body")
    for key, value in document.items():
        if key not in body_members:
            raise ValidationError(
                f"1 validation error detected: Value at '{key}' failed to satisfy constraint: "
                f"Member is not a known member of {shape.name}",
                field=key,
            )
        params[key] = value
    return params


def epoch_seconds(moment: datetime) -> float:
    """Wire form of a timestamp: epoch seconds with millisecond precision."""
    return round(moment.timestamp(), 3)


def _jsonable(value: object) -> object:
    if isinstance(value, datetime):
        return epoch_seconds(value)
    if isinstance(value, Mapping):
        return {key: _jsonable(item) for key, item in value.items() if item is not None}
    if isinstance(value, list | tuple):
        return [_jsonable(item) for item in value]
    return value


def serialize_response(operation: OperationModel, result: Mapping[str, Any]) -> tuple[dict[str, str], bytes]:
    """Headers and body for a successful result (members set to None are left out).

    The body is JSON, except when the output shape has a blob ``payload`` member (GetImageFrame,
    GetImageSetMetadata): then that member's bytes are the whole body and ``Content-Type`` comes from the
    ``contentType`` header member (aws-wire-api.md §13).
    """
    shape = operation.output_shape
    headers: dict[str, str] = {}
    body: dict[str, object] = {}
    members = shape.members if shape is not None else {}
    payload_name = shape.serialization.get("payload") if shape is not None else None
    raw: bytes | None = None
    for name, value in result.items():
        if value is None:
            continue
        member = members.get(name)
        if member is None:
            raise KeyError(f"{operation.name} result has {name!r}, which its output shape does not")
        if member.serialization.get("location") == "header":
            headers[member.serialization.get("name", name)] = str(value)
        elif name == payload_name and isinstance(value, bytes):
            raw = value
        else:
            body[name] = _jsonable(value)
    if raw is not None:
        return headers, raw
    headers.setdefault("Content-Type", "application/json")
    return headers, json.dumps(body, separators=(",", ":")).encode()
