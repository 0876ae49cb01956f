"""IAM policy documents: the JSON grammar IAM accepts, parsed into frozen values and written back canonically.

Implements the "IAM JSON policy element reference" and "Grammar of the IAM JSON policy language" (IAM User Guide)
as far as HealthImaging's guide relies on it: identity policies with ``Action``/``Resource`` and ``Condition``
(the StudyInstanceUID / SeriesInstanceUID examples of guide lines 21740-21870, the AWS managed policies of
21930-22000) and role trust policies with a ``Principal`` (the OIDC role trust example of guide 2790-2840, the
import role trust of 2880-2925). What is accepted:

- ``Version`` "2012-10-17" or "2008-10-17" (absent means "2008-10-17"), an optional ``Id``;
- ``Statement`` as one object or a non-empty list; per statement ``Sid`` (letters and digits, unique),
  ``Effect`` ("Allow" / "Deny", required), exactly one of ``Action`` / ``NotAction``, at most one of
  ``Resource`` / ``NotResource`` and of ``Principal`` / ``NotPrincipal``, each a string or a non-empty list;
- ``Principal`` "*" or ``{"AWS": ..., "Service": ...}``; an AWS value that is a 12-digit account id means
  ``arn:aws:iam::ID:root``;
- ``Condition`` ``{operator: {key: value | [values]}}`` with the String*, Arn*, Bool and Null operators, each
  optionally suffixed ``IfExists`` and prefixed ``ForAnyValue:`` / ``ForAllValues:``; booleans and numbers in
  values become strings; keys are case-insensitive and kept lower-cased;
- at most 10,240 characters, white space not counted (IAM's rule for the size of a policy).

Anything else raises :class:`PolicyError` whose message names the element at fault (``Statement[1].Action``).
Policy variables (``${aws:username}``) are not substituted: they match literally. Federated and canonical-user
principals are refused, since OpenHI has neither.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from openhi.errors import ValidationError

MAX_POLICY_CHARACTERS = 10_240
POLICY_VERSIONS = ("2012-10-17", "2008-10-17")
DEFAULT_POLICY_VERSION = "2008-10-17"

CONDITION_OPERATORS = frozenset(
    {
        "StringEquals",
        "StringNotEquals",
        "StringEqualsIgnoreCase",
        "StringNotEqualsIgnoreCase",
        "StringLike",
        "StringNotLike",
        "ArnEquals",
        "ArnLike",
        "ArnNotEquals",
        "ArnNotLike",
        "Bool",
        "Null",
    }
)
NEGATED_OPERATORS = frozenset(
    {"StringNotEquals", "StringNotEqualsIgnoreCase", "StringNotLike", "ArnNotEquals", "ArnNotLike"}
)
SET_QUALIFIERS = ("ForAnyValue", "ForAllValues")

_TOP_LEVEL_KEYS = ("Version", "Id", "Statement")
_STATEMENT_KEYS = (
    "Sid",
    "Effect",
    "Principal",
    "NotPrincipal",
    "Action",
    "NotAction",
    "Resource",
    "NotResource",
    "Condition",
)
_PRINCIPAL_TYPES = ("AWS", "Service")
_SID = re.compile(r"[A-Za-z0-9]*")
_ACTION = re.compile(r"\*|[A-Za-z0-9-]+:[A-Za-z0-9_*?-]+")
_ACCOUNT_ID = re.compile(r"[0-9]{12}")
_CONDITION_KEY = re.compile(r"[^:\s]+:\S+")


class PolicyError(ValidationError):
    """A policy document that IAM would refuse (``MalformedPolicyDocumentException``)."""

    code = "MalformedPolicyDocumentException"


class Effect(StrEnum):
    """A statement's ``Effect``."""

    ALLOW = "Allow"
    DENY = "Deny"


@dataclass(frozen=True)
class ConditionClause:
    """One key under one operator: ``{"StringLike": {"medical-imaging:studyinstanceuid": ["1.2*"]}}``.

    ``operator`` is the bare operator (``StringLike``); ``if_exists`` and ``set_qualifier`` ("ForAnyValue" /
    "ForAllValues") carry the suffix and prefix it was written with. ``key`` is lower-cased.
    """

    operator: str
    key: str
    values: tuple[str, ...]
    if_exists: bool = False
    set_qualifier: str | None = None

    @property
    def operator_name(self) -> str:
        """The operator as written in a policy (``ForAnyValue:StringLikeIfExists``)."""
        name = self.operator + ("IfExists" if self.if_exists else "")
        return f"{self.set_qualifier}:{name}" if self.set_qualifier else name


@dataclass(frozen=True)
class Principals:
    """A ``Principal`` / ``NotPrincipal``: ``any`` for "*", else AWS principal ARNs (or "*") and service names."""

    aws: tuple[str, ...] = ()
    service: tuple[str, ...] = ()
    any: bool = False


@dataclass(frozen=True)
class Statement:
    """One statement; ``None`` marks an element the statement does not have."""

    sid: str | None
    effect: Effect
    actions: tuple[str, ...] | None = None
    not_actions: tuple[str, ...] | None = None
    resources: tuple[str, ...] | None = None
    not_resources: tuple[str, ...] | None = None
    principals: Principals | None = None
    not_principals: Principals | None = None
    conditions: tuple[ConditionClause, ...] = ()


@dataclass(frozen=True)
class PolicyDocument:
    """A parsed policy document: ``PolicyDocument.parse(text)``, and back with ``to_json()``."""

    version: str
    statements: tuple[Statement, ...]
    policy_id: str | None = None

    @classmethod
    def parse(cls, source: str | Mapping[str, Any]) -> PolicyDocument:
        """Parse a policy document from its JSON text or from an already-decoded JSON object."""
        return _parse_document(_load(source))

    def to_json(self) -> str:
        """Canonical compact JSON (fixed key order, every multi-valued element a list) that parses back equal."""
        document: dict[str, Any] = {"Version": self.version}
        if self.policy_id is not None:
            document["Id"] = self.policy_id
        document["Statement"] = [_statement_json(statement) for statement in self.statements]
        return json.dumps(document, separators=(",", ":"), ensure_ascii=False)


def parse_identity_policy(source: str | Mapping[str, Any]) -> PolicyDocument:
    """Parse a policy attached to a user or role: every statement needs a resource and may not name a principal."""
    document = PolicyDocument.parse(source)
    for index, statement in enumerate(document.statements):
        path = f"Statement[{index}]"
        if statement.principals is not None or statement.not_principals is not None:
            raise PolicyError(f"{path}: an identity policy must not specify a Principal or NotPrincipal", path)
        if statement.resources is None and statement.not_resources is None:
            raise PolicyError(f"{path}: an identity policy statement needs Resource or NotResource", path)
    return document


def parse_trust_policy(source: str | Mapping[str, Any]) -> PolicyDocument:
    """Parse a role trust policy: every statement names a principal and none names a resource."""
    document = PolicyDocument.parse(source)
    for index, statement in enumerate(document.statements):
        path = f"Statement[{index}]"
        if statement.principals is None and statement.not_principals is None:
            raise PolicyError(f"{path}: a trust policy statement needs Principal or NotPrincipal", path)
        if statement.resources is not None or statement.not_resources is not None:
            raise PolicyError(f"{path}: a trust policy must not specify a Resource or NotResource", path)
    return document


# --- loading --------------------------------------------------------------------------------------------------


def _load(source: object) -> Mapping[str, Any]:
    if isinstance(source, str):
        _check_size(source)
        try:
            loaded = json.loads(source, object_pairs_hook=_unique_keys, parse_constant=_no_constant)
        except json.JSONDecodeError as exc:
            raise PolicyError(
                f"Policy document is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
            ) from None
    elif isinstance(source, Mapping):
        try:
            text = json.dumps(source, ensure_ascii=False, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise PolicyError(f"Policy document is not JSON: {exc}") from None
        _check_size(text)
        loaded = source
    else:
        raise PolicyError(f"Policy document must be JSON text or an object, got {type(source).__name__}")
    if not isinstance(loaded, Mapping):
        raise PolicyError(f"Policy document must be a JSON object, got {_json_type(loaded)}")
    return loaded


def _check_size(text: str) -> None:
    size = sum(1 for character in text if not character.isspace())
    if size > MAX_POLICY_CHARACTERS:
        raise PolicyError(
            f"Policy document has {size} characters (white space not counted); the limit is {MAX_POLICY_CHARACTERS}"
        )


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise PolicyError(f"Policy document repeats the key {key!r} in one JSON object")
        result[key] = value
    return result


def _no_constant(name: str) -> Any:
    raise PolicyError(f"Policy document is not valid JSON: {name} is not a JSON number")


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, Sequence):
        return "an array"
    return type(value).__name__


def _show(value: object) -> str:
    try:
        return json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        return repr(value)


# --- the document and its statements ---------------------------------------------------------------------------


def _parse_document(document: Mapping[str, Any]) -> PolicyDocument:
    _refuse_unknown(document, _TOP_LEVEL_KEYS, "Policy document")
    version = document.get("Version", DEFAULT_POLICY_VERSION)
    if version not in POLICY_VERSIONS:
        raise PolicyError(f'Version must be "2012-10-17" or "2008-10-17", got {_show(version)}', "Version")
    policy_id = document.get("Id")
    if policy_id is not None and not isinstance(policy_id, str):
        raise PolicyError(f"Id must be a string, got {_json_type(policy_id)}", "Id")
    if "Statement" not in document:
        raise PolicyError("Policy document has no Statement", "Statement")
    raw = document["Statement"]
    if isinstance(raw, Mapping):
        statements: tuple[Statement, ...] = (_parse_statement(raw, "Statement"),)
    elif isinstance(raw, list):
        if not raw:
            raise PolicyError("Statement must not be an empty list", "Statement")
        statements = tuple(_parse_statement(item, f"Statement[{index}]") for index, item in enumerate(raw))
    else:
        raise PolicyError(f"Statement must be an object or a list of objects, got {_json_type(raw)}", "Statement")
    _refuse_repeated_sids(statements)
    return PolicyDocument(version=version, statements=statements, policy_id=policy_id)


def _refuse_unknown(element: Mapping[Any, Any], allowed: tuple[str, ...], path: str) -> None:
    for key in element:
        if key not in allowed:
            raise PolicyError(f"{path} has an unknown element {_show(key)} (allowed: {', '.join(allowed)})", path)


def _refuse_repeated_sids(statements: tuple[Statement, ...]) -> None:
    seen: set[str] = set()
    for statement in statements:
        if statement.sid:
            if statement.sid in seen:
                raise PolicyError(f"Sid {statement.sid!r} is used by more than one statement", "Sid")
            seen.add(statement.sid)


def _parse_statement(raw: object, path: str) -> Statement:
    if not isinstance(raw, Mapping):
        raise PolicyError(f"{path} must be an object, got {_json_type(raw)}", path)
    _refuse_unknown(raw, _STATEMENT_KEYS, path)
    return Statement(
        sid=_sid(raw, path),
        effect=_effect(raw, path),
        actions=_actions(raw, "Action", path),
        not_actions=_actions(raw, "NotAction", path),
        resources=_resources(raw, "Resource", path),
        not_resources=_resources(raw, "NotResource", path),
        principals=_principals(raw, "Principal", path),
        not_principals=_principals(raw, "NotPrincipal", path),
        conditions=_conditions(raw.get("Condition"), f"{path}.Condition") if "Condition" in raw else (),
    )


def _sid(raw: Mapping[str, Any], path: str) -> str | None:
    if "Sid" not in raw:
        return None
    sid = raw["Sid"]
    if not isinstance(sid, str):
        raise PolicyError(f"{path}.Sid must be a string, got {_json_type(sid)}", f"{path}.Sid")
    if not _SID.fullmatch(sid):
        raise PolicyError(f"{path}.Sid {sid!r} may contain only letters and digits", f"{path}.Sid")
    return sid


def _effect(raw: Mapping[str, Any], path: str) -> Effect:
    if "Effect" not in raw:
        raise PolicyError(f"{path} has no Effect", f"{path}.Effect")
    effect = raw["Effect"]
    if effect not in (Effect.ALLOW.value, Effect.DENY.value):
        raise PolicyError(f'{path}.Effect must be "Allow" or "Deny", got {_show(effect)}', f"{path}.Effect")
    return Effect(effect)


def _exclusive(raw: Mapping[str, Any], name: str, path: str) -> None:
    """Refuse a statement that has both ``name`` and ``Not{name}`` (called for the positive element)."""
    if name in raw and f"Not{name}" in raw:
        raise PolicyError(f"{path} has both {name} and Not{name}; use one", path)


def _strings(value: object, path: str) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, list):
        raise PolicyError(f"{path} must be a string or a list of strings, got {_json_type(value)}", path)
    if not value:
        raise PolicyError(f"{path} must not be an empty list", path)
    for index, item in enumerate(value):
        if not isinstance(item, str):
            raise PolicyError(f"{path}[{index}] must be a string, got {_json_type(item)}", f"{path}[{index}]")
    return tuple(value)


def _actions(raw: Mapping[str, Any], name: str, path: str) -> tuple[str, ...] | None:
    if name == "Action":
        _exclusive(raw, "Action", path)
        if "Action" not in raw and "NotAction" not in raw:
            raise PolicyError(f"{path} has neither Action nor NotAction", path)
    if name not in raw:
        return None
    actions = _strings(raw[name], f"{path}.{name}")
    for action in actions:
        if not _ACTION.fullmatch(action):
            raise PolicyError(
                f'{path}.{name} {action!r} must be "*" or "service:action" (letters, digits, "-", "*", "?")',
                f"{path}.{name}",
            )
    return actions


def _resources(raw: Mapping[str, Any], name: str, path: str) -> tuple[str, ...] | None:
    if name == "Resource":
        _exclusive(raw, "Resource", path)
    if name not in raw:
        return None
    resources = _strings(raw[name], f"{path}.{name}")
    for resource in resources:
        if resource != "*" and not resource.startswith("arn:"):
            raise PolicyError(f'{path}.{name} {resource!r} must be "*" or an ARN', f"{path}.{name}")
    return resources


# --- principals --------------------------------------------------------------------------------------------------


def _principals(raw: Mapping[str, Any], name: str, path: str) -> Principals | None:
    if name == "Principal":
        _exclusive(raw, "Principal", path)
    if name not in raw:
        return None
    value, where = raw[name], f"{path}.{name}"
    if value == "*":
        return Principals(any=True)
    if not isinstance(value, Mapping):
        raise PolicyError(f'{where} must be "*" or an object with AWS and/or Service, got {_show(value)}', where)
    if not value:
        raise PolicyError(f"{where} names no principal", where)
    for kind in value:
        if kind not in _PRINCIPAL_TYPES:
            raise PolicyError(f"{where} type {_show(kind)} is not supported (supported: AWS, Service)", where)
    aws: tuple[str, ...] = ()
    if "AWS" in value:
        aws = tuple(_aws_principal(item, f"{where}.AWS") for item in _strings(value["AWS"], f"{where}.AWS"))
    service = _strings(value["Service"], f"{where}.Service") if "Service" in value else ()
    for item in service:
        if not item or item.strip() != item:
            raise PolicyError(f"{where}.Service {item!r} is not a service principal name", f"{where}.Service")
    return Principals(aws=aws, service=service)


def _aws_principal(value: str, path: str) -> str:
    if _ACCOUNT_ID.fullmatch(value):
        return f"arn:aws:iam::{value}:root"
    if value == "*" or value.startswith("arn:"):
        return value
    raise PolicyError(f'{path} {value!r} must be "*", a 12-digit account id or an ARN', path)


# --- conditions --------------------------------------------------------------------------------------------------


def parse_operator(name: str) -> tuple[str, bool, str | None] | None:
    """Split ``ForAllValues:StringLikeIfExists`` into ("StringLike", True, "ForAllValues"); None if unknown."""
    qualifier: str | None = None
    prefix, colon, rest = name.partition(":")
    if colon:
        if prefix not in SET_QUALIFIERS:
            return None
        qualifier, name = prefix, rest
    if_exists = name.endswith("IfExists")
    operator = name.removesuffix("IfExists")
    if operator not in CONDITION_OPERATORS:
        return None
    if operator == "Null" and (if_exists or qualifier is not None):
        return None
    return operator, if_exists, qualifier


def _conditions(value: object, path: str) -> tuple[ConditionClause, ...]:
    if not isinstance(value, Mapping):
        raise PolicyError(f"{path} must be an object, got {_json_type(value)}", path)
    clauses: list[ConditionClause] = []
    for name, body in value.items():
        parsed = parse_operator(name) if isinstance(name, str) else None
        if parsed is None:
            raise PolicyError(f"{path} has an unknown operator {_show(name)}", path)
        operator, if_exists, qualifier = parsed
        where = f"{path}.{name}"
        if not isinstance(body, Mapping):
            raise PolicyError(f"{where} must be an object of condition keys, got {_json_type(body)}", where)
        if not body:
            raise PolicyError(f"{where} has no condition key", where)
        seen: set[str] = set()
        for key, raw_values in body.items():
            if not isinstance(key, str) or not _CONDITION_KEY.fullmatch(key):
                raise PolicyError(f'{where} key {_show(key)} must be "service:key"', where)
            if key.lower() in seen:
                raise PolicyError(f"{where} names the key {key!r} twice (keys are case-insensitive)", where)
            seen.add(key.lower())
            values = _condition_values(raw_values, f"{where}.{key}")
            clauses.append(ConditionClause(operator, key.lower(), values, if_exists, qualifier))
    return tuple(clauses)


def _condition_values(value: object, path: str) -> tuple[str, ...]:
    items = value if isinstance(value, list) else [value]
    if not items:
        raise PolicyError(f"{path} must not be an empty list", path)
    return tuple(_condition_value(item, path) for item in items)


def _condition_value(value: object, path: str) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return json.dumps(value)
    raise PolicyError(f"{path} values must be strings, booleans or numbers, got {_json_type(value)}", path)


# --- writing -------------------------------------------------------------------------------------------------------


def _statement_json(statement: Statement) -> dict[str, Any]:
    result: dict[str, Any] = {}
    if statement.sid is not None:
        result["Sid"] = statement.sid
    result["Effect"] = statement.effect.value
    for name, principals in (("Principal", statement.principals), ("NotPrincipal", statement.not_principals)):
        if principals is not None:
            result[name] = _principals_json(principals)
    for name, values in (
        ("Action", statement.actions),
        ("NotAction", statement.not_actions),
        ("Resource", statement.resources),
        ("NotResource", statement.not_resources),
    ):
        if values is not None:
            result[name] = list(values)
    if statement.conditions:
        condition: dict[str, dict[str, list[str]]] = {}
        for clause in statement.conditions:
            condition.setdefault(clause.operator_name, {})[clause.key] = list(clause.values)
        result["Condition"] = condition
    return result


def _principals_json(principals: Principals) -> str | dict[str, list[str]]:
    if principals.any:
        return "*"
    result: dict[str, list[str]] = {}
    if principals.aws:
        result["AWS"] = list(principals.aws)
    if principals.service:
        result["Service"] = list(principals.service)
    return result
