"""The authorizer port: the event HealthImaging sends to a data store's authorizer and the answer it expects.

Guide 2835-2860: the authorizer is invoked with ``{"datastoreId", "operation", "bearerToken"}`` and must answer
``{"isTokenValid": bool, "roleArn": str}``, an empty ``roleArn`` meaning "deny this request explicitly". An
answer of any other shape is "an invalid or malformed answer" (guide 3000-3030: 424
``AuthorizerMisconfigurationException``).

Adapters raise :class:`openhi.errors.AuthorizerError` for failures they recognise (connection refused, HTTP
5xx, a bad answer body); any other exception escaping an authorizer is treated by the caller as an execution
failure (``AuthorizerFailureException``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from openhi.errors import AuthorizerError

__all__ = [
    "AUTHORIZER_FAILURE",
    "AUTHORIZER_MISCONFIGURED",
    "AUTHORIZER_TIMEOUT",
    "Authorizer",
    "AuthorizerAnswer",
    "AuthorizerEvent",
    "as_mapping",
    "parse_answer",
]

AUTHORIZER_MISCONFIGURED = "AuthorizerMisconfigurationException"
AUTHORIZER_FAILURE = "AuthorizerFailureException"
AUTHORIZER_TIMEOUT = "AuthorizerTimeoutException"


@dataclass(frozen=True)
class AuthorizerEvent:
    """What the authorizer is told about one DICOMweb request (guide 2840-2846)."""

    datastore_id: str
    operation: str  # the HealthImaging API name, e.g. GetDICOMInstance
    bearer_token: str

    def to_payload(self) -> dict[str, str]:
        """The event as the guide's JSON object."""
        return {"datastoreId": self.datastore_id, "operation": self.operation, "bearerToken": self.bearer_token}

    def __repr__(self) -> str:  # never print the token
        return f"AuthorizerEvent(datastore_id={self.datastore_id!r}, operation={self.operation!r})"


@dataclass(frozen=True)
class AuthorizerAnswer:
    """The authorizer's decision (guide 2850-2856)."""

    is_token_valid: bool
    role_arn: str  # "" denies the request explicitly


class Authorizer(Protocol):
    """Something that decides on a bearer token: returns the raw answer (parsed by :func:`parse_answer`)."""

    def __call__(self, event: AuthorizerEvent) -> Mapping[str, Any]: ...


def _malformed(why: str) -> AuthorizerError:
    return AuthorizerError(AUTHORIZER_MISCONFIGURED, f"Authorizer misconfigured: its answer is malformed ({why})")


def as_mapping(raw: object) -> Mapping[str, Any]:
    """``raw`` if it is a JSON object, else ``AuthorizerError(AuthorizerMisconfigurationException)``."""
    if not isinstance(raw, Mapping):
        raise _malformed(f"expected a JSON object, got {type(raw).__name__}")
    return raw


def parse_answer(raw: object) -> AuthorizerAnswer:
    """Check the answer's shape: a JSON object with a boolean ``isTokenValid`` and a string ``roleArn``.

    Other members are ignored. Raises ``AuthorizerError(AuthorizerMisconfigurationException)``.
    """
    answer = as_mapping(raw)
    valid = answer.get("isTokenValid")
    if not isinstance(valid, bool):
        raise _malformed("'isTokenValid' must be true or false")
    role = answer.get("roleArn")
    if not isinstance(role, str):
        raise _malformed("'roleArn' must be a string")
    return AuthorizerAnswer(is_token_valid=valid, role_arn=role)
