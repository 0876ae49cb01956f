"""CloudTrail's ``userIdentity`` element for the caller of one request.

Shapes of the CloudTrail user guide ("CloudTrail userIdentity element") and of guide 20056-20082:

- ``Root``: ``principalId`` is the account id;
- ``IAMUser``: ``principalId`` ``AIDA...``, ``userName``;
- ``AssumedRole``: ``principalId`` ``AROA...:{session name}``, and ``sessionContext.sessionIssuer`` describing the
  role (``type`` ``Role``, ``principalId`` ``AROA...``, its ARN and name).

The unique ids are the ones STS ``GetCallerIdentity`` reports (``iam.directory_model.unique_id``), so a record
can be matched with what a client saw. ``accessKeyId`` is the key that signed the request (``AKIA...`` or the
session's ``ASIA...``); no secret is ever part of a ``Caller``. What OpenHI does not know is left out rather than
invented: ``sessionContext.attributes.creationDate`` (the ``Caller`` does not carry the session's start; the
``AssumeRole`` call that created it is the place to look) and ``webIdFederationData`` contents.

A request whose authentication failed has no caller: its identity is ``{"type": "Unknown"}`` (docs/audit.md).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from openhi.iam.directory_model import unique_id
from openhi.iam.principals import Caller, CallerKind

UNKNOWN: dict[str, Any] = {"type": "Unknown"}


def _name(arn: str) -> str:
    return arn.rsplit("/", 1)[-1]


def user_identity(caller: Caller | None) -> dict[str, Any]:
    """The ``userIdentity`` of a call made by ``caller`` (None: authentication failed); shared, never modified."""
    if caller is None:
        return UNKNOWN
    return _identity(caller.kind, caller.arn, caller.account_id, caller.access_key_id, caller.role_arn)


@lru_cache(maxsize=4096)
def _identity(kind: CallerKind, arn: str, account: str, key: str | None, role: str | None) -> dict[str, Any]:
    identity: dict[str, Any] = {"type": kind.value}
    if kind is CallerKind.ROOT:
        identity["principalId"] = account
    elif kind is CallerKind.ASSUMED_ROLE and role is not None:
        identity["principalId"] = f"{unique_id('AROA', role)}:{_name(arn)}"
    else:
        identity["principalId"] = unique_id("AIDA", arn)
    identity["arn"] = arn
    identity["accountId"] = account
    if key is not None:
        identity["accessKeyId"] = key
    if kind is CallerKind.IAM_USER:
        identity["userName"] = _name(arn)
    if kind is CallerKind.ASSUMED_ROLE and role is not None:
        identity["sessionContext"] = {
            "sessionIssuer": {
                "type": "Role",
                "principalId": unique_id("AROA", role),
                "arn": role,
                "accountId": account,
                "userName": _name(role),
            },
            "webIdFederationData": {},
            "attributes": {"mfaAuthenticated": "false"},
        }
    return identity
