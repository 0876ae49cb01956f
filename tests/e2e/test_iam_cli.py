"""``openhi iam ...`` against a running server's index: principals created by the CLI sign boto3 requests, deleted
ones stop working after the server's cache time, and errors are one line (no traceback)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from tests.e2e.conftest import ServerFactory
from tests.e2e.helpers import error_of
from tests.support.iam_cli import iam, iam_json
from tests.support.server import ServerProcess

ACCOUNT = "123456789012"
CACHE_SECONDS = 0.5
NO_RETRIES = Config(retries={"max_attempts": 1, "mode": "standard"}, inject_host_prefix=False)


@pytest.fixture(scope="module")
def server(make_server: ServerFactory) -> ServerProcess:
    return make_server(env={"OPENHI_IAM_CACHE_SECONDS": str(CACHE_SECONDS)})


def key_pair(created: dict[str, Any]) -> dict[str, str]:
    return {
        "aws_access_key_id": created["AccessKey"]["AccessKeyId"],
        "aws_secret_access_key": created["AccessKey"]["SecretAccessKey"],
    }


def test_a_key_created_by_the_cli_signs_requests_until_deleted(server: ServerProcess) -> None:
    user = iam_json(server, "create-user", "--user", "alice")["User"]
    assert user["Arn"] == f"arn:aws:iam::{ACCOUNT}:user/alice"
    created = iam_json(server, "create-access-key", "--user", "alice")
    key_id = created["AccessKey"]["AccessKeyId"]
    assert key_id.startswith("AKIA")
    assert created["AccessKey"]["Status"] == "Active"

    client = server.client(**key_pair(created))
    assert error_of(client.list_datastores)[:2] == ("AccessDeniedException", 403)  # no policy yet: default deny
    iam_json(server, "attach-user-policy", "--user", "alice", "--policy", "AWSHealthImagingReadOnlyAccess")
    time.sleep(CACHE_SECONDS + 0.3)
    assert isinstance(client.list_datastores()["datastoreSummaries"], list)

    listed = iam_json(server, "list-access-keys", "--user", "alice")["AccessKeyMetadata"]
    assert [k["AccessKeyId"] for k in listed] == [key_id]
    assert "SecretAccessKey" not in listed[0]

    assert (
        iam(
            server, "update-access-key", "--user", "alice", "--access-key-id", key_id, "--status", "Inactive"
        ).returncode
        == 0
    )
    time.sleep(CACHE_SECONDS + 0.3)
    assert error_of(client.list_datastores)[:2] == ("UnrecognizedClientException", 403)

    iam_json(server, "update-access-key", "--user", "alice", "--access-key-id", key_id, "--status", "Active")
    time.sleep(CACHE_SECONDS + 0.3)
    assert isinstance(client.list_datastores()["datastoreSummaries"], list)

    assert iam_json(server, "delete-access-key", "--user", "alice", "--access-key-id", key_id) is None
    time.sleep(CACHE_SECONDS + 0.3)
    assert error_of(client.list_datastores)[:2] == ("UnrecognizedClientException", 403)


def test_an_unknown_key_is_unrecognized(server: ServerProcess) -> None:
    client = server.client(aws_access_key_id="AKIANOBODY0000000000", aws_secret_access_key="x")
    code, status, message = error_of(client.list_datastores)
    assert (code, status, message) == (
        "UnrecognizedClientException",
        403,
        "The security token included in the request is invalid.",
    )


def test_policies_and_roles_from_the_cli_reach_sts(server: ServerProcess, tmp_path: Path) -> None:
    iam_json(server, "create-user", "--user", "bob")
    created = iam_json(server, "create-access-key", "--user", "bob")
    document = tmp_path / "assume.json"
    document.write_text(
        json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": f"arn:aws:iam::{ACCOUNT}:role/*"}
                ],
            }
        )
    )
    iam_json(server, "put-user-policy", "--user", "bob", "--name", "assume", "--document", f"file://{document}")
    iam_json(server, "attach-user-policy", "--user", "bob", "--policy", "AWSHealthImagingReadOnlyAccess")
    trust = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Principal": {"AWS": ACCOUNT}, "Action": "sts:AssumeRole"}],
        }
    )
    role = iam_json(
        server, "create-role", "--name", "cli-reader", "--trust-policy", trust, "--max-session-seconds", "7200"
    )
    assert role["Role"]["MaxSessionDuration"] == 7200
    iam_json(server, "attach-role-policy", "--role", "cli-reader", "--policy", "AWSHealthImagingReadOnlyAccess")

    shown = iam_json(server, "get-user", "--user", "bob")
    assert shown["UserPolicies"]["assume"]["Statement"][0]["Action"] == "sts:AssumeRole"
    assert [p["PolicyName"] for p in shown["AttachedPolicies"]] == ["AWSHealthImagingReadOnlyAccess"]
    assert [p["PolicyName"] for p in iam_json(server, "get-role", "--role", "cli-reader")["AttachedPolicies"]] == [
        "AWSHealthImagingReadOnlyAccess"
    ]
    assert "cli-reader" in {r["RoleName"] for r in iam_json(server, "list-roles")["Roles"]}
    assert "bob" in {u["UserName"] for u in iam_json(server, "list-users")["Users"]}

    pair = key_pair(created)
    sts = boto3.client(
        "sts",
        endpoint_url=server.endpoint,
        region_name="us-east-1",
        aws_access_key_id=pair["aws_access_key_id"],
        aws_secret_access_key=pair["aws_secret_access_key"],
        config=NO_RETRIES,
    )
    credentials = sts.assume_role(
        RoleArn=f"arn:aws:iam::{ACCOUNT}:role/cli-reader", RoleSessionName="cli", DurationSeconds=7200
    )["Credentials"]
    session = server.client(
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
    )
    assert isinstance(session.list_datastores()["datastoreSummaries"], list)

    iam_json(server, "delete-role", "--role", "cli-reader")
    time.sleep(CACHE_SECONDS + 0.3)
    assert error_of(session.list_datastores)[:2] == ("UnrecognizedClientException", 403)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("delete-user", "--user", "nobody"), "openhi: The user with name nobody cannot be found."),
        (("create-user", "--user", "bad name"), "openhi: userName 'bad name' must be 1-64 characters"),
        (
            ("put-user-policy", "--user", "nobody", "--name", "p", "--document", "{not json"),
            "openhi: Policy document is not valid JSON",
        ),
        (
            ("attach-user-policy", "--user", "nobody", "--policy", "AdministratorAccess"),
            "openhi: Policy AdministratorAccess",
        ),
        (
            ("create-role", "--name", "r", "--trust-policy", "/no/such/file.json"),
            "openhi: --trust-policy: '/no/such/file.json' is neither JSON text nor a readable file",
        ),
    ],
)
def test_errors_are_one_line_and_exit_2(server: ServerProcess, args: tuple[str, ...], message: str) -> None:
    result = iam(server, *args)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.startswith(message)
    assert result.stderr.count("\n") == 1
    assert "Traceback" not in result.stderr
