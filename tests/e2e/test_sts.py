"""STS on OpenHI's port, with unmodified boto3 clients: AssumeRole, GetCallerIdentity, temporary credentials
(``aws_session_token``) on the medical-imaging API, and STS's error codes. Principals come from an IAM file."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from botocore.config import Config
from tests.e2e.conftest import ServerFactory
from tests.e2e.helpers import error_of
from tests.support.server import ACCESS_KEY_ID, SECRET_ACCESS_KEY, ServerProcess

ACCOUNT = "123456789012"
DEV = ("AKIADEVE2E0000000001", "dev-secret-0123456789abcdef")
OTHER = ("AKIAOTHERE2E00000001", "other-secret-0123456789abcdef")
NO_RETRIES = Config(retries={"max_attempts": 1, "mode": "standard"}, inject_host_prefix=False)


def role_arn(name: str) -> str:
    return f"arn:aws:iam::{ACCOUNT}:role/{name}"


def trust(principal: str) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Principal": {"AWS": principal}, "Action": "sts:AssumeRole"}],
        }
    )


def iam_file(folder: Path) -> Path:
    assume = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": role_arn("account-trusted")}],
        }
    )
    path = folder / "iam.toml"
    path.write_text(
        f"""
[[users]]
name = "dev"
access_key_id = "{DEV[0]}"
secret_access_key = "{DEV[1]}"
policies = {{ assume = '{assume}' }}

[[users]]
name = "other"
access_key_id = "{OTHER[0]}"
secret_access_key = "{OTHER[1]}"

[[roles]]
name = "dev-trusted"
trust_policy = '{trust(f"arn:aws:iam::{ACCOUNT}:user/dev")}'
managed_policies = ["AWSHealthImagingReadOnlyAccess"]

[[roles]]
name = "account-trusted"
trust_policy = '{trust(ACCOUNT)}'
max_session_seconds = 7200

[[roles]]
name = "untrusting"
trust_policy = '{trust(f"arn:aws:iam::{ACCOUNT}:user/other")}'
"""
    )
    return path


@pytest.fixture(scope="module")
def server(make_server: ServerFactory, tmp_path_factory: pytest.TempPathFactory) -> ServerProcess:
    return make_server(env={"OPENHI_IAM_FILE": str(iam_file(tmp_path_factory.mktemp("iam")))})


def sts(server: ServerProcess, key: tuple[str, str], token: str | None = None) -> Any:
    return boto3.client(
        "sts",
        endpoint_url=server.endpoint,
        region_name="us-east-1",
        aws_access_key_id=key[0],
        aws_secret_access_key=key[1],
        aws_session_token=token,
        config=NO_RETRIES,
    )


def imaging(server: ServerProcess, credentials: dict[str, Any], **overrides: Any) -> Any:
    options = {
        "aws_access_key_id": credentials["AccessKeyId"],
        "aws_secret_access_key": credentials["SecretAccessKey"],
        "aws_session_token": credentials["SessionToken"],
        **overrides,
    }
    return server.client(**options)


def test_assumed_role_credentials_sign_medical_imaging_requests(server: ServerProcess) -> None:
    answer = sts(server, DEV).assume_role(RoleArn=role_arn("dev-trusted"), RoleSessionName="e2e-session")
    credentials = answer["Credentials"]
    assert credentials["AccessKeyId"].startswith("ASIA")
    assert len(credentials["SessionToken"]) >= 100
    assert 3500 < (credentials["Expiration"] - datetime.now(UTC)).total_seconds() <= 3600  # the default hour
    assert answer["AssumedRoleUser"]["Arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/dev-trusted/e2e-session"
    assert answer["AssumedRoleUser"]["AssumedRoleId"].endswith(":e2e-session")

    session = imaging(server, credentials)
    listed = session.list_datastores()
    assert isinstance(listed["datastoreSummaries"], list)
    # the role's policy (AWSHealthImagingReadOnlyAccess) reads but does not create
    code, status, message = error_of(session.create_datastore, datastoreName="by-session")
    assert (code, status) == ("AccessDeniedException", 403)
    assert f"arn:aws:sts::{ACCOUNT}:assumed-role/dev-trusted/e2e-session" in message


def test_temporary_key_without_its_token_is_refused(server: ServerProcess) -> None:
    credentials = sts(server, DEV).assume_role(RoleArn=role_arn("dev-trusted"), RoleSessionName="tokens")["Credentials"]
    no_token = imaging(server, credentials, aws_session_token=None)
    assert error_of(no_token.list_datastores)[:2] == ("UnrecognizedClientException", 403)
    wrong_token = imaging(server, credentials, aws_session_token=credentials["SessionToken"][:-2] + "xx")
    code, status, message = error_of(wrong_token.list_datastores)
    assert (code, status, message) == (
        "UnrecognizedClientException",
        403,
        "The security token included in the request is invalid.",
    )
    long_term_with_token = server.client(aws_session_token=credentials["SessionToken"])
    assert error_of(long_term_with_token.list_datastores)[:2] == ("UnrecognizedClientException", 403)
    # STS names the same failure InvalidClientTokenId.
    assert error_of(sts(server, (credentials["AccessKeyId"], credentials["SecretAccessKey"])).get_caller_identity)[
        :2
    ] == ("InvalidClientTokenId", 403)


def test_get_caller_identity_of_root_user_and_session(server: ServerProcess) -> None:
    root = sts(server, (ACCESS_KEY_ID, SECRET_ACCESS_KEY)).get_caller_identity()
    assert (root["Account"], root["Arn"], root["UserId"]) == (ACCOUNT, f"arn:aws:iam::{ACCOUNT}:root", ACCOUNT)
    user = sts(server, DEV).get_caller_identity()
    assert (user["Account"], user["Arn"]) == (ACCOUNT, f"arn:aws:iam::{ACCOUNT}:user/dev")
    assert user["UserId"].startswith("AIDA")

    assumed = sts(server, DEV).assume_role(RoleArn=role_arn("dev-trusted"), RoleSessionName="who")
    credentials = assumed["Credentials"]
    session = sts(
        server, (credentials["AccessKeyId"], credentials["SecretAccessKey"]), credentials["SessionToken"]
    ).get_caller_identity()
    assert session["Arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/dev-trusted/who"
    assert session["UserId"] == assumed["AssumedRoleUser"]["AssumedRoleId"]


def test_a_role_trusting_the_account_needs_the_identity_policy(server: ServerProcess) -> None:
    answer = sts(server, DEV).assume_role(
        RoleArn=role_arn("account-trusted"), RoleSessionName="long", DurationSeconds=7200
    )
    assert answer["Credentials"]["AccessKeyId"].startswith("ASIA")
    code, status, message = error_of(
        sts(server, OTHER).assume_role, RoleArn=role_arn("account-trusted"), RoleSessionName="nope"
    )
    assert (code, status) == ("AccessDenied", 403)
    assert message == (
        f"User: arn:aws:iam::{ACCOUNT}:user/other is not authorized to perform: sts:AssumeRole on resource: "
        f"{role_arn('account-trusted')}"
    )


@pytest.mark.parametrize("role", ["untrusting", "does-not-exist"])
def test_untrusting_or_unknown_role_is_access_denied(server: ServerProcess, role: str) -> None:
    code, status, _ = error_of(sts(server, DEV).assume_role, RoleArn=role_arn(role), RoleSessionName="s1")
    assert (code, status) == ("AccessDenied", 403)


@pytest.mark.parametrize("duration", [7200, 50000])
def test_duration_outside_the_role_limits_is_a_validation_error(server: ServerProcess, duration: int) -> None:
    code, status, _ = error_of(
        sts(server, DEV).assume_role, RoleArn=role_arn("dev-trusted"), RoleSessionName="s1", DurationSeconds=duration
    )
    assert (code, status) == ("ValidationError", 400)


def test_unsupported_session_policy_is_refused_not_ignored(server: ServerProcess) -> None:
    policy = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": "*", "Resource": "*"}]})
    code, status, message = error_of(
        sts(server, DEV).assume_role, RoleArn=role_arn("dev-trusted"), RoleSessionName="s1", Policy=policy
    )
    assert (code, status) == ("ValidationError", 400)
    assert "Policy" in message


def test_unknown_key_and_bad_signature_use_sts_codes(server: ServerProcess) -> None:
    assert error_of(sts(server, ("AKIANOBODY0000000000", "x")).get_caller_identity)[:2] == (
        "InvalidClientTokenId",
        403,
    )
    assert error_of(sts(server, (DEV[0], DEV[1] + "wrong")).get_caller_identity)[:2] == (
        "SignatureDoesNotMatch",
        403,
    )


def test_sts_error_document_shape(server: ServerProcess) -> None:
    response = httpx.post(
        server.endpoint + "/",
        content=b"Action=GetCallerIdentity&Version=2011-06-15",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 403
    assert response.headers["content-type"].startswith("text/xml")
    body = response.text
    assert body.startswith(
        '<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type>'
    )
    assert "<Code>MissingAuthenticationToken</Code>" in body
    assert f"<RequestId>{response.headers['x-amzn-requestid']}</RequestId>" in body
