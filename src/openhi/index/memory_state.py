"""The state of ``MemoryIndex``: plain dictionaries that mirror the tables of the SQL schema.

Kept apart from ``memory.py`` so that the repositories of each aggregate (``memory_image_sets.py``,
``memory_import_jobs.py``) can share it. Rows are immutable entities where the port has one; an image set
is a ``MemoryImageSet`` row keyed by (datastore_id, image_set_id), as ``image_sets`` is in SQL.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from openhi.catalog.model import CatalogStudy, InstanceRow, SeriesRow
from openhi.crypto.model import StoredDataKey
from openhi.datastores.model import Datastore
from openhi.dicom.normalize import GroupingKey
from openhi.events.model import ChangeEvent, SinkCursor
from openhi.iam.directory_model import (
    AccessKeyRecord,
    AttachedPolicy,
    InlinePolicy,
    PrincipalKind,
    Role,
    SessionRecord,
    User,
)
from openhi.imagesets.model import (
    FrameRef,
    ImageSet,
    ImageSetState,
    ImageSetSummary,
    ImageSetVersion,
    ImageSetWorkflowStatus,
    StorageTier,
)
from openhi.imports.model import ImportFile, ImportJob


def utc(value: datetime) -> datetime:
    """As the SQL adapter: aware datetimes only, read back in UTC."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"the index stores aware datetimes only, got naive {value!r}")
    return value.astimezone(UTC)


def utc_or_none(value: datetime | None) -> datetime | None:
    """``utc`` for nullable columns."""
    return None if value is None else utc(value)


def no_grouping() -> GroupingKey:
    """A grouping key with every element absent (rows written before import knew their series)."""
    return GroupingKey(
        study_date=None,
        accession_number=None,
        patient_id=None,
        study_instance_uid=None,
        study_id=None,
        series_instance_uid=None,
        series_number=None,
    )


@dataclass(kw_only=True)
class MemoryImageSet:
    """One row of ``image_sets``: an ``ImageSet`` without its key."""

    created_at: datetime
    updated_at: datetime
    version_id: int = 1
    state: ImageSetState = ImageSetState.ACTIVE
    workflow_status: ImageSetWorkflowStatus = ImageSetWorkflowStatus.CREATED
    is_primary: bool = True
    grouping: GroupingKey = field(default_factory=no_grouping)
    deleted_at: datetime | None = None
    message: str | None = None
    summary: ImageSetSummary | None = None
    # Storage tiers (memory_tiers.py): never taken from an ``ImageSet`` by ``of``, kept by ``keeping_tier``.
    storage_tier: StorageTier = StorageTier.FREQUENT_ACCESS
    last_accessed_at: datetime | None = None
    tier_changed_at: datetime | None = None

    def keeping_tier(self, previous: MemoryImageSet) -> MemoryImageSet:
        """This row with the storage tier columns of ``previous`` (an update of the row leaves them as stored)."""
        self.storage_tier, self.last_accessed_at = previous.storage_tier, previous.last_accessed_at
        self.tier_changed_at = previous.tier_changed_at
        return self

    @classmethod
    def of(cls, image_set: ImageSet) -> MemoryImageSet:
        """The row of an image set, times in UTC."""
        return cls(
            created_at=utc(image_set.created_at),
            updated_at=utc(image_set.updated_at),
            version_id=image_set.version_id,
            state=image_set.state,
            workflow_status=image_set.workflow_status,
            is_primary=image_set.is_primary,
            grouping=image_set.grouping,
            deleted_at=utc_or_none(image_set.deleted_at),
            message=image_set.message,
            summary=None if image_set.summary is None or image_set.summary.is_empty else image_set.summary,
        )

    def image_set(self, datastore_id: str, image_set_id: str) -> ImageSet:
        """The entity this row is for."""
        return ImageSet(
            datastore_id=datastore_id,
            image_set_id=image_set_id,
            version_id=self.version_id,
            state=ImageSetState(self.state),
            workflow_status=ImageSetWorkflowStatus(self.workflow_status),
            is_primary=self.is_primary,
            created_at=utc(self.created_at),
            updated_at=utc(self.updated_at),
            grouping=self.grouping,
            deleted_at=utc_or_none(self.deleted_at),
            message=self.message,
            summary=self.summary,
            storage_tier=self.storage_tier,
            last_accessed_at=utc_or_none(self.last_accessed_at),
        )


@dataclass
class MemoryState:
    """Everything the index holds; tags are keyed by (datastore_id, image_set_id or '')."""

    datastores: dict[str, Datastore] = field(default_factory=dict)
    image_sets: dict[tuple[str, str], MemoryImageSet] = field(default_factory=dict)
    tags: dict[tuple[str, str], dict[str, str]] = field(default_factory=dict)
    # (datastore_id, image_set_id, version_id)
    image_set_versions: dict[tuple[str, str, int], ImageSetVersion] = field(default_factory=dict)
    # (datastore_id, image_set_id, frame_id)
    image_set_frames: dict[tuple[str, str, str], FrameRef] = field(default_factory=dict)
    import_jobs: dict[str, ImportJob] = field(default_factory=dict)
    import_files: dict[tuple[str, int], ImportFile] = field(default_factory=dict)  # (job_id, seq)
    import_commits: dict[tuple[str, str], list[str]] = field(default_factory=dict)  # (job_id, group_key)
    # The QIDO-RS catalog: (datastore_id, image_set_id) -> cataloged version; rows by their keys.
    catalog_versions: dict[tuple[str, str], int] = field(default_factory=dict)
    catalog_series: dict[tuple[str, str, str], SeriesRow] = field(default_factory=dict)  # (+ series uid)
    catalog_instances: dict[tuple[str, str, str, str], InstanceRow] = field(default_factory=dict)  # (+ sop uid)
    catalog_studies: dict[tuple[str, str], CatalogStudy] = field(default_factory=dict)  # (datastore, study uid)
    # IAM principals (openhi.iam.directory_model); policies keyed by (kind, principal, policy name or ARN).
    iam_users: dict[str, User] = field(default_factory=dict)
    iam_access_keys: dict[str, AccessKeyRecord] = field(default_factory=dict)
    iam_roles: dict[str, Role] = field(default_factory=dict)
    iam_policies: dict[tuple[PrincipalKind, str, str], InlinePolicy] = field(default_factory=dict)
    iam_attached: dict[tuple[PrincipalKind, str, str], AttachedPolicy] = field(default_factory=dict)
    iam_sessions: dict[str, SessionRecord] = field(default_factory=dict)
    # Wrapped data store keys (memory_datastore_keys.py, migration 0009): (datastore_id, version) -> key.
    datastore_keys: dict[tuple[str, int], StoredDataKey] = field(default_factory=dict)
    # Counters of the resource metrics (memory_counters.py, migration 0008): (datastore_id, counter) -> value, and
    # what each image set's bytes count as: (datastore_id, image_set_id) -> (bytes of its frames, storage tier).
    counters: dict[tuple[str, str], int] = field(default_factory=dict)
    image_set_usage: dict[tuple[str, str], tuple[int, str]] = field(default_factory=dict)
    # The event outbox (migration 0007): appended events in order with their sequence (None: unpublished),
    # the highest sequence given, and each sink's cursor.
    events: list[tuple[ChangeEvent, int | None]] = field(default_factory=list)
    event_last_sequence: int = 0
    event_cursors: dict[str, SinkCursor] = field(default_factory=dict)
