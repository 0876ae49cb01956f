"""What of a call's parameters and results may enter the audit trail: never pixel data, never a secret.

Issue 7 part 3: records never contain pixel data or secrets. So, recursively:

- bytes-like values (``GetImageFrame``'s frame, ``GetImageSetMetadata``'s blob, ``UpdateImageSetMetadata``'s
  ``updatableAttributes``) and streams become the marker ``"<n bytes>"`` / ``"<stream>"``;
- keys naming credentials (``secretAccessKey``, ``sessionToken``, ``Authorization``, ``bearerToken``, ... compared
  without case, ``-`` or ``_``) are removed with their values;
- timestamps become ISO 8601 text, enums their value; any other object becomes ``"<TypeName>"`` (its ``str``
  might carry anything);
- strings longer than ``MAX_STRING`` characters are cut, and nesting deeper than ``MAX_DEPTH`` is cut, so one odd
  request cannot make a huge record.

Pure: no I/O, no framework.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from enum import Enum
from functools import lru_cache
from typing import Any

SECRET_KEYS = frozenset(
    {
        "secretaccesskey",
        "awssecretaccesskey",
        "sessiontoken",
        "securitytoken",
        "xamzsecuritytoken",
        "authorization",
        "proxyauthorization",
        "bearertoken",
        "accesstoken",
        "idtoken",
        "refreshtoken",
        "password",
        "clientsecret",
        "cookie",
        "setcookie",
    }
)
MAX_STRING = 4096
MAX_DEPTH = 16
Json = None | bool | int | float | str | list["Json"] | dict[str, "Json"]


@lru_cache(maxsize=4096)
def is_secret_key(key: str) -> bool:
    """True for a key that names a credential (``SecretAccessKey``, ``x-amz-security-token``, ...)."""
    return key.replace("-", "").replace("_", "").lower() in SECRET_KEYS


def sanitize(value: Any, depth: int = 0) -> Json:
    """``value`` as JSON-ready data without bytes, streams or secrets."""
    if isinstance(value, str):  # the common case first
        return value if len(value) <= MAX_STRING else f"{value[:MAX_STRING]}<{len(value) - MAX_STRING} more chars>"
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, bytes | bytearray | memoryview):
        return f"<{len(value)} bytes>"
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Enum):
        return sanitize(value.value, depth)
    if depth >= MAX_DEPTH:
        return "<nested too deep>"
    if isinstance(value, Mapping):
        return {str(k): sanitize(v, depth + 1) for k, v in value.items() if not is_secret_key(str(k))}
    if isinstance(value, list | tuple | set | frozenset):
        return [sanitize(item, depth + 1) for item in value]
    if callable(getattr(value, "read", None)):
        return "<stream>"
    return f"<{type(value).__name__}>"
