"""The principal directory: who the access keys belong to, what their policies are, and STS ``AssumeRole``.

Principals (guide 21430-21460, 22150-22155): the account root (the settings' root key, no policy restricts it),
IAM users with long-term access keys, and roles whose sessions get temporary credentials (an ``ASIA`` key, its
secret and a session token) from ``AssumeRole`` (``api/sts.py``) or, for DICOMweb, from an OIDC authorizer's
``roleArn`` (guide 2790-2840: the role must trust ``medical-imaging.amazonaws.com``). Each user and role has inline
policies and attached AWS managed policies (``iam.managed``).

Two sources: the index (``IamRepository``, written by ``openhi iam ...`` through the admin methods inherited from
``access.directory_admin.DirectoryAdmin``) and the read-only IAM file (``access.iam_file``). A name or key id may be
in only one of them: ``check_file_principals`` refuses a clash at start, and admin changes to a file principal, or
creating an index principal with a file principal's name, raise ``ConflictError``.

``resolve`` runs on every signed request. It answers from a per-process cache for ``cache_seconds`` (5 s by
default, setting ``iam_cache_seconds``) so that a request costs no index round trip; unknown keys are cached too.
Admin changes made through this object clear its cache at once; changes made by another process (another server,
the CLI) take effect in this one after at most ``cache_seconds``. A session's expiry is checked on every request,
cached or not.

``AssumeRole`` follows STS (IAM User Guide, "Granting a user permissions to switch roles" and "Policy evaluation
logic" for cross-principal requests in one account): the role must exist and its trust policy must trust the
caller, either by naming the caller's ARN (for a role session, also the role's ARN) or by naming the account root,
in which case the caller's identity policies must also allow ``sts:AssumeRole`` on the role's ARN. An explicit deny
in the caller's identity policies always wins. An unknown role is answered like a refused one (STS does not reveal
which roles exist). DurationSeconds is 900 seconds up to the role's maximum (default 3600); a role session that
assumes a role (role chaining) gets at most one hour.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from openhi.access.directory_admin import DirectoryAdmin
from openhi.access.ttl_cache import TtlCache
from openhi.auth.credentials import AccessKey
from openhi.clock import Clock
from openhi.errors import AccessDeniedError, AuthenticationError, ConflictError, NotFoundError, ValidationError
from openhi.iam.directory_model import (
    DEFAULT_MAX_SESSION_SECONDS,
    MAX_SESSION_SECONDS,
    MIN_SESSION_SECONDS,
    ROLE_CHAINING_MAX_SECONDS,
    SESSION_KEY_PREFIX,
    SESSION_NAME_PATTERN,
    AccessKeyRecord,
    InlinePolicy,
    KeyStatus,
    PrincipalKind,
    PrincipalSet,
    Role,
    SessionRecord,
    TemporaryCredentials,
    User,
    new_access_key_id,
    new_secret_access_key,
    new_session_token,
    unique_id,
)
from openhi.iam.evaluate import AccessRequest, Decision, TrustRequest, evaluate, trusts
from openhi.iam.managed import managed_policy
from openhi.iam.policy import PolicyDocument, parse_identity_policy, parse_trust_policy
from openhi.iam.principals import Caller, CallerKind, assumed_role_arn, root_arn
from openhi.index.port import Index, UnitOfWork

log = logging.getLogger(__name__)

MEDICAL_IMAGING_SERVICE: Final = "medical-imaging.amazonaws.com"
ASSUME_ROLE_ACTION: Final = "sts:AssumeRole"
EXPIRED_TOKEN: Final = "ExpiredTokenException"  # noqa: S105 (an error code)
EXPIRED_TOKEN_MESSAGE: Final = "The security token included in the request is expired"  # noqa: S105
DEFAULT_CACHE_SECONDS: Final = 5.0
EXPIRED_SESSION_RETENTION: Final = timedelta(days=1)  # expired sessions answer ExpiredToken this long, then vanish
_ROLE_ARN: Final = re.compile(r"arn:aws:iam::(?P<account>\d{12}):role/(?:[\x21-\x7e]*/)?(?P<name>[\w+=,.@-]{1,64})")
# Fail closed: a stored policy that no longer parses (rules tightened by an upgrade) denies everything.
_DENY_ALL: Final = PolicyDocument.parse(
    '{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"*","Resource":"*"}]}'
)


@dataclass(frozen=True)
class ResolvedKey:
    """What SigV4 verification needs of an access key: its secret, the session token it must come with (None for
    a long-term key) and the caller the request then runs as."""

    secret: str
    session_token: str | None
    caller: Caller


@dataclass(frozen=True)
class CallerIdentity:
    """What STS ``GetCallerIdentity`` answers."""

    user_id: str
    account: str
    arn: str


@dataclass(frozen=True)
class _RolePrincipal:
    role: Role
    trust: PolicyDocument | None  # None: the stored trust policy no longer parses, nobody may assume the role
    policies: tuple[PolicyDocument, ...]


@dataclass(frozen=True)
class _KeyEntry:
    resolved: ResolvedKey | None
    expires_at: datetime | None  # a session's expiry


def _session_name(value: str) -> str:
    if not isinstance(value, str) or not SESSION_NAME_PATTERN.fullmatch(value):
        raise ValidationError(
            f"1 validation error detected: Value '{value}' at 'roleSessionName' failed to satisfy constraint: "
            r"Member must satisfy regular expression pattern: [\w+=,.@-]* and have length 2-64",
            field="roleSessionName",
        )
    return value


def _duration(value: int | None) -> int | None:
    if value is not None and not MIN_SESSION_SECONDS <= value <= MAX_SESSION_SECONDS:
        raise ValidationError(
            f"1 validation error detected: Value '{value}' at 'durationSeconds' failed to satisfy constraint: "
            f"Member must have value {'greater' if value < MIN_SESSION_SECONDS else 'less'} than or equal to "
            f"{MIN_SESSION_SECONDS if value < MIN_SESSION_SECONDS else MAX_SESSION_SECONDS}",
            field="durationSeconds",
        )
    return value


class PrincipalDirectory(DirectoryAdmin):
    """The admin methods of ``DirectoryAdmin`` plus key resolution, ``AssumeRole`` and OIDC role sessions."""

    def __init__(
        self,
        index: Index,
        account_id: str,
        root_key: AccessKey,
        clock: Clock,
        file_principals: PrincipalSet | None = None,
        *,
        cache_seconds: float = DEFAULT_CACHE_SECONDS,
    ) -> None:
        super().__init__(index, account_id, clock, file_principals)
        self._root_key = root_key
        self._keys: TtlCache[_KeyEntry] = TtlCache(clock, cache_seconds)
        self._roles: TtlCache[_RolePrincipal] = TtlCache(clock, cache_seconds)
        self._root_caller = Caller(
            arn=root_arn(account_id), account_id=account_id, kind=CallerKind.ROOT, access_key_id=root_key.access_key_id
        )

    def _changed(self) -> None:
        self._keys.clear()
        self._roles.clear()

    # -- start -------------------------------------------------------------------------------------------------

    def check_file_principals(self) -> None:
        """Refuse (``ConflictError``) a file principal or key that the index or the root key also has."""
        clashes: list[str] = []
        if self._root_key.access_key_id in self._file_keys:
            clashes.append(f"access key {self._root_key.access_key_id} is the root key")

        def work(uow: UnitOfWork) -> None:
            clashes.extend(f"user {name}" for name in self._file_users if uow.iam.get_user(name) is not None)
            clashes.extend(f"role {name}" for name in self._file_roles if uow.iam.get_role(name) is not None)
            clashes.extend(
                f"access key {key_id}" for key_id in self._file_keys if uow.iam.get_access_key(key_id) is not None
            )

        self._index.run(work, readonly=True)
        if clashes:
            raise ConflictError(
                "The IAM file defines principals that also exist in the index (remove them from one of the two): "
                + ", ".join(clashes)
            )

    # -- resolving keys ----------------------------------------------------------------------------------------

    def resolve(self, access_key_id: str) -> ResolvedKey | None:
        """The secret, expected session token and caller of an access key; None for an unknown or Inactive key.

        Raises ``AuthenticationError("ExpiredTokenException", ...)`` for the key of an expired session.
        """
        if access_key_id == self._root_key.access_key_id:
            return ResolvedKey(self._root_key.secret_access_key, None, self._root_caller)
        found, entry = self._keys.get(access_key_id)
        if not found or entry is None:
            entry = self._load_key(access_key_id)
            self._keys.put(access_key_id, entry)
        if entry.expires_at is not None and self._clock() >= entry.expires_at:
            raise AuthenticationError(EXPIRED_TOKEN, EXPIRED_TOKEN_MESSAGE)
        return entry.resolved

    def _load_key(self, access_key_id: str) -> _KeyEntry:
        if access_key_id in self._file_keys:
            key = self._file_keys[access_key_id]
            documents = self._parse_policies(
                self._file_policies(PrincipalKind.USER, key.user_name),
                self._file_attached(PrincipalKind.USER, key.user_name),
            )
            return _KeyEntry(self._user_key(key, self._file_users[key.user_name], documents), None)
        if access_key_id.startswith(SESSION_KEY_PREFIX):
            return self._load_session(access_key_id)

        def work(uow: UnitOfWork) -> tuple[AccessKeyRecord, User, list[InlinePolicy], list[str]] | None:
            key = uow.iam.get_access_key(access_key_id)
            user = None if key is None else uow.iam.get_user(key.user_name)
            if key is None or user is None:
                return None
            policies = uow.iam.list_policies(PrincipalKind.USER, user.name)
            attached = [a.policy_arn for a in uow.iam.list_attached(PrincipalKind.USER, user.name)]
            return key, user, policies, attached

        loaded = self._index.run(work, readonly=True)
        if loaded is None:
            return _KeyEntry(None, None)
        key, user, policies, attached = loaded
        return _KeyEntry(self._user_key(key, user, self._parse_policies(policies, attached)), None)

    def _user_key(self, key: AccessKeyRecord, user: User, policies: tuple[PolicyDocument, ...]) -> ResolvedKey | None:
        if key.status is not KeyStatus.ACTIVE:
            return None
        caller = Caller(
            arn=user.arn,
            account_id=self._account,
            kind=CallerKind.IAM_USER,
            policies=policies,
            access_key_id=key.access_key_id,
        )
        return ResolvedKey(key.secret_access_key, None, caller)

    def _load_session(self, access_key_id: str) -> _KeyEntry:
        session = self._index.run(lambda uow: uow.iam.get_session(access_key_id), readonly=True)
        if session is None:
            return _KeyEntry(None, None)
        principal = self._role_principal(session.role_name)
        if principal is None:  # the role is gone: so are its sessions
            return _KeyEntry(None, None)
        caller = Caller(
            arn=assumed_role_arn(self._account, principal.role.name, session.session_name),
            account_id=self._account,
            kind=CallerKind.ASSUMED_ROLE,
            policies=principal.policies,
            access_key_id=session.access_key_id,
            role_arn=principal.role.arn,
        )
        return _KeyEntry(ResolvedKey(session.secret_access_key, session.session_token, caller), session.expires_at)

    def _parse_policies(self, policies: Sequence[InlinePolicy], attached: Sequence[str]) -> tuple[PolicyDocument, ...]:
        documents: list[PolicyDocument] = []
        for policy in policies:
            try:
                documents.append(parse_identity_policy(policy.document))
            except ValidationError as exc:
                log.error(
                    "stored policy %s of %s %s no longer parses (%s): denying everything to it",
                    policy.name,
                    policy.kind.value,
                    policy.principal,
                    exc.message,
                )
                documents.append(_DENY_ALL)
        for arn in attached:
            document = managed_policy(arn)
            if document is None:  # an AWS managed policy grants, never denies: dropping it grants nothing
                log.warning("attached managed policy %s is not known to this version: ignored", arn)
            else:
                documents.append(document)
        return tuple(documents)

    # -- roles and sessions ------------------------------------------------------------------------------------

    def _role_principal(self, name: str) -> _RolePrincipal | None:
        found, cached = self._roles.get(name)
        if found:
            return cached
        if name in self._file_roles:
            role: Role | None = self._file_roles[name]
            policies: Sequence[InlinePolicy] = self._file_policies(PrincipalKind.ROLE, name)
            attached: Sequence[str] = self._file_attached(PrincipalKind.ROLE, name)
        else:

            def work(uow: UnitOfWork) -> tuple[Role | None, list[InlinePolicy], list[str]]:
                stored = uow.iam.get_role(name)
                if stored is None:
                    return None, [], []
                return (
                    stored,
                    uow.iam.list_policies(PrincipalKind.ROLE, name),
                    [a.policy_arn for a in uow.iam.list_attached(PrincipalKind.ROLE, name)],
                )

            role, policies, attached = self._index.run(work, readonly=True)
        if role is None:
            return None
        try:
            trust: PolicyDocument | None = parse_trust_policy(role.trust_policy)
        except ValidationError as exc:
            log.error("trust policy of role %s no longer parses (%s): nobody may assume it", name, exc.message)
            trust = None
        principal = _RolePrincipal(role, trust, self._parse_policies(policies, attached))
        self._roles.put(name, principal)
        return principal

    def _role_for_arn(self, arn: str) -> _RolePrincipal | None:
        match = _ROLE_ARN.fullmatch(arn) if isinstance(arn, str) else None
        if match is None or match["account"] != self._account:
            return None
        principal = self._role_principal(match["name"])
        return principal if principal is not None and principal.role.arn == arn else None

    def _may_assume(self, caller: Caller, principal: _RolePrincipal, context: dict[str, list[str]]) -> bool:
        if principal.trust is None:
            return False
        own = (caller.arn,) if caller.role_arn is None else (caller.arn, caller.role_arn)
        account_root = root_arn(self._account)
        if not trusts(principal.trust, TrustRequest(principal_arns=(*own, account_root), context=context)):
            return False  # no statement trusts the caller or its account, or one denies it
        if caller.is_root:
            return True
        decision = evaluate(caller.policies, AccessRequest(ASSUME_ROLE_ACTION, principal.role.arn, context))
        if decision is Decision.EXPLICIT_DENY:
            return False
        if trusts(principal.trust, TrustRequest(principal_arns=own, context=context)):
            return True  # the trust policy names the caller: no identity permission needed
        return decision is Decision.ALLOW  # trusted through the account: the caller's policies must allow it

    def assume_role(
        self,
        caller: Caller,
        role_arn: str,
        session_name: str,
        duration_seconds: int | None = None,
        external_id: str | None = None,
    ) -> TemporaryCredentials:
        """STS ``AssumeRole`` for ``caller``: new temporary credentials of a session of the role."""
        _session_name(session_name)
        _duration(duration_seconds)
        principal = self._role_for_arn(role_arn)
        context = {
            "aws:PrincipalArn": [caller.role_arn or caller.arn],
            "aws:PrincipalAccount": [caller.account_id],
            "aws:PrincipalType": [caller.kind.value],
            "sts:RoleSessionName": [session_name],
        }
        if external_id is not None:
            context["sts:ExternalId"] = [external_id]
        if principal is None or not self._may_assume(caller, principal, context):
            raise AccessDeniedError(
                f"User: {caller.arn} is not authorized to perform: {ASSUME_ROLE_ACTION} on resource: {role_arn}"
            )
        duration = DEFAULT_MAX_SESSION_SECONDS if duration_seconds is None else duration_seconds
        if caller.kind is CallerKind.ASSUMED_ROLE and duration > ROLE_CHAINING_MAX_SECONDS:
            raise ValidationError(
                "The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role chaining.",
                field="durationSeconds",
            )
        if duration > principal.role.max_session_seconds:
            raise ValidationError(
                "The requested DurationSeconds exceeds the MaxSessionDuration set for this role.",
                field="durationSeconds",
            )
        now = self._clock()
        session = SessionRecord(
            access_key_id=new_access_key_id(SESSION_KEY_PREFIX),
            secret_access_key=new_secret_access_key(),
            session_token=new_session_token(),
            role_name=principal.role.name,
            session_name=session_name,
            source_arn=caller.arn,
            created_at=now,
            expires_at=(now + timedelta(seconds=duration)).replace(microsecond=0),
        )
        self._index.run(lambda uow: uow.iam.add_session(session))
        return TemporaryCredentials(
            access_key_id=session.access_key_id,
            secret_access_key=session.secret_access_key,
            session_token=session.session_token,
            expiration=session.expires_at,
            assumed_role_arn=assumed_role_arn(self._account, principal.role.name, session_name),
            assumed_role_id=f"{unique_id('AROA', principal.role.arn)}:{session_name}",
        )

    def role_caller(self, role_arn: str, session_name: str = "oidc") -> Caller:
        """The caller of a session of the role that ``medical-imaging.amazonaws.com`` assumes (OIDC, guide 2790-2840).

        ``NotFoundError`` when the role does not exist, ``AccessDeniedError`` when its trust policy does not trust
        the service principal.
        """
        principal = self._role_for_arn(role_arn)
        if principal is None:
            raise NotFoundError(f"Role {role_arn} does not exist")
        if principal.trust is None or not trusts(principal.trust, TrustRequest(service=MEDICAL_IMAGING_SERVICE)):
            raise AccessDeniedError(f"Role {role_arn} does not trust {MEDICAL_IMAGING_SERVICE} to assume it")
        return Caller(
            arn=assumed_role_arn(self._account, principal.role.name, session_name),
            account_id=self._account,
            kind=CallerKind.ASSUMED_ROLE,
            policies=principal.policies,
            role_arn=principal.role.arn,
        )

    def caller_identity(self, caller: Caller) -> CallerIdentity:
        """STS ``GetCallerIdentity``: the account id for the root, ``AIDA...`` for a user, ``AROA...:session``."""
        if caller.kind is CallerKind.ROOT:
            return CallerIdentity(caller.account_id, caller.account_id, caller.arn)
        if caller.kind is CallerKind.ASSUMED_ROLE and caller.role_arn is not None:
            session = caller.arn.rsplit("/", 1)[-1]
            return CallerIdentity(f"{unique_id('AROA', caller.role_arn)}:{session}", caller.account_id, caller.arn)
        return CallerIdentity(unique_id("AIDA", caller.arn), caller.account_id, caller.arn)

    def purge_expired_sessions(self) -> int:
        """Forget sessions expired for more than a day (until then their keys answer ExpiredToken); how many."""
        cutoff = self._clock() - EXPIRED_SESSION_RETENTION
        return self._index.run(lambda uow: uow.iam.delete_sessions_expired_before(cutoff))
