"""Domain errors -> DICOMweb answers (PS3.18 §8.5 status codes; body in the AWS JSON error shape).

HealthImaging's DICOMweb APIs answer errors with the HTTP status PS3.18 prescribes for the case (400 bad query,
404 unknown study/series/instance/frame, 406 a representation that cannot be produced, 409 a STOW conflict,
413 a body above the limit, 415 an unsupported media type) and a small JSON body naming the exception, as
the guide's NotAcceptableException for 406 shows (guide 2080-2100). The body is ``{"__type": code,
"message": text}`` with ``x-amzn-ErrorType`` (the same shape as the native API, so one client-side parser
reads both). Anything unexpected is logged with the request id and answered 500 without internals.
"""

from __future__ import annotations

import logging

from openhi.api.aws.errors import error_response
from openhi.errors import AuthenticationError, OpenHIError

__all__ = ["STATUS_BY_CODE", "DicomWebError", "error_response", "to_wire"]  # error_response: the native API's own

log = logging.getLogger(__name__)

STATUS_BY_CODE = {
    "ValidationException": 400,
    "BadRequestException": 400,
    "ResourceNotFoundException": 404,
    "NotAcceptableException": 406,
    "ConflictException": 409,
    "RequestEntityTooLarge": 413,
    "UnsupportedMediaTypeException": 415,
    "ServiceQuotaExceededException": 402,
    "ThrottlingException": 429,
    "AccessDeniedException": 403,
    "AuthorizerMisconfigurationException": 424,  # guide 3000-3030: the OIDC authorizer's failures
    "AuthorizerFailureException": 424,
    "AuthorizerTimeoutException": 408,
    "AuthorizerCrossAccountAccessException": 424,
    "NotImplementedException": 501,
    "ServiceUnavailableException": 503,
    "KMSAccessDeniedException": 400,  # encryption at rest: the customer key cannot be used (errors.EncryptionKeyError)
    "DecryptionFailureException": 400,  # encryption at rest: a stored object cannot be decrypted with its key
}


class DicomWebError(OpenHIError):
    """A failure detected by the DICOMweb edge itself (media types, body size, malformed multipart)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def to_wire(error: Exception, request_id: str) -> tuple[int, str, str]:
    """(status, code, message) for any exception raised while serving a DICOMweb request."""
    if isinstance(error, AuthenticationError):
        return 403, error.code, error.message
    if isinstance(error, OpenHIError) and error.code in STATUS_BY_CODE:
        return STATUS_BY_CODE[error.code], error.code, error.message
    log.error("DICOMweb request %s failed", request_id, exc_info=error)
    return 500, "InternalServerException", f"Internal server error (request id {request_id})"
