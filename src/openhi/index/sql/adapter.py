"""``SqlIndex``: the index port on SQLite or PostgreSQL, chosen by URL.

A unit of work is one connection and one transaction: ``run`` opens them, binds the repositories to the
connection, calls the work, commits, and when the database says the transaction lost a race (PostgreSQL
serialization failure or deadlock, SQLite "database is locked") runs the whole work again, a bounded number
of times with jittered backoff (Orthanc ``StatelessDatabaseOperations``; cosmicpython ``unit_of_work.py``).
Writes are serializable on both databases: PostgreSQL runs them at ``SERIALIZABLE``, SQLite takes the
write lock up front with ``BEGIN IMMEDIATE``; so read-then-write rules such as quotas hold across processes.
Driver errors never leave this module: constraint violations become ``ConflictError``, lost connections and
exhausted retries ``UnavailableError`` (httpx ``map_httpcore_exceptions``).
"""

from __future__ import annotations

import logging
import random
import time
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, create_engine, event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError, IntegrityError, SQLAlchemyError
from sqlalchemy.pool import ConnectionPoolEntry

from openhi.errors import ConflictError, OpenHIError, UnavailableError
from openhi.index.port import Index, UnitOfWork
from openhi.index.sql.repositories import SqlUnitOfWork

T = TypeVar("T")

log = logging.getLogger(__name__)

MAX_RETRIES = 5  # re-runs of a unit of work after a lost race (so at most 6 attempts)
BACKOFF_BASE_SECONDS = 0.02
SQLITE_BUSY_TIMEOUT_MS = 30_000
POSTGRES_CONNECT_TIMEOUT_SECONDS = 10
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
# Key of the PostgreSQL advisory lock that serializes migrations of concurrently starting processes.
MIGRATION_LOCK_KEY = zlib.crc32(b"openhi.index.migrate")
_READONLY = "openhi_readonly"  # execution option read by the SQLite "begin" hook
_RETRYABLE_SQLSTATES = frozenset({"40001", "40P01"})  # serialization_failure, deadlock_detected
_SQLITE_BUSY, _SQLITE_LOCKED = 5, 6


def normalize_url(url: str) -> URL:
    """The SQLAlchemy URL for an ``index_url``: PostgreSQL through psycopg 3, SQLite through a file."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            url = "postgresql+psycopg://" + url[len(prefix) :]
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database in (None, "", ":memory:") or (parsed.database or "").startswith("file:"):
            raise ValueError("a SQLite index needs a file path: sqlite:///relative/path or sqlite:////abs/path")
    elif parsed.get_backend_name() != "postgresql":
        raise ValueError(f"unsupported index URL scheme {parsed.drivername!r}: use sqlite:/// or postgresql://")
    return parsed


class SqlIndex:
    """The index on a SQL database; one instance per process, safe to share between threads."""

    def __init__(self, url: str) -> None:
        self._url = normalize_url(url)
        self._safe_url = self._url.render_as_string(hide_password=True)
        self._sqlite = self._url.get_backend_name() == "sqlite"
        if self._sqlite:
            try:
                Path(self._url.database or "").parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise UnavailableError(f"Cannot create the directory of the SQLite index: {exc}") from exc
            self._engine = create_engine(self._url, pool_pre_ping=True)
            event.listen(self._engine, "connect", _configure_sqlite_connection)
            event.listen(self._engine, "begin", _begin_sqlite_transaction)
        else:
            self._engine = create_engine(
                self._url,
                pool_pre_ping=True,
                connect_args={"connect_timeout": POSTGRES_CONNECT_TIMEOUT_SECONDS},
            )

    @classmethod
    def open(cls, url: str) -> SqlIndex:
        """Construct and migrate the schema to the latest revision."""
        index = cls(url)
        try:
            index.migrate()
        except BaseException:
            index.close()
            raise
        return index

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self._engine.dialect.name

    # -- the port -------------------------------------------------------------------------------------

    def run(self, work: Callable[[UnitOfWork], T], *, readonly: bool = False) -> T:
        """Run ``work`` in one transaction and commit; re-run it when it lost a race (bounded)."""
        retries = 0
        while True:
            try:
                return self._run_once(work, readonly)
            except DBAPIError as exc:
                if _is_lost_race(exc) and retries < MAX_RETRIES:
                    retries += 1
                    log.debug("index unit of work lost a race (%s); retry %d", _reason(exc), retries)
                    _backoff(retries)
                    continue
                raise self._translate(exc, retries) from exc
            except SQLAlchemyError as exc:  # pool timeout, invalid state ...: not the caller's fault
                raise UnavailableError(f"The index database ({self._safe_url}) is unavailable") from exc

    def check(self) -> None:
        """Raise ``UnavailableError`` unless ``SELECT 1`` succeeds."""
        try:
            with self._engine.connect() as conn:
                conn.execution_options(**self._options(readonly=True))
                conn.execute(text("SELECT 1")).scalar_one()
        except SQLAlchemyError as exc:
            raise UnavailableError(f"The index database ({self._safe_url}) is unreachable") from exc

    def close(self) -> None:
        """Close every pooled connection."""
        self._engine.dispose()

    # -- schema ---------------------------------------------------------------------------------------

    def migrate(self) -> None:
        """Bring the schema to the latest Alembic revision (a no-op when it is already there)."""
        try:
            if self._sqlite:
                self._migrate_sqlite()
            else:
                self._migrate_postgres()
        except DBAPIError as exc:
            raise self._translate(exc, 0) from exc
        except SQLAlchemyError as exc:
            raise UnavailableError(f"The index database ({self._safe_url}) is unavailable") from exc

    def _migrate_postgres(self) -> None:
        # READ COMMITTED, so that a process that waited for the lock sees the schema its peer committed.
        with self._engine.connect() as conn:
            conn.execution_options(isolation_level="READ COMMITTED")
            with conn.begin():
                conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
                _upgrade(conn)

    def _migrate_sqlite(self) -> None:
        # Batch migrations copy tables, which must not cascade deletes: foreign keys are off meanwhile
        # (the pragma is ignored inside a transaction, so it is set on the raw connection first).
        with self._engine.connect() as conn:
            raw = conn.connection.dbapi_connection
            assert raw is not None  # noqa: S101 - a checked-out connection always has its DBAPI connection
            raw.cursor().execute("PRAGMA foreign_keys=OFF")
            try:
                with conn.begin():  # BEGIN IMMEDIATE: one migrator at a time
                    _upgrade(conn)
                    broken = conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                    if broken:
                        raise OpenHIError(f"index migration left broken foreign keys: {broken[:5]}")
            finally:
                raw.cursor().execute("PRAGMA foreign_keys=ON")

    # -- internals ------------------------------------------------------------------------------------

    def _run_once(self, work: Callable[[UnitOfWork], T], readonly: bool) -> T:
        with self._engine.connect() as conn:
            conn.execution_options(**self._options(readonly))
            with conn.begin():
                return work(SqlUnitOfWork.on(conn))

    def _options(self, readonly: bool) -> dict[str, Any]:
        if self._sqlite:
            return {_READONLY: readonly}
        return {"isolation_level": "REPEATABLE READ" if readonly else "SERIALIZABLE"}

    def _translate(self, exc: DBAPIError, retries: int) -> OpenHIError:
        if isinstance(exc, IntegrityError) or (_sqlstate(exc) or "").startswith("23"):
            return ConflictError("The request conflicts with the current state of the index")
        if _is_lost_race(exc):
            return UnavailableError(
                f"The index database is too busy: the transaction lost {retries + 1} races in a row; retry"
            )
        if _is_unavailable(exc):
            return UnavailableError(f"The index database ({self._safe_url}) is unreachable")
        log.error("index database error: %s", _reason(exc))
        return OpenHIError("The index database rejected the operation")


def _upgrade(conn: Connection) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    config.attributes["connection"] = conn
    command.upgrade(config, "head")


def _configure_sqlite_connection(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
    # Let SQLAlchemy's "begin" hook emit BEGIN (pysqlite would otherwise defer it and skip it for reads).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA foreign_keys = ON")
    finally:
        cursor.close()


def _begin_sqlite_transaction(conn: Connection) -> None:
    # Writers take the write lock at BEGIN, so a read-then-write unit of work can never be upgraded into a
    # deadlock; readers start a plain (deferred) transaction and see one snapshot (WAL).
    readonly = bool(conn.get_execution_options().get(_READONLY, False))
    conn.exec_driver_sql("BEGIN" if readonly else "BEGIN IMMEDIATE")


def _sqlstate(exc: DBAPIError) -> str | None:
    value = getattr(exc.orig, "sqlstate", None)
    return value if isinstance(value, str) else None


def _is_lost_race(exc: DBAPIError) -> bool:
    if _sqlstate(exc) in _RETRYABLE_SQLSTATES:
        return True
    code = getattr(exc.orig, "sqlite_errorcode", None)
    if isinstance(code, int) and code & 0xFF in (_SQLITE_BUSY, _SQLITE_LOCKED):
        return True
    return "database is locked" in str(exc.orig)


def _is_unavailable(exc: DBAPIError) -> bool:
    if exc.connection_invalidated:
        return True
    state = _sqlstate(exc)
    if state is None:  # connection refused, DNS, timeout: the driver has no SQLSTATE for these
        return exc.__class__.__name__ in ("OperationalError", "InterfaceError")
    # 08: connection exception, 53: insufficient resources, 57P: operator intervention (shutdown ...)
    return state.startswith(("08", "53", "57P"))


def _reason(exc: DBAPIError) -> str:
    return f"{type(exc.orig).__name__}: {str(exc.orig).strip().splitlines()[0] if str(exc.orig) else ''}"


def _backoff(retry: int) -> None:
    # Jitter spreads the retries of transactions that collided; not a security use of randomness.
    time.sleep(random.uniform(0, BACKOFF_BASE_SECONDS * 2**retry))  # noqa: S311


if TYPE_CHECKING:  # mypy proves the adapter satisfies the port
    _conforms: Index = SqlIndex("sqlite:///index.db")
