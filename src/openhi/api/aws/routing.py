"""Routing by method and raw path segments (aws-wire-api.md §2 and §16.1).

botocore percent-encodes every URI label, including ``/`` inside an ARN (``%2F``), and the model has no
greedy labels, so the raw path is split on ``/`` first and each segment is percent-decoded afterwards.
Both planes share one path space (host prefix ``runtime-`` is ignored), so method + path decide.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote

from botocore.model import OperationModel

from openhi.api.aws.model import operations

_LABEL = re.compile(r"\{([A-Za-z0-9_]+)\}")


@dataclass(frozen=True)
class Route:
    """One operation's method and URI template split into segments."""

    method: str
    segments: tuple[str, ...]  # literal text, or "{label}"
    operation: OperationModel

    def match(self, parts: list[str]) -> dict[str, str] | None:
        """Label values when ``parts`` (raw, still encoded) fit this template, else None."""
        if len(parts) != len(self.segments):
            return None
        labels: dict[str, str] = {}
        for template, raw in zip(self.segments, parts, strict=True):
            label = _LABEL.fullmatch(template)
            if label is not None:
                labels[label.group(1)] = unquote(raw)
            elif template != raw:
                return None
        return labels


@dataclass(frozen=True)
class Match:
    """A routed request."""

    operation: OperationModel
    labels: dict[str, str]


class UnknownOperationError(Exception):
    """No operation of the model has this method and path."""


def _split(path: str) -> list[str]:
    path = path.split("?", 1)[0]
    return path.lstrip("/").split("/") if path not in ("", "/") else [""]


class Router:
    """Finds the operation for a request."""

    def __init__(self) -> None:
        self.routes = [Route(op.http["method"], tuple(_split(op.http["requestUri"])), op) for op in operations()]

    def match(self, method: str, raw_path: str) -> Match:
        """The operation for ``method`` + ``raw_path``; UnknownOperationError when none fits."""
        parts = _split(raw_path)
        for route in self.routes:
            if route.method != method:
                continue
            labels = route.match(parts)
            if labels is not None:
                return Match(route.operation, labels)
        raise UnknownOperationError(f"{method} {raw_path}")
