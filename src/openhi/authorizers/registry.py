"""Which authorizer answers for which ``lambdaAuthorizerArn``: the ``authorizers`` setting.

A data store created with ``--lambda-authorizer-arn`` (guide 2930-2960) stores a Lambda function ARN. OpenHI
runs no Lambda, so the operator maps each ARN to something callable, in the setting ``authorizers``
(``OPENHI_AUTHORIZERS``), a JSON object::

    {
      "arn:aws:lambda:us-east-1:123456789012:function:my-authorizer": "python:openhi.authorizers.examples.jwks:handler",
      "arn:aws:lambda:us-east-1:123456789012:function:remote": "https://auth.example.org/healthimaging"
    }

A spec is ``python:package.module:function`` (:mod:`openhi.authorizers.python_callable`) or an ``http://`` /
``https://`` URL (:mod:`openhi.authorizers.http`). Keys must match the ``LambdaArn`` pattern of the service
model (wire spec ``aws-wire-api.md`` line 759). The setting is checked at start (``ValidationError``); Python
modules are imported on first use. An ARN missing from the setting is, at request time, "the Lambda authorizer
does not exist or is invalid" (guide 3000-3030: 424 ``AuthorizerMisconfigurationException``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from urllib.parse import urlsplit

from openhi.authorizers.http import HttpAuthorizer
from openhi.authorizers.port import AUTHORIZER_MISCONFIGURED, Authorizer
from openhi.authorizers.python_callable import PythonCallableAuthorizer
from openhi.errors import AuthorizerError, ValidationError

__all__ = ["LAMBDA_ARN", "AuthorizerRegistry"]

LAMBDA_ARN = re.compile(
    r"arn:(aws[a-zA-Z-]*)?:lambda:[a-z]{2}((-gov)|(-iso(b?)))?-[a-z]+-\d{1}:\d{12}:function:[a-zA-Z0-9-_]+"
    r"(:(\$LATEST|[a-zA-Z0-9-_]+))?"
)
_PYTHON = "python:"


def _invalid(message: str) -> ValidationError:
    return ValidationError(f"setting 'authorizers': {message}", field="authorizers")


def _build(arn: str, spec: str, budget_seconds: float) -> Authorizer:
    if spec.startswith(_PYTHON):
        try:
            return PythonCallableAuthorizer(arn, spec[len(_PYTHON) :], budget_seconds=budget_seconds)
        except ValidationError as exc:
            raise _invalid(f"{arn}: {exc.message}") from exc
    parts = urlsplit(spec)
    if parts.scheme in ("http", "https") and parts.hostname:
        return HttpAuthorizer(arn, spec, timeout_seconds=max(budget_seconds * 2, 1.0))
    raise _invalid(f"{arn}: {spec!r} is neither 'python:package.module:function' nor an http(s) URL")


class AuthorizerRegistry:
    """The authorizers known to this process, by Lambda ARN."""

    def __init__(self, authorizers: Mapping[str, Authorizer]) -> None:
        self._authorizers = dict(authorizers)

    @classmethod
    def from_setting(cls, text: str, budget_seconds: float = 1.0) -> AuthorizerRegistry:
        """Parse the ``authorizers`` setting; empty text means no authorizer. Raises ``ValidationError``."""
        if not text.strip():
            return cls({})
        try:
            document: object = json.loads(text)
        except ValueError as exc:
            raise _invalid(f"not valid JSON ({exc})") from exc
        if not isinstance(document, dict):
            raise _invalid("must be a JSON object mapping a Lambda ARN to an authorizer spec")
        authorizers: dict[str, Authorizer] = {}
        for arn, spec in document.items():
            if not LAMBDA_ARN.fullmatch(arn):
                raise _invalid(f"{arn!r} is not a Lambda function ARN")
            if not isinstance(spec, str):
                raise _invalid(f"{arn}: the spec must be a string")
            authorizers[arn] = _build(arn, spec.strip(), budget_seconds)
        return cls(authorizers)

    @property
    def arns(self) -> frozenset[str]:
        """The configured Lambda ARNs."""
        return frozenset(self._authorizers)

    def get(self, arn: str) -> Authorizer:
        """The authorizer of ``arn``; ``AuthorizerError(AuthorizerMisconfigurationException)`` when unknown."""
        authorizer = self._authorizers.get(arn)
        if authorizer is None:
            raise AuthorizerError(AUTHORIZER_MISCONFIGURED, f"Authorizer {arn} does not exist or is invalid")
        return authorizer

    def close(self) -> None:
        """Release the HTTP connection pools."""
        for authorizer in self._authorizers.values():
            if isinstance(authorizer, HttpAuthorizer):
                authorizer.close()
