"""The stored principals of OpenHI's IAM: users, their access keys, roles, their policies and STS sessions.

The shapes are IAM's and STS's, cut to what HealthImaging's guide relies on (guide 21430-21460: IAM users with
long-term access keys, roles that hand out temporary credentials, identity policies that are inline or
attached managed policies; guide 22150-22155: requests signed with an access key or with STS temporary
credentials). They are what the index stores (``index.port.IamRepository``) and what the principal
directory (``access.directory``) reads and writes; nothing here does I/O.

Naming rules are IAM's ("IAM and AWS STS quotas, name requirements"): user and role names are 1-64 characters
of ``[\\w+=,.@-]``, policy names 1-128 of the same set, role session names 2-64. Names are case-sensitive here
(IAM refuses two users whose names differ only in case; OpenHI does not check that). Access key ids look like
AWS's: ``AKIA`` + 16 base-32 characters for long-term keys, ``ASIA`` + 16 for STS session keys.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Final

from openhi.errors import ValidationError

NAME_PATTERN: Final = re.compile(r"[\w+=,.@-]{1,64}", re.ASCII)
POLICY_NAME_PATTERN: Final = re.compile(r"[\w+=,.@-]{1,128}", re.ASCII)
SESSION_NAME_PATTERN: Final = re.compile(r"[\w+=,.@-]{2,64}", re.ASCII)
ACCESS_KEY_ID_PATTERN: Final = re.compile(r"[A-Z0-9]{16,128}")

LONG_TERM_KEY_PREFIX: Final = "AKIA"
SESSION_KEY_PREFIX: Final = "ASIA"
MAX_ACCESS_KEYS_PER_USER: Final = 2  # IAM quota "AccessKeysPerUser"
DEFAULT_MAX_SESSION_SECONDS: Final = 3600
MIN_SESSION_SECONDS: Final = 900  # STS DurationSeconds minimum
MAX_SESSION_SECONDS: Final = 43200  # IAM MaxSessionDuration maximum (12 hours)
ROLE_CHAINING_MAX_SECONDS: Final = 3600  # a role session assuming a role gets at most one hour
SESSION_TOKEN_BYTES: Final = 96  # 128 URL-safe characters: long and opaque, as STS's tokens are


class KeyStatus(StrEnum):
    """An access key's status (IAM ``statusType``); only Active keys sign requests."""

    ACTIVE = "Active"
    INACTIVE = "Inactive"


class PrincipalKind(StrEnum):
    """Whose policy a stored policy row is: an IAM user's or a role's."""

    USER = "user"
    ROLE = "role"


@dataclass(frozen=True)
class User:
    """An IAM user (``arn:aws:iam::{account}:user/{name}``)."""

    name: str
    arn: str
    created_at: datetime


@dataclass(frozen=True)
class AccessKeyRecord:
    """A user's long-term access key pair."""

    access_key_id: str
    secret_access_key: str
    user_name: str
    status: KeyStatus
    created_at: datetime


@dataclass(frozen=True)
class Role:
    """An IAM role: who may assume it (``trust_policy``, JSON text as given) and for how long at most."""

    name: str
    arn: str
    trust_policy: str
    created_at: datetime
    max_session_seconds: int = DEFAULT_MAX_SESSION_SECONDS


@dataclass(frozen=True)
class InlinePolicy:
    """A policy embedded in one user or role; ``document`` is the JSON text as given."""

    kind: PrincipalKind
    principal: str
    name: str
    document: str


@dataclass(frozen=True)
class AttachedPolicy:
    """A managed policy attached to a user or role, by ARN (``arn:aws:iam::aws:policy/{name}``)."""

    kind: PrincipalKind
    principal: str
    policy_arn: str


@dataclass(frozen=True)
class SessionRecord:
    """The temporary credentials of one assumed-role session (STS ``AssumeRole``).

    ``source_arn`` is who assumed the role (kept for the audit trail).
    """

    access_key_id: str
    secret_access_key: str
    session_token: str
    role_name: str
    session_name: str
    source_arn: str
    created_at: datetime
    expires_at: datetime


@dataclass(frozen=True)
class TemporaryCredentials:
    """What ``AssumeRole`` answers: the key pair, its session token, expiry and the assumed-role user."""

    access_key_id: str
    secret_access_key: str
    session_token: str
    expiration: datetime
    assumed_role_arn: str
    assumed_role_id: str  # "{role unique id}:{session name}"


@dataclass(frozen=True)
class PrincipalSet:
    """A read-only set of principals (what an IAM file declares): same entities as the index stores."""

    users: tuple[User, ...] = ()
    access_keys: tuple[AccessKeyRecord, ...] = ()
    roles: tuple[Role, ...] = ()
    policies: tuple[InlinePolicy, ...] = ()
    attached: tuple[AttachedPolicy, ...] = ()


# ------------------------------------------------------------------------------------------------- validation


def check_name(value: str, what: str) -> str:
    """A user or role name, or ValidationError."""
    if not isinstance(value, str) or not NAME_PATTERN.fullmatch(value):
        raise ValidationError(f"{what} {value!r} must be 1-64 characters of letters, digits and +=,.@_-", field=what)
    return value


def check_policy_name(value: str) -> str:
    """A policy name, or ValidationError."""
    if not isinstance(value, str) or not POLICY_NAME_PATTERN.fullmatch(value):
        raise ValidationError(
            f"policy name {value!r} must be 1-128 characters of letters, digits and +=,.@_-", field="policyName"
        )
    return value


def check_max_session_seconds(value: int) -> int:
    """A role's maximum session duration (IAM: 3600..43200 seconds), or ValidationError."""
    if isinstance(value, bool) or not isinstance(value, int) or not 3600 <= value <= MAX_SESSION_SECONDS:
        raise ValidationError(
            f"max session duration {value!r} must be an integer from 3600 to {MAX_SESSION_SECONDS} seconds",
            field="maxSessionDuration",
        )
    return value


# -------------------------------------------------------------------------------------------------- generators


def _base32(count: int) -> str:
    return base64.b32encode(secrets.token_bytes(count)).decode()


def new_access_key_id(prefix: str = LONG_TERM_KEY_PREFIX) -> str:
    """``AKIA`` (or ``ASIA``) + 16 random base-32 characters, as AWS's key ids look."""
    return prefix + _base32(10)[:16]


def new_secret_access_key() -> str:
    """40 random characters from the base-64 alphabet (``/`` avoided), as AWS's secrets look."""
    return base64.b64encode(secrets.token_bytes(30)).decode().replace("/", "+")[:40]


def new_session_token() -> str:
    """A long random opaque session token."""
    return secrets.token_urlsafe(SESSION_TOKEN_BYTES)


def unique_id(prefix: str, arn: str) -> str:
    """A stable IAM-style unique id (``AIDA...`` for users, ``AROA...`` for roles) derived from the ARN.

    IAM draws a new id when a principal is created; OpenHI derives it from the ARN, so a user deleted and
    created again keeps its id (documented in docs/iam.md).
    """
    digest = hashlib.sha256(f"openhi principal id\0{arn}".encode()).digest()
    return prefix + base64.b32encode(digest).decode()[:17]
