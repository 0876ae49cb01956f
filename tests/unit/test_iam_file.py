"""The IAM file (setting ``iam_file``): the TOML format, and every check made before the server starts."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from openhi.access.iam_file import load_iam_file, parse_iam_document
from openhi.errors import ValidationError
from openhi.iam.directory_model import AccessKeyRecord, AttachedPolicy, KeyStatus, PrincipalKind, User
from openhi.iam.policy import PolicyDocument

ACCOUNT = "123456789012"
NOW = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)
ALLOW_LIST = (
    '{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "medical-imaging:List*", "Resource": "*"}}'
)
TRUST = (
    '{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Principal": {"AWS": "123456789012"}, '
    '"Action": "sts:AssumeRole"}}'
)

EXAMPLE = f"""
[[users]]
name = "alice"
access_key_id = "AKIAALICE00000000001"
secret_access_key = "alice-secret-0123456789"
managed_policies = ["AWSHealthImagingReadOnlyAccess"]

[users.policies]
list = '{ALLOW_LIST}'

[users.policies.assume]
Version = "2012-10-17"
Statement = [{{ Effect = "Allow", Action = "sts:AssumeRole", Resource = "arn:aws:iam::{ACCOUNT}:role/*" }}]

[[users]]
name = "bob"

[[roles]]
name = "reader"
trust_policy = '{TRUST}'
max_session_seconds = 7200
managed_policies = ["arn:aws:iam::aws:policy/AWSHealthImagingReadOnlyAccess"]

[[roles]]
name = "oidc"
policies = {{ everything = '{ALLOW_LIST}' }}

[roles.trust_policy]
Version = "2012-10-17"
Statement = [
  {{ Effect = "Allow", Principal = {{ Service = "medical-imaging.amazonaws.com" }}, Action = "sts:AssumeRole" }},
]
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "iam.toml"
    path.write_text(text)
    return path


def test_the_documented_example_loads(tmp_path: Path) -> None:
    principals = load_iam_file(write(tmp_path, EXAMPLE), ACCOUNT, NOW)
    assert principals.users == (
        User("alice", f"arn:aws:iam::{ACCOUNT}:user/alice", NOW),
        User("bob", f"arn:aws:iam::{ACCOUNT}:user/bob", NOW),
    )
    assert principals.access_keys == (
        AccessKeyRecord("AKIAALICE00000000001", "alice-secret-0123456789", "alice", KeyStatus.ACTIVE, NOW),
    )
    assert [(r.name, r.arn, r.max_session_seconds) for r in principals.roles] == [
        ("reader", f"arn:aws:iam::{ACCOUNT}:role/reader", 7200),
        ("oidc", f"arn:aws:iam::{ACCOUNT}:role/oidc", 3600),
    ]
    assert principals.roles[0].trust_policy == TRUST  # JSON text kept as written
    assert PolicyDocument.parse(principals.roles[1].trust_policy).statements[0].principals is not None
    policies = {(p.kind, p.principal, p.name): p.document for p in principals.policies}
    assert policies[(PrincipalKind.USER, "alice", "list")] == ALLOW_LIST
    assert json.loads(policies[(PrincipalKind.USER, "alice", "assume")])["Statement"][0]["Action"] == "sts:AssumeRole"
    assert (PrincipalKind.ROLE, "oidc", "everything") in policies
    read_only = "arn:aws:iam::aws:policy/AWSHealthImagingReadOnlyAccess"
    assert principals.attached == (
        AttachedPolicy(PrincipalKind.USER, "alice", read_only),
        AttachedPolicy(PrincipalKind.ROLE, "reader", read_only),
    )


def test_an_empty_file_declares_nobody(tmp_path: Path) -> None:
    principals = load_iam_file(write(tmp_path, ""), ACCOUNT, NOW)
    assert (principals.users, principals.roles, principals.access_keys) == ((), (), ())


def test_missing_and_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="does not exist"):
        load_iam_file(tmp_path / "nope.toml", ACCOUNT, NOW)
    with pytest.raises(ValidationError, match="not valid TOML"):
        load_iam_file(write(tmp_path, "[[users]\nname="), ACCOUNT, NOW)


def user(**fields: Any) -> dict[str, Any]:
    return {"users": [{"name": "alice", **fields}]}


def role(**fields: Any) -> dict[str, Any]:
    return {"roles": [{"name": "reader", "trust_policy": TRUST, **fields}]}


@pytest.mark.parametrize(
    ("document", "where", "why"),
    [
        ({"groups": []}, "the file", "unknown key 'groups'"),
        ({"users": {"name": "alice"}}, "users", "array of tables"),
        ({"users": [{}]}, "users[0].name", "is required"),
        (user(name="has space"), "users[0].name", "1-64 characters"),
        (user(password="x"), "users[0]", "unknown key 'password'"),
        (user(access_key_id="AKIAALICE00000000001"), "users[0]", "given together"),
        (user(access_key_id="akia-lower", secret_access_key="s"), "users[0].access_key_id", "upper-case"),
        (user(access_key_id="ASIAALICE00000000001", secret_access_key="s"), "users[0].access_key_id", "STS"),
        (user(access_key_id="AKIAALICE00000000001", secret_access_key=""), "users[0].secret_access_key", "non-empty"),
        (user(policies=["x"]), "users[0].policies", "table"),
        (user(policies={"bad name": ALLOW_LIST}), "users[0].policies.bad name", "1-128"),
        (user(policies={"p": "{not json"}), "users[0].policies.p", "not valid JSON"),
        (user(policies={"p": TRUST}), "users[0].policies.p", "Principal"),
        (user(policies={"p": 3}), "users[0].policies.p", "JSON text or a table"),
        (user(managed_policies="AWSHealthImagingReadOnlyAccess"), "users[0].managed_policies", "list"),
        (user(managed_policies=["AdministratorAccess"]), "users[0].managed_policies[0]", "not a managed policy"),
        (
            user(managed_policies=["AWSHealthImagingFullAccess", "AWSHealthImagingFullAccess"]),
            "users[0].managed_policies[1]",
            "listed twice",
        ),
        ({"users": [{"name": "alice"}, {"name": "alice"}]}, "user name 'alice'", "declared twice"),
        (
            {
                "users": [
                    {"name": "a", "access_key_id": "AKIASAME000000000001", "secret_access_key": "x"},
                    {"name": "b", "access_key_id": "AKIASAME000000000001", "secret_access_key": "y"},
                ]
            },
            "access key id 'AKIASAME000000000001'",
            "declared twice",
        ),
        ({"roles": [{"name": "reader"}]}, "roles[0].trust_policy", "is required"),
        (role(trust_policy=ALLOW_LIST), "roles[0].trust_policy", "Principal"),
        (role(max_session_seconds=900), "roles[0].max_session_seconds", "3600 to 43200"),
        (role(max_session_seconds="3600"), "roles[0].max_session_seconds", "integer"),
        ({"roles": [role()["roles"][0], role()["roles"][0]]}, "role name 'reader'", "declared twice"),
    ],
)
def test_every_problem_is_named(document: dict[str, Any], where: str, why: str) -> None:
    with pytest.raises(ValidationError) as caught:
        parse_iam_document(document, ACCOUNT, NOW, "/etc/openhi/iam.toml")
    message = caught.value.message
    assert message.startswith(f"IAM file /etc/openhi/iam.toml: {where}")
    assert why in message
    assert caught.value.field == "iam_file"


def test_the_same_name_may_be_a_user_and_a_role() -> None:
    principals = parse_iam_document({**user(), **role(name="alice")}, ACCOUNT, NOW, "f")
    assert [u.name for u in principals.users] == [r.name for r in principals.roles] == ["alice"]
