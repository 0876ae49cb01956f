"""The local filesystem blob store: one file per key under a root directory.

This module owns ``LocalBlobStore``, the ``file:///...`` adapter of the blob port (ARCHITECTURE-GUIDE "Ports
and adapters"). A key ``a/b/c`` is the file ``root/a/b/c``; keys are checked by ``memory.check_key`` so none
can escape the root. Writes follow Orthanc's ``FilesystemStorage`` and litestar's ``stores/file.py``: the
bytes go to a temp file in the destination directory, are fsynced, and ``os.replace`` swaps the file in, so a
reader sees the whole old object or the whole new one and a crash leaves at worst a temp file (its name
starts with ``memory.RESERVED_SEGMENT_PREFIX``; listings skip it). File objects are copied in chunks, never
read whole. Files are created with mode ``0o666`` minus the process umask, like any other file the process
writes; set the umask (e.g. ``0o077``) to keep images private to the service account. ``OSError`` is
translated where it enters: a missing file is ``BlobNotFoundError``, anything else from the filesystem is
``UnavailableError``. One limit of the filesystem shows through: a key cannot also be a "directory" of other
keys (``a`` and ``a/b`` cannot both exist); the key layout in ``blobs/keys.py`` never asks for that, and such
a put raises ``ValueError``.
"""

from __future__ import annotations

import contextlib
import os
import stat
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from openhi.blobs.memory import COPY_CHUNK, RESERVED_SEGMENT_PREFIX, check_key, check_prefix
from openhi.blobs.port import BlobInfo
from openhi.errors import BlobNotFoundError, UnavailableError

_MISSING = (FileNotFoundError, NotADirectoryError, IsADirectoryError)
_OPEN_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
_FILE_MODE = 0o666  # minus the umask, as for any file the process creates


def _reason(exc: OSError) -> str:
    return exc.strerror or exc.__class__.__name__


def _parent_is_an_object(key: str) -> ValueError:
    return ValueError(f"blob key {key!r} cannot be stored: a parent of it is already stored as an object")


class LocalBlobStore:
    """Blobs as files under ``root`` (which must exist: a missing root is an unmounted volume, not a
    directory to create)."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(os.path.abspath(root))

    def __repr__(self) -> str:
        return f"LocalBlobStore({str(self.root)!r})"

    # -- paths -------------------------------------------------------------------------------------------

    def _path(self, key: str) -> Path:
        return self.root.joinpath(*check_key(key).split("/"))

    def _unavailable(self, action: str, key: str, exc: OSError) -> UnavailableError:
        return UnavailableError(f"local blob store at {self.root}: cannot {action} {key!r}: {_reason(exc)}")

    def _require_root(self) -> None:
        if not self.root.is_dir():
            raise UnavailableError(f"local blob store root {self.root} does not exist or is not a directory")

    # -- writes ------------------------------------------------------------------------------------------

    def _open_temp(self, key: str, directory: Path) -> tuple[int, str]:
        """Create a fresh temp file in ``directory`` (creating the directory if needed)."""
        temp = os.path.join(directory, f"{RESERVED_SEGMENT_PREFIX}{uuid.uuid4().hex}")
        # A concurrent delete may prune the directory between makedirs and open: retry a few times.
        for _ in range(5):
            try:
                return os.open(temp, _OPEN_FLAGS, _FILE_MODE), temp
            except FileNotFoundError:
                self._require_root()
                try:
                    os.makedirs(directory, exist_ok=True)
                except (FileExistsError, NotADirectoryError) as exc:
                    raise _parent_is_an_object(key) from exc
                except OSError as exc:
                    raise self._unavailable("create the directory of", key, exc) from exc
            except NotADirectoryError as exc:
                raise _parent_is_an_object(key) from exc
            except OSError as exc:
                raise self._unavailable("write", key, exc) from exc
        raise UnavailableError(f"local blob store at {self.root}: directory of {key!r} keeps disappearing")

    def _write(self, key: str, fd: int, data: bytes | BinaryIO) -> int:
        """Copy ``data`` into ``fd`` and fsync; the caller's read errors propagate untouched."""
        with os.fdopen(fd, "wb") as out:
            if isinstance(data, bytes | bytearray | memoryview):
                chunks: Iterator[bytes | bytearray | memoryview] = iter((data,))
            else:
                chunks = iter(lambda: data.read(COPY_CHUNK), b"")
            size = 0
            for chunk in chunks:
                try:
                    out.write(chunk)
                except OSError as exc:
                    raise self._unavailable("write", key, exc) from exc
                size += len(chunk)
            try:
                out.flush()
                os.fsync(out.fileno())
            except OSError as exc:
                raise self._unavailable("write", key, exc) from exc
        return size

    def put(self, key: str, data: bytes | BinaryIO) -> BlobInfo:
        path = self._path(key)
        fd, temp = self._open_temp(key, path.parent)
        try:
            size = self._write(key, fd, data)
            try:
                os.replace(temp, path)
            except IsADirectoryError as exc:
                raise ValueError(
                    f"blob key {key!r} cannot be stored: other keys are stored under {key + '/'!r}"
                ) from exc
            except OSError as exc:
                raise self._unavailable("write", key, exc) from exc
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temp)
            raise
        self._fsync_directory(path.parent)
        return BlobInfo(key=key, size=size)

    @staticmethod
    def _fsync_directory(directory: Path) -> None:
        """Make the rename durable (best effort: not every platform can open a directory)."""
        try:
            fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        except OSError:
            return
        try:
            os.fsync(fd)
        except OSError:
            pass
        finally:
            os.close(fd)

    # -- reads -------------------------------------------------------------------------------------------

    def get(self, key: str) -> bytes:
        path = self._path(key)
        try:
            with open(path, "rb") as f:
                return f.read()
        except _MISSING as exc:
            raise BlobNotFoundError(f"blob {key!r} not found") from exc
        except OSError as exc:
            raise self._unavailable("read", key, exc) from exc

    def get_range(self, key: str, offset: int, length: int) -> bytes:
        if offset < 0 or length < 0:
            raise ValueError(f"offset and length must be >= 0 (got {offset}, {length})")
        path = self._path(key)
        try:
            with open(path, "rb") as f:
                size = os.fstat(f.fileno()).st_size
                length = min(length, max(0, size - offset))  # never ask read() for more than exists
                if length == 0:
                    return b""
                f.seek(offset)
                return f.read(length)
        except _MISSING as exc:
            raise BlobNotFoundError(f"blob {key!r} not found") from exc
        except OSError as exc:
            raise self._unavailable("read", key, exc) from exc

    def head(self, key: str) -> BlobInfo | None:
        path = self._path(key)
        try:
            st = os.stat(path)
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as exc:
            raise self._unavailable("stat", key, exc) from exc
        return BlobInfo(key=key, size=st.st_size) if stat.S_ISREG(st.st_mode) else None

    # -- delete ------------------------------------------------------------------------------------------

    def delete(self, key: str) -> None:
        path = self._path(key)
        try:
            os.unlink(path)
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return
        except PermissionError as exc:
            if path.is_dir():  # macOS answers EPERM for unlink(directory): no object at this key
                return
            raise self._unavailable("delete", key, exc) from exc
        except OSError as exc:
            raise self._unavailable("delete", key, exc) from exc
        self._prune(path.parent)

    def _prune(self, directory: Path) -> None:
        """Remove now-empty directories from ``directory`` up to (not including) the root; best effort."""
        while directory != self.root and self.root in directory.parents:
            try:
                os.rmdir(directory)
            except OSError:  # not empty (a concurrent put, other keys) or already gone: stop
                return
            directory = directory.parent

    # -- listing -----------------------------------------------------------------------------------------

    def iter_prefix(self, prefix: str) -> Iterator[str]:
        check_prefix(prefix)
        self._require_root()
        head, sep, first = prefix.rpartition("/")
        directory = self.root.joinpath(*head.split("/")) if head else self.root
        return self._walk(directory, head + sep, first)

    def _walk(self, directory: Path, base: str, starts_with: str) -> Iterator[str]:
        """Keys under ``directory`` (whose keys start with ``base``) in lexicographic order.

        Siblings are visited sorted by ``name`` for files and ``name + "/"`` for directories: every key in a
        directory starts with that string, so this order is exactly the lexicographic order of whole keys.
        Python compares ``str`` by code point, which is also UTF-8 byte order (the order S3 lists in).
        """
        try:
            with os.scandir(directory) as scan:
                entries = [
                    (entry.name + "/" if entry.is_dir(follow_symlinks=False) else entry.name, entry)
                    for entry in scan
                    if entry.name.startswith(starts_with) and not entry.name.startswith(RESERVED_SEGMENT_PREFIX)
                ]
        except (FileNotFoundError, NotADirectoryError):
            return
        except OSError as exc:
            raise self._unavailable("list", base, exc) from exc
        entries.sort(key=lambda item: item[0])
        for sort_key, entry in entries:
            if sort_key.endswith("/"):
                yield from self._walk(directory / entry.name, base + sort_key, "")
            elif entry.is_file():
                yield base + entry.name

    # -- readiness ---------------------------------------------------------------------------------------

    def check(self) -> None:
        """The root exists and a file can be created in it (a real write: ``os.access`` lies to root)."""
        self._require_root()
        probe = os.path.join(self.root, f"{RESERVED_SEGMENT_PREFIX}check-{uuid.uuid4().hex}")
        try:
            os.close(os.open(probe, _OPEN_FLAGS, _FILE_MODE))
            os.unlink(probe)
        except OSError as exc:
            raise UnavailableError(f"local blob store root {self.root} is not writable: {_reason(exc)}") from exc
