"""The one catalogue of domain errors.

Every error the services raise is one of these families. Each carries a stable ``code`` (the name the
AWS surface puts on the wire for it, see ``api/aws/errors.py``) and a human message. Nothing here knows
about HTTP: each API surface owns the table from family to wire status.
"""

from __future__ import annotations


class OpenHIError(Exception):
    """Base of every domain error; ``code`` is stable and machine-readable."""

    code = "InternalServerException"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ValidationError(OpenHIError):
    """Input breaks a documented constraint (pattern, length, range, enum, shape)."""

    code = "ValidationException"

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class BadRequestError(OpenHIError):
    """Request is well-formed but cannot be served as asked (GetImageFrame's BadRequestException)."""

    code = "BadRequestException"


class NotFoundError(OpenHIError):
    """The named resource does not exist (or no longer exists)."""

    code = "ResourceNotFoundException"


class ConflictError(OpenHIError):
    """The resource's current state forbids the request (locked, not empty, token reuse ...)."""

    code = "ConflictException"


class QuotaExceededError(OpenHIError):
    """A service quota would be exceeded (guide 22672-22816)."""

    code = "ServiceQuotaExceededException"


class ThrottledError(OpenHIError):
    """Request rate above the configured limit."""

    code = "ThrottlingException"


class AccessDeniedError(OpenHIError):
    """The authenticated principal may not perform the action."""

    code = "AccessDeniedException"


class AuthorizerError(OpenHIError):
    """The data store's OIDC authorizer could not decide (guide 3000-3030).

    ``code`` is set per instance: ``AuthorizerMisconfigurationException`` (424: authorizer missing or invalid,
    malformed answer, role that cannot be assumed), ``AuthorizerFailureException`` (424: it crashed or failed
    otherwise) or ``AuthorizerTimeoutException`` (408: it ran over 1 s). Each surface maps the code to its status.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class NotAcceptableError(OpenHIError):
    """The requested representation cannot be produced."""

    code = "NotAcceptableException"


class NotImplementedYetError(OpenHIError):
    """An operation of the model that this version of OpenHI does not implement yet.

    Answered honestly instead of a fake success; the message names the operation.
    """

    code = "NotImplementedException"


class AuthenticationError(OpenHIError):
    """The request's identity could not be established (SigV4 failures).

    ``code`` is set per instance to the name the real service uses: MissingAuthenticationTokenException,
    IncompleteSignatureException, UnrecognizedClientException or InvalidSignatureException.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class UnavailableError(OpenHIError):
    """A backend (index or blob store) is unreachable; safe to retry."""

    code = "ServiceUnavailableException"


class BlobNotFoundError(OpenHIError):
    """A blob key has no object behind it (raised by blob adapters)."""

    code = "ResourceNotFoundException"


class EncryptionKeyError(OpenHIError):
    """Data at rest cannot be sealed or opened with the key it needs (encryption at rest, docs/encryption.md).

    ``code`` is set per instance: ``KMSAccessDeniedException`` (the customer key named by the data store's
    kmsKeyArn is missing, disabled or refuses the request) or ``DecryptionFailureException`` (a stored object or a
    data store key cannot be decrypted: wrong or destroyed key, a master key this process does not hold, a tampered
    or truncated object). Never answered with undecrypted bytes; both surfaces answer 400 with the message.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
