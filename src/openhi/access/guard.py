"""The authorization guard: services ask it, before they act, whether the current caller may.

The HTTP edges authenticate each request (SigV4, or an OIDC bearer token for DICOMweb) and run the rest of the
request inside ``acting_as(RequestAccess(caller, region, operation))``; the services then call ``require`` at
the start of every operation with the resource they are about to touch and the study / series UIDs the
operation supports as condition keys (``iam.actions``). The decision is IAM's (``iam.evaluate``): an
explicit Deny wins, otherwise an Allow is needed, otherwise the default deny -> ``AccessDeniedError`` (403).

The current caller travels in a context variable, so it follows the request into the worker threads that run
the services (Starlette's ``run_in_threadpool`` copies the context). Code that runs outside any request -- the
CLI, background loops, in-process tests -- has no caller and acts as the system, which no policy restricts;
the edges are the only places that set a caller, and a test drives every route with a caller that may do
nothing to prove none of them skips its check.

Searches whose rows each belong to one study or series (``iam.actions.ROW_CONDITION_KEYS``) ask
``row_filter`` instead: rows the caller may not see are left out. The filter runs after the index applied
``limit`` and ``offset``, so a filtered page may hold fewer rows than the limit.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from openhi.errors import AccessDeniedError
from openhi.iam.actions import ROW_CONDITION_KEYS, action_name, condition_context
from openhi.iam.evaluate import AccessRequest, Decision, evaluate
from openhi.iam.policy import PolicyDocument
from openhi.iam.principals import Caller
from openhi.ids import datastore_arn, image_set_arn


@dataclass(frozen=True)
class RequestAccess:
    """Who is calling, in which region (for ARNs), for which operation."""

    caller: Caller
    region: str
    operation: str


_CURRENT: ContextVar[RequestAccess | None] = ContextVar("openhi_request_access", default=None)

type RowFilter = Callable[[str | None, str | None], bool]
"""(study UID, series UID) of a row -> may the caller see it."""


@contextmanager
def acting_as(access: RequestAccess) -> Iterator[None]:
    """Run the body of the ``with`` on behalf of ``access.caller``."""
    token = _CURRENT.set(access)
    try:
        yield
    finally:
        _CURRENT.reset(token)


def run_as[**P, T](access: RequestAccess, work: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """``work(*args, **kwargs)`` on behalf of ``access.caller`` (what an edge hands to a worker thread)."""
    with acting_as(access):
        return work(*args, **kwargs)


def current_access() -> RequestAccess | None:
    """The request being served in this context, or None outside any request."""
    return _CURRENT.get()


def _resource(access: RequestAccess, datastore_id: str | None, image_set_id: str | None) -> str:
    account = access.caller.account_id
    if datastore_id is None:
        return "*"
    if image_set_id is None:
        return datastore_arn(access.region, account, datastore_id)
    return image_set_arn(access.region, account, datastore_id, image_set_id)


def _denied(access: RequestAccess, action: str, resource: str, decision: Decision) -> AccessDeniedError:
    why = (
        "with an explicit deny in an identity-based policy"
        if decision is Decision.EXPLICIT_DENY
        else f"because no identity-based policy allows the {action} action"
    )
    return AccessDeniedError(
        f"User: {access.caller.arn} is not authorized to perform: {action} on resource: {resource} {why}"
    )


def require(
    operation: str | None = None,
    *,
    datastore_id: str | None = None,
    image_set_id: str | None = None,
    resource_arn: str | None = None,
    study_uid: str | None = None,
    series_uid: str | None = None,
) -> None:
    """Raise ``AccessDeniedError`` unless the current caller may perform the operation on the resource.

    ``operation`` defaults to the one the edge is serving (DICOMweb use cases shared by several routes);
    the resource is ``resource_arn``, else the image set or data store ARN, else ``*``.
    """
    access = _CURRENT.get()
    if access is None or access.caller.is_root:
        return
    name = operation or access.operation
    action = action_name(name)
    resource = resource_arn or _resource(access, datastore_id, image_set_id)
    decision = evaluate(
        access.caller.policies, AccessRequest(action, resource, condition_context(name, study_uid, series_uid))
    )
    if decision is not Decision.ALLOW:
        raise _denied(access, action, resource, decision)


def _mentions(policies: Sequence[PolicyDocument], keys: frozenset[str]) -> bool:
    lowered = {key.lower() for key in keys}
    return any(
        clause.key in lowered
        for policy in policies
        for statement in policy.statements
        for clause in statement.conditions or ()
    )


def row_filter(
    operation: str | None = None,
    *,
    datastore_id: str,
    study_uid: str | None = None,
    series_uid: str | None = None,
) -> RowFilter | None:
    """For a search: None when the caller may see every row, else a predicate over each row's UIDs.

    ``AccessDeniedError`` when no row could be visible (no statement allows the search, whatever the UIDs).
    """
    access = _CURRENT.get()
    if access is None or access.caller.is_root:
        return None
    name = operation or access.operation
    row_keys = ROW_CONDITION_KEYS.get(name, frozenset())
    policies = access.caller.policies
    if not row_keys or not _mentions(policies, row_keys):
        require(name, datastore_id=datastore_id, study_uid=study_uid, series_uid=series_uid)
        return None
    action = action_name(name)
    resource = _resource(access, datastore_id, None)

    def visible(row_study: str | None, row_series: str | None) -> bool:
        context = condition_context(name, row_study or study_uid, row_series or series_uid)
        return evaluate(policies, AccessRequest(action, resource, context)) is Decision.ALLOW

    return visible
