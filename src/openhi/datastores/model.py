"""The data store entity and its enums (guide 275-340, model shapes DatastoreProperties /
DatastoreSummary).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum


class DatastoreStatus(StrEnum):
    """Model enum ``DatastoreStatus``."""

    CREATING = "CREATING"
    CREATE_FAILED = "CREATE_FAILED"
    ACTIVE = "ACTIVE"
    DELETING = "DELETING"
    DELETED = "DELETED"


class LosslessStorageFormat(StrEnum):
    """Model enum ``LosslessStorageFormat``; fixed at creation, HTJ2K by default (guide 645-700)."""

    HTJ2K = "HTJ2K"
    JPEG_2000_LOSSLESS = "JPEG_2000_LOSSLESS"


# Statuses that count against the active data store quota: a data store holds its slot from creation
# until its deletion has finished.
QUOTA_STATUSES = (DatastoreStatus.CREATING, DatastoreStatus.ACTIVE, DatastoreStatus.DELETING)


@dataclass(frozen=True)
class Datastore:
    """One data store as the index records it."""

    datastore_id: str
    name: str
    status: DatastoreStatus
    lossless_storage_format: LosslessStorageFormat
    created_at: datetime
    updated_at: datetime
    client_token: str
    kms_key_arn: str | None = None
    lambda_authorizer_arn: str | None = None

    def with_status(self, status: DatastoreStatus, at: datetime) -> Datastore:
        """A copy in ``status``, stamped ``at``."""
        return replace(self, status=status, updated_at=at)
