"""The index tables as SQLAlchemy Core metadata, shared by the SQLite and PostgreSQL adapters.

This module is the adapter's picture of the schema that the Alembic migrations in ``migrations/`` build
(the migrations are hand-written and self-contained; ``tests/integration/test_sql_index.py`` checks that
both agree). Times are aware UTC datetimes everywhere: PostgreSQL stores them as ``timestamptz``; SQLite,
which has no time type, stores them as fixed-width ISO 8601 text in UTC with microseconds
(``2024-05-01 12:30:00.000001+00:00``), so that text order is time order and keyset pagination works on
both. A tag row with ``image_set_id = ''`` belongs to the data store itself. Rows of a data store (image
sets and their versions, frames, import jobs and their files and commits) go with it (ON DELETE CASCADE).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Dialect,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.types import TypeDecorator, TypeEngine

# Naming convention so constraint names are stable across dialects (and usable in migrations).
metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

ID_LENGTH = 32
SQLITE_TIME_LENGTH = 32  # len("2024-05-01 12:30:00.000001+00:00")


def format_sqlite_time(value: datetime) -> str:
    """The SQLite text form of an aware datetime: UTC, fixed width, microseconds always present."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"the index stores aware datetimes only, got naive {value!r}")
    return value.astimezone(UTC).isoformat(sep=" ", timespec="microseconds")


class UtcDateTime(TypeDecorator[datetime]):
    """An aware datetime stored in UTC; read back as an aware UTC datetime on every dialect."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(String(SQLITE_TIME_LENGTH))
        return dialect.type_descriptor(DateTime(timezone=True))

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> object:
        if value is None:
            return None
        if dialect.name == "sqlite":
            return format_sqlite_time(value)
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"the index stores aware datetimes only, got naive {value!r}")
        return value.astimezone(UTC)

    def process_result_value(self, value: object, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):
            parsed = datetime.fromisoformat(value)
        elif isinstance(value, datetime):
            parsed = value
        else:
            raise TypeError(f"unexpected stored time {value!r}")
        if parsed.tzinfo is None:  # written by something else than this type: documented as UTC
            parsed = parsed.replace(tzinfo=UTC)
        return parsed.astimezone(UTC)


def _id(name: str, *, primary_key: bool = False) -> Column[str]:
    return Column(name, String(ID_LENGTH), primary_key=primary_key, nullable=False)


datastores = Table(
    "datastores",
    metadata,
    _id("datastore_id", primary_key=True),
    Column("name", Text, nullable=False),
    Column("status", String(32), nullable=False),
    Column("lossless_storage_format", String(32), nullable=False),
    Column("kms_key_arn", Text, nullable=True),
    Column("lambda_authorizer_arn", Text, nullable=True),
    Column("client_token", Text, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    UniqueConstraint("client_token"),
    Index(None, "created_at", "datastore_id"),
    Index(None, "status"),
)


def _datastore_ref() -> Column[str]:
    """The owning data store; rows go with it (ON DELETE CASCADE)."""
    return Column(
        "datastore_id",
        String(ID_LENGTH),
        ForeignKey("datastores.datastore_id", ondelete="CASCADE"),
        nullable=False,
    )


# The DICOM elements that decide which image set an imported instance joins (``GroupingKey``).
GROUPING_COLUMNS = (
    "study_date",
    "accession_number",
    "patient_id",
    "study_instance_uid",
    "study_id",
    "series_instance_uid",
    "series_number",
)
UID_LENGTH = 64  # DICOM UI value representation
# What SearchImageSets shows beyond the grouping elements (``ImageSetSummary``; DICOMTags of the model).
SUMMARY_COLUMNS = (
    "patient_name",
    "patient_birth_date",
    "patient_sex",
    "study_description",
    "study_time",
    "series_modality",
    "series_body_part",
)
STUDY_DATETIME_LENGTH = 21  # len("YYYYMMDDHHMMSS.ffffff")


# Image sets: the latest version's state of each image set plus its grouping elements and search summary.
# Every SearchImageSets filter and sort is a range scan of one index led by datastore_id; study_datetime is
# the sortable "YYYYMMDDHHMMSS.ffffff" of Study Date + Study Time (NULL without a valid Study Date).
image_sets = Table(
    "image_sets",
    metadata,
    _datastore_ref(),
    _id("image_set_id"),
    Column("version_id", Integer, nullable=False),
    Column("state", String(16), nullable=False),  # ACTIVE | LOCKED | DELETED
    Column("workflow_status", String(32), nullable=False),
    Column("is_primary", Boolean, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Column("deleted_at", UtcDateTime, nullable=True),
    Column("message", Text, nullable=True),
    *(Column(name, Text, nullable=True) for name in GROUPING_COLUMNS),
    *(Column(name, Text, nullable=True) for name in SUMMARY_COLUMNS),
    Column("instance_count", Integer, nullable=False, server_default="0"),
    Column("study_datetime", String(STUDY_DATETIME_LENGTH), nullable=True),
    # Storage tiers (migration 0010, written only by ``sql/tiers.py``; guide 23009-23052).
    Column("storage_tier", String(32), nullable=False, server_default="FREQUENT_ACCESS"),
    Column("last_accessed_at", UtcDateTime, nullable=True),
    Column("tier_changed_at", UtcDateTime, nullable=True),
    PrimaryKeyConstraint("datastore_id", "image_set_id"),
    Index(None, "datastore_id", "series_instance_uid", "is_primary"),
    Index(None, "datastore_id", "state"),
    Index(None, "datastore_id", "patient_id"),
    Index(None, "datastore_id", "accession_number"),
    Index(None, "datastore_id", "study_id"),
    Index(None, "datastore_id", "study_instance_uid"),
    Index(None, "datastore_id", "study_datetime", "image_set_id"),
    Index(None, "datastore_id", "updated_at", "image_set_id"),
    Index(None, "datastore_id", "created_at", "image_set_id"),
    Index(None, "storage_tier", "last_accessed_at"),  # the tier sweep (0010)
)

# Immutable versions of an image set; the metadata document itself is a blob (``metadata_key``).
image_set_versions = Table(
    "image_set_versions",
    metadata,
    _id("datastore_id"),
    _id("image_set_id"),
    Column("version_id", Integer, nullable=False),
    Column("state", String(16), nullable=False),
    Column("workflow_status", String(32), nullable=False),
    Column("is_primary", Boolean, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Column("metadata_key", Text, nullable=False),
    Column("message", Text, nullable=True),
    Column("job_id", String(ID_LENGTH), nullable=True),
    PrimaryKeyConstraint("datastore_id", "image_set_id", "version_id"),
    Index(None, "datastore_id", "metadata_key"),  # is a document shared with another image set?
    ForeignKeyConstraint(
        ["datastore_id", "image_set_id"],
        ["image_sets.datastore_id", "image_sets.image_set_id"],
        ondelete="CASCADE",
    ),
)

# Frames an image set references (the pixel data is a blob); rows go with their data store.
image_set_frames = Table(
    "image_set_frames",
    metadata,
    _datastore_ref(),
    _id("image_set_id"),
    _id("frame_id"),
    Column("stored_transfer_syntax", String(UID_LENGTH), nullable=False),
    Column("size", BigInteger, nullable=False),
    PrimaryKeyConstraint("datastore_id", "image_set_id", "frame_id"),
    Index(None, "datastore_id", "frame_id"),  # is a frame shared with another image set?
)

# StartDICOMImportJob requests; a worker holds a job through a lease (lease_owner, lease_until).
import_jobs = Table(
    "import_jobs",
    metadata,
    _id("job_id", primary_key=True),
    _datastore_ref(),
    Column("job_name", Text, nullable=False),
    Column("status", String(32), nullable=False),
    Column("data_access_role_arn", Text, nullable=False),
    Column("input_s3_uri", Text, nullable=False),
    Column("output_s3_uri", Text, nullable=False),
    Column("input_owner_account_id", Text, nullable=True),
    Column("import_configuration", Text, nullable=True),
    Column("client_token", Text, nullable=False),
    Column("submitted_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Column("ended_at", UtcDateTime, nullable=True),
    Column("message", Text, nullable=True),
    Column("lease_owner", Text, nullable=True),
    Column("lease_until", UtcDateTime, nullable=True),
    UniqueConstraint("datastore_id", "client_token"),
    Index(None, "datastore_id", "submitted_at", "job_id"),
    Index(None, "status"),
)


def _job_ref() -> Column[str]:
    """The owning import job; rows go with it (ON DELETE CASCADE)."""
    return Column("job_id", String(ID_LENGTH), ForeignKey("import_jobs.job_id", ondelete="CASCADE"), nullable=False)


# One row per input file of a job, so that an interrupted job resumes where it stopped.
import_files = Table(
    "import_files",
    metadata,
    _job_ref(),
    Column("seq", Integer, nullable=False),
    Column("input_key", Text, nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("status", String(16), nullable=False),
    Column("group_key", Text, nullable=True),
    Column("result", LargeBinary, nullable=True),
    Column("error_type", Text, nullable=True),
    Column("error_message", Text, nullable=True),
    PrimaryKeyConstraint("job_id", "seq"),
    Index(None, "job_id", "status", "group_key"),
)

# Groups (series) of a job already applied to image sets; image_set_ids is comma separated.
import_commits = Table(
    "import_commits",
    metadata,
    _job_ref(),
    Column("group_key", Text, nullable=False),
    Column("image_set_ids", Text, nullable=False),
    PrimaryKeyConstraint("job_id", "group_key"),
)

# Tags of a data store (image_set_id = '') or of one of its image sets.
tags = Table(
    "tags",
    metadata,
    _datastore_ref(),
    Column("image_set_id", String(ID_LENGTH), nullable=False, server_default=""),
    Column("key", Text, nullable=False),
    Column("value", Text, nullable=False),
    PrimaryKeyConstraint("datastore_id", "image_set_id", "key"),
)

# -- the QIDO-RS catalog (openhi.catalog): rows of primary, not deleted image sets -------------------------------
# Which version of an image set the catalog rows were derived from (missing: to be backfilled).
catalog_image_sets = Table(
    "catalog_image_sets",
    metadata,
    _datastore_ref(),
    _id("image_set_id"),
    Column("version_id", Integer, nullable=False),
    PrimaryKeyConstraint("datastore_id", "image_set_id"),
)

# One row per series of an image set, with the patient and study attributes of that image set.
catalog_series = Table(
    "catalog_series",
    metadata,
    _datastore_ref(),
    _id("image_set_id"),
    Column("series_uid", Text, nullable=False),
    Column("study_uid", Text, nullable=False),
    Column("modality", Text, nullable=True),
    Column("series_number", Integer, nullable=True),
    Column("series_description", Text, nullable=True),
    Column("pps_start_date", Text, nullable=True),
    Column("pps_start_time", Text, nullable=True),
    Column("instance_count", Integer, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Column("attributes", Text, nullable=False),
    Column("study_attributes", Text, nullable=False),
    PrimaryKeyConstraint("datastore_id", "image_set_id", "series_uid"),
    Index(None, "datastore_id", "study_uid", "series_number"),
)

# One row per instance; modality and series number are the series' (relational instance search and sort).
# warning_reasons is "|"-joined decimal codes; digest tells whether a rewritten row changed.
catalog_instances = Table(
    "catalog_instances",
    metadata,
    _datastore_ref(),
    _id("image_set_id"),
    Column("series_uid", Text, nullable=False),
    Column("sop_uid", Text, nullable=False),
    Column("study_uid", Text, nullable=False),
    Column("sop_class_uid", Text, nullable=True),
    Column("instance_number", Integer, nullable=True),
    Column("warning_reasons", Text, nullable=True),
    Column("modality", Text, nullable=True),
    Column("series_number", Integer, nullable=True),
    Column("digest", String(64), nullable=False),
    Column("attributes", Text, nullable=False),
    PrimaryKeyConstraint("datastore_id", "image_set_id", "series_uid", "sop_uid"),
    Index("ix_catalog_instances_position", "datastore_id", "study_uid", "series_uid", "instance_number"),
)

# One row per study: aggregated over its primary image sets. Person names are also kept normalized
# (``_norm``: casefolded) and as words (``_words``: " w1 w2 ", for fuzzy matching); modalities "|"-joined.
CATALOG_STUDY_TEXT = (
    "patient_name",
    "patient_name_norm",
    "patient_name_words",
    "patient_id",
    "patient_birth_date",
    "patient_birth_time",
    "patient_sex",
    "study_date",
    "study_time",
    "accession_number",
    "study_id",
    "study_description",
    "referring_physician_name",
    "referring_physician_name_norm",
    "referring_physician_name_words",
    "modalities",
)
# Every study filter and the sort are range scans of one index led by datastore_id.
CATALOG_STUDY_INDEXES = (
    ("updated_at", "study_uid"),
    ("patient_id",),
    ("patient_name_norm",),
    ("accession_number",),
    ("study_date",),
    ("study_id",),
    ("patient_birth_date",),
    ("referring_physician_name_norm",),
)
catalog_studies = Table(
    "catalog_studies",
    metadata,
    _datastore_ref(),
    Column("study_uid", Text, nullable=False),
    *(Column(name, Text, nullable=True) for name in CATALOG_STUDY_TEXT),
    Column("series_count", Integer, nullable=False),
    Column("instance_count", Integer, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Column("attributes", Text, nullable=False),
    PrimaryKeyConstraint("datastore_id", "study_uid"),
    *(Index(None, "datastore_id", *columns) for columns in CATALOG_STUDY_INDEXES),
)
# PostgreSQL also has ``(datastore_id, column COLLATE "C")`` indexes on the study columns that take wildcards
# (migration 0005, created there only: alembic cannot compare collated expression indexes).

# -- IAM principals (openhi.iam.directory_model, migration 0006) --------------------------------------------------
# Users, roles and their rows, keyed by name; keys, policies and sessions go with their principal (CASCADE).
IAM_NAME_LENGTH = 64
IAM_POLICY_NAME_LENGTH = 128
IAM_KEY_ID_LENGTH = 128
IAM_POLICY_ARN_LENGTH = 2048

iam_users = Table(
    "iam_users",
    metadata,
    Column("name", String(IAM_NAME_LENGTH), primary_key=True, nullable=False),
    Column("arn", Text, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
)


def _iam_owner(column: str, table: str, *, index: bool = False) -> Column[str]:
    """The user or role a row belongs to; rows go with it (ON DELETE CASCADE). ``index`` when no key leads with it."""
    return Column(
        column, String(IAM_NAME_LENGTH), ForeignKey(f"{table}.name", ondelete="CASCADE"), nullable=False, index=index
    )


iam_access_keys = Table(
    "iam_access_keys",
    metadata,
    Column("access_key_id", String(IAM_KEY_ID_LENGTH), primary_key=True, nullable=False),
    Column("secret_access_key", Text, nullable=False),
    _iam_owner("user_name", "iam_users", index=True),
    Column("status", String(16), nullable=False),  # Active | Inactive
    Column("created_at", UtcDateTime, nullable=False),
)

iam_roles = Table(
    "iam_roles",
    metadata,
    Column("name", String(IAM_NAME_LENGTH), primary_key=True, nullable=False),
    Column("arn", Text, nullable=False),
    Column("trust_policy", Text, nullable=False),
    Column("max_session_seconds", Integer, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
)

iam_user_policies = Table(
    "iam_user_policies",
    metadata,
    _iam_owner("user_name", "iam_users"),
    Column("policy_name", String(IAM_POLICY_NAME_LENGTH), nullable=False),
    Column("document", Text, nullable=False),
    PrimaryKeyConstraint("user_name", "policy_name"),
)

iam_role_policies = Table(
    "iam_role_policies",
    metadata,
    _iam_owner("role_name", "iam_roles"),
    Column("policy_name", String(IAM_POLICY_NAME_LENGTH), nullable=False),
    Column("document", Text, nullable=False),
    PrimaryKeyConstraint("role_name", "policy_name"),
)

iam_user_attached_policies = Table(
    "iam_user_attached_policies",
    metadata,
    _iam_owner("user_name", "iam_users"),
    Column("policy_arn", String(IAM_POLICY_ARN_LENGTH), nullable=False),
    PrimaryKeyConstraint("user_name", "policy_arn"),
)

iam_role_attached_policies = Table(
    "iam_role_attached_policies",
    metadata,
    _iam_owner("role_name", "iam_roles"),
    Column("policy_arn", String(IAM_POLICY_ARN_LENGTH), nullable=False),
    PrimaryKeyConstraint("role_name", "policy_arn"),
)

# Temporary credentials of assumed-role sessions (STS AssumeRole); expired ones are purged periodically. No foreign
# key on role_name: a session may be of a role of the IAM file, which is not in this table.
iam_sessions = Table(
    "iam_sessions",
    metadata,
    Column("access_key_id", String(IAM_KEY_ID_LENGTH), primary_key=True, nullable=False),
    Column("secret_access_key", Text, nullable=False),
    Column("session_token", Text, nullable=False),
    Column("role_name", String(IAM_NAME_LENGTH), nullable=False, index=True),
    Column("session_name", String(IAM_NAME_LENGTH), nullable=False),
    Column("source_arn", Text, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime, nullable=False, index=True),
)

# -- counters of the resource metrics (openhi.metrics.usage, sql/counters.py, migration 0008) ---------------------
# A counter's value is the sum of its slots: a change adds to the slot of the image set it is about, so concurrent
# commits in one data store rarely update the same row (no serialization failure on one hot row).
COUNTER_NAME_LENGTH = 64
index_counters = Table(
    "index_counters",
    metadata,
    _datastore_ref(),
    Column("name", String(COUNTER_NAME_LENGTH), nullable=False),
    Column("slot", Integer, nullable=False),
    Column("value", BigInteger, nullable=False),
    PrimaryKeyConstraint("datastore_id", "name", "slot"),
)

# What each image set's bytes count as: the size of the frames it references and the storage tier they count in.
image_set_usage = Table(
    "image_set_usage",
    metadata,
    _datastore_ref(),
    _id("image_set_id"),
    Column("size", BigInteger, nullable=False),
    Column("tier", String(32), nullable=False),
    PrimaryKeyConstraint("datastore_id", "image_set_id"),
)

# The event outbox (openhi.events, migration 0007). ``id`` is the append order (an identity: gaps are fine);
# ``sequence`` is the published order, given by one publisher at a time from the ``event_sequence`` counter to
# committed rows only, so it has no gap and never goes back. No foreign key: an event outlives its resource.
EVENT_ID_LENGTH = 36  # a version-4 UUID in its text form
EVENT_SINK_LENGTH = 200
events = Table(
    "events",
    metadata,
    Column("id", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True),
    Column("sequence", BigInteger, nullable=True, unique=True),
    Column("event_id", String(EVENT_ID_LENGTH), nullable=False, unique=True),
    Column("detail_type", String(64), nullable=False),
    Column("occurred_at", UtcDateTime, nullable=False),
    Column("datastore_id", String(ID_LENGTH), nullable=False),
    Column("image_set_id", String(ID_LENGTH), nullable=True),
    Column("source_image_set_id", String(ID_LENGTH), nullable=True),
    Column("detail", Text, nullable=False),  # JSON object, the detail fields after imagingVersion
    Index(
        "ix_events_unpublished", "id", postgresql_where=text("sequence IS NULL"), sqlite_where=text("sequence IS NULL")
    ),
)

event_sequence = Table(
    "event_sequence",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),  # the one row, id 1
    Column("last", BigInteger, nullable=False),
)

event_cursors = Table(
    "event_cursors",
    metadata,
    Column("sink", String(EVENT_SINK_LENGTH), primary_key=True, nullable=False),
    Column("delivered", BigInteger, nullable=False),
    Column("lease_owner", String(64), nullable=True),
    Column("lease_until", UtcDateTime, nullable=True),
)

# Wrapped data store keys of encryption at rest (migration 0009, ``openhi.crypto``): one row per version of a data
# store's key; ``wrapped`` is the key encrypted by the master key (MASTER) or by the customer key (CUSTOMER, its
# ARN in ``wrapping_key_id``). Destroyed (the rows deleted) when the data store is deleted.
datastore_keys = Table(
    "datastore_keys",
    metadata,
    _datastore_ref(),
    Column("version", Integer, nullable=False),
    Column("wrapped", LargeBinary, nullable=False),
    Column("wrapping_kind", String(16), nullable=False),
    Column("wrapping_key_id", Text, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("legacy_plaintext", Boolean, nullable=False),
    PrimaryKeyConstraint("datastore_id", "version"),
)
