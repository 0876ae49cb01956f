"""What only the local filesystem adapter has to get right: paths, temp files, modes, directories."""

from __future__ import annotations

import io
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from openhi.blobs.local import LocalBlobStore
from openhi.blobs.memory import COPY_CHUNK, RESERVED_SEGMENT_PREFIX
from openhi.errors import BlobNotFoundError, UnavailableError


@pytest.fixture
def root(tmp_path: Path) -> Path:
    path = tmp_path / "root"
    path.mkdir()
    return path


@pytest.fixture
def store(root: Path) -> LocalBlobStore:
    return LocalBlobStore(root)


@pytest.fixture
def umask() -> Iterator[None]:
    """Restore the process umask after a test changes it."""
    previous = os.umask(0o022)
    os.umask(previous)
    yield
    os.umask(previous)


def everything_under(path: Path) -> list[str]:
    return sorted(str(p.relative_to(path)) for p in path.rglob("*"))


def temp_files_under(path: Path) -> list[Path]:
    return [p for p in path.rglob("*") if p.name.startswith(RESERVED_SEGMENT_PREFIX)]


# -- keys map to files under the root ----------------------------------------------------------------------


def test_key_is_a_file_under_the_root(store: LocalBlobStore, root: Path) -> None:
    store.put("datastores/abc/datastore.json", b"{}")
    assert (root / "datastores" / "abc" / "datastore.json").read_bytes() == b"{}"


@pytest.mark.parametrize(
    "key",
    [
        "",
        "/etc/passwd",
        "../outside",
        "a/../../outside",
        "..",
        "a/..",
        "a\\..\\..\\outside",
        "nul\x00byte",
        "a//b",
        "trailing/",
        "./a",
        f"a/{RESERVED_SEGMENT_PREFIX}x",
    ],
)
def test_unsafe_keys_are_rejected_and_touch_nothing(
    store: LocalBlobStore, root: Path, tmp_path: Path, key: str
) -> None:
    before = everything_under(tmp_path)
    with pytest.raises(ValueError, match="blob key"):
        store.put(key, b"x")
    with pytest.raises(ValueError, match="blob key"):
        store.put(key, io.BytesIO(b"x"))
    assert everything_under(tmp_path) == before


def test_relative_root_is_made_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "rel").mkdir()
    monkeypatch.chdir(tmp_path)
    store = LocalBlobStore(Path("rel"))
    assert store.root == tmp_path / "rel"
    store.put("k", b"v")
    monkeypatch.chdir("/")
    assert store.get("k") == b"v"


# -- temp files and atomic writes --------------------------------------------------------------------------


def test_no_temp_files_left_behind(store: LocalBlobStore, root: Path) -> None:
    store.put("a/b", b"1")
    store.put("a/b", io.BytesIO(b"2" * (3 * COPY_CHUNK + 5)))
    store.put("a/c", b"")
    store.check()
    assert temp_files_under(root) == []
    assert everything_under(root) == ["a", "a/b", "a/c"]


class FailingStream:
    """Hands out some bytes, then fails like a dropped upload."""

    def __init__(self) -> None:
        self.calls = 0

    def read(self, size: int = -1) -> bytes:
        self.calls += 1
        if self.calls > 2:
            raise ConnectionResetError("client went away")
        return b"partial" * 1000


def test_failed_write_keeps_the_old_object_and_leaves_no_temp_file(store: LocalBlobStore, root: Path) -> None:
    store.put("doc", b"old version")
    with pytest.raises(ConnectionResetError, match="client went away"):  # the caller's error, untranslated
        store.put("doc", FailingStream())  # type: ignore[arg-type]
    assert store.get("doc") == b"old version"
    assert temp_files_under(root) == []


def test_failed_first_write_leaves_nothing(store: LocalBlobStore, root: Path) -> None:
    with pytest.raises(ConnectionResetError):
        store.put("new/doc", FailingStream())  # type: ignore[arg-type]
    assert store.head("new/doc") is None
    assert temp_files_under(root) == []


def test_leftover_temp_files_are_not_listed(store: LocalBlobStore, root: Path) -> None:
    store.put("x/real", b"1")
    (root / "x" / f"{RESERVED_SEGMENT_PREFIX}crashed").write_bytes(b"half")  # a crash mid-write
    (root / f"{RESERVED_SEGMENT_PREFIX}check-crashed").write_bytes(b"")
    assert list(store.iter_prefix("")) == ["x/real"]
    assert list(store.iter_prefix("x/")) == ["x/real"]


class RecordingStream:
    """A file object that records every read size it is asked for."""

    def __init__(self, content: bytes) -> None:
        self._source = io.BytesIO(content)
        self.sizes: list[int] = []

    def read(self, size: int = -1) -> bytes:
        self.sizes.append(size)
        return self._source.read(size)


def test_file_objects_are_copied_in_chunks(store: LocalBlobStore) -> None:
    content = os.urandom(5 * COPY_CHUNK + 123)
    stream = RecordingStream(content)
    assert store.put("chunked", stream).size == len(content)  # type: ignore[arg-type]
    assert store.get("chunked") == content
    assert stream.sizes  # never one unbounded read(-1) of the whole stream
    assert all(0 < size <= COPY_CHUNK for size in stream.sizes)


# -- file mode ---------------------------------------------------------------------------------------------


@pytest.mark.usefixtures("umask")
@pytest.mark.parametrize(("mask", "mode"), [(0o022, 0o644), (0o077, 0o600), (0o027, 0o640)])
def test_files_get_the_mode_the_umask_allows(store: LocalBlobStore, root: Path, mask: int, mode: int) -> None:
    os.umask(mask)
    store.put("m/bytes", b"x")
    store.put("m/stream", io.BytesIO(b"x"))
    for name in ("bytes", "stream"):
        assert stat.S_IMODE((root / "m" / name).stat().st_mode) == mode
    assert stat.S_IMODE((root / "m").stat().st_mode) == 0o777 & ~mask


# -- directories -------------------------------------------------------------------------------------------


def test_delete_prunes_empty_parents_but_never_the_root(store: LocalBlobStore, root: Path) -> None:
    store.put("a/b/c/d", b"1")
    store.put("a/keep", b"2")
    store.delete("a/b/c/d")
    assert everything_under(root) == ["a", "a/keep"]
    store.delete("a/keep")
    assert everything_under(root) == []
    assert root.is_dir()


def test_put_recreates_directories_removed_by_delete(store: LocalBlobStore) -> None:
    for _ in range(3):
        store.put("deep/er/key", b"v")
        store.delete("deep/er/key")
    store.put("deep/er/key", b"v")
    assert store.get("deep/er/key") == b"v"


def test_key_cannot_also_be_a_parent_of_keys(store: LocalBlobStore, root: Path) -> None:
    store.put("obj", b"file")
    with pytest.raises(ValueError, match="a parent of it is already stored"):
        store.put("obj/child", b"x")
    store.put("dir/child", b"x")
    with pytest.raises(ValueError, match="other keys are stored under"):
        store.put("dir", b"x")
    assert temp_files_under(root) == []
    # reads treat the impossible combination as absent
    with pytest.raises(BlobNotFoundError):
        store.get("obj/child")
    with pytest.raises(BlobNotFoundError):
        store.get("dir")
    with pytest.raises(BlobNotFoundError):
        store.get_range("dir", 0, 1)
    assert store.head("obj/child") is None
    assert store.head("dir") is None
    store.delete("dir")
    store.delete("obj/child")
    assert store.get("dir/child") == b"x"
    assert store.get("obj") == b"file"


# -- an unusable root --------------------------------------------------------------------------------------


def test_missing_root_is_unavailable_and_not_created(tmp_path: Path) -> None:
    missing = tmp_path / "not-mounted"
    store = LocalBlobStore(missing)
    with pytest.raises(UnavailableError, match="does not exist"):
        store.check()
    with pytest.raises(UnavailableError, match="does not exist"):
        store.put("a/b", b"x")
    with pytest.raises(UnavailableError, match="does not exist"):
        store.iter_prefix("")
    assert not missing.exists()
    with pytest.raises(BlobNotFoundError):
        store.get("a/b")
    assert store.head("a/b") is None


def test_root_that_is_a_file_is_unavailable(tmp_path: Path) -> None:
    file_root = tmp_path / "file"
    file_root.write_bytes(b"")
    with pytest.raises(UnavailableError, match="not a directory"):
        LocalBlobStore(file_root).check()


def test_unwritable_root_fails_check(store: LocalBlobStore, root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # chmod cannot make a directory unwritable for root (tests may run as root), so fail the probe write.
    real_open = os.open

    def refusing_open(path: str, flags: int, mode: int = 0o777, **kwargs: object) -> int:
        if str(path).startswith(str(root)) and flags & os.O_CREAT:
            raise PermissionError(13, "Permission denied")
        return real_open(path, flags, mode)

    monkeypatch.setattr(os, "open", refusing_open)
    with pytest.raises(UnavailableError, match="not writable: Permission denied"):
        store.check()
    with pytest.raises(UnavailableError, match="cannot write 'k': Permission denied"):
        store.put("k", b"x")
    monkeypatch.undo()
    assert temp_files_under(root) == []
    store.check()
