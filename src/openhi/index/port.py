"""The index port: repositories reached through one unit of work.

Services never hold a connection: they hand a function to ``Index.run``, which opens a transaction,
passes a ``UnitOfWork`` to it, commits, and retries the whole function a bounded number of times when the
database reports a serialization failure or a lock timeout (learned from Orthanc's
``StatelessDatabaseOperations`` and cosmicpython's ``unit_of_work.py``). Because the function may run more
than once it must not have side effects outside the unit of work.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, TypeVar

from openhi.catalog.model import CatalogStudy, ImageSetCatalog, InstanceRow, SeriesRow
from openhi.catalog.query import Condition
from openhi.crypto.model import StoredDataKey, WrappingKind
from openhi.datastores.model import Datastore, DatastoreStatus
from openhi.events.model import ChangeEvent, PublishedEvent, SinkCursor
from openhi.iam.directory_model import (
    AccessKeyRecord,
    AttachedPolicy,
    InlinePolicy,
    KeyStatus,
    PrincipalKind,
    Role,
    SessionRecord,
    User,
)
from openhi.imagesets.model import (
    FrameRef,
    ImageSet,
    ImageSetState,
    ImageSetVersion,
    ImageSetWorkflowStatus,
    StorageTier,
)
from openhi.imports.model import FileStatus, ImportFile, ImportJob, JobStatus
from openhi.metrics.usage import DatastoreUsage, ImportProgress
from openhi.search.criteria import SearchCursor, SearchQuery

T = TypeVar("T")


@dataclass(frozen=True)
class DatastorePageKey:
    """Keyset position for listing data stores, newest first: (created_at, datastore_id) of the last row."""

    created_at: datetime
    datastore_id: str


class DatastoreRepository(Protocol):
    """Data store rows."""

    def add(self, datastore: Datastore) -> None:
        """Insert a new data store. Raises ``ConflictError`` if its client token is already taken."""
        ...

    def get(self, datastore_id: str) -> Datastore | None:
        """The data store, whatever its status, or None."""
        ...

    def get_by_client_token(self, client_token: str) -> Datastore | None:
        """The data store created with this idempotency token, or None."""
        ...

    def list_page(self, status: DatastoreStatus | None, after: DatastorePageKey | None, limit: int) -> list[Datastore]:
        """Up to ``limit`` data stores, newest first (created_at DESC, id DESC), strictly after ``after``."""
        ...

    def count_in(self, statuses: Sequence[DatastoreStatus]) -> int:
        """How many data stores are in any of ``statuses``."""
        ...

    def ids_in(self, status: DatastoreStatus) -> list[str]:
        """Ids of every data store in ``status`` (for the lifecycle sweep)."""
        ...

    def transition(self, datastore_id: str, expected: DatastoreStatus, new: DatastoreStatus, at: datetime) -> bool:
        """Compare-and-set the status; True when this call moved it (safe across processes)."""
        ...


@dataclass(frozen=True)
class JobPageKey:
    """Keyset position for listing import jobs, newest first: (submitted_at, job_id) of the last row."""

    submitted_at: datetime
    job_id: str


class ImageSetRepository(Protocol):
    """Image sets, their immutable versions and the frames they reference."""

    def exists(self, datastore_id: str, image_set_id: str) -> bool:
        """True when the image set exists in the data store and is not deleted."""
        ...

    def count_in_datastore(self, datastore_id: str) -> int:
        """Image sets of the data store that are not deleted."""
        ...

    def get(self, datastore_id: str, image_set_id: str) -> ImageSet | None:
        """The image set (latest version's state), whatever its state, or None."""
        ...

    def find_primary(self, datastore_id: str, series_instance_uid: str) -> ImageSet | None:
        """The primary, not deleted image set of a series, or None (guide 3217-3360: one per series)."""
        ...

    def primary_with_version(
        self, datastore_id: str, series_instance_uid: str
    ) -> tuple[ImageSet, ImageSetVersion] | None:
        """``find_primary`` and the image set's latest version row, read together (one statement on SQL).

        The read path of DICOMweb (guide 1880-2210) calls this once per request.
        """
        ...

    def get_with_version(self, datastore_id: str, image_set_id: str) -> tuple[ImageSet, ImageSetVersion] | None:
        """``get`` (whatever the state) and the image set's latest version row, read together, or None."""
        ...

    def add(self, image_set: ImageSet) -> None:
        """Insert a new image set row."""
        ...

    def update(self, image_set: ImageSet) -> None:
        """Replace the row of an existing image set (after a new version, a state change ...)."""
        ...

    def add_version(self, version: ImageSetVersion) -> None:
        """Insert an immutable version row. Raises ``ConflictError`` if that version number exists."""
        ...

    def get_version(self, datastore_id: str, image_set_id: str, version_id: int) -> ImageSetVersion | None:
        """One version, or None."""
        ...

    def list_versions(
        self, datastore_id: str, image_set_id: str, before_version: int | None, limit: int
    ) -> list[ImageSetVersion]:
        """Up to ``limit`` versions, newest first, with version_id < ``before_version`` when given."""
        ...

    def add_frames(self, frames: Sequence[FrameRef]) -> None:
        """Record frames as belonging to an image set (existing (image set, frame) pairs are ignored)."""
        ...

    def get_frame(self, datastore_id: str, image_set_id: str, frame_id: str) -> FrameRef | None:
        """A frame of the image set, or None."""
        ...

    # -- search (SearchImageSets) ---------------------------------------------------------------------

    def search(self, datastore_id: str, query: SearchQuery, after: SearchCursor | None, limit: int) -> list[ImageSet]:
        """Up to ``limit`` not deleted image sets of the data store matching ``query``, in its sort order.

        Order: the sort value in the query's direction, ties by image set id in the same direction; with the
        DICOMStudyDateAndTime sort, image sets without a study date come last (by id, same direction).
        ``after`` is the (sort value, id) of the last image set of the previous page; rows strictly after it.
        """
        ...

    def study_counts(self, datastore_id: str, study_uids: Sequence[str]) -> dict[str, tuple[int, int]]:
        """Study Instance UID -> (distinct series, total instances) over the primary, not deleted image sets.

        DICOMNumberOfStudyRelatedSeries / DICOMNumberOfStudyRelatedInstances; studies without any such image
        set are left out.
        """
        ...

    # -- lifecycle (UpdateImageSetMetadata, CopyImageSet, DeleteImageSet) ----------------------------------

    def set_state(
        self,
        datastore_id: str,
        image_set_id: str,
        expected_version: int,
        expected_states: Sequence[ImageSetState],
        state: ImageSetState,
        workflow_status: ImageSetWorkflowStatus,
        message: str | None,
        at: datetime,
    ) -> bool:
        """Compare-and-set: when the row is at ``expected_version`` in one of ``expected_states``, set its
        state, workflow status, message and updated_at (nothing else) and answer True; else change nothing."""
        ...

    def update_version(self, version: ImageSetVersion) -> None:
        """Replace a version row's state, workflow status, message and updated_at (no row: no change)."""
        ...

    def list_frames(self, datastore_id: str, image_set_id: str) -> list[FrameRef]:
        """Every frame the image set references, by frame id."""
        ...

    def frames_used_elsewhere(self, datastore_id: str, image_set_id: str, frame_ids: Sequence[str]) -> set[str]:
        """Those of ``frame_ids`` that another, not deleted image set of the data store also references."""
        ...

    def metadata_keys_used_elsewhere(self, datastore_id: str, image_set_id: str, keys: Sequence[str]) -> set[str]:
        """Those of ``keys`` that a version of another, not deleted image set of the data store references."""
        ...

    def delete_frames(self, datastore_id: str, image_set_id: str) -> None:
        """Forget every frame reference of the image set."""
        ...

    def count_locked(self, datastore_id: str, workflow_status: ImageSetWorkflowStatus | None = None) -> int:
        """Image sets of the data store in state LOCKED (only those with ``workflow_status`` when given)."""
        ...

    def locked_before(self, cutoff: datetime) -> list[ImageSet]:
        """Image sets of every data store LOCKED since before ``cutoff`` (for the recovery sweep)."""
        ...

    def primary_in_study(self, datastore_id: str, study_instance_uid: str) -> list[ImageSet]:
        """The primary ACTIVE or LOCKED image sets of a study, oldest first (created_at, then id)."""
        ...

    def primary_in_study_with_versions(
        self, datastore_id: str, study_instance_uid: str
    ) -> list[tuple[ImageSet, ImageSetVersion]]:
        """``primary_in_study`` with each image set's latest version row, read together (one statement on SQL)."""
        ...


class ImportJobRepository(Protocol):
    """Import jobs, their input files and which series groups they have committed."""

    def add(self, job: ImportJob) -> None:
        """Insert a job. Raises ``ConflictError`` if (datastore, client token) is taken."""
        ...

    def get(self, datastore_id: str, job_id: str) -> ImportJob | None:
        """The job, or None."""
        ...

    def get_by_client_token(self, datastore_id: str, client_token: str) -> ImportJob | None:
        """The job this idempotency token started in the data store, or None."""
        ...

    def list_page(
        self, datastore_id: str, status: JobStatus | None, after: JobPageKey | None, limit: int
    ) -> list[ImportJob]:
        """Up to ``limit`` jobs of the data store, newest first, strictly after ``after``."""
        ...

    def count_in(self, datastore_id: str, statuses: Sequence[JobStatus]) -> int:
        """Jobs of the data store in any of ``statuses``."""
        ...

    def runnable(self, now: datetime) -> list[ImportJob]:
        """SUBMITTED or IN_PROGRESS jobs whose lease is absent or expired, oldest first."""
        ...

    def update(self, job: ImportJob) -> None:
        """Replace the job's row."""
        ...

    def claim(self, job_id: str, owner: str, until: datetime, now: datetime) -> bool:
        """Take or renew the job's lease: succeeds when unleased, expired, or already held by ``owner``."""
        ...

    def add_files(self, files: Sequence[ImportFile]) -> None:
        """Insert the job's input files (already present (job, seq) pairs are ignored)."""
        ...

    def list_files(self, job_id: str, status: FileStatus | None = None) -> list[ImportFile]:
        """The job's files in ``seq`` order (results included), optionally only those in ``status``."""
        ...

    def record_file(self, file: ImportFile) -> None:
        """Store the outcome of one file (status, group, result, error)."""
        ...

    def staged_groups(self, job_id: str) -> list[str]:
        """Distinct group keys of the job's STAGED files, sorted."""
        ...

    def staged_in_group(self, job_id: str, group_key: str) -> list[ImportFile]:
        """The job's STAGED files of one group, in ``seq`` order."""
        ...

    def is_committed(self, job_id: str, group_key: str) -> bool:
        """True when this job's group was already applied to image sets."""
        ...

    def mark_committed(self, job_id: str, group_key: str, image_set_ids: Sequence[str]) -> None:
        """Record, in the same unit of work as the image set changes, that the group is applied."""
        ...

    def committed_image_sets(self, job_id: str) -> dict[str, list[str]]:
        """group key -> image set ids the job's commits touched."""
        ...


class TagRepository(Protocol):
    """Tags per resource; a resource is (datastore_id, image_set_id or None)."""

    def get(self, datastore_id: str, image_set_id: str | None) -> dict[str, str]:
        """All tags of the resource (empty when none)."""
        ...

    def put(self, datastore_id: str, image_set_id: str | None, tags: Mapping[str, str]) -> None:
        """Add or overwrite the given tags; others stay."""
        ...

    def remove(self, datastore_id: str, image_set_id: str | None, keys: Sequence[str]) -> None:
        """Remove the named tags; absent keys are ignored."""
        ...

    def remove_all_of_datastore(self, datastore_id: str) -> None:
        """Remove the tags of the data store and of every image set in it."""
        ...


class DicomCatalogRepository(Protocol):
    """The QIDO-RS catalog (``openhi.catalog``): study, series and instance rows of primary image sets.

    Rows of an image set are replaced whenever one of its versions is written and removed when it is deleted;
    a study row aggregates the series rows of its study (``catalog.derive.aggregate_study``). Searches match
    every condition (``catalog.query.matches`` is the reference) and page with ``offset`` / ``limit``.
    """

    def put_image_set(
        self, datastore_id: str, image_set_id: str, version_id: int, catalog: ImageSetCatalog, updated_at: datetime
    ) -> None:
        """Replace the image set's rows by ``catalog`` (version ``version_id``) and refresh its studies."""
        ...

    def remove_image_set(self, datastore_id: str, image_set_id: str) -> None:
        """Forget the image set's rows and refresh its studies (no rows: no change)."""
        ...

    def uncataloged(self, limit: int) -> list[tuple[str, str, int]]:
        """Up to ``limit`` (datastore id, image set id, version) of primary, not deleted image sets whose catalog
        rows are missing or older than their latest version (the backfill of archives older than the catalog)."""
        ...

    def search_studies(
        self, datastore_id: str, conditions: Sequence[Condition], offset: int, limit: int
    ) -> list[CatalogStudy]:
        """Matching studies, last updated first (guide 2226), ties by Study Instance UID descending."""
        ...

    def search_series(
        self, datastore_id: str, study_uid: str, conditions: Sequence[Condition], offset: int, limit: int
    ) -> list[SeriesRow]:
        """Matching series of a study by Series Number ascending (guide 2227; none last), then UID, image set."""
        ...

    def search_instances(
        self,
        datastore_id: str,
        study_uid: str,
        series_uid: str | None,
        conditions: Sequence[Condition],
        offset: int,
        limit: int,
    ) -> list[InstanceRow]:
        """Matching instances of a series (or of the whole study when ``series_uid`` is None): by Series Number,
        Series Instance UID, then Instance Number ascending (guide 2228; none last), SOP Instance UID."""
        ...

    def series_of_study(self, datastore_id: str, study_uid: str) -> list[SeriesRow]:
        """Every series row of a study (for the series and study attributes of instance results)."""
        ...


class IamRepository(Protocol):
    """The principals of ``openhi.iam.directory_model``: users, access keys, roles, their policies, STS sessions.

    Names are keys (case-sensitive). Deleting a user removes its access keys and policies; deleting a role
    removes its policies and sessions. Adding a row whose key exists, or a key or policy of a principal that
    does not exist, raises ``ConflictError``. A session may name a role the index does not hold (a role of the
    IAM file).
    """

    def add_user(self, user: User) -> None:
        """Insert a user."""
        ...

    def get_user(self, name: str) -> User | None:
        """The user, or None."""
        ...

    def list_users(self) -> list[User]:
        """Every user, by name."""
        ...

    def delete_user(self, name: str) -> bool:
        """Remove the user with its keys and policies; False when there was none."""
        ...

    def add_access_key(self, key: AccessKeyRecord) -> None:
        """Insert an access key of an existing user."""
        ...

    def get_access_key(self, access_key_id: str) -> AccessKeyRecord | None:
        """The access key, or None."""
        ...

    def list_access_keys(self, user_name: str) -> list[AccessKeyRecord]:
        """The user's access keys, oldest first."""
        ...

    def set_access_key_status(self, access_key_id: str, status: KeyStatus) -> bool:
        """Change a key's status; False when there is no such key."""
        ...

    def delete_access_key(self, access_key_id: str) -> bool:
        """Remove the key; False when there was none."""
        ...

    def add_role(self, role: Role) -> None:
        """Insert a role."""
        ...

    def get_role(self, name: str) -> Role | None:
        """The role, or None."""
        ...

    def list_roles(self) -> list[Role]:
        """Every role, by name."""
        ...

    def delete_role(self, name: str) -> bool:
        """Remove the role with its policies and sessions; False when there was none."""
        ...

    def put_policy(self, policy: InlinePolicy) -> None:
        """Add or replace an inline policy of an existing user or role."""
        ...

    def delete_policy(self, kind: PrincipalKind, principal: str, name: str) -> bool:
        """Remove an inline policy; False when there was none."""
        ...

    def list_policies(self, kind: PrincipalKind, principal: str) -> list[InlinePolicy]:
        """The principal's inline policies, by name."""
        ...

    def attach_policy(self, attached: AttachedPolicy) -> None:
        """Attach a managed policy to an existing user or role (attaching it again changes nothing)."""
        ...

    def detach_policy(self, kind: PrincipalKind, principal: str, policy_arn: str) -> bool:
        """Detach a managed policy; False when it was not attached."""
        ...

    def list_attached(self, kind: PrincipalKind, principal: str) -> list[AttachedPolicy]:
        """The principal's attached managed policies, by ARN."""
        ...

    def add_session(self, session: SessionRecord) -> None:
        """Insert the temporary credentials of a role session (the role need not be in the index)."""
        ...

    def get_session(self, access_key_id: str) -> SessionRecord | None:
        """The session of a temporary access key, or None."""
        ...

    def delete_sessions_expired_before(self, cutoff: datetime) -> int:
        """Remove sessions whose ``expires_at`` is before ``cutoff``; how many were removed."""
        ...


class EventRepository(Protocol):
    """The event outbox (``openhi.events``): events appended in the unit of work of their change, published in
    commit order, and a delivery cursor with a lease per sink.

    ``append`` adds an event without a sequence. ``publish`` (one publisher at a time: the index serializes it on
    a counter) gives the next sequence numbers, one by one with no gap, to committed unpublished events in the
    order they were appended, so an event whose transaction commits late is published late, never skipped.
    """

    def append(self, event: ChangeEvent) -> None:
        """Add an event to the outbox in this unit of work. Raises ``ConflictError`` if its id is taken."""
        ...

    def has_unpublished(self) -> bool:
        """True when a committed event has no sequence yet."""
        ...

    def publish(self, limit: int) -> int:
        """Give sequences last+1, last+2 ... to up to ``limit`` unpublished events in append order; how many.

        Publishing is a unit of work of its own: call nothing before it in the same unit of work."""
        ...

    def last_sequence(self) -> int:
        """The highest sequence given so far (0 before the first)."""
        ...

    def published_after(self, sequence: int, limit: int) -> list[PublishedEvent]:
        """Up to ``limit`` published events with a sequence above ``sequence``, in sequence order."""
        ...

    def cursor(self, sink: str) -> SinkCursor | None:
        """The sink's cursor, or None before its first claim."""
        ...

    def claim(self, sink: str, owner: str, until: datetime, now: datetime) -> SinkCursor | None:
        """Take or renew the sink's lease (a new sink starts at 0): the cursor when the lease was free, expired or
        already ``owner``'s; None when another owner holds it."""
        ...

    def advance(self, sink: str, owner: str, delivered: int) -> bool:
        """Move the cursor forward to ``delivered`` if ``owner`` holds the lease (never backwards); False if not."""
        ...

    def release(self, sink: str, owner: str) -> None:
        """Give up ``owner``'s lease on the sink (no lease of ``owner``: no change)."""
        ...

    def prune(self, before: datetime, up_to: int, limit: int) -> int:
        """Forget up to ``limit`` published events older than ``before`` with a sequence <= ``up_to``; how many."""
        ...


@dataclass(frozen=True)
class ImageSetAccess:
    """An access to an image set (guide 23022-23040) at ``at``, as the access tracker records it."""

    datastore_id: str
    image_set_id: str
    at: datetime


class StorageTierRepository(Protocol):
    """Storage tiers of image sets (guide 23009-23052, ``openhi.tiers``): the tier, the last access and when the
    tier last changed, kept on the image set row and written only here.

    A new image set is FREQUENT_ACCESS and never accessed; ``ImageSetRepository.add`` / ``update`` never change
    these. Moves are compare-and-set, so any number of processes may sweep at once.
    """

    def record_access(self, accesses: Sequence[ImageSetAccess]) -> list[tuple[str, str]]:
        """Set each image set's last access to the later of the stored one and ``at`` (unknown image sets are
        ignored); answer (datastore id, image set id) of those among them that are archived and not deleted."""
        ...

    def idle(self, cutoff: datetime, after: tuple[str, str] | None, limit: int) -> list[ImageSet]:
        """Up to ``limit`` ACTIVE, FREQUENT_ACCESS image sets of every data store not accessed since before
        ``cutoff`` (last access, or creation when never accessed, < cutoff), by (datastore id, image set id),
        strictly after ``after``."""
        ...

    def accessed_while_archived(self, limit: int) -> list[ImageSet]:
        """Up to ``limit`` not deleted ARCHIVE_INSTANT_ACCESS image sets accessed after their move to the archive."""
        ...

    def archive(self, datastore_id: str, image_set_id: str, version_id: int, cutoff: datetime, at: datetime) -> bool:
        """Compare-and-set FREQUENT_ACCESS -> ARCHIVE_INSTANT_ACCESS at ``at``, only while the image set is ACTIVE at
        ``version_id`` and still not accessed since before ``cutoff``; True when this call moved it."""
        ...

    def restore(self, datastore_id: str, image_set_id: str, at: datetime) -> bool:
        """Compare-and-set ARCHIVE_INSTANT_ACCESS -> FREQUENT_ACCESS at ``at`` unless the image set is deleted or
        being deleted (workflow DELETING); True when this call moved it."""
        ...

    def held_elsewhere(
        self, datastore_id: str, image_set_id: str, tier: StorageTier, frame_ids: Sequence[str], keys: Sequence[str]
    ) -> set[str]:
        """Those of ``frame_ids`` and metadata document ``keys`` that another, not deleted image set of the data
        store in ``tier`` references (frames and documents are shared after CopyImageSet or equal documents)."""
        ...


class CounterRepository(Protocol):
    """Counters behind the resource metrics (``openhi.metrics.usage``), maintained by the other repositories.

    The repository methods that change counted rows change the counters in the same unit of work: data stores
    (``add``, ``transition``), image sets (``add``, ``update``, ``set_state``, ``add_frames``, ``delete_frames``)
    and the catalog (``put_image_set``, ``remove_image_set``). Services never call them for that.
    """

    def totals(self) -> list[DatastoreUsage]:
        """The counters of every data store in the index, by data store id."""
        ...

    def move_tier(self, datastore_id: str, image_set_id: str, tier: str) -> bool:
        """Count the image set's bytes in storage tier ``tier`` (``usage.STORAGE_TIERS``) from now on; True when
        it was counted in another tier (the tier service calls this in the unit of work that moves it)."""
        ...

    def import_progress(self) -> list[ImportProgress]:
        """Progress of every IN_PROGRESS import job, from its file rows, by job id."""
        ...

    def recount(self) -> None:
        """Rebuild every counter from the rows (repair; storage tiers already recorded are kept)."""
        ...


class DatastoreKeyRepository(Protocol):
    """Wrapped data store keys (``openhi.crypto``, migration 0009): one row per (data store, version)."""

    def add(self, key: StoredDataKey) -> bool:
        """Insert a key version; False (nothing written) when that version already exists (compare-and-set)."""
        ...

    def get(self, datastore_id: str, version: int) -> StoredDataKey | None:
        """One version, or None."""
        ...

    def current(self, datastore_id: str) -> StoredDataKey | None:
        """The highest version of the data store's key, or None when it has none."""
        ...

    def list_of(self, datastore_id: str) -> list[StoredDataKey]:
        """Every version of the data store's key, oldest first."""
        ...

    def list_wrapped(self, kind: WrappingKind, other_than: str, limit: int) -> list[StoredDataKey]:
        """Up to ``limit`` keys wrapped by a key of ``kind`` whose id is not ``other_than`` (by data store, version)."""
        ...

    def rewrap(self, key: StoredDataKey, expected_wrapping_key_id: str) -> bool:
        """Replace the wrapped form of ``key``'s version if it is still wrapped by ``expected_wrapping_key_id``."""
        ...

    def remove_all_of_datastore(self, datastore_id: str) -> int:
        """Destroy every version of the data store's key; how many were removed."""
        ...


class UnitOfWork(Protocol):
    """The repositories of one transaction."""

    @property
    def datastores(self) -> DatastoreRepository: ...

    @property
    def image_sets(self) -> ImageSetRepository: ...

    @property
    def tags(self) -> TagRepository: ...

    @property
    def import_jobs(self) -> ImportJobRepository: ...

    @property
    def catalog(self) -> DicomCatalogRepository: ...

    @property
    def iam(self) -> IamRepository: ...

    @property
    def datastore_keys(self) -> DatastoreKeyRepository: ...

    @property
    def counters(self) -> CounterRepository: ...

    @property
    def tiers(self) -> StorageTierRepository: ...

    @property
    def events(self) -> EventRepository: ...


class Index(Protocol):
    """Entry point of the index port."""

    def run(self, work: Callable[[UnitOfWork], T], *, readonly: bool = False) -> T:
        """Run ``work`` in one transaction, commit, retry on serialization failures; return its result."""
        ...

    def check(self) -> None:
        """Raise ``UnavailableError`` when the database cannot be reached (readiness probe)."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...
