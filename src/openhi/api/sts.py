"""The STS Query API on OpenHI's own port: ``AssumeRole`` and ``GetCallerIdentity`` (API version 2011-06-15).

So that a boto3 ``sts`` client given ``endpoint_url=<OpenHI>`` gets temporary credentials, and a
``medical-imaging`` client built with them (``aws_session_token``) works (guide 22150-22155: requests may be signed
with STS temporary credentials). The wire format is STS's ("AWS Security Token Service API Reference": Query
requests, ``AssumeRole``, ``GetCallerIdentity``, "Common Errors"; botocore's ``sts`` model):

* request: ``POST /`` with an ``application/x-www-form-urlencoded`` body ``Action=...&Version=2011-06-15&...``,
  signed with SigV4 for the service ``sts`` (any region, as the medical-imaging API);
* answer: ``text/xml`` in the namespace ``https://sts.amazonaws.com/doc/2011-06-15/``:
  ``<{Action}Response><{Action}Result>...</{Action}Result><ResponseMetadata><RequestId>``;
* errors: ``<ErrorResponse><Error><Type>Sender|Receiver</Type><Code/><Message/></Error><RequestId/>``
  with STS's codes: AccessDenied 403, ValidationError 400, ExpiredToken 400, InvalidClientTokenId 403,
  SignatureDoesNotMatch 403, IncompleteSignature 400, MissingAuthenticationToken 403, InvalidAction 400.

The rules of ``AssumeRole`` are the principal directory's (``access.directory``). Session policies (``Policy``,
``PolicyArns``), session tags, MFA (``SerialNumber``, ``TokenCode``) and ``SourceIdentity`` are not implemented:
a request that uses them is refused with a ValidationError rather than answered as if they applied.
``ExternalId`` is passed to the trust policy's conditions as ``sts:ExternalId``.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime
from typing import Final
from urllib.parse import parse_qsl
from xml.sax.saxutils import escape

from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from openhi.access.directory import PrincipalDirectory
from openhi.api.authn import SigV4Authenticator
from openhi.api.aws.endpoint import read_body
from openhi.api.aws.errors import EdgeError
from openhi.errors import AccessDeniedError, AuthenticationError, UnavailableError, ValidationError
from openhi.iam.principals import Caller

log = logging.getLogger(__name__)

STS_SERVICE: Final = "sts"
STS_VERSION: Final = "2011-06-15"
NAMESPACE: Final = "https://sts.amazonaws.com/doc/2011-06-15/"
FORM_CONTENT_TYPE: Final = "application/x-www-form-urlencoded"
MAX_REQUEST_BYTES: Final = 64 * 1024
ROLE_ARN_LENGTH: Final = (20, 2048)
UNSUPPORTED_PARAMETERS: Final = (
    "Policy",
    "PolicyArns.",
    "Tags.",
    "TransitiveTagKeys.",
    "SerialNumber",
    "TokenCode",
    "SourceIdentity",
    "ProvidedContexts.",
)

# AuthenticationError codes (the medical-imaging names) -> STS code and status.
_AUTH_ERRORS: Final = {
    "MissingAuthenticationTokenException": ("MissingAuthenticationToken", 403),
    "IncompleteSignatureException": ("IncompleteSignature", 400),
    "UnrecognizedClientException": ("InvalidClientTokenId", 403),
    "InvalidSignatureException": ("SignatureDoesNotMatch", 403),
    "ExpiredTokenException": ("ExpiredToken", 400),
}


class StsError(Exception):
    """An STS error answer: code, message, HTTP status and whether the sender is at fault."""

    def __init__(self, code: str, message: str, status: int = 400, sender: bool = True) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.sender = sender


def is_sts_request(scope: Scope) -> bool:
    """``POST /`` with a form body: the only requests of the Query protocol (the native API has no ``POST /``)."""
    if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] != "/":
        return False
    content_type = next((value for name, value in scope["headers"] if name.lower() == b"content-type"), b"")
    return content_type.decode("latin-1").split(";")[0].strip().lower() == FORM_CONTENT_TYPE


def _timestamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


type Fields = list[tuple[str, str | Fields]]
"""XML elements in order: (name, text or nested elements)."""


def _elements(values: Fields) -> str:
    parts: list[str] = []
    for name, value in values:
        inner = escape(value) if isinstance(value, str) else _elements(value)
        parts.append(f"<{name}>{inner}</{name}>")
    return "".join(parts)


def _document(action: str, result: Fields, request_id: str) -> bytes:
    metadata: Fields = [("RequestId", request_id)]
    body = _elements([(f"{action}Result", result), ("ResponseMetadata", metadata)])
    return f'<{action}Response xmlns="{NAMESPACE}">{body}</{action}Response>\n'.encode()


def error_document(error: StsError, request_id: str) -> bytes:
    """The ``ErrorResponse`` XML of an error."""
    kind = "Sender" if error.sender else "Receiver"
    return (
        f'<ErrorResponse xmlns="{NAMESPACE}"><Error><Type>{kind}</Type><Code>{escape(error.code)}</Code>'
        f"<Message>{escape(error.message)}</Message></Error><RequestId>{request_id}</RequestId></ErrorResponse>\n"
    ).encode()


def to_sts_error(exc: Exception, request_id: str) -> StsError:
    """Any exception raised while serving -> the STS error it is answered with."""
    if isinstance(exc, StsError):
        return exc
    if isinstance(exc, AuthenticationError):
        code, status = _AUTH_ERRORS.get(exc.code, ("InvalidClientTokenId", 403))
        return StsError(code, exc.message, status)
    if isinstance(exc, AccessDeniedError):
        return StsError("AccessDenied", exc.message, 403)
    if isinstance(exc, ValidationError):
        return StsError("ValidationError", exc.message, 400)
    if isinstance(exc, EdgeError):
        return StsError(exc.code, exc.message, 413 if exc.code == "RequestEntityTooLarge" else 400)
    if isinstance(exc, UnavailableError):
        return StsError("ServiceUnavailable", exc.message, 503, sender=False)
    log.error("STS request %s failed", request_id, exc_info=exc)
    return StsError("InternalFailure", f"Internal server error (request id {request_id})", 500, sender=False)


def _required(params: dict[str, str], name: str, member: str) -> str:
    value = params.get(name)
    if value is None:
        raise ValidationError(
            f"1 validation error detected: Value null at '{member}' failed to satisfy constraint: "
            "Member must not be null",
            field=member,
        )
    return value


def _duration(params: dict[str, str]) -> int | None:
    raw = params.get("DurationSeconds")
    if raw is None:
        return None
    try:
        return int(raw)
    except ValueError:
        raise ValidationError(
            f"1 validation error detected: Value '{raw}' at 'durationSeconds' failed to satisfy constraint: "
            "Member must be an integer",
            field="durationSeconds",
        ) from None


def _role_arn(params: dict[str, str]) -> str:
    value = _required(params, "RoleArn", "roleArn")
    low, high = ROLE_ARN_LENGTH
    if not low <= len(value) <= high:
        bound = f"greater than or equal to {low}" if len(value) < low else f"less than or equal to {high}"
        raise ValidationError(
            f"1 validation error detected: Value '{value}' at 'roleArn' failed to satisfy constraint: "
            f"Member must have length {bound}",
            field="roleArn",
        )
    return value


class StsEndpoint:
    """Serves ``AssumeRole`` and ``GetCallerIdentity`` (see the module docstring)."""

    def __init__(self, directory: PrincipalDirectory, authenticator: SigV4Authenticator) -> None:
        self._directory = directory
        self._authenticator = authenticator

    async def asgi(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The endpoint as a plain ASGI app (dispatched by ``api/app.py`` for ``is_sts_request``)."""
        response = await self.handle(Request(scope, receive))
        await response(scope, receive, send)

    async def handle(self, request: Request) -> Response:
        """Answer one request."""
        request_id = str(uuid.uuid4())
        try:
            body = await read_body(request, MAX_REQUEST_BYTES)
            caller = await run_in_threadpool(self._authenticator.authenticate, request, body)
            params = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
            action = self._action(params)
            if action == "GetCallerIdentity":
                result = self._caller_identity(caller)
            else:
                result = await run_in_threadpool(self._assume_role, caller, params)
        except ClientDisconnect:
            return Response(status_code=400)
        except Exception as exc:  # every failure becomes an STS error document
            error = to_sts_error(exc, request_id)
            log.info("STS %s -> %s %s", request.url.path, error.status, error.code)
            return Response(
                error_document(error, request_id),
                status_code=error.status,
                media_type="text/xml",
                headers={"x-amzn-RequestId": request_id},
            )
        return Response(
            _document(action, result, request_id), media_type="text/xml", headers={"x-amzn-RequestId": request_id}
        )

    @staticmethod
    def _action(params: dict[str, str]) -> str:
        action = params.get("Action")
        if not action:
            raise StsError("MissingAction", "Missing Action")
        version = params.get("Version")
        if version is None:
            raise StsError("MissingParameter", "The request must contain the parameter Version")
        if version != STS_VERSION or action not in ("AssumeRole", "GetCallerIdentity"):
            raise StsError(
                "InvalidAction",
                f"Could not find operation {action} for version {version} "
                "(OpenHI's STS implements AssumeRole and GetCallerIdentity of 2011-06-15)",
            )
        return action

    def _caller_identity(self, caller: Caller) -> Fields:
        identity = self._directory.caller_identity(caller)
        return [("UserId", identity.user_id), ("Account", identity.account), ("Arn", identity.arn)]

    def _assume_role(self, caller: Caller, params: dict[str, str]) -> Fields:
        for name in params:
            if name.startswith(UNSUPPORTED_PARAMETERS):
                raise ValidationError(
                    f"The parameter {name} is not supported by OpenHI's STS (session policies, session tags, MFA "
                    "and source identity are not implemented)",
                    field=name,
                )
        credentials = self._directory.assume_role(
            caller,
            _role_arn(params),
            _required(params, "RoleSessionName", "roleSessionName"),
            _duration(params),
            params.get("ExternalId"),
        )
        keys: Fields = [
            ("AccessKeyId", credentials.access_key_id),
            ("SecretAccessKey", credentials.secret_access_key),
            ("SessionToken", credentials.session_token),
            ("Expiration", _timestamp(credentials.expiration)),
        ]
        user: Fields = [("AssumedRoleId", credentials.assumed_role_id), ("Arn", credentials.assumed_role_arn)]
        return [("Credentials", keys), ("AssumedRoleUser", user)]
