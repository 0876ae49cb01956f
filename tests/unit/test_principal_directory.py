"""The principal directory over the memory index: admin rules, key resolution and its cache, AssumeRole's rules,
session expiry (injected clock), OIDC role sessions and the IAM file's read-only principals."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import pytest

from openhi.access.directory import CallerIdentity, PrincipalDirectory
from openhi.auth.credentials import AccessKey
from openhi.errors import AccessDeniedError, AuthenticationError, ConflictError, NotFoundError, ValidationError
from openhi.iam.directory_model import (
    AccessKeyRecord,
    AttachedPolicy,
    InlinePolicy,
    KeyStatus,
    PrincipalKind,
    PrincipalSet,
    Role,
    User,
)
from openhi.iam.evaluate import AccessRequest, Decision, evaluate
from openhi.iam.managed import managed_policy
from openhi.iam.principals import Caller, CallerKind
from openhi.index.memory import MemoryIndex
from openhi.index.port import UnitOfWork

T = TypeVar("T")

ACCOUNT = "123456789012"
ROOT = AccessKey("AKIAROOT000000000001", "root-secret")
USER_ARN = f"arn:aws:iam::{ACCOUNT}:user/alice"
ACCOUNT_ROOT = f"arn:aws:iam::{ACCOUNT}:root"


class Clock:
    """A clock the test moves."""

    def __init__(self) -> None:
        self.now = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def policy(statement: dict[str, object]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


def trust(principal: dict[str, object], **extra: object) -> str:
    return policy({"Effect": "Allow", "Principal": principal, "Action": "sts:AssumeRole", **extra})


def allow(action: str, resource: str = "*") -> str:
    return policy({"Effect": "Allow", "Action": action, "Resource": resource})


def deny(action: str, resource: str = "*") -> str:
    return policy({"Effect": "Deny", "Action": action, "Resource": resource})


def role_arn(name: str) -> str:
    return f"arn:aws:iam::{ACCOUNT}:role/{name}"


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def index() -> MemoryIndex:
    return MemoryIndex()


@pytest.fixture
def directory(index: MemoryIndex, clock: Clock) -> PrincipalDirectory:
    return PrincipalDirectory(index, ACCOUNT, ROOT, clock, cache_seconds=5)


def user_with_key(directory: PrincipalDirectory, name: str = "alice") -> AccessKeyRecord:
    directory.create_user(name)
    return directory.create_access_key(name)


def caller_of(directory: PrincipalDirectory, key_id: str) -> Caller:
    resolved = directory.resolve(key_id)
    assert resolved is not None
    return resolved.caller


# -- resolving keys ---------------------------------------------------------------------------------------------


def test_root_key_resolves_to_the_unrestricted_root(directory: PrincipalDirectory) -> None:
    resolved = directory.resolve(ROOT.access_key_id)
    assert resolved is not None
    assert (resolved.secret, resolved.session_token) == (ROOT.secret_access_key, None)
    assert resolved.caller.kind is CallerKind.ROOT
    assert resolved.caller.arn == ACCOUNT_ROOT
    assert resolved.caller.is_root
    assert resolved.caller.policies == ()


def test_user_key_resolves_with_inline_and_managed_policies(directory: PrincipalDirectory) -> None:
    key = user_with_key(directory)
    directory.put_user_policy("alice", "assume", allow("sts:AssumeRole"))
    directory.attach_user_policy("alice", "AWSHealthImagingReadOnlyAccess")
    resolved = directory.resolve(key.access_key_id)
    assert resolved is not None
    assert (resolved.secret, resolved.session_token) == (key.secret_access_key, None)
    caller = resolved.caller
    assert (caller.kind, caller.arn, caller.account_id, caller.access_key_id, caller.role_arn) == (
        CallerKind.IAM_USER,
        USER_ARN,
        ACCOUNT,
        key.access_key_id,
        None,
    )
    assert managed_policy("AWSHealthImagingReadOnlyAccess") in caller.policies
    assert evaluate(caller.policies, AccessRequest("medical-imaging:ListDatastores", "*")) is Decision.ALLOW
    assert evaluate(caller.policies, AccessRequest("sts:AssumeRole", role_arn("x"))) is Decision.ALLOW
    assert evaluate(caller.policies, AccessRequest("medical-imaging:DeleteDatastore", "*")) is Decision.IMPLICIT_DENY


def test_unknown_inactive_and_deleted_keys_resolve_to_nothing(directory: PrincipalDirectory) -> None:
    assert directory.resolve("AKIAUNKNOWN000000000") is None
    key = user_with_key(directory)
    directory.update_access_key("alice", key.access_key_id, KeyStatus.INACTIVE)
    assert directory.resolve(key.access_key_id) is None
    directory.update_access_key("alice", key.access_key_id, KeyStatus.ACTIVE)
    assert directory.resolve(key.access_key_id) is not None
    directory.delete_access_key("alice", key.access_key_id)
    assert directory.resolve(key.access_key_id) is None


class CountingIndex(MemoryIndex):
    """A memory index that counts its units of work."""

    units = 0

    def run(self, work: Callable[[UnitOfWork], T], *, readonly: bool = False) -> T:
        self.units += 1
        return super().run(work, readonly=readonly)


def test_changes_by_another_process_apply_after_the_cache_time(clock: Clock) -> None:
    index = CountingIndex()
    directory = PrincipalDirectory(index, ACCOUNT, ROOT, clock, cache_seconds=5)
    other_process = PrincipalDirectory(index, ACCOUNT, ROOT, clock, cache_seconds=5)
    key = user_with_key(directory)
    assert caller_of(directory, key.access_key_id).policies == ()
    before = index.units
    for _ in range(3):
        directory.resolve(key.access_key_id)
    assert index.units == before  # cached: no unit of work

    other_process.attach_user_policy("alice", "AWSHealthImagingFullAccess")
    other_process.delete_access_key("alice", key.access_key_id)
    clock.advance(4.9)
    assert caller_of(directory, key.access_key_id).policies == ()
    clock.advance(0.2)
    assert directory.resolve(key.access_key_id) is None
    assert index.units == before + 3  # the two changes, then one read


def test_cache_disabled_reads_every_time(index: MemoryIndex, clock: Clock) -> None:
    directory = PrincipalDirectory(index, ACCOUNT, ROOT, clock, cache_seconds=0)
    other_process = PrincipalDirectory(index, ACCOUNT, ROOT, clock, cache_seconds=0)
    key = user_with_key(directory)
    assert directory.resolve(key.access_key_id) is not None
    other_process.delete_user("alice")
    assert directory.resolve(key.access_key_id) is None


# -- admin rules ------------------------------------------------------------------------------------------------


def test_admin_validation(directory: PrincipalDirectory) -> None:
    with pytest.raises(ValidationError):
        directory.create_user("bad name")
    directory.create_user("alice")
    with pytest.raises(ConflictError):
        directory.create_user("alice")
    with pytest.raises(ValidationError):  # the policy grammar (PolicyError)
        directory.put_user_policy("alice", "p", '{"Statement": {"Effect": "Allow"}}')
    with pytest.raises(ValidationError):  # a trust policy is not an identity policy
        directory.put_user_policy("alice", "p", trust({"AWS": ACCOUNT}))
    with pytest.raises(ValidationError):
        directory.put_user_policy("alice", "bad name", allow("*"))
    with pytest.raises(NotFoundError):
        directory.put_user_policy("bob", "p", allow("*"))
    with pytest.raises(NotFoundError):
        directory.attach_user_policy("alice", "NoSuchPolicy")
    with pytest.raises(NotFoundError):
        directory.detach_user_policy("alice", "AWSHealthImagingFullAccess")
    with pytest.raises(NotFoundError):
        directory.delete_user_policy("alice", "p")
    with pytest.raises(ValidationError):
        directory.create_role("r", allow("*"))  # no Principal: not a trust policy
    with pytest.raises(ValidationError):
        directory.create_role("r", trust({"AWS": ACCOUNT}), max_session_seconds=1800)
    with pytest.raises(NotFoundError):
        directory.delete_role("r")


def test_attach_by_name_or_arn_is_one_attachment(directory: PrincipalDirectory) -> None:
    directory.create_user("alice")
    directory.attach_user_policy("alice", "AWSHealthImagingReadOnlyAccess")
    directory.attach_user_policy("alice", "arn:aws:iam::aws:policy/AWSHealthImagingReadOnlyAccess")
    assert directory.get_user("alice").attached == ("arn:aws:iam::aws:policy/AWSHealthImagingReadOnlyAccess",)
    directory.detach_user_policy("alice", "arn:aws:iam::aws:policy/AWSHealthImagingReadOnlyAccess")
    assert directory.get_user("alice").attached == ()


def test_at_most_two_access_keys_per_user(directory: PrincipalDirectory, clock: Clock) -> None:
    directory.create_user("alice")
    first = directory.create_access_key("alice")
    clock.advance(1)
    second = directory.create_access_key("alice")
    assert first.access_key_id.startswith("AKIA")
    assert len(first.access_key_id) == 20
    assert len(first.secret_access_key) == 40
    assert first.access_key_id != second.access_key_id
    with pytest.raises(ConflictError, match="AccessKeysPerUser"):
        directory.create_access_key("alice")
    assert [k.access_key_id for k in directory.list_access_keys("alice")] == [
        first.access_key_id,
        second.access_key_id,
    ]


def test_a_key_is_changed_only_through_its_user(directory: PrincipalDirectory) -> None:
    key = user_with_key(directory)
    directory.create_user("bob")
    with pytest.raises(NotFoundError):
        directory.delete_access_key("bob", key.access_key_id)
    with pytest.raises(NotFoundError):
        directory.update_access_key("bob", key.access_key_id, KeyStatus.INACTIVE)
    assert directory.resolve(key.access_key_id) is not None


def test_delete_user_takes_its_keys(directory: PrincipalDirectory) -> None:
    key = user_with_key(directory)
    directory.delete_user("alice")
    assert directory.resolve(key.access_key_id) is None
    assert directory.list_users() == []
    with pytest.raises(NotFoundError):
        directory.get_user("alice")


# -- AssumeRole -------------------------------------------------------------------------------------------------


def test_trust_naming_the_user_needs_no_identity_policy(directory: PrincipalDirectory, clock: Clock) -> None:
    key = user_with_key(directory)
    directory.create_role("reader", trust({"AWS": USER_ARN}))
    directory.attach_role_policy("reader", "AWSHealthImagingReadOnlyAccess")
    credentials = directory.assume_role(caller_of(directory, key.access_key_id), role_arn("reader"), "s1")
    assert credentials.access_key_id.startswith("ASIA")
    assert len(credentials.access_key_id) == 20
    assert len(credentials.session_token) >= 100
    assert credentials.expiration == clock.now + timedelta(hours=1)
    assert credentials.assumed_role_arn == f"arn:aws:sts::{ACCOUNT}:assumed-role/reader/s1"
    assert credentials.assumed_role_id.startswith("AROA")
    assert credentials.assumed_role_id.endswith(":s1")

    resolved = directory.resolve(credentials.access_key_id)
    assert resolved is not None
    assert (resolved.secret, resolved.session_token) == (credentials.secret_access_key, credentials.session_token)
    session = resolved.caller
    assert (session.kind, session.arn, session.role_arn, session.access_key_id) == (
        CallerKind.ASSUMED_ROLE,
        credentials.assumed_role_arn,
        role_arn("reader"),
        credentials.access_key_id,
    )
    assert session.policies == (managed_policy("AWSHealthImagingReadOnlyAccess"),)


def test_trust_naming_the_account_needs_the_identity_policy(directory: PrincipalDirectory) -> None:
    key = user_with_key(directory)
    directory.create_role("reader", trust({"AWS": ACCOUNT}))
    with pytest.raises(AccessDeniedError) as caught:
        directory.assume_role(caller_of(directory, key.access_key_id), role_arn("reader"), "s1")
    assert caught.value.message == (
        f"User: {USER_ARN} is not authorized to perform: sts:AssumeRole on resource: {role_arn('reader')}"
    )
    directory.put_user_policy("alice", "assume", allow("sts:AssumeRole", role_arn("other")))
    with pytest.raises(AccessDeniedError):
        directory.assume_role(caller_of(directory, key.access_key_id), role_arn("reader"), "s1")
    directory.put_user_policy("alice", "assume", allow("sts:AssumeRole", role_arn("read*")))
    assert directory.assume_role(caller_of(directory, key.access_key_id), role_arn("reader"), "s1")


def test_an_explicit_deny_wins_over_a_trust_naming_the_user(directory: PrincipalDirectory) -> None:
    key = user_with_key(directory)
    directory.create_role("reader", trust({"AWS": USER_ARN}))
    directory.put_user_policy("alice", "no", deny("sts:*"))
    with pytest.raises(AccessDeniedError):
        directory.assume_role(caller_of(directory, key.access_key_id), role_arn("reader"), "s1")


def test_a_trust_deny_of_the_user_wins_over_its_account_allow(directory: PrincipalDirectory) -> None:
    key = user_with_key(directory)
    document = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Principal": {"AWS": ACCOUNT}, "Action": "sts:AssumeRole"},
                {"Effect": "Deny", "Principal": {"AWS": USER_ARN}, "Action": "sts:AssumeRole"},
            ],
        }
    )
    directory.create_role("reader", document)
    directory.put_user_policy("alice", "assume", allow("sts:AssumeRole"))
    with pytest.raises(AccessDeniedError):
        directory.assume_role(caller_of(directory, key.access_key_id), role_arn("reader"), "s1")


def test_unknown_role_is_denied_like_an_untrusting_one(directory: PrincipalDirectory) -> None:
    key = user_with_key(directory)
    directory.put_user_policy("alice", "assume", allow("sts:AssumeRole"))
    directory.create_role("other", trust({"AWS": f"arn:aws:iam::{ACCOUNT}:user/bob"}))
    caller = caller_of(directory, key.access_key_id)
    for arn in (role_arn("missing"), role_arn("other"), "arn:aws:iam::999999999999:role/other", "not-an-arn-at-all!"):
        with pytest.raises(AccessDeniedError):
            directory.assume_role(caller, arn, "s1")


def test_root_assumes_a_role_trusting_the_account(directory: PrincipalDirectory) -> None:
    directory.create_role("reader", trust({"AWS": ACCOUNT_ROOT}))
    directory.create_role("only-bob", trust({"AWS": f"arn:aws:iam::{ACCOUNT}:user/bob"}))
    root = caller_of(directory, ROOT.access_key_id)
    assert directory.assume_role(root, role_arn("reader"), "admin").assumed_role_arn.endswith("/reader/admin")
    with pytest.raises(AccessDeniedError):
        directory.assume_role(root, role_arn("only-bob"), "admin")


@pytest.mark.parametrize("duration", [899, 43201, 0, -1])
def test_duration_outside_sts_bounds(directory: PrincipalDirectory, duration: int) -> None:
    directory.create_role("reader", trust({"AWS": ACCOUNT}))
    with pytest.raises(ValidationError, match="durationSeconds"):
        directory.assume_role(caller_of(directory, ROOT.access_key_id), role_arn("reader"), "s1", duration)


def test_duration_up_to_the_role_maximum(directory: PrincipalDirectory, clock: Clock) -> None:
    directory.create_role("short", trust({"AWS": ACCOUNT}))
    directory.create_role("long", trust({"AWS": ACCOUNT}), max_session_seconds=7200)
    root = caller_of(directory, ROOT.access_key_id)
    assert directory.assume_role(root, role_arn("short"), "s1", 900).expiration == clock.now + timedelta(seconds=900)
    with pytest.raises(ValidationError, match="MaxSessionDuration"):
        directory.assume_role(root, role_arn("short"), "s1", 3601)
    assert directory.assume_role(root, role_arn("long"), "s1", 7200).expiration == clock.now + timedelta(hours=2)


@pytest.mark.parametrize("name", ["a", "x" * 65, "has space", "slash/no", ""])
def test_session_name_pattern(directory: PrincipalDirectory, name: str) -> None:
    directory.create_role("reader", trust({"AWS": ACCOUNT}))
    with pytest.raises(ValidationError, match="roleSessionName"):
        directory.assume_role(caller_of(directory, ROOT.access_key_id), role_arn("reader"), name)


def test_role_chaining_is_trusted_by_role_arn_and_limited_to_one_hour(directory: PrincipalDirectory) -> None:
    directory.create_role("first", trust({"AWS": ACCOUNT}), max_session_seconds=7200)
    directory.create_role("second", trust({"AWS": role_arn("first")}), max_session_seconds=7200)
    first = directory.assume_role(caller_of(directory, ROOT.access_key_id), role_arn("first"), "one")
    session = caller_of(directory, first.access_key_id)
    with pytest.raises(ValidationError, match="role chaining"):
        directory.assume_role(session, role_arn("second"), "two", 7200)
    assert directory.assume_role(session, role_arn("second"), "two").assumed_role_arn.endswith("/second/two")


def test_external_id_reaches_the_trust_conditions(directory: PrincipalDirectory) -> None:
    condition = {"StringEquals": {"sts:ExternalId": "secret-handshake"}}
    directory.create_role("partner", trust({"AWS": ACCOUNT_ROOT}, Condition=condition))
    root = caller_of(directory, ROOT.access_key_id)
    with pytest.raises(AccessDeniedError):
        directory.assume_role(root, role_arn("partner"), "s1")
    with pytest.raises(AccessDeniedError):
        directory.assume_role(root, role_arn("partner"), "s1", external_id="wrong")
    assert directory.assume_role(root, role_arn("partner"), "s1", external_id="secret-handshake")


def test_session_expires_even_when_cached(directory: PrincipalDirectory, clock: Clock) -> None:
    directory.create_role("reader", trust({"AWS": ACCOUNT}))
    credentials = directory.assume_role(caller_of(directory, ROOT.access_key_id), role_arn("reader"), "s1", 900)
    assert directory.resolve(credentials.access_key_id) is not None  # now cached
    clock.advance(899)
    assert directory.resolve(credentials.access_key_id) is not None
    clock.advance(1)
    with pytest.raises(AuthenticationError) as caught:
        directory.resolve(credentials.access_key_id)
    assert (caught.value.code, caught.value.message) == (
        "ExpiredTokenException",
        "The security token included in the request is expired",
    )
    directory.purge_expired_sessions()  # kept for a day: still "expired", not "unknown"
    with pytest.raises(AuthenticationError):
        directory.resolve(credentials.access_key_id)
    clock.advance(86401)
    assert directory.purge_expired_sessions() == 1
    assert directory.resolve(credentials.access_key_id) is None


def test_deleting_the_role_ends_its_sessions(directory: PrincipalDirectory) -> None:
    directory.create_role("reader", trust({"AWS": ACCOUNT}))
    credentials = directory.assume_role(caller_of(directory, ROOT.access_key_id), role_arn("reader"), "s1")
    directory.delete_role("reader")
    assert directory.resolve(credentials.access_key_id) is None


def test_role_policy_changes_reach_new_requests_of_a_session(directory: PrincipalDirectory) -> None:
    directory.create_role("reader", trust({"AWS": ACCOUNT}))
    credentials = directory.assume_role(caller_of(directory, ROOT.access_key_id), role_arn("reader"), "s1")
    assert caller_of(directory, credentials.access_key_id).policies == ()
    directory.put_role_policy("reader", "list", allow("medical-imaging:ListDatastores"))
    policies = caller_of(directory, credentials.access_key_id).policies
    assert evaluate(policies, AccessRequest("medical-imaging:ListDatastores", "*")) is Decision.ALLOW
    directory.delete_role_policy("reader", "list")
    assert caller_of(directory, credentials.access_key_id).policies == ()


# -- OIDC role sessions and GetCallerIdentity -------------------------------------------------------------------


def test_role_caller_needs_a_role_trusting_the_service(directory: PrincipalDirectory) -> None:
    directory.create_role("oidc", trust({"Service": "medical-imaging.amazonaws.com"}))
    directory.attach_role_policy("oidc", "AWSHealthImagingReadOnlyAccess")
    directory.create_role("users-only", trust({"AWS": ACCOUNT}))
    caller = directory.role_caller(role_arn("oidc"))
    assert (caller.kind, caller.arn, caller.role_arn, caller.access_key_id) == (
        CallerKind.ASSUMED_ROLE,
        f"arn:aws:sts::{ACCOUNT}:assumed-role/oidc/oidc",
        role_arn("oidc"),
        None,
    )
    assert caller.policies == (managed_policy("AWSHealthImagingReadOnlyAccess"),)
    assert directory.role_caller(role_arn("oidc"), "jane").arn.endswith("/oidc/jane")
    with pytest.raises(AccessDeniedError):
        directory.role_caller(role_arn("users-only"))
    with pytest.raises(NotFoundError):
        directory.role_caller(role_arn("missing"))
    with pytest.raises(NotFoundError):
        directory.role_caller("arn:aws:iam::999999999999:role/oidc")


def test_caller_identity(directory: PrincipalDirectory) -> None:
    key = user_with_key(directory)
    directory.create_role("reader", trust({"AWS": ACCOUNT}))
    root = caller_of(directory, ROOT.access_key_id)
    assert directory.caller_identity(root) == CallerIdentity(ACCOUNT, ACCOUNT, ACCOUNT_ROOT)
    user = directory.caller_identity(caller_of(directory, key.access_key_id))
    assert (user.account, user.arn) == (ACCOUNT, USER_ARN)
    assert user.user_id.startswith("AIDA")
    assert len(user.user_id) == 21
    credentials = directory.assume_role(root, role_arn("reader"), "s1")
    session = directory.caller_identity(caller_of(directory, credentials.access_key_id))
    assert (session.user_id, session.arn) == (credentials.assumed_role_id, credentials.assumed_role_arn)


# -- the IAM file's principals ----------------------------------------------------------------------------------


def file_principals(clock: Clock) -> PrincipalSet:
    return PrincipalSet(
        users=(User("carol", f"arn:aws:iam::{ACCOUNT}:user/carol", clock.now),),
        access_keys=(AccessKeyRecord("AKIACAROL00000000001", "carol-secret", "carol", KeyStatus.ACTIVE, clock.now),),
        roles=(
            Role("filerole", role_arn("filerole"), trust({"AWS": f"arn:aws:iam::{ACCOUNT}:user/carol"}), clock.now),
        ),
        policies=(InlinePolicy(PrincipalKind.USER, "carol", "list", allow("medical-imaging:ListDatastores")),),
        attached=(
            AttachedPolicy(PrincipalKind.ROLE, "filerole", "arn:aws:iam::aws:policy/AWSHealthImagingReadOnlyAccess"),
        ),
    )


def test_file_principals_resolve_and_assume_without_index_rows(index: MemoryIndex, clock: Clock) -> None:
    directory = PrincipalDirectory(index, ACCOUNT, ROOT, clock, file_principals(clock))
    directory.check_file_principals()
    carol = caller_of(directory, "AKIACAROL00000000001")
    assert carol.arn == f"arn:aws:iam::{ACCOUNT}:user/carol"
    assert evaluate(carol.policies, AccessRequest("medical-imaging:ListDatastores", "*")) is Decision.ALLOW
    credentials = directory.assume_role(carol, role_arn("filerole"), "s1")
    session = caller_of(directory, credentials.access_key_id)
    assert session.policies == (managed_policy("AWSHealthImagingReadOnlyAccess"),)
    assert [u.name for u in directory.list_users()] == ["carol"]
    assert directory.get_user("carol").read_only
    assert directory.get_role("filerole").read_only


def test_file_principals_are_read_only(index: MemoryIndex, clock: Clock) -> None:
    directory = PrincipalDirectory(index, ACCOUNT, ROOT, clock, file_principals(clock))
    for change in (
        lambda: directory.create_user("carol"),
        lambda: directory.delete_user("carol"),
        lambda: directory.create_access_key("carol"),
        lambda: directory.put_user_policy("carol", "p", allow("*")),
        lambda: directory.attach_user_policy("carol", "AWSHealthImagingFullAccess"),
        lambda: directory.create_role("filerole", trust({"AWS": ACCOUNT})),
        lambda: directory.delete_role("filerole"),
        lambda: directory.put_role_policy("filerole", "p", allow("*")),
    ):
        with pytest.raises(ConflictError, match="IAM file"):
            change()


def test_a_name_in_both_the_file_and_the_index_is_refused_at_start(index: MemoryIndex, clock: Clock) -> None:
    PrincipalDirectory(index, ACCOUNT, ROOT, clock).create_user("carol")
    with pytest.raises(ConflictError, match="user carol"):
        PrincipalDirectory(index, ACCOUNT, ROOT, clock, file_principals(clock)).check_file_principals()
    root_clash = PrincipalSet(
        users=(User("dave", "arn:aws:iam::123456789012:user/dave", clock.now),),
        access_keys=(AccessKeyRecord(ROOT.access_key_id, "x", "dave", KeyStatus.ACTIVE, clock.now),),
    )
    with pytest.raises(ConflictError, match="root key"):
        PrincipalDirectory(MemoryIndex(), ACCOUNT, ROOT, clock, root_clash).check_file_principals()
