"""The ``IamRepository`` contract on every index adapter (memory, SQLite, PostgreSQL): users, access keys, roles,
inline and attached policies, STS sessions (migration 0006)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone

import pytest

from openhi.errors import ConflictError
from openhi.iam.directory_model import (
    AccessKeyRecord,
    AttachedPolicy,
    InlinePolicy,
    KeyStatus,
    PrincipalKind,
    Role,
    SessionRecord,
    User,
)
from openhi.index.port import Index, UnitOfWork

T0 = datetime(2024, 5, 1, 12, 30, 0, 123456, tzinfo=UTC)
ACCOUNT = "123456789012"
TRUST = (
    '{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Principal": {"AWS": "123456789012"}, '
    '"Action": "sts:AssumeRole"}}'
)
POLICY = '{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "medical-imaging:*", "Resource": "*"}}'
READ_ONLY = "arn:aws:iam::aws:policy/AWSHealthImagingReadOnlyAccess"
FULL = "arn:aws:iam::aws:policy/AWSHealthImagingFullAccess"


def user(name: str, at: datetime = T0) -> User:
    return User(name, f"arn:aws:iam::{ACCOUNT}:user/{name}", at)


def role(name: str, max_seconds: int = 3600) -> Role:
    return Role(name, f"arn:aws:iam::{ACCOUNT}:role/{name}", TRUST, T0, max_seconds)


def key(key_id: str, user_name: str, at: datetime = T0, status: KeyStatus = KeyStatus.ACTIVE) -> AccessKeyRecord:
    return AccessKeyRecord(key_id, f"secret-of-{key_id}", user_name, status, at)


def session(key_id: str, role_name: str, expires_at: datetime) -> SessionRecord:
    return SessionRecord(key_id, "s3cr3t", "token-" + key_id * 4, role_name, "session", "arn:x", T0, expires_at)


def run(index: Index, *steps: Callable[[UnitOfWork], object]) -> None:
    """Every step in one unit of work."""

    def work(uow: UnitOfWork) -> None:
        for step in steps:
            step(uow)

    index.run(work)


def read[T](index: Index, fn: Callable[[UnitOfWork], T]) -> T:
    return index.run(fn, readonly=True)


# -- users ----------------------------------------------------------------------------------------------------


def test_user_round_trip_in_utc_and_listed_by_name(index: Index) -> None:
    plus_two = timezone(timedelta(hours=2))
    run(
        index,
        lambda uow: uow.iam.add_user(user("zoe", T0.astimezone(plus_two))),
        lambda uow: uow.iam.add_user(user("alice")),
    )
    got = read(index, lambda uow: uow.iam.get_user("zoe"))
    assert got == user("zoe")
    assert got.created_at.tzinfo == UTC
    assert [u.name for u in read(index, lambda uow: uow.iam.list_users())] == ["alice", "zoe"]
    assert read(index, lambda uow: uow.iam.get_user("nobody")) is None


def test_duplicate_user_conflicts_and_leaves_the_unit_of_work_usable(index: Index) -> None:
    run(index, lambda uow: uow.iam.add_user(user("alice")))

    def work(uow: UnitOfWork) -> None:
        with pytest.raises(ConflictError):
            uow.iam.add_user(user("alice"))
        uow.iam.add_user(user("bob"))

    index.run(work)
    assert [u.name for u in read(index, lambda uow: uow.iam.list_users())] == ["alice", "bob"]


def test_deleting_a_user_takes_its_keys_and_policies(index: Index) -> None:
    run(
        index,
        lambda uow: uow.iam.add_user(user("alice")),
        lambda uow: uow.iam.add_user(user("bob")),
        lambda uow: uow.iam.add_access_key(key("AKIAALICE00000000001", "alice")),
        lambda uow: uow.iam.add_access_key(key("AKIABOB0000000000001", "bob")),
        lambda uow: uow.iam.put_policy(InlinePolicy(PrincipalKind.USER, "alice", "p", POLICY)),
        lambda uow: uow.iam.attach_policy(AttachedPolicy(PrincipalKind.USER, "alice", READ_ONLY)),
    )
    assert index.run(lambda uow: uow.iam.delete_user("alice")) is True
    assert index.run(lambda uow: uow.iam.delete_user("alice")) is False
    assert read(index, lambda uow: uow.iam.get_access_key("AKIAALICE00000000001")) is None
    assert read(index, lambda uow: uow.iam.list_policies(PrincipalKind.USER, "alice")) == []
    assert read(index, lambda uow: uow.iam.list_attached(PrincipalKind.USER, "alice")) == []
    assert read(index, lambda uow: uow.iam.get_access_key("AKIABOB0000000000001")) == key("AKIABOB0000000000001", "bob")
    # A user created again with the same name starts empty.
    run(index, lambda uow: uow.iam.add_user(user("alice")))
    assert read(index, lambda uow: uow.iam.list_access_keys("alice")) == []


# -- access keys ----------------------------------------------------------------------------------------------


def test_access_keys_round_trip_listed_oldest_first(index: Index) -> None:
    later = T0 + timedelta(minutes=1)
    run(
        index,
        lambda uow: uow.iam.add_user(user("alice")),
        lambda uow: uow.iam.add_access_key(key("AKIAZZZZ000000000001", "alice", T0)),
        lambda uow: uow.iam.add_access_key(key("AKIAAAAA000000000002", "alice", later, KeyStatus.INACTIVE)),
    )
    keys = read(index, lambda uow: uow.iam.list_access_keys("alice"))
    assert keys == [
        key("AKIAZZZZ000000000001", "alice", T0),
        key("AKIAAAAA000000000002", "alice", later, KeyStatus.INACTIVE),
    ]
    assert isinstance(keys[1].status, KeyStatus)
    assert read(index, lambda uow: uow.iam.list_access_keys("bob")) == []


def test_access_key_status_and_delete(index: Index) -> None:
    run(
        index,
        lambda uow: uow.iam.add_user(user("alice")),
        lambda uow: uow.iam.add_access_key(key("AKIAALICE00000000001", "alice")),
    )
    assert index.run(lambda uow: uow.iam.set_access_key_status("AKIAALICE00000000001", KeyStatus.INACTIVE))
    stored = read(index, lambda uow: uow.iam.get_access_key("AKIAALICE00000000001"))
    assert stored is not None
    assert stored.status is KeyStatus.INACTIVE
    assert not index.run(lambda uow: uow.iam.set_access_key_status("AKIANONE000000000000", KeyStatus.ACTIVE))
    assert index.run(lambda uow: uow.iam.delete_access_key("AKIAALICE00000000001")) is True
    assert index.run(lambda uow: uow.iam.delete_access_key("AKIAALICE00000000001")) is False


def test_access_key_needs_its_user_and_a_unique_id(index: Index) -> None:
    with pytest.raises(ConflictError):
        run(index, lambda uow: uow.iam.add_access_key(key("AKIAORPHAN0000000001", "ghost")))
    run(
        index,
        lambda uow: uow.iam.add_user(user("alice")),
        lambda uow: uow.iam.add_user(user("bob")),
        lambda uow: uow.iam.add_access_key(key("AKIAALICE00000000001", "alice")),
    )
    with pytest.raises(ConflictError):
        run(index, lambda uow: uow.iam.add_access_key(key("AKIAALICE00000000001", "bob")))
    stored = read(index, lambda uow: uow.iam.get_access_key("AKIAALICE00000000001"))
    assert stored is not None
    assert stored.user_name == "alice"


# -- roles and policies ---------------------------------------------------------------------------------------


def test_role_round_trip(index: Index) -> None:
    run(index, lambda uow: uow.iam.add_role(role("writer", 43200)), lambda uow: uow.iam.add_role(role("reader")))
    assert read(index, lambda uow: uow.iam.get_role("writer")) == role("writer", 43200)
    assert [r.name for r in read(index, lambda uow: uow.iam.list_roles())] == ["reader", "writer"]
    with pytest.raises(ConflictError):
        run(index, lambda uow: uow.iam.add_role(role("reader")))


def test_inline_policies_upsert_list_and_delete(index: Index) -> None:
    other = POLICY.replace("medical-imaging:*", "medical-imaging:Get*")
    run(
        index,
        lambda uow: uow.iam.add_user(user("alice")),
        lambda uow: uow.iam.add_role(role("alice")),  # same name, other kind: another principal
        lambda uow: uow.iam.put_policy(InlinePolicy(PrincipalKind.USER, "alice", "zeta", POLICY)),
        lambda uow: uow.iam.put_policy(InlinePolicy(PrincipalKind.USER, "alice", "alpha", POLICY)),
        lambda uow: uow.iam.put_policy(InlinePolicy(PrincipalKind.USER, "alice", "alpha", other)),
        lambda uow: uow.iam.put_policy(InlinePolicy(PrincipalKind.ROLE, "alice", "role-policy", POLICY)),
    )
    assert read(index, lambda uow: uow.iam.list_policies(PrincipalKind.USER, "alice")) == [
        InlinePolicy(PrincipalKind.USER, "alice", "alpha", other),
        InlinePolicy(PrincipalKind.USER, "alice", "zeta", POLICY),
    ]
    assert [p.name for p in read(index, lambda uow: uow.iam.list_policies(PrincipalKind.ROLE, "alice"))] == [
        "role-policy"
    ]
    assert index.run(lambda uow: uow.iam.delete_policy(PrincipalKind.USER, "alice", "zeta")) is True
    assert index.run(lambda uow: uow.iam.delete_policy(PrincipalKind.USER, "alice", "zeta")) is False
    assert index.run(lambda uow: uow.iam.delete_policy(PrincipalKind.ROLE, "alice", "alpha")) is False


@pytest.mark.parametrize("kind", list(PrincipalKind))
def test_policies_need_their_principal(index: Index, kind: PrincipalKind) -> None:
    with pytest.raises(ConflictError):
        run(index, lambda uow: uow.iam.put_policy(InlinePolicy(kind, "ghost", "p", POLICY)))
    with pytest.raises(ConflictError):
        run(index, lambda uow: uow.iam.attach_policy(AttachedPolicy(kind, "ghost", READ_ONLY)))


def test_attached_policies_are_idempotent_and_detachable(index: Index) -> None:
    run(
        index,
        lambda uow: uow.iam.add_role(role("reader")),
        lambda uow: uow.iam.attach_policy(AttachedPolicy(PrincipalKind.ROLE, "reader", READ_ONLY)),
        lambda uow: uow.iam.attach_policy(AttachedPolicy(PrincipalKind.ROLE, "reader", FULL)),
        lambda uow: uow.iam.attach_policy(AttachedPolicy(PrincipalKind.ROLE, "reader", READ_ONLY)),
    )
    assert read(index, lambda uow: uow.iam.list_attached(PrincipalKind.ROLE, "reader")) == [
        AttachedPolicy(PrincipalKind.ROLE, "reader", FULL),
        AttachedPolicy(PrincipalKind.ROLE, "reader", READ_ONLY),
    ]
    assert index.run(lambda uow: uow.iam.detach_policy(PrincipalKind.ROLE, "reader", FULL)) is True
    assert index.run(lambda uow: uow.iam.detach_policy(PrincipalKind.ROLE, "reader", FULL)) is False
    assert index.run(lambda uow: uow.iam.detach_policy(PrincipalKind.USER, "reader", READ_ONLY)) is False
    assert [a.policy_arn for a in read(index, lambda uow: uow.iam.list_attached(PrincipalKind.ROLE, "reader"))] == [
        READ_ONLY
    ]


# -- sessions -------------------------------------------------------------------------------------------------


def test_session_round_trip_also_for_a_role_outside_the_index(index: Index) -> None:
    run(index, lambda uow: uow.iam.add_role(role("reader")))
    stored = session("ASIAREADER0000000001", "reader", T0 + timedelta(hours=1))
    from_file = session("ASIAFILE000000000001", "role-of-the-file", T0 + timedelta(hours=1))
    run(index, lambda uow: uow.iam.add_session(stored), lambda uow: uow.iam.add_session(from_file))
    assert read(index, lambda uow: uow.iam.get_session("ASIAREADER0000000001")) == stored
    assert read(index, lambda uow: uow.iam.get_session("ASIAFILE000000000001")) == from_file
    assert read(index, lambda uow: uow.iam.get_session("ASIANONE000000000000")) is None
    with pytest.raises(ConflictError):
        run(index, lambda uow: uow.iam.add_session(stored))


def test_deleting_a_role_takes_its_policies_and_sessions(index: Index) -> None:
    run(
        index,
        lambda uow: uow.iam.add_role(role("reader")),
        lambda uow: uow.iam.add_role(role("writer")),
        lambda uow: uow.iam.put_policy(InlinePolicy(PrincipalKind.ROLE, "reader", "p", POLICY)),
        lambda uow: uow.iam.attach_policy(AttachedPolicy(PrincipalKind.ROLE, "reader", READ_ONLY)),
        lambda uow: uow.iam.add_session(session("ASIAREADER0000000001", "reader", T0 + timedelta(hours=1))),
        lambda uow: uow.iam.add_session(session("ASIAWRITER0000000001", "writer", T0 + timedelta(hours=1))),
    )
    assert index.run(lambda uow: uow.iam.delete_role("reader")) is True
    assert index.run(lambda uow: uow.iam.delete_role("reader")) is False
    assert read(index, lambda uow: uow.iam.get_session("ASIAREADER0000000001")) is None
    assert read(index, lambda uow: uow.iam.get_session("ASIAWRITER0000000001")) is not None
    assert read(index, lambda uow: uow.iam.list_policies(PrincipalKind.ROLE, "reader")) == []
    assert read(index, lambda uow: uow.iam.list_attached(PrincipalKind.ROLE, "reader")) == []


def test_expired_sessions_are_purged_by_cutoff(index: Index) -> None:
    run(
        index,
        lambda uow: uow.iam.add_session(session("ASIAOLD0000000000001", "r", T0 - timedelta(seconds=1))),
        lambda uow: uow.iam.add_session(session("ASIAEDGE000000000001", "r", T0)),
        lambda uow: uow.iam.add_session(session("ASIANEW0000000000001", "r", T0 + timedelta(seconds=1))),
    )
    assert index.run(lambda uow: uow.iam.delete_sessions_expired_before(T0)) == 1
    assert read(index, lambda uow: uow.iam.get_session("ASIAOLD0000000000001")) is None
    assert read(index, lambda uow: uow.iam.get_session("ASIAEDGE000000000001")) is not None
    assert index.run(lambda uow: uow.iam.delete_sessions_expired_before(T0 + timedelta(days=1))) == 2


def test_a_failed_unit_of_work_leaves_no_principal_behind(index: Index) -> None:
    def work(uow: UnitOfWork) -> None:
        uow.iam.add_user(user("alice"))
        uow.iam.add_access_key(key("AKIAALICE00000000001", "alice"))
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        index.run(work)
    assert read(index, lambda uow: uow.iam.get_user("alice")) is None
    assert read(index, lambda uow: uow.iam.get_access_key("AKIAALICE00000000001")) is None
