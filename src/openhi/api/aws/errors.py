"""Domain errors -> AWS JSON errors (aws-wire-api.md §8 and §12).

Every error answer is ``{"__type": code, "message": text}`` with ``x-amzn-ErrorType: code``, which every
parsing path of botocore reads, and the status the model gives the shape. Authentication failures use
the codes the real service answers with (all 403). Codes outside the model: NotImplementedException
(501, an operation of a later release), UnknownOperationException (404, no such route),
RequestEntityTooLarge (413), ServiceUnavailableException (503, a backend is
unreachable; botocore retries it). Anything unexpected is logged with its request id and answered as a bare
InternalServerException, never with internals.
"""

from __future__ import annotations

import json
import logging

from starlette.responses import Response

from openhi.api.aws.model import error_statuses
from openhi.errors import AuthenticationError, NotImplementedYetError, OpenHIError

log = logging.getLogger(__name__)

EXTRA_STATUSES = {
    "NotImplementedException": 501,
    "UnknownOperationException": 404,
    "RequestEntityTooLarge": 413,
    "ServiceUnavailableException": 503,
    "KMSAccessDeniedException": 400,  # encryption at rest (errors.EncryptionKeyError): the customer key refuses
    "DecryptionFailureException": 400,  # encryption at rest: a stored object cannot be decrypted with its key
}


class EdgeError(Exception):
    """A failure detected by the HTTP edge itself, before any operation runs."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def status_for(code: str) -> int:
    """HTTP status of an error code."""
    statuses = error_statuses()
    if code in statuses:
        return statuses[code]
    if code in EXTRA_STATUSES:
        return EXTRA_STATUSES[code]
    return 400


def to_wire(error: Exception, request_id: str) -> tuple[int, str, str]:
    """(status, code, message) for any exception raised while serving a request."""
    if isinstance(error, AuthenticationError):
        return 403, error.code, error.message
    if isinstance(error, NotImplementedYetError | EdgeError | OpenHIError) and error.code != (
        "InternalServerException"
    ):
        return status_for(error.code), error.code, error.message
    log.error("request %s failed", request_id, exc_info=error)
    return 500, "InternalServerException", f"Internal server error (request id {request_id})"


def error_body(code: str, message: str) -> bytes:
    """The JSON body of an error answer."""
    return json.dumps({"__type": code, "message": message}).encode()


def error_response(
    request_id: str, status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> Response:
    """An error answer of any surface that speaks the AWS JSON error shape (native API, /events, DICOMweb)."""
    return Response(
        error_body(code, message),
        status_code=status,
        media_type="application/json",
        headers={"x-amzn-RequestId": request_id, "x-amzn-ErrorType": code, **(headers or {})},
    )
