"""Policy evaluation as IAM does it for identity policies and role trust policies.

Follows the IAM User Guide's "Policy evaluation logic" for one account without permissions boundaries, SCPs or
session policies: an explicit ``Deny`` in any applicable statement wins; otherwise an ``Allow`` grants; otherwise
the request is implicitly denied. The condition semantics are those of "IAM JSON policy elements: Condition
operators", "...IfExists condition operators", "Condition operator to check existence of condition keys" (Null)
and "Multivalued context keys" (ForAnyValue / ForAllValues). HealthImaging uses them for the
``medical-imaging:StudyInstanceUID`` / ``SeriesInstanceUID`` keys (guide 21740-21870); trust policies decide who
may assume a role (guide 2790-2840: the OIDC authorizer's roles trust ``medical-imaging.amazonaws.com``).

Matching rules:

- actions: case-insensitive, ``*`` any run of characters and ``?`` one character (``medical-imaging:Get*``);
- resources: case-sensitive glob over the whole ARN (``*`` may cross ``:`` and ``/``);
- conditions: every clause must hold (operators AND, keys AND), the values of one key are alternatives (OR);
  context keys are case-insensitive; a key that is absent (or has no value) makes positive operators false and
  negated ones (``StringNot*``, ``ArnNot*``) true; ``...IfExists`` holds when the key is absent; ``Null``
  "true" holds when it is absent, "false" when present; ``ForAnyValue:`` needs one context value to satisfy
  the operator (absent -> false), ``ForAllValues:`` needs every one to (absent -> true). Without a qualifier a
  positive operator holds when some context value matches some condition value, a negated one when none does;
- ``Arn*`` compare the six colon-separated parts of the ARN one by one, each a case-sensitive glob (when
  either side has fewer than six parts, the whole strings are compared as a glob); ``Bool`` compares
  case-insensitively.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from functools import lru_cache

from openhi.iam.policy import NEGATED_OPERATORS, ConditionClause, Effect, PolicyDocument, Principals, Statement

type Context = Mapping[str, tuple[str, ...]]


class Decision(StrEnum):
    """The outcome of evaluating a request against a set of identity policies."""

    ALLOW = "Allow"
    EXPLICIT_DENY = "ExplicitDeny"
    IMPLICIT_DENY = "ImplicitDeny"


@dataclass(frozen=True)
class AccessRequest:
    """One action on one resource, with the request's condition context (key -> values)."""

    action: str
    resource: str
    context: Mapping[str, Sequence[str]] = field(default_factory=dict)


@dataclass(frozen=True)
class TrustRequest:
    """Someone asking to assume a role: the caller's principal ARNs and/or a service principal name.

    ``principal_arns`` are every ARN the caller may be named by in a trust policy (for IAM's account
    delegation, include the account root ARN next to the caller's own). ``context`` feeds the trust policy's
    conditions (``aws:SourceArn``, ``aws:SourceAccount`` ...); it is empty unless given.
    """

    principal_arns: tuple[str, ...] = ()
    service: str | None = None
    action: str = "sts:AssumeRole"
    context: Mapping[str, Sequence[str]] = field(default_factory=dict)


def evaluate(policies: Iterable[PolicyDocument], request: AccessRequest) -> Decision:
    """Decide ``request`` against identity policies: explicit deny > allow > implicit (default) deny."""
    context = normalize_context(request.context)
    allowed = False
    for policy in policies:
        for statement in policy.statements:
            if _applies(statement, request.action, request.resource, context):
                if statement.effect is Effect.DENY:
                    return Decision.EXPLICIT_DENY
                allowed = True
    return Decision.ALLOW if allowed else Decision.IMPLICIT_DENY


def trusts(policy: PolicyDocument, request: TrustRequest) -> bool:
    """True when the role trust ``policy`` lets the requester assume the role (an Allow matches, no Deny does)."""
    context = normalize_context(request.context)
    allowed = False
    for statement in policy.statements:
        if (
            _principal_applies(statement, request)
            and _action_applies(statement, request.action)
            and _clauses_hold(statement.conditions, context)
        ):
            if statement.effect is Effect.DENY:
                return False
            allowed = True
    return allowed


# --- statements ------------------------------------------------------------------------------------------------


def statement_applies(statement: Statement, request: AccessRequest) -> bool:
    """True when ``statement`` covers the request's action, resource and conditions (its effect aside).

    A statement without ``Resource`` / ``NotResource`` (valid only outside identity policies) covers any resource.
    """
    return _applies(statement, request.action, request.resource, normalize_context(request.context))


def _applies(statement: Statement, action: str, resource: str, context: Context) -> bool:
    return (
        _action_applies(statement, action)
        and _resource_applies(statement, resource)
        and _clauses_hold(statement.conditions, context)
    )


def _action_applies(statement: Statement, action: str) -> bool:
    if statement.actions is not None:
        return any(action_matches(pattern, action) for pattern in statement.actions)
    if statement.not_actions is not None:
        return not any(action_matches(pattern, action) for pattern in statement.not_actions)
    return False


def _resource_applies(statement: Statement, resource: str) -> bool:
    if statement.resources is not None:
        return any(resource_matches(pattern, resource) for pattern in statement.resources)
    if statement.not_resources is not None:
        return not any(resource_matches(pattern, resource) for pattern in statement.not_resources)
    return True


def _principal_applies(statement: Statement, request: TrustRequest) -> bool:
    if statement.principals is not None:
        return principal_matches(statement.principals, request)
    if statement.not_principals is not None:
        return not principal_matches(statement.not_principals, request)
    return False


def principal_matches(principals: Principals, request: TrustRequest) -> bool:
    """True when ``principals`` names the requester: "*", an AWS ARN (exact or glob, "*" any) or the service."""
    if principals.any:
        return True
    if request.service is not None and request.service in principals.service:
        return True
    return any(resource_matches(pattern, arn) for pattern in principals.aws for arn in request.principal_arns)


# --- names ---------------------------------------------------------------------------------------------------------


@lru_cache(maxsize=4096)
def glob_pattern(pattern: str, ignore_case: bool = False) -> re.Pattern[str]:
    """The regular expression of an IAM glob: ``*`` any run of characters, ``?`` one character, the rest literal."""
    parts = [".*" if char == "*" else "." if char == "?" else re.escape(char) for char in pattern]
    return re.compile("".join(parts), re.DOTALL | (re.IGNORECASE if ignore_case else 0))


def action_matches(pattern: str, action: str) -> bool:
    """``medical-imaging:Get*`` matches ``medical-imaging:GetImageFrame`` (and ``MEDICAL-IMAGING:getimageframe``)."""
    return glob_pattern(pattern, ignore_case=True).fullmatch(action) is not None


def resource_matches(pattern: str, resource: str) -> bool:
    """Case-sensitive glob over the whole ARN; ``*`` may cross ``:`` and ``/``."""
    return glob_pattern(pattern).fullmatch(resource) is not None


def arn_matches(pattern: str, arn: str) -> bool:
    """``ArnLike`` / ``ArnEquals``: the six colon-separated parts compared one by one, each a glob."""
    pattern_parts, arn_parts = pattern.split(":", 5), arn.split(":", 5)
    if len(pattern_parts) == 6 and len(arn_parts) == 6:
        return all(resource_matches(p, a) for p, a in zip(pattern_parts, arn_parts, strict=True))
    return resource_matches(pattern, arn)


# --- conditions ----------------------------------------------------------------------------------------------------


def normalize_context(context: Mapping[str, Sequence[str]]) -> dict[str, tuple[str, ...]]:
    """Lower-case the keys (merging keys that differ only in case) and drop keys without values.

    A bare string value counts as one value, not as a sequence of characters.
    """
    result: dict[str, tuple[str, ...]] = {}
    for key, values in context.items():
        items = (values,) if isinstance(values, str) else tuple(values)
        if items:
            result[key.lower()] = result.get(key.lower(), ()) + items
    return result


def conditions_hold(clauses: Iterable[ConditionClause], context: Mapping[str, Sequence[str]]) -> bool:
    """True when every clause holds in ``context`` (an empty list of clauses always holds)."""
    return _clauses_hold(clauses, normalize_context(context))


def _clauses_hold(clauses: Iterable[ConditionClause], context: Context) -> bool:
    return all(_clause_holds(clause, context) for clause in clauses)


def _clause_holds(clause: ConditionClause, context: Context) -> bool:
    present = context.get(clause.key)
    if clause.operator == "Null":
        return any(_null_holds(value, present is not None) for value in clause.values)
    if present is None:
        if clause.if_exists or clause.set_qualifier == "ForAllValues":
            return True
        if clause.set_qualifier == "ForAnyValue":
            return False
        return clause.operator in NEGATED_OPERATORS
    negated = clause.operator in NEGATED_OPERATORS
    match = _VALUE_MATCHERS[clause.operator]

    def satisfies(context_value: str) -> bool:
        hit = any(match(condition_value, context_value) for condition_value in clause.values)
        return hit != negated

    # ForAllValues: every value; ForAnyValue: some value; unqualified: some value matches (negated: none does).
    every = clause.set_qualifier == "ForAllValues" or (clause.set_qualifier is None and negated)
    return (all if every else any)(satisfies(value) for value in present)


def _null_holds(condition_value: str, present: bool) -> bool:
    expected = condition_value.lower()
    if expected == "true":
        return not present
    if expected == "false":
        return present
    return False


def _string_equals(condition_value: str, context_value: str) -> bool:
    return condition_value == context_value


def _string_equals_ignore_case(condition_value: str, context_value: str) -> bool:
    return condition_value.casefold() == context_value.casefold()


def _bool_equals(condition_value: str, context_value: str) -> bool:
    return condition_value.lower() == context_value.lower()


_VALUE_MATCHERS: dict[str, Callable[[str, str], bool]] = {
    "StringEquals": _string_equals,
    "StringNotEquals": _string_equals,
    "StringEqualsIgnoreCase": _string_equals_ignore_case,
    "StringNotEqualsIgnoreCase": _string_equals_ignore_case,
    "StringLike": resource_matches,
    "StringNotLike": resource_matches,
    "ArnEquals": arn_matches,
    "ArnLike": arn_matches,
    "ArnNotEquals": arn_matches,
    "ArnNotLike": arn_matches,
    "Bool": _bool_equals,
}
