"""The one syntax check of UIDs taken from URLs, queries and parts (PS3.5 §9.1: digits and dots, at most 64).

Lenient about leading zeros in a component (``1.02.3``): archives hold such UIDs and must still answer for them;
the strict PS3.5 form is ``normalize.UID_PATTERN``, used when metadata is validated.
"""

from __future__ import annotations

import re

_DIGITS_AND_DOTS = re.compile(r"[0-9]+(\.[0-9]+)*")
MAX_LENGTH = 64


def looks_like_uid(text: str) -> bool:
    """True for a dotted run of digit groups of at most 64 characters."""
    return len(text) <= MAX_LENGTH and _DIGITS_AND_DOTS.fullmatch(text) is not None
