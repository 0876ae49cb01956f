"""Entities of encryption at rest: a data store key as the index keeps it (wrapped) and as services use it.

Guide 20934-21100 (data protection): a data store's data is encrypted with a key of the service (the "AWS owned
key" mode, here a master key from the configuration) or with the customer managed key named by ``kmsKeyArn`` on
CreateDatastore. Each data store has its own data store key (256-bit); the index stores it only wrapped, one row
per version (rotation adds a version, older versions stay to open what they sealed).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum

KEY_BYTES = 32  # AES-256


class WrappingKind(StrEnum):
    """What wraps a data store key."""

    MASTER = "MASTER"  # the service's master key (AWS owned key mode); wrapping_key_id is the master key's id
    CUSTOMER = "CUSTOMER"  # the customer key named by the data store's kmsKeyArn; wrapping_key_id is that ARN


@dataclass(frozen=True)
class StoredDataKey:
    """One version of a data store key as the index stores it: wrapped, never in the clear."""

    datastore_id: str
    version: int
    wrapped: bytes = field(repr=False)
    kind: WrappingKind
    wrapping_key_id: str
    created_at: datetime
    # True when the key was given to a data store that already held plaintext objects (created before encryption
    # at rest, or while it was off): such a data store may still hold objects that are not sealed.
    legacy_plaintext: bool = False

    def rewrapped(self, wrapped: bytes, wrapping_key_id: str) -> StoredDataKey:
        """The same key material wrapped anew (master key rotation)."""
        return replace(self, wrapped=wrapped, wrapping_key_id=wrapping_key_id)


@dataclass(frozen=True)
class DataKey:
    """An unwrapped data store key: what seals and opens the per-object keys of one data store version."""

    datastore_id: str
    version: int
    material: bytes = field(repr=False)  # never logged, never printed
