"""``openhi iam <command>``: manage the users, access keys, roles and policies stored in the index.

Works on the index directly (no server needed; a running server sees the change within ``iam_cache_seconds``) and
takes the settings flags of ``openhi serve`` (``--config``, ``--data-dir``, ``--index-url`` ...), so it reaches the
same index. Principals of the IAM file (``iam_file``) are listed but read-only. Commands and their output follow
``aws iam`` (IAM API Reference: CreateUser, CreateAccessKey, ListAccessKeys, PutUserPolicy, AttachUserPolicy,
CreateRole, GetRole ...): JSON on stdout, nothing for commands that return nothing; a failure prints one line
``openhi: <message>`` on stderr and exits with status 2. ``create-access-key`` prints the secret; it is shown only
that once (``list-access-keys`` and ``get-user`` never show it).

Policy documents (``--document``, ``--trust-policy``) are JSON text, ``file://PATH`` or a path to a JSON file.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from openhi.access.directory import PrincipalDirectory
from openhi.access.directory_admin import RoleView, UserView
from openhi.config import Settings
from openhi.errors import ValidationError
from openhi.iam.directory_model import (
    DEFAULT_MAX_SESSION_SECONDS,
    AccessKeyRecord,
    InlinePolicy,
    KeyStatus,
    PrincipalKind,
    Role,
    User,
    unique_id,
)

type Command = Callable[[PrincipalDirectory, argparse.Namespace], dict[str, Any] | None]


def _time(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _document_text(value: str, option: str) -> str:
    """JSON text as given, or the content of ``file://PATH`` / ``PATH``."""
    if value.lstrip().startswith("{"):
        return value
    path = Path(value.removeprefix("file://"))
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "it is not UTF-8 text"
        raise ValidationError(f"{option}: {value!r} is neither JSON text nor a readable file ({reason})") from exc


def _policy_json(document: str) -> Any:
    try:
        return json.loads(document)
    except json.JSONDecodeError:  # stored text always parsed once; keep it verbatim if it is not plain JSON
        return document


def _user(directory: PrincipalDirectory, user: User) -> dict[str, Any]:
    return {
        "UserName": user.name,
        "UserId": unique_id("AIDA", user.arn),
        "Arn": user.arn,
        "CreateDate": _time(user.created_at),
        "Source": "file" if directory.from_file(PrincipalKind.USER, user.name) else "index",
    }


def _role(directory: PrincipalDirectory, role: Role) -> dict[str, Any]:
    return {
        "RoleName": role.name,
        "RoleId": unique_id("AROA", role.arn),
        "Arn": role.arn,
        "CreateDate": _time(role.created_at),
        "AssumeRolePolicyDocument": _policy_json(role.trust_policy),
        "MaxSessionDuration": role.max_session_seconds,
        "Source": "file" if directory.from_file(PrincipalKind.ROLE, role.name) else "index",
    }


def _key_metadata(key: AccessKeyRecord) -> dict[str, Any]:
    return {
        "UserName": key.user_name,
        "AccessKeyId": key.access_key_id,
        "Status": key.status.value,
        "CreateDate": _time(key.created_at),
    }


def _policies(policies: tuple[InlinePolicy, ...]) -> dict[str, Any]:
    return {policy.name: _policy_json(policy.document) for policy in policies}


def _attached(arns: tuple[str, ...]) -> list[dict[str, str]]:
    return [{"PolicyName": arn.rsplit("/", 1)[-1], "PolicyArn": arn} for arn in arns]


def _user_view(directory: PrincipalDirectory, view: UserView) -> dict[str, Any]:
    return {
        "User": _user(directory, view.user),
        "AccessKeys": [_key_metadata(key) for key in view.access_keys],
        "UserPolicies": _policies(view.policies),
        "AttachedPolicies": _attached(view.attached),
    }


def _role_view(directory: PrincipalDirectory, view: RoleView) -> dict[str, Any]:
    return {
        "Role": _role(directory, view.role),
        "RolePolicies": _policies(view.policies),
        "AttachedPolicies": _attached(view.attached),
    }


# ------------------------------------------------------------------------------------------------------ commands


def _create_user(d: PrincipalDirectory, a: argparse.Namespace) -> dict[str, Any]:
    return {"User": _user(d, d.create_user(a.user))}


def _create_access_key(d: PrincipalDirectory, a: argparse.Namespace) -> dict[str, Any]:
    key = d.create_access_key(a.user)
    return {"AccessKey": {**_key_metadata(key), "SecretAccessKey": key.secret_access_key}}


def _create_role(d: PrincipalDirectory, a: argparse.Namespace) -> dict[str, Any]:
    trust = _document_text(a.trust_policy, "--trust-policy")
    return {"Role": _role(d, d.create_role(a.role, trust, a.max_session_seconds))}


COMMANDS: dict[str, Command] = {
    "create-user": _create_user,
    "delete-user": lambda d, a: d.delete_user(a.user),
    "get-user": lambda d, a: _user_view(d, d.get_user(a.user)),
    "list-users": lambda d, a: {"Users": [_user(d, user) for user in d.list_users()]},
    "create-access-key": _create_access_key,
    "list-access-keys": lambda d, a: {"AccessKeyMetadata": [_key_metadata(k) for k in d.list_access_keys(a.user)]},
    "update-access-key": lambda d, a: d.update_access_key(a.user, a.access_key_id, KeyStatus(a.status)),
    "delete-access-key": lambda d, a: d.delete_access_key(a.user, a.access_key_id),
    "put-user-policy": lambda d, a: d.put_user_policy(a.user, a.name, _document_text(a.document, "--document")),
    "delete-user-policy": lambda d, a: d.delete_user_policy(a.user, a.name),
    "attach-user-policy": lambda d, a: d.attach_user_policy(a.user, a.policy),
    "detach-user-policy": lambda d, a: d.detach_user_policy(a.user, a.policy),
    "create-role": _create_role,
    "delete-role": lambda d, a: d.delete_role(a.role),
    "get-role": lambda d, a: _role_view(d, d.get_role(a.role)),
    "list-roles": lambda d, a: {"Roles": [_role(d, role) for role in d.list_roles()]},
    "put-role-policy": lambda d, a: d.put_role_policy(a.role, a.name, _document_text(a.document, "--document")),
    "delete-role-policy": lambda d, a: d.delete_role_policy(a.role, a.name),
    "attach-role-policy": lambda d, a: d.attach_role_policy(a.role, a.policy),
    "detach-role-policy": lambda d, a: d.detach_role_policy(a.role, a.policy),
}

_HELP = {
    "create-user": "create an IAM user",
    "delete-user": "delete a user with its access keys and policies",
    "get-user": "show a user, its access keys (without secrets) and policies",
    "list-users": "list users (index and IAM file)",
    "create-access-key": "create an access key pair for a user (the secret is printed only now)",
    "list-access-keys": "list a user's access keys",
    "update-access-key": "make an access key Active or Inactive",
    "delete-access-key": "delete an access key",
    "put-user-policy": "add or replace an inline policy of a user",
    "delete-user-policy": "delete an inline policy of a user",
    "attach-user-policy": "attach an AWS managed policy to a user",
    "detach-user-policy": "detach a managed policy from a user",
    "create-role": "create a role with its trust policy",
    "delete-role": "delete a role with its policies and sessions",
    "get-role": "show a role and its policies",
    "list-roles": "list roles (index and IAM file)",
    "put-role-policy": "add or replace an inline policy of a role",
    "delete-role-policy": "delete an inline policy of a role",
    "attach-role-policy": "attach an AWS managed policy to a role",
    "detach-role-policy": "detach a managed policy from a role",
}


# Commands whose subject is the principal itself (it may also be given as --name).
_NAMED_BY_NAME = {cmd: kind for kind in ("user", "role") for cmd in (f"create-{kind}", f"delete-{kind}", f"get-{kind}")}


def _add_options(name: str, parser: argparse.ArgumentParser) -> None:
    if name not in ("list-users", "list-roles"):
        kind = _NAMED_BY_NAME.get(name) or ("role" if "-role-" in name else "user")
        # The principal is --user / --role (aws iam: --user-name / --role-name); --name too when it is the subject.
        flags = [f"--{kind}", f"--{kind}-name"] + (["--name"] if name in _NAMED_BY_NAME else [])
        parser.add_argument(*flags, dest=kind, required=True, help=f"{kind} name")
    if name in ("update-access-key", "delete-access-key"):
        parser.add_argument("--access-key-id", required=True)
    if name == "update-access-key":
        parser.add_argument("--status", required=True, choices=[status.value for status in KeyStatus])
    if name.startswith(("put-", "delete-")) and name.endswith("-policy"):
        parser.add_argument("--name", "--policy-name", dest="name", required=True, help="inline policy name")
    if name.startswith("put-"):
        parser.add_argument(
            "--document", "--policy-document", dest="document", required=True, help="JSON text, file://PATH or PATH"
        )
    if name.startswith(("attach-", "detach-")):
        parser.add_argument("--policy", "--policy-arn", dest="policy", required=True, help="managed policy name or ARN")
    if name == "create-role":
        parser.add_argument(
            "--trust-policy",
            "--assume-role-policy-document",
            dest="trust_policy",
            required=True,
            help="trust policy: JSON text, file://PATH or PATH",
        )
        parser.add_argument(
            "--max-session-seconds",
            "--max-session-duration",
            dest="max_session_seconds",
            type=int,
            default=DEFAULT_MAX_SESSION_SECONDS,
            help="longest AssumeRole session, 3600..43200 (default 3600)",
        )


def add_iam_commands(commands: Any, common: argparse.ArgumentParser) -> None:
    """Register ``openhi iam <command>`` on the CLI's subcommands; ``common`` holds the settings flags."""
    iam = commands.add_parser("iam", help="manage IAM users, access keys, roles and policies in the index")
    subcommands = iam.add_subparsers(dest="iam_command", required=True)
    for name in COMMANDS:
        _add_options(name, subcommands.add_parser(name, parents=[common], help=_HELP[name]))


def run_iam(args: argparse.Namespace, settings: Settings) -> int:
    """Run one ``openhi iam`` command; domain errors propagate to ``main`` (one line, exit status 2)."""
    from openhi.bootstrap import open_directory

    directory, index = open_directory(settings)
    try:
        result = COMMANDS[args.iam_command](directory, args)
    finally:
        index.close()
    if result is not None:
        print(json.dumps(result, indent=2, ensure_ascii=False))
    return 0
