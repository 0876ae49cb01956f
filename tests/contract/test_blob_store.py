"""One contract for every blob store adapter: memory (the reference), local filesystem and S3 (moto).

Each test runs once per adapter; an adapter passes when it behaves exactly like ``MemoryBlobStore``.
The last section checks that ``open_blob_store`` maps each URL form to its adapter.
"""

from __future__ import annotations

import io
import os
import threading
from pathlib import Path

import pytest

from openhi.blobs.factory import open_blob_store
from openhi.blobs.local import LocalBlobStore
from openhi.blobs.memory import MemoryBlobStore
from openhi.blobs.port import BlobInfo, BlobStore
from openhi.blobs.s3 import S3BlobStore
from openhi.errors import BlobNotFoundError

MiB = 1024 * 1024


@pytest.fixture(params=["memory", "local", pytest.param("s3", marks=pytest.mark.s3)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> BlobStore:
    if request.param == "memory":
        return MemoryBlobStore()
    if request.param == "local":
        root = tmp_path / "blobs"
        root.mkdir()
        return LocalBlobStore(root)
    bucket: str = request.getfixturevalue("s3_bucket")
    return S3BlobStore(bucket, "some/prefix/")


class OneWayStream:
    """A non-seekable stream (like a request body): only ``read``, and at most 64 KiB per call."""

    def __init__(self, content: bytes) -> None:
        self._content = memoryview(content)
        self._pos = 0

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            size = len(self._content) - self._pos
        size = min(size, 64 * 1024)
        chunk = bytes(self._content[self._pos : self._pos + size])
        self._pos += len(chunk)
        return chunk


# -- put / get ---------------------------------------------------------------------------------------------


def test_adapter_satisfies_the_port(store: BlobStore) -> None:
    assert isinstance(store, BlobStore)


def test_put_bytes_then_get(store: BlobStore) -> None:
    info = store.put("datastores/x/object.bin", b"hello blobs")
    assert info == BlobInfo(key="datastores/x/object.bin", size=11)
    assert store.get("datastores/x/object.bin") == b"hello blobs"


def test_put_file_object_then_get(store: BlobStore) -> None:
    info = store.put("from/file", io.BytesIO(b"streamed content"))
    assert info == BlobInfo(key="from/file", size=16)
    assert store.get("from/file") == b"streamed content"


def test_put_file_object_reads_from_its_current_position(store: BlobStore) -> None:
    source = io.BytesIO(b"HEADERpayload")
    source.seek(6)
    assert store.put("positioned", source).size == 7
    assert store.get("positioned") == b"payload"


def test_put_large_one_way_stream(store: BlobStore) -> None:
    # 12 MiB: a multipart upload on S3 (8 MiB parts), many chunks through the local copy loop.
    content = os.urandom(12 * MiB)
    info = store.put("large/stream.bin", OneWayStream(content))  # type: ignore[arg-type]
    assert info == BlobInfo(key="large/stream.bin", size=len(content))
    assert store.head("large/stream.bin") == info
    assert store.get("large/stream.bin") == content
    assert store.get_range("large/stream.bin", 9 * MiB - 3, 6) == content[9 * MiB - 3 : 9 * MiB + 3]


def test_empty_object(store: BlobStore) -> None:
    assert store.put("empty", b"") == BlobInfo(key="empty", size=0)
    assert store.get("empty") == b""
    assert store.head("empty") == BlobInfo(key="empty", size=0)
    assert store.get_range("empty", 0, 10) == b""
    assert store.put("empty-stream", io.BytesIO(b"")).size == 0
    assert store.get("empty-stream") == b""


def test_every_byte_value_survives(store: BlobStore) -> None:
    content = bytes(range(256)) * 17 + bytes(reversed(range(256)))
    store.put("binary/all-bytes", content)
    assert store.get("binary/all-bytes") == content
    assert store.get_range("binary/all-bytes", 250, 12) == content[250:262]
    store.put("binary/all-bytes-stream", io.BytesIO(content))
    assert store.get("binary/all-bytes-stream") == content


@pytest.mark.parametrize(
    "key",
    [
        "dir with spaces/file name.dcm",
        "ünïcødé/字/🩻 image.bin",
        "symbols/a+b=c&d%20e!$'(),;@~^`{}[]|<>?#*",
        "dotted/.hidden/..double-dot-prefix/x.",
    ],
)
def test_unusual_but_valid_keys(store: BlobStore, key: str) -> None:
    store.put(key, key.encode())
    assert store.get(key) == key.encode()
    assert store.head(key) == BlobInfo(key=key, size=len(key.encode()))
    assert list(store.iter_prefix(key.split("/")[0] + "/")) == [key]
    store.delete(key)
    assert store.head(key) is None


def test_overwrite_replaces_the_object(store: BlobStore) -> None:
    store.put("k", b"a much longer first version")
    assert store.put("k", b"short") == BlobInfo(key="k", size=5)
    assert store.get("k") == b"short"
    assert store.head("k") == BlobInfo(key="k", size=5)
    store.put("k", io.BytesIO(b"third, from a stream"))
    assert store.get("k") == b"third, from a stream"


def test_overwrite_is_atomic_for_concurrent_readers(store: BlobStore) -> None:
    versions = (b"A" * 200_000, b"B" * 70_000)
    store.put("contended", versions[0])
    stop = threading.Event()
    errors: list[BaseException] = []

    def writer() -> None:
        try:
            for i in range(40):
                data = versions[(i + 1) % 2]
                store.put("contended", data if i % 3 else io.BytesIO(data))
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)
        finally:
            stop.set()

    thread = threading.Thread(target=writer)
    thread.start()
    seen = set()
    try:
        while not stop.is_set():
            seen.add(store.get("contended"))
    finally:
        thread.join()
    assert not errors
    assert seen <= set(versions)  # never a torn, empty or mixed object
    assert store.get("contended") == versions[0]


# -- missing keys and head ---------------------------------------------------------------------------------


def test_get_of_a_missing_key(store: BlobStore) -> None:
    with pytest.raises(BlobNotFoundError):
        store.get("no/such/key")


def test_get_range_of_a_missing_key(store: BlobStore) -> None:
    with pytest.raises(BlobNotFoundError):
        store.get_range("no/such/key", 0, 10)
    with pytest.raises(BlobNotFoundError):
        store.get_range("no/such/key", 0, 0)


def test_head(store: BlobStore) -> None:
    assert store.head("h/1") is None
    store.put("h/1", b"12345")
    assert store.head("h/1") == BlobInfo(key="h/1", size=5)
    assert store.head("h") is None  # a prefix of keys is not an object


# -- ranges ------------------------------------------------------------------------------------------------

RANGE_CONTENT = bytes(range(100))


@pytest.mark.parametrize(
    ("offset", "length", "expected"),
    [
        pytest.param(0, 4, RANGE_CONTENT[:4], id="start"),
        pytest.param(40, 7, RANGE_CONTENT[40:47], id="middle"),
        pytest.param(96, 4, RANGE_CONTENT[96:], id="end"),
        pytest.param(0, 100, RANGE_CONTENT, id="whole"),
        pytest.param(90, 50, RANGE_CONTENT[90:], id="runs-past-end"),
        pytest.param(99, 1, RANGE_CONTENT[99:], id="last-byte"),
        pytest.param(100, 5, b"", id="at-end"),
        pytest.param(250, 5, b"", id="past-end"),
        pytest.param(10, 0, b"", id="zero-length"),
        pytest.param(150, 0, b"", id="zero-length-past-end"),
    ],
)
def test_get_range(store: BlobStore, offset: int, length: int, expected: bytes) -> None:
    store.put("ranged", RANGE_CONTENT)
    assert store.get_range("ranged", offset, length) == expected


def test_get_range_rejects_negative_arguments(store: BlobStore) -> None:
    store.put("ranged", RANGE_CONTENT)
    with pytest.raises(ValueError, match=">= 0"):
        store.get_range("ranged", -1, 4)
    with pytest.raises(ValueError, match=">= 0"):
        store.get_range("ranged", 0, -4)


# -- delete ------------------------------------------------------------------------------------------------


def test_delete_is_idempotent(store: BlobStore) -> None:
    store.put("d/1", b"x")
    store.put("d/2", b"y")
    store.delete("d/1")
    assert store.head("d/1") is None
    with pytest.raises(BlobNotFoundError):
        store.get("d/1")
    store.delete("d/1")
    store.delete("never/existed")
    assert store.get("d/2") == b"y"
    assert list(store.iter_prefix("d/")) == ["d/2"]


def test_delete_of_a_prefix_is_not_a_sweep(store: BlobStore) -> None:
    store.put("p/q/r", b"x")
    store.delete("p/q")
    store.delete("p")
    assert store.get("p/q/r") == b"x"


def test_put_after_delete(store: BlobStore) -> None:
    store.put("again/k", b"1")
    store.delete("again/k")
    store.put("again/k", b"2")
    assert store.get("again/k") == b"2"


# -- listing -----------------------------------------------------------------------------------------------


def test_iter_prefix_isolates_sibling_prefixes(store: BlobStore) -> None:
    for key in ("ab/3", "a/2", "a/1"):
        store.put(key, key.encode())
    assert list(store.iter_prefix("a/")) == ["a/1", "a/2"]
    assert list(store.iter_prefix("ab/")) == ["ab/3"]
    assert list(store.iter_prefix("a")) == ["a/1", "a/2", "ab/3"]


def test_iter_prefix_is_lexicographic(store: BlobStore) -> None:
    keys = ["b", "a/b/c", "a/10", "a-b", "a/1", "a/2", "a b/x", "a/b/a", "ab/3", "A/upper", "z/ü", "z/z"]
    for key in keys:
        store.put(key, b".")
    assert list(store.iter_prefix("")) == sorted(keys)
    assert list(store.iter_prefix("a/")) == ["a/1", "a/10", "a/2", "a/b/a", "a/b/c"]
    assert list(store.iter_prefix("a/1")) == ["a/1", "a/10"]
    assert list(store.iter_prefix("a/b/")) == ["a/b/a", "a/b/c"]
    assert list(store.iter_prefix("z/")) == ["z/z", "z/ü"]


def test_iter_prefix_of_nothing(store: BlobStore) -> None:
    assert list(store.iter_prefix("")) == []
    store.put("x/1", b".")
    assert list(store.iter_prefix("y/")) == []
    assert list(store.iter_prefix("x/1/")) == []
    assert list(store.iter_prefix("x/2")) == []


def test_iter_prefix_lists_many_keys(store: BlobStore) -> None:
    keys = [f"many/{i:04d}" for i in range(1050)]  # more than one S3 listing page (1000)
    for key in reversed(keys):
        store.put(key, b"")
    assert list(store.iter_prefix("many/")) == keys


# -- key rules ---------------------------------------------------------------------------------------------

INVALID_KEYS = ["", "/absolute", "a/../b", "..", "../escape", "a/./b", "a//b", "a/", "back\\slash", "nul\x00"]


@pytest.mark.parametrize("key", INVALID_KEYS)
def test_invalid_keys_are_rejected(store: BlobStore, key: str) -> None:
    with pytest.raises(ValueError, match="blob key"):
        store.put(key, b"x")
    with pytest.raises(ValueError, match="blob key"):
        store.get(key)
    with pytest.raises(ValueError, match="blob key"):
        store.head(key)
    with pytest.raises(ValueError, match="blob key"):
        store.delete(key)


@pytest.mark.parametrize("prefix", ["/a", "../", "a/../", "a//", "\x00"])
def test_invalid_prefixes_are_rejected_at_the_call(store: BlobStore, prefix: str) -> None:
    with pytest.raises(ValueError, match="blob prefix"):
        store.iter_prefix(prefix)


# -- readiness ---------------------------------------------------------------------------------------------


def test_check_passes_on_a_healthy_store(store: BlobStore) -> None:
    store.check()
    store.put("after/check", b"ok")
    store.check()
    assert list(store.iter_prefix("")) == ["after/check"]  # check() leaves nothing behind


# -- choosing the adapter by URL ---------------------------------------------------------------------------


def test_open_blob_store_memory() -> None:
    first = open_blob_store("memory://")
    assert isinstance(first, MemoryBlobStore)
    first.put("k", b"v")
    assert open_blob_store("memory://").head("k") is None  # every memory:// is a fresh store


def test_open_blob_store_file_url_and_plain_path(tmp_path: Path) -> None:
    root = tmp_path / "with space"
    root.mkdir()
    by_url = open_blob_store(root.as_uri())  # file:///.../with%20space
    assert isinstance(by_url, LocalBlobStore)
    assert by_url.root == root
    by_url.put("k", b"v")
    by_path = open_blob_store(str(root))
    assert isinstance(by_path, LocalBlobStore)
    assert by_path.get("k") == b"v"
    assert isinstance(open_blob_store(f"file://localhost{root}"), LocalBlobStore)


def test_open_blob_store_s3_url() -> None:
    store = open_blob_store("s3://some-bucket/some/prefix")
    assert isinstance(store, S3BlobStore)
    assert (store.bucket, store.prefix) == ("some-bucket", "some/prefix/")


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("", "empty"),
        ("http://example.com/blobs", "unsupported blob store URL"),
        ("gs://bucket/prefix", "unsupported blob store URL"),
        ("file://remote-host/data", "remote host"),
        ("file:relative/path", "absolute path"),
        ("memory://somewhere", "memory URL takes no location"),
        ("s3:///no-bucket", "no bucket"),
        ("s3://bucket/prefix?region=x", "query"),
    ],
)
def test_open_blob_store_rejects_other_urls(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        open_blob_store(url)
