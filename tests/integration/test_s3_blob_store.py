"""The S3 adapter against a real S3-compatible endpoint (moto server on loopback): what only S3 can get wrong.

Error translation (missing bucket, unreachable endpoint), where keys land in the bucket, multipart uploads
and parsing of ``s3://`` URLs.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable
from typing import Any

import boto3
import pytest
from botocore.exceptions import BotoCoreError, ClientError
from tests.support.backends import S3Server, free_port

from openhi.blobs.factory import open_blob_store
from openhi.blobs.s3 import S3BlobStore, from_url, normalize_prefix
from openhi.errors import BlobNotFoundError, UnavailableError

pytestmark = pytest.mark.s3

MiB = 1024 * 1024


def raw_client(server: S3Server) -> Any:
    env = server.env()
    return boto3.client(
        "s3",
        endpoint_url=env["AWS_ENDPOINT_URL_S3"],
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        region_name=env["AWS_DEFAULT_REGION"],
    )


def all_raw_keys(client: Any, bucket: str) -> list[str]:
    response = client.list_objects_v2(Bucket=bucket)
    return [obj["Key"] for obj in response.get("Contents", [])]


# -- where keys land ---------------------------------------------------------------------------------------


def test_keys_land_under_the_prefix(s3_server: S3Server, s3_bucket: str) -> None:
    store = S3BlobStore(s3_bucket, "some/prefix/")
    store.put("datastores/x/datastore.json", b"{}")
    store.put("big/stream", io.BytesIO(b"s" * 100))
    raw = raw_client(s3_server)
    assert all_raw_keys(raw, s3_bucket) == [
        "some/prefix/big/stream",
        "some/prefix/datastores/x/datastore.json",
    ]
    assert raw.get_object(Bucket=s3_bucket, Key="some/prefix/datastores/x/datastore.json")["Body"].read() == b"{}"


def test_objects_outside_the_prefix_are_invisible(s3_server: S3Server, s3_bucket: str) -> None:
    raw = raw_client(s3_server)
    raw.put_object(Bucket=s3_bucket, Key="other/k", Body=b"not ours")
    raw.put_object(Bucket=s3_bucket, Key="some/prefixed-sibling/k", Body=b"not ours either")
    raw.put_object(Bucket=s3_bucket, Key="some/prefix/dir/", Body=b"")  # a console's "folder" marker
    store = S3BlobStore(s3_bucket, "some/prefix")
    store.put("k", b"ours")
    assert list(store.iter_prefix("")) == ["k"]
    assert store.head("other/k") is None
    assert store.get("k") == b"ours"
    store.delete("k")
    assert sorted(all_raw_keys(raw, s3_bucket)) == ["other/k", "some/prefix/dir/", "some/prefixed-sibling/k"]


def test_empty_prefix_uses_the_bucket_root(s3_server: S3Server, s3_bucket: str) -> None:
    store = S3BlobStore(s3_bucket, "")
    store.put("a/b", b"x")
    assert all_raw_keys(raw_client(s3_server), s3_bucket) == ["a/b"]


def test_large_stream_is_a_multipart_upload(s3_server: S3Server, s3_bucket: str) -> None:
    content = os.urandom(12 * MiB)
    store = S3BlobStore(s3_bucket, "mp")
    assert store.put("big", io.BytesIO(content)).size == len(content)
    head = raw_client(s3_server).head_object(Bucket=s3_bucket, Key="mp/big")
    assert head["ETag"].strip('"').endswith("-2")  # two 8 MiB-max parts
    assert head["ContentLength"] == len(content)
    assert store.get("big") == content


def test_injected_client_is_used(s3_server: S3Server, s3_bucket: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", f"http://127.0.0.1:{free_port()}")  # the default would fail
    store = S3BlobStore(s3_bucket, "p/", client=raw_client(s3_server))
    store.check()
    store.put("k", b"v")
    assert store.get("k") == b"v"


# -- a missing bucket --------------------------------------------------------------------------------------


def test_missing_bucket_fails_check_with_a_clear_message(s3_server: S3Server, s3_bucket: str) -> None:
    store = S3BlobStore("no-such-bucket-here", "p/")
    with pytest.raises(UnavailableError) as caught:
        store.check()
    message = str(caught.value)
    assert "'no-such-bucket-here' does not exist" in message
    assert s3_server.endpoint in message


def test_missing_bucket_is_unavailable_not_a_missing_blob(s3_server: S3Server, s3_bucket: str) -> None:
    store = S3BlobStore("no-such-bucket-here", "p/")
    for call in (
        lambda: store.get("k"),
        lambda: store.get_range("k", 0, 4),
        lambda: store.put("k", b"v"),
        lambda: store.put("k", io.BytesIO(b"v")),
        lambda: store.delete("k"),
        lambda: list(store.iter_prefix("")),
    ):
        with pytest.raises(UnavailableError, match="does not exist at endpoint"):
            call()


# -- an unreachable endpoint -------------------------------------------------------------------------------


@pytest.fixture
def unreachable_store(s3_bucket: str, monkeypatch: pytest.MonkeyPatch) -> S3BlobStore:
    """Credentials from the server's variables, but the endpoint is a closed loopback port."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", f"http://127.0.0.1:{free_port()}")
    return S3BlobStore(s3_bucket, "p/")


CALLS: dict[str, Callable[[S3BlobStore], object]] = {
    "check": lambda s: s.check(),
    "put-bytes": lambda s: s.put("k", b"v"),
    "put-stream": lambda s: s.put("k", io.BytesIO(b"v" * 1000)),
    "get": lambda s: s.get("k"),
    "get_range": lambda s: s.get_range("k", 0, 4),
    "get_range-empty": lambda s: s.get_range("k", 0, 0),
    "head": lambda s: s.head("k"),
    "delete": lambda s: s.delete("k"),
    "iter_prefix": lambda s: list(s.iter_prefix("")),
}


@pytest.mark.parametrize("call", CALLS.values(), ids=CALLS.keys())
def test_unreachable_endpoint_is_unavailable(unreachable_store: S3BlobStore, call: Callable[..., object]) -> None:
    with pytest.raises(UnavailableError) as caught:
        call(unreachable_store)
    assert not isinstance(caught.value, ClientError | BotoCoreError)
    assert unreachable_store.endpoint in str(caught.value)
    assert isinstance(caught.value.__cause__, BotoCoreError)  # kept for logs, never raised


def test_unreachable_endpoint_check_says_so(unreachable_store: S3BlobStore) -> None:
    with pytest.raises(UnavailableError, match=r"cannot reach S3 endpoint http://127\.0\.0\.1:\d+ for bucket"):
        unreachable_store.check()


# -- a missing object is still BlobNotFoundError -----------------------------------------------------------


def test_missing_object(s3_bucket: str) -> None:
    store = S3BlobStore(s3_bucket, "p/")
    with pytest.raises(BlobNotFoundError, match="'nope' not found"):
        store.get("nope")
    with pytest.raises(BlobNotFoundError):
        store.get_range("nope", 5, 5)
    assert store.head("nope") is None


# -- URLs and prefixes -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "bucket", "prefix"),
    [
        ("s3://bkt", "bkt", ""),
        ("s3://bkt/", "bkt", ""),
        ("s3://bkt/a", "bkt", "a/"),
        ("s3://bkt/a/b/", "bkt", "a/b/"),
        ("s3://my.bucket-1/with space/x", "my.bucket-1", "with space/x/"),
    ],
)
def test_from_url(url: str, bucket: str, prefix: str) -> None:
    store = from_url(url)
    assert (store.bucket, store.prefix, store.url) == (bucket, prefix, f"s3://{bucket}/{prefix}")


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://bkt/a", "not an s3:// URL"),
        ("s3:///a", "no bucket"),
        ("s3://bkt/a?versioning=1", "query"),
        ("s3://bkt/a#frag", "query or fragment"),
        ("s3://user:secret@bkt/a", "must not carry credentials"),
        ("s3://bkt:9000/a", "not an S3 bucket name"),
        ("s3://bkt/a/../b", "not a valid S3 key prefix"),
        ("s3://bkt/a//b", "not a valid S3 key prefix"),
    ],
)
def test_from_url_rejects(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        from_url(url)


@pytest.mark.parametrize(
    ("prefix", "normalized"),
    [("", ""), ("/", ""), ("x", "x/"), ("x/", "x/"), ("/x/y", "x/y/"), ("x/y//", "x/y/")],
)
def test_normalize_prefix(prefix: str, normalized: str) -> None:
    assert normalize_prefix(prefix) == normalized


def test_open_blob_store_reaches_the_endpoint_from_the_environment(s3_server: S3Server, s3_bucket: str) -> None:
    store = open_blob_store(f"s3://{s3_bucket}/via/url")
    store.check()
    store.put("k", b"v")
    assert all_raw_keys(raw_client(s3_server), s3_bucket) == ["via/url/k"]
