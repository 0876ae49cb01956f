"""The IAM file: users and roles declared in a TOML file (setting ``iam_file``), read once at start, read-only.

For deployments that keep their principals in configuration rather than in the index (``openhi iam ...``). The
format (docs/iam.md)::

    [[users]]
    name = "alice"
    access_key_id = "AKIAALICE00000000001"        # optional, with secret_access_key
    secret_access_key = "..."
    managed_policies = ["AWSHealthImagingReadOnlyAccess"]
    policies = { assume = '{"Version": "2012-10-17", "Statement": [...]}' }   # JSON text or a TOML table

    [[roles]]
    name = "reader"
    trust_policy = '{"Version": "2012-10-17", "Statement": [...]}'           # JSON text or a TOML table
    max_session_seconds = 3600                     # optional: 3600..43200
    managed_policies = ["AWSHealthImagingReadOnlyAccess"]

Everything is checked here, before the server starts: unknown keys, names (IAM's rules), duplicate names or key
ids, key id shape (``[A-Z0-9]{16,128}``, not the ``ASIA`` prefix of session keys), identity and trust policy
grammar (``iam.policy``), managed policy names (``iam.managed``). Each error names the file and the element.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from openhi.errors import ValidationError
from openhi.iam.directory_model import (
    ACCESS_KEY_ID_PATTERN,
    DEFAULT_MAX_SESSION_SECONDS,
    SESSION_KEY_PREFIX,
    AccessKeyRecord,
    AttachedPolicy,
    InlinePolicy,
    KeyStatus,
    PrincipalKind,
    PrincipalSet,
    Role,
    User,
    check_max_session_seconds,
    check_name,
    check_policy_name,
)
from openhi.iam.managed import MANAGED_POLICY_NAMES, managed_policy, managed_policy_arn
from openhi.iam.policy import parse_identity_policy, parse_trust_policy
from openhi.iam.principals import role_arn, user_arn

_TOP_KEYS = ("users", "roles")
_USER_KEYS = ("name", "access_key_id", "secret_access_key", "policies", "managed_policies")
_ROLE_KEYS = ("name", "trust_policy", "max_session_seconds", "policies", "managed_policies")


class _FileError(ValidationError):
    pass


def load_iam_file(path: Path, account_id: str, now: datetime) -> PrincipalSet:
    """Read and check the file; ``now`` stamps the principals' creation time. ValidationError on any problem."""
    try:
        with path.open("rb") as handle:
            document = tomllib.load(handle)
    except FileNotFoundError as exc:
        raise ValidationError(f"IAM file {path} does not exist", field="iam_file") from exc
    except OSError as exc:
        raise ValidationError(f"IAM file {path} cannot be read: {exc.strerror}", field="iam_file") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ValidationError(f"IAM file {path} is not valid TOML: {exc}", field="iam_file") from exc
    return parse_iam_document(document, account_id, now, str(path))


def parse_iam_document(document: Mapping[str, Any], account_id: str, now: datetime, source: str) -> PrincipalSet:
    """The principals of an already-decoded IAM file; ``source`` names it in errors."""
    try:
        return _Reader(account_id, now).read(document)
    except ValidationError as exc:
        raise ValidationError(f"IAM file {source}: {exc.message}", field="iam_file") from exc


def _fail(path: str, message: str) -> _FileError:
    return _FileError(f"{path}: {message}")


def _type_name(value: object) -> str:
    return type(value).__name__


class _Reader:
    def __init__(self, account_id: str, now: datetime) -> None:
        self._account = account_id
        self._now = now
        self._users: list[User] = []
        self._keys: list[AccessKeyRecord] = []
        self._roles: list[Role] = []
        self._policies: list[InlinePolicy] = []
        self._attached: list[AttachedPolicy] = []

    def read(self, document: Mapping[str, Any]) -> PrincipalSet:
        _known(document, _TOP_KEYS, "the file")
        for index, raw in enumerate(_tables(document.get("users", []), "users")):
            self._user(raw, f"users[{index}]")
        for index, raw in enumerate(_tables(document.get("roles", []), "roles")):
            self._role(raw, f"roles[{index}]")
        _unique([u.name for u in self._users], "user name")
        _unique([r.name for r in self._roles], "role name")
        _unique([k.access_key_id for k in self._keys], "access key id")
        return PrincipalSet(
            tuple(self._users), tuple(self._keys), tuple(self._roles), tuple(self._policies), tuple(self._attached)
        )

    def _name(self, raw: Mapping[str, Any], path: str) -> str:
        name = raw.get("name")
        if not isinstance(name, str):
            raise _fail(f"{path}.name", "is required and must be a string")
        try:
            return check_name(name, "name")
        except ValidationError as exc:
            raise _fail(f"{path}.name", exc.message) from exc

    def _user(self, raw: Mapping[str, Any], path: str) -> None:
        _known(raw, _USER_KEYS, path)
        name = self._name(raw, path)
        self._users.append(User(name, user_arn(self._account, name), self._now))
        key_id, secret = raw.get("access_key_id"), raw.get("secret_access_key")
        if (key_id is None) != (secret is None):
            raise _fail(path, "access_key_id and secret_access_key must be given together")
        if key_id is not None:
            if not isinstance(key_id, str) or not ACCESS_KEY_ID_PATTERN.fullmatch(key_id):
                raise _fail(f"{path}.access_key_id", "must be 16-128 upper-case letters and digits (AKIA...)")
            if key_id.startswith(SESSION_KEY_PREFIX):
                raise _fail(f"{path}.access_key_id", f"the prefix {SESSION_KEY_PREFIX} is for STS session keys")
            if not isinstance(secret, str) or not secret:
                raise _fail(f"{path}.secret_access_key", "must be a non-empty string")
            self._keys.append(AccessKeyRecord(key_id, secret, name, KeyStatus.ACTIVE, self._now))
        self._policy_set(raw, path, PrincipalKind.USER, name)

    def _role(self, raw: Mapping[str, Any], path: str) -> None:
        _known(raw, _ROLE_KEYS, path)
        name = self._name(raw, path)
        if "trust_policy" not in raw:
            raise _fail(f"{path}.trust_policy", "is required")
        trust = _document(raw["trust_policy"], f"{path}.trust_policy", trust=True)
        max_seconds = raw.get("max_session_seconds", DEFAULT_MAX_SESSION_SECONDS)
        try:
            check_max_session_seconds(max_seconds)
        except ValidationError as exc:
            raise _fail(f"{path}.max_session_seconds", exc.message) from exc
        self._roles.append(Role(name, role_arn(self._account, name), trust, self._now, max_seconds))
        self._policy_set(raw, path, PrincipalKind.ROLE, name)

    def _policy_set(self, raw: Mapping[str, Any], path: str, kind: PrincipalKind, principal: str) -> None:
        policies = raw.get("policies", {})
        if not isinstance(policies, Mapping):
            raise _fail(f"{path}.policies", "must be a table of policy name = JSON text or table")
        for policy_name, document in policies.items():
            where = f"{path}.policies.{policy_name}"
            try:
                check_policy_name(policy_name)
            except ValidationError as exc:
                raise _fail(where, exc.message) from exc
            self._policies.append(InlinePolicy(kind, principal, policy_name, _document(document, where, trust=False)))
        managed = raw.get("managed_policies", [])
        if not isinstance(managed, list):
            raise _fail(f"{path}.managed_policies", "must be a list of managed policy names")
        for index, name in enumerate(managed):
            if not isinstance(name, str) or managed_policy(name) is None:
                raise _fail(
                    f"{path}.managed_policies[{index}]",
                    f"{name!r} is not a managed policy (known: {', '.join(MANAGED_POLICY_NAMES)})",
                )
            arn = managed_policy_arn(name.rsplit("/", 1)[-1])
            if any(a.kind is kind and a.principal == principal and a.policy_arn == arn for a in self._attached):
                raise _fail(f"{path}.managed_policies[{index}]", f"{name} is listed twice")
            self._attached.append(AttachedPolicy(kind, principal, arn))


def _known(raw: Mapping[str, Any], allowed: tuple[str, ...], path: str) -> None:
    for key in raw:
        if key not in allowed:
            raise _fail(path, f"unknown key {key!r} (allowed: {', '.join(allowed)})")


def _tables(value: object, path: str) -> list[Mapping[str, Any]]:
    if not isinstance(value, list) or not all(isinstance(item, Mapping) for item in value):
        raise _fail(path, f"must be an array of tables ([[{path}]])")
    return value


def _unique(values: list[str], what: str) -> None:
    seen: set[str] = set()
    for value in values:
        if value in seen:
            raise _FileError(f"{what} {value!r} is declared twice")
        seen.add(value)


def _document(value: object, path: str, *, trust: bool) -> str:
    """The policy's JSON text (as written, or the table as JSON), after checking its grammar."""
    if not isinstance(value, str | Mapping):
        raise _fail(path, f"must be JSON text or a table, got {_type_name(value)}")
    parse = parse_trust_policy if trust else parse_identity_policy
    try:
        parse(value)  # a table that parsed is plain JSON data (the parser refuses anything else)
    except ValidationError as exc:
        raise _fail(path, exc.message) from exc
    return value if isinstance(value, str) else json.dumps(value)
