"""Example authorizer: verify the JWT as :mod:`openhi.authorizers.examples.jwks` does, then pick the role by claims.

Guide 2800-2810: "a token with an 'admin' claim may return the ARN of a role with full access, a 'reader' claim a
read-only role, a 'department_A' claim a role specific to that department" - the IdP's authorization model mapped
onto IAM roles. The mapping is an ordered list of rules in ``OPENHI_CLAIMS_ROLE_MAP`` (JSON); the first rule that
matches gives the role::

    [
      {"claim": "groups", "value": "admin", "roleArn": "arn:aws:iam::123456789012:role/DicomWebFull"},
      {"claim": "scope", "value": "dicom.read", "roleArn": "arn:aws:iam::123456789012:role/DicomWebRead"},
      {"claim": ["realm_access", "roles"], "value": "department_A",
       "roleArn": "arn:aws:iam::123456789012:role/DepartmentA"}
    ]

``claim`` is a top-level claim name (``"cognito:groups"`` is one name) or a list of names walking into nested
objects (Keycloak's ``realm_access.roles``). A rule matches when the claim is a string equal to ``value``, a
string of space-separated words one of which is ``value`` (the ``scope`` claim, RFC 8693 §4.2 / RFC 9068 §2.2.3),
or an array containing ``value``. A verified token no rule matches is answered ``isTokenValid: true`` with an
empty ``roleArn``: the request is denied explicitly (guide 2855; 403 "access denied").

Besides ``OPENHI_CLAIMS_ROLE_MAP``, the verification variables of :mod:`~openhi.authorizers.examples.jwks` apply
(``OPENHI_JWKS_URL``, ``OPENHI_JWT_ISSUER``, ``OPENHI_JWT_AUDIENCE``, ``OPENHI_JWKS_TIMEOUT``). Use it as
``"python:openhi.authorizers.examples.claims_to_roles:handler"``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from openhi.authorizers.examples.jwks import EnvHandler, JwksAuthorizer, require_env, verifier_from_env
from openhi.authorizers.port import AUTHORIZER_MISCONFIGURED
from openhi.errors import AuthorizerError

__all__ = ["ClaimRule", "RoleMapping", "authorizer_from_env", "handler", "parse_rules"]

_ROLE_ARN = re.compile(r"arn:aws[a-zA-Z-]*:iam::\d{12}:role/(?:[\x21-\x7e]*/)?[\w+=,.@-]{1,64}")


@dataclass(frozen=True)
class ClaimRule:
    """``path`` (claim names, outermost first) must hold ``value`` for ``role_arn`` to be answered."""

    path: tuple[str, ...]
    value: str
    role_arn: str

    def matches(self, claims: Mapping[str, Any]) -> bool:
        """Whether the claims hold ``value`` at ``path`` (equal, among space-separated words, or in an array)."""
        current: object = claims
        for name in self.path:
            if not isinstance(current, Mapping) or name not in current:
                return False
            current = current[name]
        if isinstance(current, str):
            return current == self.value or self.value in current.split()
        if isinstance(current, list):
            return any(isinstance(item, str) and item == self.value for item in current)
        return False


def _bad(why: str) -> AuthorizerError:
    return AuthorizerError(AUTHORIZER_MISCONFIGURED, f"Authorizer misconfigured: OPENHI_CLAIMS_ROLE_MAP {why}")


def parse_rules(text: str) -> tuple[ClaimRule, ...]:
    """The rules of ``OPENHI_CLAIMS_ROLE_MAP``; ``AuthorizerError(AuthorizerMisconfigurationException)`` if bad."""
    try:
        document: object = json.loads(text)
    except ValueError as exc:
        raise _bad("is not JSON") from exc
    if not isinstance(document, list) or not document:
        raise _bad("must be a non-empty JSON array of rules")
    rules = []
    for index, item in enumerate(document):
        if not isinstance(item, dict) or set(item) != {"claim", "value", "roleArn"}:
            raise _bad(f"rule {index} must have exactly 'claim', 'value' and 'roleArn'")
        claim, value, role = item["claim"], item["value"], item["roleArn"]
        path: Sequence[object] = [claim] if isinstance(claim, str) else claim
        if not isinstance(path, list | tuple) or not path or not all(isinstance(p, str) and p for p in path):
            raise _bad(f"rule {index}: 'claim' must be a claim name or a non-empty array of names")
        if not isinstance(value, str) or not value:
            raise _bad(f"rule {index}: 'value' must be a non-empty string")
        if not isinstance(role, str) or not _ROLE_ARN.fullmatch(role):
            raise _bad(f"rule {index}: 'roleArn' must be an IAM role ARN")
        rules.append(ClaimRule(tuple(str(p) for p in path), value, role))
    return tuple(rules)


class RoleMapping:
    """``claims -> role ARN`` by the first matching rule; "" (explicit deny) when none matches."""

    def __init__(self, rules: Sequence[ClaimRule]) -> None:
        self._rules = tuple(rules)

    def __call__(self, claims: Mapping[str, Any]) -> str:
        for rule in self._rules:
            if rule.matches(claims):
                return rule.role_arn
        return ""


def authorizer_from_env(environ: Mapping[str, str]) -> JwksAuthorizer:
    """The JWKS verifier of ``jwks.verifier_from_env`` with the roles of ``OPENHI_CLAIMS_ROLE_MAP``."""
    rules = parse_rules(require_env(environ, "OPENHI_CLAIMS_ROLE_MAP"))
    return JwksAuthorizer(verifier_from_env(environ), RoleMapping(rules))


handler = EnvHandler(authorizer_from_env)
