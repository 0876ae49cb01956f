"""Rotating NDJSON audit files (openhi.audit.files): size and daily rotation, retention, locks, fsync policy."""

from __future__ import annotations

import fcntl
import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from openhi.audit.files import RotatingNdjson, audit_files, prune


class FakeClock:
    def __init__(self) -> None:
        self.now = datetime(2024, 5, 1, 23, 59, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def line(n: int, size: int = 100) -> bytes:
    body = json.dumps({"n": n, "pad": "x" * size}).encode()
    return body + b"\n"


def read_all(folder: Path) -> list[int]:
    return [json.loads(raw)["n"] for path in audit_files(folder) for raw in path.read_bytes().splitlines()]


def test_rotates_before_a_file_would_exceed_max_bytes(tmp_path: Path) -> None:
    limit = 3 * len(line(0)) + 5
    files = RotatingNdjson(tmp_path, FakeClock(), max_bytes=limit)
    for n in range(10):
        files.write([line(n)])
    files.close()
    paths = audit_files(tmp_path)
    assert len(paths) == 4  # 3 lines per file
    assert all(p.stat().st_size <= limit for p in paths)
    assert read_all(tmp_path) == list(range(10))  # names sort in writing order


def test_a_line_longer_than_the_limit_gets_a_file_of_its_own(tmp_path: Path) -> None:
    files = RotatingNdjson(tmp_path, FakeClock(), max_bytes=50)
    files.write([line(1), line(2)])
    files.close()
    assert [len(p.read_bytes().splitlines()) for p in audit_files(tmp_path)] == [1, 1]


def test_no_size_limit(tmp_path: Path) -> None:
    files = RotatingNdjson(tmp_path, FakeClock(), max_bytes=0)
    files.write([line(n) for n in range(100)])
    files.close()
    assert len(audit_files(tmp_path)) == 1


def test_daily_rotation_at_the_first_write_of_a_new_utc_day(tmp_path: Path) -> None:
    clock = FakeClock()
    files = RotatingNdjson(tmp_path, clock, daily=True)
    files.write([line(1)])
    clock.now += timedelta(seconds=30)
    files.write([line(2)])
    clock.now += timedelta(minutes=1)  # 2024-05-02
    files.write([line(3)])
    files.close()
    paths = audit_files(tmp_path)
    assert [p.name[6:14] for p in paths] == ["20240501", "20240502"]
    assert read_all(tmp_path) == [1, 2, 3]


def test_without_daily_rotation_a_day_change_keeps_the_file(tmp_path: Path) -> None:
    clock = FakeClock()
    files = RotatingNdjson(tmp_path, clock, daily=False)
    files.write([line(1)])
    clock.now += timedelta(days=2)
    files.write([line(2)])
    files.close()
    assert len(audit_files(tmp_path)) == 1


def test_file_name_holds_time_and_pid(tmp_path: Path) -> None:
    files = RotatingNdjson(tmp_path, FakeClock())
    files.write([line(1)])
    assert files.path is not None
    assert files.path.name == f"audit-20240501T235900000000Z-{os.getpid()}-000001.ndjson"
    files.close()
    assert files.path is None


def test_keeps_the_newest_files(tmp_path: Path) -> None:
    files = RotatingNdjson(tmp_path, FakeClock(), max_bytes=len(line(0)), keep=3)
    for n in range(8):
        files.write([line(n)])
    files.close()
    assert read_all(tmp_path) == [5, 6, 7]


def test_a_file_being_written_is_never_pruned(tmp_path: Path) -> None:
    other = tmp_path / "audit-20000101T000000000000Z-1-000001.ndjson"  # oldest name: first to go
    other.write_bytes(line(-1))
    with other.open("rb") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)  # as another process's writer holds it
        assert prune(tmp_path, keep=0) == []  # keep 0: prune nothing
        files = RotatingNdjson(tmp_path, FakeClock(), max_bytes=len(line(0)), keep=1)
        for n in range(3):
            files.write([line(n)])
        assert other.exists()
        assert len(audit_files(tmp_path)) == 2  # the locked file + the current one
    files.write([line(3)])  # the lock is gone: the next rotation prunes it
    assert not other.exists()
    files.close()


def test_own_open_file_is_locked(tmp_path: Path) -> None:
    files = RotatingNdjson(tmp_path, FakeClock())
    files.write([line(1)])
    assert files.path is not None
    with files.path.open("rb") as handle, pytest.raises(BlockingIOError):
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    files.close()


def test_fsync_policy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    monkeypatch.setattr("openhi.audit.files.os.fsync", lambda fd: calls.append(fd))
    lazy = RotatingNdjson(tmp_path / "lazy", FakeClock(), fsync=False)
    lazy.write([line(1)])
    lazy.write([line(2)])
    assert calls == []  # flushed, not forced
    lazy.close()
    assert len(calls) == 1  # forced at close
    calls.clear()
    eager = RotatingNdjson(tmp_path / "eager", FakeClock(), fsync=True)
    eager.write([line(1)])
    eager.write([line(2)])
    assert len(calls) == 2
    eager.close()


def test_written_lines_are_visible_before_close(tmp_path: Path) -> None:
    files = RotatingNdjson(tmp_path, FakeClock())
    files.write([line(1)])
    assert read_all(tmp_path) == [1]
    files.close()


def test_prepare_refuses_a_directory_that_cannot_be_made(tmp_path: Path) -> None:
    occupied = tmp_path / "file"
    occupied.write_text("not a directory")
    with pytest.raises(NotADirectoryError):
        RotatingNdjson(occupied / "audit", FakeClock()).prepare()
