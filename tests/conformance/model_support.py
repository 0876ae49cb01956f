"""Shared helpers of the conformance tier, all derived from the installed botocore model.

- ``service_model()``: ``botocore.session.get_session().get_service_model('medical-imaging')``, loaded
  independently of ``openhi.api.aws.model`` so the tests do not trust the code under test to load it.
- ``minimal_params()``: the smallest valid input of an operation, generated from its input shape
  (required members only, one item per list/map, one member per union). Strings with a pattern need a
  hand-written sample per shape name; a shape without one raises ``MissingSampleError`` so a model
  change that adds one shows up as a failure.
- ``shape_violations()``: a JSON document checked against a model shape (required members present,
  no undeclared member, enums, patterns, lengths, ranges, timestamps as JSON numbers), recursively.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from functools import cache
from typing import Any

import botocore.session
from botocore.model import OperationModel, ServiceModel, Shape, StructureShape

from openhi.api.aws.validation import compiled_pattern

SERVICE_NAME = "medical-imaging"
ACCOUNT_ID = "123456789012"  # openhi's default account_id
REGION = "us-east-1"  # openhi's default region, and the test clients' region

DATASTORE_ID = "a" * 32
IMAGE_SET_ID = "b" * 32
IMAGE_FRAME_ID = "d" * 32
JOB_ID = "e" * 32


def datastore_arn(datastore_id: str, region: str = REGION, account: str = ACCOUNT_ID) -> str:
    return f"arn:aws:medical-imaging:{region}:{account}:datastore/{datastore_id}"


# Samples per shape name for every string shape with a pattern that a required input member uses.
SAMPLES_BY_SHAPE: dict[str, Any] = {
    "DatastoreId": DATASTORE_ID,
    "ImageSetId": IMAGE_SET_ID,
    "ImageFrameId": IMAGE_FRAME_ID,
    "JobId": JOB_ID,
    "ImageSetExternalVersionId": "1",
    "Arn": datastore_arn(DATASTORE_ID),
    "RoleArn": "arn:aws:iam::123456789012:role/ImportRole",
    "S3Uri": "s3://bucket-in/prefix/",
    "ClientToken": "conformance-client-token-1",
    "TagKey": "env",
    "TagValue": "dev",
}
# Members whose sample should differ from their shape's sample.
SAMPLES_BY_MEMBER: dict[str, Any] = {"outputS3Uri": "s3://bucket-out/prefix/"}

# Other label values, to show routing does not depend on the particular samples above.
ALTERNATE_SAMPLES: dict[str, Any] = {
    "DatastoreId": "0123456789abcdefghijklmnopqrstuv",
    "ImageSetId": "vutsrqponmlkjihgfedcba9876543210",
    "JobId": "j0b",
    "Arn": datastore_arn("0123456789abcdefghijklmnopqrstuv") + "/imageset/" + "f" * 32,
}


class MissingSampleError(LookupError):
    """The model has a constrained string shape that no sample covers yet."""


@cache
def service_model() -> ServiceModel:
    """The installed botocore's ``medical-imaging`` model."""
    return botocore.session.get_session().get_service_model(SERVICE_NAME)


def operation_names() -> list[str]:
    return sorted(service_model().operation_names)


def operation(name: str) -> OperationModel:
    return service_model().operation_model(name)


def error_shapes() -> dict[str, Shape]:
    """Every error shape any operation lists, by name."""
    shapes: dict[str, Shape] = {}
    for name in operation_names():
        for shape in operation(name).error_shapes:
            shapes[shape.name] = shape
    return dict(sorted(shapes.items()))


def output_shape(name: str) -> StructureShape:
    """The output shape of an operation (every operation of this model has one)."""
    shape = operation(name).output_shape
    assert shape is not None, name
    return shape


def modelled_status(shape: Shape) -> int:
    return int(shape.metadata["error"]["httpStatusCode"])


def operations_listing(error_name: str) -> list[str]:
    """Operations whose ``errors`` include ``error_name``."""
    return [
        name for name in operation_names() if any(shape.name == error_name for shape in operation(name).error_shapes)
    ]


def _string_sample(shape: Shape, member: str | None, samples: Mapping[str, Any]) -> Any:
    if member is not None and member in SAMPLES_BY_MEMBER:
        return SAMPLES_BY_MEMBER[member]
    if shape.name in samples:
        return samples[shape.name]
    enum = getattr(shape, "enum", None)
    if enum:
        return enum[0]
    if shape.metadata.get("pattern"):
        raise MissingSampleError(
            f"no sample for string shape {shape.name} (pattern {shape.metadata['pattern']!r}); "
            "add one to SAMPLES_BY_SHAPE"
        )
    low = int(shape.metadata.get("min", 1))
    size = max(low, min(6, int(shape.metadata.get("max", 6))))
    return ("sample" * (size // 6 + 1))[:size]


def sample_value(
    shape: Shape,
    member: str | None = None,
    *,
    idempotency_tokens: bool = True,
    samples: Mapping[str, Any] | None = None,
) -> Any:
    """A minimal valid value of ``shape``."""
    merged = {**SAMPLES_BY_SHAPE, **(samples or {})}
    kind = shape.type_name
    if kind == "structure":
        assert isinstance(shape, StructureShape)
        if shape.metadata.get("union"):
            # Prefer a scalar member: the smallest value that is unambiguously "set".
            names = sorted(shape.members, key=lambda n: shape.members[n].type_name == "structure")
            chosen = names[0]
            return {chosen: sample_value(shape.members[chosen], chosen, samples=samples)}
        value: dict[str, Any] = {}
        for name in shape.required_members:
            child = shape.members[name]
            if child.metadata.get("idempotencyToken") and not idempotency_tokens:
                continue  # botocore fills it in with a uuid4, as for every real caller
            value[name] = sample_value(child, name, idempotency_tokens=idempotency_tokens, samples=samples)
        return value
    if kind == "list":
        item = sample_value(shape.member, samples=samples)  # type: ignore[attr-defined]
        return [item] * max(1, int(shape.metadata.get("min", 1)))
    if kind == "map":
        key = sample_value(shape.key, samples=samples)  # type: ignore[attr-defined]
        return {key: sample_value(shape.value, samples=samples)}  # type: ignore[attr-defined]
    if kind == "string":
        return _string_sample(shape, member, merged)
    if kind in ("integer", "long"):
        return max(1, int(shape.metadata.get("min", 1)))
    if kind in ("float", "double"):
        return 1.0
    if kind == "boolean":
        return False
    if kind == "timestamp":
        return datetime(2024, 1, 1, tzinfo=UTC)
    if kind == "blob":
        return b"{}"
    raise MissingSampleError(f"no sample for {kind} shape {shape.name}")


def minimal_params(
    operation_model: OperationModel,
    *,
    idempotency_tokens: bool = True,
    samples: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Required members only, each with a valid sample (``idempotency_tokens=False``: left to botocore)."""
    shape = operation_model.input_shape
    if shape is None:
        return {}
    value: dict[str, Any] = sample_value(shape, idempotency_tokens=idempotency_tokens, samples=samples)
    return value


def uri_labels(operation_model: OperationModel, params: Mapping[str, Any]) -> dict[str, str]:
    """URI label wire name -> value, for the params of an operation."""
    shape = operation_model.input_shape
    assert shape is not None
    return {
        member.serialization.get("name", name): params[name]
        for name, member in shape.members.items()
        if member.serialization.get("location") == "uri"
    }


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def shape_violations(
    shape: Shape,
    value: Any,
    path: str = "$",
    *,
    body: bool = False,
    extra_patterns: Mapping[str, str] | None = None,
) -> list[str]:
    """Everything about ``value`` (a decoded JSON document) that ``shape`` does not allow.

    ``body=True`` for a top-level output structure: only members without a ``location`` (header,
    status code ...) belong in the JSON body, and only those are required there.
    ``extra_patterns`` (string shape name -> regex) names a documented OpenHI extension: a value of that
    shape may match the regex instead of the model's pattern (every other constraint still applies).
    """
    problems: list[str] = []
    kind = shape.type_name
    if value is None:
        return [f"{path}: null is not a {shape.name} (botocore drops it silently)"]
    if kind == "structure":
        assert isinstance(shape, StructureShape)
        if not isinstance(value, dict):
            return [f"{path}: {value!r} is not a JSON object ({shape.name})"]
        members = {
            name: member
            for name, member in shape.members.items()
            if not (body and member.serialization.get("location"))
        }
        for key in value:
            if key not in members:
                problems.append(f"{path}.{key}: not a member of {shape.name} (boto3 would drop it)")
        for name in shape.required_members:
            if name in members and name not in value:
                problems.append(f"{path}.{name}: required member of {shape.name} is missing")
        for name, member in members.items():
            if name in value:
                problems += shape_violations(member, value[name], f"{path}.{name}", extra_patterns=extra_patterns)
        if shape.metadata.get("union") and len(value) != 1:
            problems.append(f"{path}: union {shape.name} must have exactly one member, has {len(value)}")
        return problems
    if kind == "list":
        if not isinstance(value, list):
            return [f"{path}: {value!r} is not a JSON array ({shape.name})"]
        problems += _length(shape, len(value), path)
        for i, item in enumerate(value):
            problems += shape_violations(
                shape.member,  # type: ignore[attr-defined]
                item,
                f"{path}[{i}]",
                extra_patterns=extra_patterns,
            )
        return problems
    if kind == "map":
        if not isinstance(value, dict):
            return [f"{path}: {value!r} is not a JSON object ({shape.name})"]
        problems += _length(shape, len(value), path)
        for key, item in value.items():
            problems += shape_violations(
                shape.key,  # type: ignore[attr-defined]
                key,
                f"{path}<key {key!r}>",
                extra_patterns=extra_patterns,
            )
            problems += shape_violations(
                shape.value,  # type: ignore[attr-defined]
                item,
                f"{path}[{key!r}]",
                extra_patterns=extra_patterns,
            )
        return problems
    if kind == "string":
        if not isinstance(value, str):
            return [f"{path}: {value!r} is not a string ({shape.name})"]
        problems += _length(shape, len(value), path)
        enum = getattr(shape, "enum", None)
        if enum and value not in enum:
            problems.append(f"{path}: {value!r} is not in the enum {shape.name} {enum}")
        pattern = shape.metadata.get("pattern")
        extension = (extra_patterns or {}).get(shape.name)
        extended = extension is not None and re.fullmatch(extension, value) is not None
        if pattern and not extended and compiled_pattern(pattern).fullmatch(value) is None:
            problems.append(f"{path}: {value!r} does not match {shape.name} pattern {pattern!r}")
        return problems
    if kind in ("integer", "long"):
        if not isinstance(value, int) or isinstance(value, bool):
            return [f"{path}: {value!r} is not an integer ({shape.name})"]
        low, high = shape.metadata.get("min"), shape.metadata.get("max")
        if low is not None and value < low:
            problems.append(f"{path}: {value} < min {low}")
        if high is not None and value > high:
            problems.append(f"{path}: {value} > max {high}")
        return problems
    if kind in ("float", "double"):
        return [] if _is_number(value) else [f"{path}: {value!r} is not a number ({shape.name})"]
    if kind == "boolean":
        return [] if isinstance(value, bool) else [f"{path}: {value!r} is not a boolean ({shape.name})"]
    if kind == "timestamp":
        if not _is_number(value) or not math.isfinite(value):
            return [f"{path}: {value!r} is not a timestamp in epoch seconds (JSON number)"]
        return []
    if kind == "blob":
        if not isinstance(value, str):
            return [f"{path}: {value!r} is not a base64 string ({shape.name})"]
        try:
            base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            return [f"{path}: {value!r} is not valid base64 ({shape.name})"]
        return []
    return [f"{path}: shape type {kind} ({shape.name}) is not supported by this checker"]


def _length(shape: Shape, size: int, path: str) -> list[str]:
    low, high = shape.metadata.get("min"), shape.metadata.get("max")
    problems = []
    if low is not None and size < low:
        problems.append(f"{path}: length {size} < min {low} ({shape.name})")
    if high is not None and size > high:
        problems.append(f"{path}: length {size} > max {high} ({shape.name})")
    return problems
