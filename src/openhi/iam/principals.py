"""Who calls: the caller of one request, with the policies that decide what it may do.

Shapes follow IAM (guide TOC 514-537): the account root, IAM users (long-term access keys) and assumed-role
sessions (temporary keys with a session token, from the STS ``AssumeRole`` endpoint or from an OIDC
authorizer's ``roleArn``, guide 2665-3216). ARNs use the account id and partition of the settings.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from openhi.iam.policy import PolicyDocument


class CallerKind(StrEnum):
    """CloudTrail's ``userIdentity.type`` for the caller."""

    ROOT = "Root"
    IAM_USER = "IAMUser"
    ASSUMED_ROLE = "AssumedRole"


@dataclass(frozen=True)
class Caller:
    """The authenticated principal of one request.

    ``policies`` are every identity policy that applies (inline and attached managed ones; for an assumed role,
    the role's). The root caller is allowed everything, as the AWS account root is.
    """

    arn: str  # arn:aws:iam::{acct}:root | ...:user/{name} | arn:aws:sts::{acct}:assumed-role/{role}/{session}
    account_id: str
    kind: CallerKind
    policies: tuple[PolicyDocument, ...] = field(default=())
    access_key_id: str | None = None
    role_arn: str | None = None  # for ASSUMED_ROLE: arn:aws:iam::{acct}:role/{name}

    @property
    def is_root(self) -> bool:
        """True for the account root (long-term root key), which no policy restricts."""
        return self.kind is CallerKind.ROOT


def root_arn(account_id: str) -> str:
    """The account root's ARN."""
    return f"arn:aws:iam::{account_id}:root"


def user_arn(account_id: str, name: str) -> str:
    """An IAM user's ARN."""
    return f"arn:aws:iam::{account_id}:user/{name}"


def role_arn(account_id: str, name: str) -> str:
    """An IAM role's ARN."""
    return f"arn:aws:iam::{account_id}:role/{name}"


def assumed_role_arn(account_id: str, role_name: str, session_name: str) -> str:
    """The ARN of a session of an assumed role (what STS GetCallerIdentity reports)."""
    return f"arn:aws:sts::{account_id}:assumed-role/{role_name}/{session_name}"
