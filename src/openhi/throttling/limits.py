"""The guide's throttling limits per operation, and the ``throttle_rates`` overrides.

Guide 22777-22816 ("AWS HealthImaging 限制限制"): every native operation and four DICOMweb operations have a
throttling rate (requests per second, steady) and a burst (requests at once). Those are the defaults here;
operations the table does not name (STOW-RS, QIDO-RS, rendered, bulk data, study/series retrieval) are not
throttled unless an override names them. The guide says every limit is adjustable (22783), so the setting
``throttle_rates`` takes a JSON object ``{"Operation": [rate, burst], ...}``; ``[0, 0]`` or ``null`` turns one
operation's throttling off. With ``openhi serve --workers N`` and no shared bucket store, each process gets
``divided(limits, N)``.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass

from openhi.errors import ValidationError

FIELD = "throttle_rates"
OPERATION_NAME = re.compile(r"[A-Z][A-Za-z]{1,63}")


@dataclass(frozen=True)
class Limit:
    """A steady rate (tokens per second) and a burst (the bucket's capacity)."""

    rate: float
    burst: float


DEFAULT_LIMITS: Mapping[str, Limit] = {
    # data store, import and tagging operations (guide 22791-22800)
    "CreateDatastore": Limit(0.085, 1),
    "GetDatastore": Limit(10, 20),
    "ListDatastores": Limit(5, 10),
    "DeleteDatastore": Limit(0.085, 1),
    "StartDICOMImportJob": Limit(1, 2),
    "GetDICOMImportJob": Limit(25, 50),
    "ListDICOMImportJobs": Limit(10, 20),
    # image set operations (guide 22801-22808)
    "SearchImageSets": Limit(25, 50),
    "GetImageSet": Limit(25, 50),
    "GetImageSetMetadata": Limit(50, 100),
    "GetImageFrame": Limit(1000, 2000),
    "ListImageSetVersions": Limit(25, 50),
    "UpdateImageSetMetadata": Limit(0.25, 1),
    "CopyImageSet": Limit(0.25, 1),
    "DeleteImageSet": Limit(0.25, 1),
    "TagResource": Limit(10, 20),
    "ListTagsForResource": Limit(10, 20),
    "UntagResource": Limit(10, 20),
    # DICOMweb (guide 22812-22816)
    "GetDICOMInstance": Limit(50, 100),
    "GetDICOMInstanceMetadata": Limit(50, 100),
    "GetDICOMInstanceFrames": Limit(50, 100),
    "GetDICOMSeriesMetadata": Limit(50, 100),
}


def _number(value: object, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise ValidationError(f"setting {FIELD!r}: {where} must be a finite number >= 0, not {value!r}", field=FIELD)
    return float(value)


def parse_overrides(text: str, known_operations: Collection[str] | None = None) -> dict[str, Limit | None]:
    """``{"Op": [rate, burst] | null}`` -> operation -> Limit (None: not throttled).

    Rate > 0 and burst >= 1 (a smaller bucket could never hold the token a request takes), or both 0 (off).
    When ``known_operations`` is given, any other name is refused (a typo must not silently leave an operation
    at its default).
    """
    if not text.strip():
        return {}
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise ValidationError(f"setting {FIELD!r} is not valid JSON: {exc}", field=FIELD) from exc
    if not isinstance(document, dict):
        raise ValidationError(f"setting {FIELD!r} must be a JSON object of operation -> [rate, burst]", field=FIELD)
    overrides: dict[str, Limit | None] = {}
    for name, value in document.items():
        if not OPERATION_NAME.fullmatch(name) or (known_operations is not None and name not in known_operations):
            raise ValidationError(f"setting {FIELD!r}: {name!r} is not an operation of OpenHI", field=FIELD)
        if value is None:
            overrides[name] = None
            continue
        if not isinstance(value, list) or len(value) != 2:
            raise ValidationError(f"setting {FIELD!r}: {name} must be [rate, burst] or null", field=FIELD)
        rate, burst = _number(value[0], f"{name}'s rate"), _number(value[1], f"{name}'s burst")
        if rate == 0 and burst == 0:
            overrides[name] = None
        elif rate == 0 or burst < 1:
            raise ValidationError(
                f"setting {FIELD!r}: {name} needs rate > 0 and burst >= 1 ([0, 0] turns it off)", field=FIELD
            )
        else:
            overrides[name] = Limit(rate, burst)
    return overrides


def effective_limits(
    text: str = "", known_operations: Collection[str] | None = None, defaults: Mapping[str, Limit] = DEFAULT_LIMITS
) -> dict[str, Limit]:
    """The defaults with the overrides of ``text`` applied; operations turned off are left out."""
    merged: dict[str, Limit | None] = {**defaults, **parse_overrides(text, known_operations)}
    return {name: limit for name, limit in merged.items() if limit is not None}


def divided(limits: Mapping[str, Limit], processes: int) -> dict[str, Limit]:
    """Each of ``processes`` processes' share when every process keeps its own buckets.

    The rate is divided exactly, so the sum over processes is the configured rate; the burst is divided too but
    never below 1 (a bucket that cannot hold one token would refuse every request), so the sum of bursts may
    exceed the configured burst by up to ``processes - 1``.
    """
    if processes < 1:
        raise ValueError("processes must be >= 1")
    return {name: Limit(limit.rate / processes, max(1.0, limit.burst / processes)) for name, limit in limits.items()}
