"""The SQL index against real databases: migrations, concurrent starts, serializable quotas, failures."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import cast

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.exc import OperationalError
from tests.support.backends import free_port
from tests.support.index_rows import insert_image_set

from openhi.datastores.model import QUOTA_STATUSES, Datastore, DatastoreStatus, LosslessStorageFormat
from openhi.errors import UnavailableError
from openhi.ids import new_id
from openhi.imports.model import ImportJob, JobStatus
from openhi.index.port import UnitOfWork
from openhi.index.sql import adapter
from openhi.index.sql.adapter import SqlIndex, normalize_url
from openhi.index.sql.repositories import SqlUnitOfWork
from openhi.index.sql.schema import metadata

NOW = datetime(2024, 5, 1, 12, 0, 0, 1, tzinfo=UTC)


def datastore(token: str | None = None) -> Datastore:
    return Datastore(
        datastore_id=new_id(),
        name="store",
        status=DatastoreStatus.ACTIVE,
        lossless_storage_format=LosslessStorageFormat.HTJ2K,
        created_at=NOW,
        updated_at=NOW,
        client_token=token or new_id(),
    )


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'index.db'}"
    return cast(str, request.getfixturevalue("postgres_url"))


@pytest.fixture
def opened(url: str) -> Iterator[SqlIndex]:
    index = SqlIndex.open(url)
    yield index
    index.close()


def in_threads(count: int, target: Callable[[int], None]) -> list[BaseException]:
    """Run ``target(i)`` in ``count`` threads; return what they raised."""
    errors: list[BaseException] = []

    def runner(i: int) -> None:
        try:
            target(i)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=runner, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads)
    return errors


# -- migrations ---------------------------------------------------------------------------------------


def test_migrating_twice_is_a_no_op(opened: SqlIndex) -> None:
    kept = datastore()
    opened.run(lambda uow: uow.datastores.add(kept))

    opened.migrate()
    opened.migrate()

    def versions(uow: UnitOfWork) -> list[str]:
        conn = cast(SqlUnitOfWork, uow).datastores.conn
        return [str(v) for v in conn.execute(text("SELECT version_num FROM alembic_version")).scalars()]

    assert opened.run(versions) == ["0010"]
    assert opened.run(lambda uow: uow.datastores.get(kept.datastore_id)) == kept


def _collated_prefix_index(diff: object) -> bool:
    """Migration 0005's PostgreSQL-only ``COLLATE "C"`` expression indexes, which the schema module leaves out."""
    return (
        isinstance(diff, tuple)
        and diff[0] == "remove_index"
        and str(getattr(diff[1], "name", "")).startswith("ix_catalog_studies_")
        and str(getattr(diff[1], "name", "")).endswith("_c")
    )


def test_migrated_schema_matches_schema_module(opened: SqlIndex) -> None:
    def differences(uow: UnitOfWork) -> list[object]:
        conn = cast(SqlUnitOfWork, uow).datastores.conn
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        return [diff for diff in compare_metadata(context, metadata) if not _collated_prefix_index(diff)]

    assert opened.run(differences) == []

    def tables(uow: UnitOfWork) -> set[str]:
        return set(inspect(cast(SqlUnitOfWork, uow).datastores.conn).get_table_names())

    assert opened.run(tables) >= {
        "datastores",
        "image_sets",
        "tags",
        "image_set_versions",
        "image_set_frames",
        "import_jobs",
        "import_files",
        "import_commits",
        "alembic_version",
    }


def test_downgrade_to_0001_and_upgrade_again_keep_the_rows(url: str) -> None:
    index = SqlIndex.open(url)
    kept = datastore()
    try:
        index.run(lambda uow: uow.datastores.add(kept))
        insert_image_set(index, kept.datastore_id, new_id())
        migrate_to(url, "0001")

        engine = create_engine(normalize_url(url))
        try:
            with engine.connect() as conn:
                found = inspect(conn)
                assert "import_jobs" not in found.get_table_names()
                assert "image_set_versions" not in found.get_table_names()
                assert [c["name"] for c in found.get_columns("image_sets")] == [
                    "datastore_id",
                    "image_set_id",
                    "version_id",
                    "state",
                    "workflow_status",
                    "is_primary",
                    "created_at",
                    "updated_at",
                ]
                assert conn.execute(text("SELECT count(*) FROM image_sets")).scalar_one() == 1
        finally:
            engine.dispose()

        index.migrate()
        assert index.run(lambda uow: uow.image_sets.count_in_datastore(kept.datastore_id)) == 1
        assert index.run(lambda uow: uow.datastores.get(kept.datastore_id)) == kept
    finally:
        index.close()


def migrate_to(url: str, revision: str) -> None:
    """Downgrade the schema to ``revision`` (foreign keys off on SQLite, as ``SqlIndex.migrate`` does)."""
    engine = create_engine(normalize_url(url))
    try:
        with engine.connect() as conn:
            if conn.dialect.name == "sqlite":
                conn.exec_driver_sql("PRAGMA foreign_keys=OFF")
                conn.commit()
            with conn.begin():
                config = Config()
                config.set_main_option("script_location", str(adapter.MIGRATIONS_DIR))
                config.attributes["connection"] = conn
                command.downgrade(config, revision)
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_processes_starting_at_once_both_migrate(postgres_url: str) -> None:
    barrier = threading.Barrier(3)
    indexes: list[SqlIndex] = []

    def start(_: int) -> None:
        barrier.wait(timeout=30)
        indexes.append(SqlIndex.open(postgres_url))

    assert in_threads(3, start) == []
    try:
        for index in indexes:
            index.run(lambda uow: uow.datastores.count_in(QUOTA_STATUSES))
    finally:
        for index in indexes:
            index.close()


def test_sqlite_file_is_created_under_missing_directories(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "c" / "index.db"
    index = SqlIndex.open(f"sqlite:///{path}")
    try:
        index.check()
        assert path.is_file()

        def journal_mode(uow: UnitOfWork) -> str:
            conn = cast(SqlUnitOfWork, uow).datastores.conn
            return str(conn.exec_driver_sql("PRAGMA journal_mode").scalar_one())

        assert index.run(journal_mode, readonly=True) == "wal"
    finally:
        index.close()


# -- concurrency ----------------------------------------------------------------------------------------


@pytest.mark.postgres
def test_serializable_quota_check_admits_exactly_one(postgres_url: str) -> None:
    index = SqlIndex.open(postgres_url)
    barrier = threading.Barrier(2)
    attempts = [0, 0]
    inserted = [0, 0]

    def create_if_room(i: int) -> None:
        def work(uow: UnitOfWork) -> None:
            attempts[i] += 1
            room = uow.datastores.count_in(QUOTA_STATUSES) < 1
            if attempts[i] == 1:
                barrier.wait(timeout=30)  # both have read the count before either writes
            if room:
                uow.datastores.add(datastore())
                inserted[i] += 1

        index.run(work)

    try:
        assert in_threads(2, create_if_room) == []
        assert index.run(lambda uow: uow.datastores.count_in(QUOTA_STATUSES)) == 1
        assert max(attempts) >= 2  # the loser was retried and then saw the winner's row
    finally:
        index.close()


@pytest.mark.postgres
def test_two_workers_claiming_one_job_exactly_one_wins(postgres_url: str) -> None:
    index = SqlIndex.open(postgres_url)
    store = datastore()
    job = ImportJob(
        job_id=new_id(),
        datastore_id=store.datastore_id,
        job_name="race",
        status=JobStatus.SUBMITTED,
        data_access_role_arn="arn:aws:iam::123456789012:role/r",
        input_s3_uri="s3://in/",
        output_s3_uri="s3://out/",
        client_token=new_id(),
        submitted_at=NOW,
        updated_at=NOW,
    )
    index.run(lambda uow: uow.datastores.add(store))
    index.run(lambda uow: uow.import_jobs.add(job))
    barrier = threading.Barrier(2)
    attempts = [0, 0]
    won = [False, False]

    def claim(i: int) -> None:
        def work(uow: UnitOfWork) -> bool:
            attempts[i] += 1
            if attempts[i] == 1:
                uow.import_jobs.get(job.datastore_id, job.job_id)  # both transactions have a snapshot
                barrier.wait(timeout=30)
            return uow.import_jobs.claim(job.job_id, f"worker-{i}", NOW + timedelta(minutes=5), NOW)

        won[i] = index.run(work)

    try:
        assert in_threads(2, claim) == []
        assert sorted(won) == [False, True]
        claimed = index.run(lambda uow: uow.import_jobs.get(job.datastore_id, job.job_id))
        assert claimed is not None
        assert claimed.lease_owner == f"worker-{won.index(True)}"
        assert claimed.lease_until == NOW + timedelta(minutes=5)
    finally:
        index.close()


def test_writers_are_serialized(url: str) -> None:
    index = SqlIndex.open(url)

    def create_if_room(_: int) -> None:
        def work(uow: UnitOfWork) -> None:
            if uow.datastores.count_in(QUOTA_STATUSES) < 3:
                uow.datastores.add(datastore())

        index.run(work)

    try:
        assert in_threads(8, create_if_room) == []
        assert index.run(lambda uow: uow.datastores.count_in(QUOTA_STATUSES)) == 3
    finally:
        index.close()


def test_lost_races_are_retried_a_bounded_number_of_times(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(adapter, "BACKOFF_BASE_SECONDS", 0.0)
    index = SqlIndex.open(f"sqlite:///{tmp_path / 'index.db'}")
    calls = 0

    class FakeSerializationError(Exception):
        sqlstate = "40001"

    def always_loses(uow: UnitOfWork) -> None:
        nonlocal calls
        calls += 1
        uow.datastores.add(datastore())
        raise OperationalError("COMMIT", {}, FakeSerializationError("could not serialize access"))

    try:
        with pytest.raises(UnavailableError, match="retry"):
            index.run(always_loses)
        assert calls == adapter.MAX_RETRIES + 1
        assert index.run(lambda uow: uow.datastores.count_in(list(DatastoreStatus))) == 0

        outcomes = iter([True, False])

        def loses_once(uow: UnitOfWork) -> str:
            if next(outcomes):
                raise OperationalError("COMMIT", {}, FakeSerializationError("could not serialize access"))
            return "done"

        assert index.run(loses_once) == "done"
    finally:
        index.close()


# -- failures -------------------------------------------------------------------------------------------


def test_unreachable_postgres_is_unavailable_not_a_driver_error() -> None:
    url = f"postgresql://postgres:secret@127.0.0.1:{free_port()}/openhi"
    index = SqlIndex(url)
    try:
        with pytest.raises(UnavailableError, match="unreachable") as info:
            index.check()
        assert "secret" not in info.value.message
        with pytest.raises(UnavailableError):
            index.run(lambda uow: uow.datastores.count_in(QUOTA_STATUSES))
    finally:
        index.close()
    with pytest.raises(UnavailableError):
        SqlIndex.open(url)


def test_url_normalization() -> None:
    assert normalize_url("postgres://u@h:5432/db").drivername == "postgresql+psycopg"
    assert normalize_url("postgresql://u@h/db").drivername == "postgresql+psycopg"
    assert normalize_url("postgresql+psycopg://u@h/db").drivername == "postgresql+psycopg"
    assert normalize_url("sqlite:////var/lib/openhi/index.db").database == "/var/lib/openhi/index.db"
    for bad in ("sqlite://", "sqlite:///:memory:", "mysql://u@h/db"):
        with pytest.raises(ValueError, match="index"):
            normalize_url(bad)
