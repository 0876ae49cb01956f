"""What the in-process index latency benchmarks share (``search_latency.py``, ``qido_latency.py``).

Synthetic rows are bulk-inserted straight into one table of a migrated index (COPY then ANALYZE on PostgreSQL,
one executemany transaction on SQLite), growing one data store size by size; at each size the benchmark's
``measure`` times its calls (p50 / p95 after a warm-up) and a table line per figure is printed, with p95 as a
multiple of the first figure (the baseline).
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable, Collection, Iterable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Table
from tests.support.backends import fresh_postgres_database

from openhi.datastores.model import Datastore, DatastoreStatus, LosslessStorageFormat
from openhi.index.sql.adapter import SqlIndex
from openhi.index.sql.schema import format_sqlite_time

T0 = datetime(2024, 1, 1, tzinfo=UTC)

Figure = tuple[str, float, float]  # label, p50 ms, p95 ms


def timed(count: int, call: Callable[[], object], warmup: int = 20) -> tuple[float, float]:
    """(p50, p95) in milliseconds of ``count`` calls after a warm-up of ``warmup`` calls (at most ``count``)."""
    for _ in range(min(warmup, count)):
        call()
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        call()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples), statistics.quantiles(samples, n=20)[18]


def load_postgres(url: str, table: Table, rows: Iterable[dict[str, Any]]) -> None:
    """COPY ``rows`` into ``table``, then ANALYZE it (what autovacuum would do)."""
    import psycopg

    columns = [column.name for column in table.columns]
    with psycopg.connect(url) as conn, conn.cursor() as cursor:
        with cursor.copy(f"COPY {table.name} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row([row[name] for name in columns])
        cursor.execute(f"ANALYZE {table.name}")


def load_sqlite(path: Path, table: Table, rows: Iterable[dict[str, Any]], time_columns: Collection[str]) -> None:
    """Insert ``rows`` into ``table`` in one transaction (``time_columns`` in the index's SQLite time format)."""
    columns = [column.name for column in table.columns]
    conn = sqlite3.connect(path)
    try:
        conn.execute("PRAGMA synchronous = OFF")
        marks = ", ".join("?" for _ in columns)

        def values(row: dict[str, Any]) -> tuple[Any, ...]:
            return tuple(format_sqlite_time(row[c]) if c in time_columns else row[c] for c in columns)

        with conn:
            conn.executemany(
                f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({marks})",  # noqa: S608 - schema names
                (values(row) for row in rows),
            )
    finally:
        conn.close()


@dataclass(frozen=True)
class Benchmark:
    """One latency benchmark: the table it fills, its synthetic rows and its figures.

    ``rows(start, count, seed)`` yields rows ``start .. start + count``; ``measure(index, size, count)`` returns
    the figures at one size, the baseline first. ``unit`` names a row in the log, ``size_heading`` and
    ``label_heading`` head the table's size and label columns, ``width`` is the label column's width.
    ``main`` is the command line of a benchmark script.
    """

    datastore_id: str
    table: Table
    time_columns: frozenset[str]
    rows: Callable[[int, int, int], Iterator[dict[str, Any]]]
    measure: Callable[[SqlIndex, int, int], list[Figure]]
    unit: str
    size_heading: str
    label_heading: str
    width: int

    def header(self) -> str:
        """The table's heading line."""
        return (
            f"{'backend':<10}{self.size_heading:>10}  {self.label_heading:<{self.width}}"
            f"{'p50 ms':>9}{'p95 ms':>9}{'p95 x base':>12}"
        )

    def run(self, backend: str, sizes: list[int], count: int) -> None:
        """Grow a fresh index of ``backend`` (postgres or sqlite) through ``sizes``, printing the figures."""
        with ExitStack() as stack:
            if backend == "postgres":
                url = stack.enter_context(fresh_postgres_database())
            else:
                path = Path(stack.enter_context(tempfile.TemporaryDirectory())) / "index.db"
                url = f"sqlite:///{path}"
            index = SqlIndex.open(url)
            stack.callback(index.close)
            datastore = Datastore(
                self.datastore_id, "bench", DatastoreStatus.ACTIVE, LosslessStorageFormat.HTJ2K, T0, T0, "bench"
            )
            index.run(lambda uow: uow.datastores.add(datastore))
            loaded = 0
            for size in sizes:
                started = time.perf_counter()
                rows = self.rows(loaded, size - loaded, loaded)
                if backend == "postgres":
                    load_postgres(url, self.table, rows)
                else:
                    load_sqlite(path, self.table, rows, self.time_columns)
                elapsed = time.perf_counter() - started
                print(f"[{backend}] loaded {size - loaded} {self.unit} in {elapsed:.1f} s", flush=True)
                loaded = size
                results = self.measure(index, size, count)
                baseline = results[0][2]
                for label, p50, p95 in results:
                    line = f"{label:<{self.width}}{p50:>9.2f}{p95:>9.2f}{p95 / baseline:>12.1f}"
                    print(f"{backend:<10}{size:>10,}  {line}", flush=True)

    def main(self, description: str | None, *, sizes: str, requests: int, through: str) -> None:
        """Command line: ``--sizes`` (comma-separated row counts), ``--backends``, ``--requests`` per figure."""
        parser = argparse.ArgumentParser(description=description)
        parser.add_argument("--sizes", default=sizes)
        parser.add_argument("--backends", default="postgres,sqlite")
        parser.add_argument("--requests", type=int, default=requests)
        args = parser.parse_args()
        chosen = sorted(int(size) for size in args.sizes.split(","))
        print(f"{args.requests} calls per figure, in-process through {through} (no HTTP)")
        print(self.header())
        for backend in args.backends.split(","):
            self.run(backend, chosen, args.requests)
