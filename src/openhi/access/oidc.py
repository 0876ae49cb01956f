"""OIDC bearer-token authentication of a DICOMweb request, through the data store's authorizer.

Guide 2665-3216 ("OIDC 身份验证适用于 DICOMweb APIs"). For a request to a data store created with
``lambdaAuthorizerArn`` that carries ``Authorization: Bearer <token>``:

1. the token's time claims are pre-checked without calling anyone (guide 2690-2740, :mod:`openhi.auth.bearer`);
2. the data store's authorizer receives ``{"datastoreId", "operation", "bearerToken"}`` (guide 2840) and must
   answer within 1 second (guide 2745-2750) with ``{"isTokenValid", "roleArn"}``;
3. the returned role is assumed: the request then runs as a session of that role, with the role's policies
   (guide 2700-2715: "the request is executed if the assumed role has the necessary permissions").

Failures, by the guide's table (3000-3030), each raised as a domain error the DICOMweb edge maps to a status:

=====================================================  ===========================================================
Condition                                              Raised
=====================================================  ===========================================================
token expired or otherwise invalid (pre-check, or      ``AuthenticationError("InvalidTokenException")`` -> 403
``isTokenValid`` false)
authorizer does not exist or is invalid                ``AuthorizerError("AuthorizerMisconfigurationException")``
                                                       -> 424
authorizer answered a malformed response               ``AuthorizerMisconfigurationException`` -> 424
authorizer ended with an execution failure, or any     ``AuthorizerError("AuthorizerFailureException")`` -> 424
other unmapped authorizer error
authorizer ran over 1 second                           ``AuthorizerError("AuthorizerTimeoutException")`` -> 408
authorizer returned an empty role                      ``AccessDeniedError`` -> 403
returned role cannot be assumed (unknown role, trust   ``AuthorizerMisconfigurationException`` -> 424
policy not trusting ``medical-imaging.amazonaws.com``,
not a role ARN)
data store, returned role or authorizer in another     ``AuthorizerError("AuthorizerCrossAccountAccessException")``
account / region                                       -> 424 (only when ``account_id`` / ``region`` are given)
=====================================================  ===========================================================

The 429 row (request rate above the DICOMweb gateway limit) belongs to throttling, not here.

The authorizer runs in a worker thread of one shared pool. A call still running after the budget is abandoned
(a thread cannot be killed): its answer is discarded when it comes. Exceptions escaping an authorizer are logged
with their traceback on the server and never reach the client; the token is never logged.
"""

from __future__ import annotations

import concurrent.futures
import logging
import re
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, Protocol

from openhi.auth.bearer import INVALID_TOKEN, precheck
from openhi.authorizers.port import (
    AUTHORIZER_FAILURE,
    AUTHORIZER_MISCONFIGURED,
    AUTHORIZER_TIMEOUT,
    Authorizer,
    AuthorizerEvent,
    parse_answer,
)
from openhi.errors import AccessDeniedError, AuthenticationError, AuthorizerError, NotFoundError
from openhi.iam.principals import Caller

__all__ = ["AUTHORIZER_CROSS_ACCOUNT", "SERVICE_PRINCIPAL", "AuthorizerLookup", "OidcAuthenticator"]

log = logging.getLogger(__name__)

SERVICE_PRINCIPAL = "medical-imaging.amazonaws.com"  # the principal a returned role must trust (guide 2790-2800)
AUTHORIZER_CROSS_ACCOUNT = "AuthorizerCrossAccountAccessException"

_ROLE_ARN = re.compile(r"arn:(aws[a-zA-Z-]*):iam::(\d{12}):role/(?:[\x21-\x7e]*/)?[\w+=,.@-]{1,64}")
_LAMBDA_ARN = re.compile(r"arn:(aws[a-zA-Z-]*)?:lambda:([a-z0-9-]+):(\d{12}):function:.+")


class AuthorizerLookup(Protocol):
    """Finds the authorizer of a Lambda ARN (:class:`openhi.authorizers.registry.AuthorizerRegistry`)."""

    def get(self, arn: str) -> Authorizer: ...


class OidcAuthenticator:
    """Turns (data store's authorizer, bearer token) into the :class:`Caller` the request runs as.

    ``role_caller(role_arn)`` returns the caller of a new session of that role; it raises ``NotFoundError`` for
    an unknown role and ``AccessDeniedError`` when the role's trust policy does not let ``SERVICE_PRINCIPAL``
    assume it. ``account_id`` / ``region``, when given, enable the cross-account / cross-region row of the table.
    """

    def __init__(
        self,
        registry: AuthorizerLookup,
        role_caller: Callable[[str], Caller],
        clock: Callable[[], datetime],
        timeout_seconds: float = 1.0,
        *,
        account_id: str | None = None,
        region: str | None = None,
        max_workers: int = 32,
    ) -> None:
        self._registry = registry
        self._role_caller = role_caller
        self._clock = clock
        self._timeout = timeout_seconds
        self._account_id = account_id
        self._region = region
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="authorizer")

    def close(self) -> None:
        """Stop the worker pool without waiting for abandoned calls."""
        self._pool.shutdown(wait=False, cancel_futures=True)

    def authenticate(self, authorizer_arn: str, datastore_id: str, operation: str, token: str) -> Caller:
        """The caller for ``token`` on ``operation`` of ``datastore_id``, or one of the errors of the table."""
        precheck(token, self._clock())
        self._check_authorizer_location(authorizer_arn)
        authorizer = self._registry.get(authorizer_arn)
        raw = self._invoke(authorizer_arn, authorizer, AuthorizerEvent(datastore_id, operation, token))
        answer = parse_answer(raw)
        if not answer.is_token_valid:
            raise AuthenticationError(INVALID_TOKEN, "Invalid or expired token: the authorizer rejected it")
        if not answer.role_arn:
            raise AccessDeniedError("Access denied: the authorizer returned an empty role")
        return self._assume(authorizer_arn, answer.role_arn)

    def _check_authorizer_location(self, authorizer_arn: str) -> None:
        match = _LAMBDA_ARN.fullmatch(authorizer_arn)
        if match is None:
            return  # not a Lambda ARN at all: the registry answers "does not exist or is invalid"
        region, account = match.group(2), match.group(3)
        if (self._region is not None and region != self._region) or (
            self._account_id is not None and account != self._account_id
        ):
            raise AuthorizerError(
                AUTHORIZER_CROSS_ACCOUNT,
                f"Authorizer cross-account/cross-region access: {authorizer_arn} is not in this account and region",
            )

    def _invoke(self, arn: str, authorizer: Authorizer, event: AuthorizerEvent) -> Mapping[str, Any]:
        future = self._pool.submit(authorizer, event)
        try:
            return future.result(timeout=self._timeout)
        except concurrent.futures.TimeoutError as exc:
            future.cancel()  # only helps if it never started; a running call is abandoned
            log.warning("authorizer %s ran over %.3g s (%r)", arn, self._timeout, event)
            raise AuthorizerError(AUTHORIZER_TIMEOUT, f"Authorizer timeout: it ran over {self._timeout:g} s") from exc
        except AuthorizerError as exc:
            log.warning("authorizer %s: %s (%r)", arn, exc.code, event)
            raise
        except Exception as exc:  # the authorizer's own failure: logged here, never shown to the client
            log.warning("authorizer %s failed (%r)", arn, event, exc_info=exc)
            raise AuthorizerError(AUTHORIZER_FAILURE, "Authorizer failure: it ended with an error") from exc

    def _assume(self, authorizer_arn: str, role_arn: str) -> Caller:
        match = _ROLE_ARN.fullmatch(role_arn)
        if match is None:
            raise AuthorizerError(
                AUTHORIZER_MISCONFIGURED, "Authorizer misconfigured: the returned roleArn is not an IAM role ARN"
            )
        if self._account_id is not None and match.group(2) != self._account_id:
            raise AuthorizerError(
                AUTHORIZER_CROSS_ACCOUNT,
                f"Authorizer cross-account/cross-region access: role {role_arn} is in another account",
            )
        try:
            return self._role_caller(role_arn)
        except (NotFoundError, AccessDeniedError) as exc:
            log.warning("authorizer %s returned role %s, which cannot be assumed: %s", authorizer_arn, role_arn, exc)
            raise AuthorizerError(
                AUTHORIZER_MISCONFIGURED,
                f"Authorizer misconfigured: the returned role {role_arn} cannot be assumed by {SERVICE_PRINCIPAL}",
            ) from exc
