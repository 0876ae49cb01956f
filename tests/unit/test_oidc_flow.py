"""OidcAuthenticator (openhi.access.oidc): every row of the guide's error table (3000-3030), with fakes.

The statuses are checked through the DICOMweb edge's own mapping (api/dicomweb/errors.py ``to_wire``), so a row
that maps to the wrong status fails here.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import pytest

from openhi.access.oidc import OidcAuthenticator
from openhi.api.dicomweb.errors import to_wire
from openhi.authorizers.port import Authorizer, AuthorizerEvent
from openhi.authorizers.registry import AuthorizerRegistry
from openhi.errors import (
    AccessDeniedError,
    AuthenticationError,
    AuthorizerError,
    NotFoundError,
    OpenHIError,
    UnavailableError,
)
from openhi.iam.principals import Caller, CallerKind

NOW = datetime(2025, 9, 30, 12, 0, 0, tzinfo=UTC)
T = int(NOW.timestamp())
ACCOUNT = "123456789012"
AUTHORIZER_ARN = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:my-authorizer"
READ_ROLE = f"arn:aws:iam::{ACCOUNT}:role/DicomWebRead"
UNTRUSTING_ROLE = f"arn:aws:iam::{ACCOUNT}:role/NoTrust"
DATASTORE = "0123456789abcdef0123456789abcdef"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def token(**claims: Any) -> str:
    body = {"iat": T - 60, "exp": T + 3600, "sub": "alice"} | claims
    header = json.dumps({"alg": "RS256", "kid": "k"}).encode()
    return f"{b64(header)}.{b64(json.dumps(body).encode())}.{b64(b'sig')}"


GOOD = token()


class FakeRegistry:
    """ARN -> authorizer, recording the events each receives."""

    def __init__(self, authorizers: Mapping[str, Authorizer]) -> None:
        self._registry = AuthorizerRegistry(authorizers)
        self.events: list[AuthorizerEvent] = []

    def get(self, arn: str) -> Authorizer:
        authorizer = self._registry.get(arn)

        def recording(event: AuthorizerEvent) -> Mapping[str, Any]:
            self.events.append(event)
            return authorizer(event)

        return recording


def answering(answer: object) -> Authorizer:
    def authorizer(event: AuthorizerEvent) -> Mapping[str, Any]:
        return answer  # type: ignore[return-value]  # garbage on purpose in some tests

    return authorizer


def raising(error: Exception) -> Authorizer:
    def authorizer(event: AuthorizerEvent) -> Mapping[str, Any]:
        raise error

    return authorizer


def sleeping(seconds: float) -> Authorizer:
    def authorizer(event: AuthorizerEvent) -> Mapping[str, Any]:
        time.sleep(seconds)
        return {"isTokenValid": True, "roleArn": READ_ROLE}

    return authorizer


def role_caller(role_arn: str) -> Caller:
    """Fake principal directory: one trusting role, one whose trust policy omits the service, none else."""
    if role_arn == READ_ROLE:
        return Caller(
            arn=f"arn:aws:sts::{ACCOUNT}:assumed-role/DicomWebRead/oidc",
            account_id=ACCOUNT,
            kind=CallerKind.ASSUMED_ROLE,
            role_arn=READ_ROLE,
        )
    if role_arn == UNTRUSTING_ROLE:
        raise AccessDeniedError("the role's trust policy does not trust medical-imaging.amazonaws.com")
    raise NotFoundError(f"role {role_arn} does not exist")


@pytest.fixture
def make() -> Iterator[Callable[..., tuple[OidcAuthenticator, FakeRegistry]]]:
    made: list[OidcAuthenticator] = []

    def build(
        authorizer: Authorizer, caller: Callable[[str], Caller] = role_caller, **options: Any
    ) -> tuple[OidcAuthenticator, FakeRegistry]:
        registry = FakeRegistry({AUTHORIZER_ARN: authorizer})
        authenticator = OidcAuthenticator(registry, caller, lambda: NOW, **options)
        made.append(authenticator)
        return authenticator, registry

    yield build
    for authenticator in made:
        authenticator.close()


def wire(error: OpenHIError) -> tuple[int, str]:
    status, code, _ = to_wire(error, "req-1")
    return status, code


def test_valid_token_runs_as_the_returned_role(make: Callable[..., tuple[OidcAuthenticator, FakeRegistry]]) -> None:
    authenticator, registry = make(answering({"isTokenValid": True, "roleArn": READ_ROLE}))
    caller = authenticator.authenticate(AUTHORIZER_ARN, DATASTORE, "GetDICOMInstance", GOOD)
    assert caller.kind is CallerKind.ASSUMED_ROLE
    assert caller.role_arn == READ_ROLE
    assert [e.to_payload() for e in registry.events] == [
        {"datastoreId": DATASTORE, "operation": "GetDICOMInstance", "bearerToken": GOOD}
    ]


# -- 403 token invalid or expired --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "bad",
    [token(exp=T - 1), token(iat=T + 600), token(iat=T - 13 * 3600), token(nbf=T + 600), "not-a-jwt"],
)
def test_precheck_refuses_without_calling_the_authorizer(
    make: Callable[..., tuple[OidcAuthenticator, FakeRegistry]], bad: str
) -> None:
    authenticator, registry = make(answering({"isTokenValid": True, "roleArn": READ_ROLE}))
    with pytest.raises(AuthenticationError) as info:
        authenticator.authenticate(AUTHORIZER_ARN, DATASTORE, "GetDICOMInstance", bad)
    assert wire(info.value) == (403, "InvalidTokenException")
    assert registry.events == []


def test_authorizer_says_token_invalid(make: Callable[..., tuple[OidcAuthenticator, FakeRegistry]]) -> None:
    authenticator, _ = make(answering({"isTokenValid": False, "roleArn": ""}))
    with pytest.raises(AuthenticationError) as info:
        authenticator.authenticate(AUTHORIZER_ARN, DATASTORE, "SearchDICOMStudies", GOOD)
    assert wire(info.value) == (403, "InvalidTokenException")
    assert info.value.message == "Invalid or expired token: the authorizer rejected it"


def test_invalid_token_wins_over_a_role(make: Callable[..., tuple[OidcAuthenticator, FakeRegistry]]) -> None:
    authenticator, _ = make(answering({"isTokenValid": False, "roleArn": READ_ROLE}))
    with pytest.raises(AuthenticationError):
        authenticator.authenticate(AUTHORIZER_ARN, DATASTORE, "SearchDICOMStudies", GOOD)


# -- 403 access denied -------------------------------------------------------------------------------------------


def test_empty_role_is_access_denied(make: Callable[..., tuple[OidcAuthenticator, FakeRegistry]]) -> None:
    authenticator, _ = make(answering({"isTokenValid": True, "roleArn": ""}))
    with pytest.raises(AccessDeniedError) as info:
        authenticator.authenticate(AUTHORIZER_ARN, DATASTORE, "GetDICOMInstance", GOOD)
    assert wire(info.value) == (403, "AccessDeniedException")
    assert info.value.message == "Access denied: the authorizer returned an empty role"


# -- 424 misconfiguration ----------------------------------------------------------------------------------------


def test_unknown_authorizer(make: Callable[..., tuple[OidcAuthenticator, FakeRegistry]]) -> None:
    authenticator, _ = make(answering({"isTokenValid": True, "roleArn": READ_ROLE}))
    other = AUTHORIZER_ARN.replace("my-authorizer", "gone")
    with pytest.raises(AuthorizerError) as info:
        authenticator.authenticate(other, DATASTORE, "GetDICOMInstance", GOOD)
    assert wire(info.value) == (424, "AuthorizerMisconfigurationException")
    assert "does not exist or is invalid" in info.value.message


@pytest.mark.parametrize("answer", [None, "ok", {"isTokenValid": "yes", "roleArn": READ_ROLE}, {"isTokenValid": True}])
def test_malformed_answer(make: Callable[..., tuple[OidcAuthenticator, FakeRegistry]], answer: object) -> None:
    authenticator, _ = make(answering(answer))
    with pytest.raises(AuthorizerError) as info:
        authenticator.authenticate(AUTHORIZER_ARN, DATASTORE, "GetDICOMInstance", GOOD)
    assert wire(info.value) == (424, "AuthorizerMisconfigurationException")


@pytest.mark.parametrize(
    ("role", "fragment"),
    [
        (f"arn:aws:iam::{ACCOUNT}:role/DoesNotExist", "cannot be assumed"),
        (UNTRUSTING_ROLE, "cannot be assumed by medical-imaging.amazonaws.com"),
        ("DicomWebRead", "not an IAM role ARN"),
        (f"arn:aws:iam::{ACCOUNT}:user/alice", "not an IAM role ARN"),
    ],
)
def test_role_that_cannot_be_assumed(
    make: Callable[..., tuple[OidcAuthenticator, FakeRegistry]], role: str, fragment: str
) -> None:
    authenticator, _ = make(answering({"isTokenValid": True, "roleArn": role}))
    with pytest.raises(AuthorizerError) as info:
        authenticator.authenticate(AUTHORIZER_ARN, DATASTORE, "GetDICOMInstance", GOOD)
    assert wire(info.value) == (424, "AuthorizerMisconfigurationException")
    assert fragment in info.value.message


def test_other_directory_failures_are_not_disguised(
    make: Callable[..., tuple[OidcAuthenticator, FakeRegistry]],
) -> None:
    def unavailable(role_arn: str) -> Caller:
        raise UnavailableError("index down")

    authenticator, _ = make(answering({"isTokenValid": True, "roleArn": READ_ROLE}), unavailable)
    with pytest.raises(UnavailableError):
        authenticator.authenticate(AUTHORIZER_ARN, DATASTORE, "GetDICOMInstance", GOOD)


# -- 424 failure -------------------------------------------------------------------------------------------------


def test_authorizer_crash_is_a_failure_logged_not_leaked(
    make: Callable[..., tuple[OidcAuthenticator, FakeRegistry]], caplog: pytest.LogCaptureFixture
) -> None:
    authenticator, _ = make(raising(RuntimeError("db password is hunter2")))
    with caplog.at_level(logging.WARNING, logger="openhi.access.oidc"), pytest.raises(AuthorizerError) as info:
        authenticator.authenticate(AUTHORIZER_ARN, DATASTORE, "GetDICOMInstance", GOOD)
    status, code, message = to_wire(info.value, "req-1")
    assert (status, code) == (424, "AuthorizerFailureException")
    assert "hunter2" not in message
    assert "Traceback" not in message
    record = next(r for r in caplog.records if r.name == "openhi.access.oidc")
    assert record.exc_info is not None  # the server log keeps the traceback
    assert GOOD not in caplog.text  # the token is never logged


def test_adapter_errors_keep_their_code(make: Callable[..., tuple[OidcAuthenticator, FakeRegistry]]) -> None:
    authenticator, _ = make(raising(AuthorizerError("AuthorizerFailureException", "Authorizer failure: HTTP 500")))
    with pytest.raises(AuthorizerError) as info:
        authenticator.authenticate(AUTHORIZER_ARN, DATASTORE, "GetDICOMInstance", GOOD)
    assert (info.value.code, info.value.message) == ("AuthorizerFailureException", "Authorizer failure: HTTP 500")


# -- 408 timeout -------------------------------------------------------------------------------------------------


def test_authorizer_running_over_one_second_times_out(
    make: Callable[..., tuple[OidcAuthenticator, FakeRegistry]],
) -> None:
    authenticator, _ = make(sleeping(1.5))
    started = time.monotonic()
    with pytest.raises(AuthorizerError) as info:
        authenticator.authenticate(AUTHORIZER_ARN, DATASTORE, "GetDICOMInstance", GOOD)
    elapsed = time.monotonic() - started
    assert wire(info.value) == (408, "AuthorizerTimeoutException")
    assert 0.95 <= elapsed < 1.2


def test_an_answer_within_the_budget_is_used(make: Callable[..., tuple[OidcAuthenticator, FakeRegistry]]) -> None:
    authenticator, _ = make(sleeping(0.3))
    assert authenticator.authenticate(AUTHORIZER_ARN, DATASTORE, "GetDICOMInstance", GOOD).role_arn == READ_ROLE


def test_concurrent_requests_share_the_pool(make: Callable[..., tuple[OidcAuthenticator, FakeRegistry]]) -> None:
    authenticator, _ = make(sleeping(0.4), max_workers=8)
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=8) as requests:
        callers = list(
            requests.map(
                lambda _: authenticator.authenticate(AUTHORIZER_ARN, DATASTORE, "GetDICOMInstance", GOOD), range(8)
            )
        )
    assert all(c.role_arn == READ_ROLE for c in callers)
    assert time.monotonic() - started < 1.0  # in parallel, not one after the other (8 x 0.4 s)


def test_hung_authorizers_do_not_block_beyond_the_budget(
    make: Callable[..., tuple[OidcAuthenticator, FakeRegistry]],
) -> None:
    release = threading.Event()

    def hung(event: AuthorizerEvent) -> Mapping[str, Any]:
        release.wait(5)
        return {"isTokenValid": True, "roleArn": READ_ROLE}

    authenticator, _ = make(hung, max_workers=1, timeout_seconds=0.2)
    try:
        for _ in range(2):  # the second call queues behind the first (one worker) and still ends on time
            started = time.monotonic()
            with pytest.raises(AuthorizerError, match=r"ran over 0\.2 s"):
                authenticator.authenticate(AUTHORIZER_ARN, DATASTORE, "GetDICOMInstance", GOOD)
            assert time.monotonic() - started < 0.5
    finally:
        release.set()


# -- 424 cross-account / cross-region ----------------------------------------------------------------------------


def test_role_in_another_account(make: Callable[..., tuple[OidcAuthenticator, FakeRegistry]]) -> None:
    foreign = "arn:aws:iam::210987654321:role/DicomWebRead"
    authenticator, _ = make(answering({"isTokenValid": True, "roleArn": foreign}), account_id=ACCOUNT)
    with pytest.raises(AuthorizerError) as info:
        authenticator.authenticate(AUTHORIZER_ARN, DATASTORE, "GetDICOMInstance", GOOD)
    assert wire(info.value) == (424, "AuthorizerCrossAccountAccessException")


@pytest.mark.parametrize(
    "arn",
    [
        "arn:aws:lambda:eu-west-1:123456789012:function:my-authorizer",
        "arn:aws:lambda:us-east-1:210987654321:function:my-authorizer",
    ],
)
def test_authorizer_in_another_account_or_region(
    make: Callable[..., tuple[OidcAuthenticator, FakeRegistry]], arn: str
) -> None:
    authenticator, registry = make(
        answering({"isTokenValid": True, "roleArn": READ_ROLE}), account_id=ACCOUNT, region="us-east-1"
    )
    with pytest.raises(AuthorizerError) as info:
        authenticator.authenticate(arn, DATASTORE, "GetDICOMInstance", GOOD)
    assert wire(info.value) == (424, "AuthorizerCrossAccountAccessException")
    assert registry.events == []


def test_same_account_and_region_pass(make: Callable[..., tuple[OidcAuthenticator, FakeRegistry]]) -> None:
    authenticator, _ = make(
        answering({"isTokenValid": True, "roleArn": READ_ROLE}), account_id=ACCOUNT, region="us-east-1"
    )
    assert authenticator.authenticate(AUTHORIZER_ARN, DATASTORE, "GetDICOMInstance", GOOD).role_arn == READ_ROLE
