"""The S3 blob store: the ``s3://bucket/prefix`` adapter of the blob port, for any S3-compatible endpoint.

This module owns ``S3BlobStore`` and ``from_url``. It speaks plain S3 through boto3, so MinIO, Ceph RGW,
moto and AWS all work: by default the client is ``boto3.client("s3")``, which reads the standard AWS
variables (``AWS_ENDPOINT_URL_S3``, ``AWS_ACCESS_KEY_ID``, ``AWS_REGION``, ``AWS_MAX_ATTEMPTS`` ...); a custom
endpoint gets path-style addressing from botocore. Keys are ``prefix + key``. Writes are atomic because S3
makes a PUT (and a completed multipart upload) visible all at once; file objects go through
``upload_fileobj``, which streams big bodies as a multipart upload. Following the ARCHITECTURE-GUIDE rule
that vendor exceptions are translated where they enter (httpx ``map_httpcore_exceptions``), no botocore,
boto3 or s3transfer exception leaves this module: a missing object is ``BlobNotFoundError`` and everything
else (missing bucket, refused connection, missing credentials, denied access, throttling) is
``UnavailableError`` with a message naming the bucket and the endpoint.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, BinaryIO, cast
from urllib.parse import urlsplit

import boto3
from boto3.exceptions import Boto3Error
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from s3transfer.exceptions import RetriesExceededError, S3UploadFailedError

from openhi.blobs.memory import COPY_CHUNK, check_key, check_prefix
from openhi.blobs.port import BlobInfo
from openhi.errors import BlobNotFoundError, OpenHIError, UnavailableError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

_TRANSPORT_ERRORS = (BotoCoreError, Boto3Error, S3UploadFailedError, RetriesExceededError)
_VENDOR_ERRORS = (ClientError, *_TRANSPORT_ERRORS)
_MISSING_OBJECT_CODES = frozenset({"NoSuchKey", "NotFound", "404"})
_MISSING_BUCKET_CODES = frozenset({"NoSuchBucket"})
_BUCKET_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")

#: Timeouts of the default client: a blackholed endpoint fails a readiness probe in seconds, not minutes.
#: Retries are left to botocore's defaults and the standard ``AWS_MAX_ATTEMPTS`` / ``AWS_RETRY_MODE``.
DEFAULT_CLIENT_CONFIG = Config(connect_timeout=10, read_timeout=60)


def normalize_prefix(prefix: str) -> str:
    """``""`` or ``"a/b/"``: surrounding slashes dropped, one trailing ``/`` added, segments checked."""
    stripped = prefix.strip("/")
    if not stripped:
        return ""
    try:
        check_key(stripped)
    except ValueError as exc:
        raise ValueError(f"not a valid S3 key prefix: {prefix!r} ({exc})") from exc
    return stripped + "/"


def _error_fields(exc: ClientError) -> tuple[str, int, str]:
    response: dict[str, Any] = cast("dict[str, Any]", exc.response)
    error = response.get("Error") or {}
    status = (response.get("ResponseMetadata") or {}).get("HTTPStatusCode") or 0
    return str(error.get("Code") or ""), int(status), str(error.get("Message") or "")


class _FullReader:
    """Wraps the caller's stream for ``upload_fileobj``: fills every read and counts the bytes.

    s3transfer takes a short read of a non-seekable stream for its end, so a stream that returns fewer
    bytes than asked (a socket, a request body) would be stored truncated, silently; this wrapper keeps
    reading until the request is filled or the source is exhausted. It offers no ``seek``, so s3transfer
    reads it front to back in part-sized chunks (bounded memory) and the count is the object's size
    without a second request.
    """

    def __init__(self, source: BinaryIO) -> None:
        self._source = source
        self.count = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            parts = list(iter(lambda: self._source.read(COPY_CHUNK), b""))
        else:
            parts = []
            wanted = size
            while wanted > 0:
                chunk = self._source.read(wanted)
                if not chunk:
                    break
                parts.append(chunk)
                wanted -= len(chunk)
        data = b"".join(parts)
        self.count += len(data)
        return data


class S3BlobStore:
    """Blobs as objects under ``s3://{bucket}/{prefix}``."""

    def __init__(self, bucket: str, prefix: str = "", client: Any | None = None) -> None:
        if not _BUCKET_NAME.fullmatch(bucket):
            raise ValueError(f"not an S3 bucket name: {bucket!r}")
        self.bucket = bucket
        self.prefix = normalize_prefix(prefix)
        if client is None:
            client = boto3.client("s3", config=DEFAULT_CLIENT_CONFIG)
        self._client: S3Client = client

    def __repr__(self) -> str:
        return f"S3BlobStore({self.url!r} at {self.endpoint})"

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"

    @property
    def endpoint(self) -> str:
        return str(self._client.meta.endpoint_url)

    # -- error translation at the edge -------------------------------------------------------------------

    def _missing_bucket(self) -> UnavailableError:
        return UnavailableError(f"S3 bucket {self.bucket!r} does not exist at endpoint {self.endpoint}")

    def _translate(self, exc: Exception, action: str, subject: str, *, object_call: bool = True) -> OpenHIError:
        """The ``openhi.errors`` family for a botocore/boto3/s3transfer exception (raise it ``from exc``)."""
        if isinstance(exc, ClientError):
            code, status, message = _error_fields(exc)
            if code in _MISSING_BUCKET_CODES:
                return self._missing_bucket()
            if object_call and (code in _MISSING_OBJECT_CODES or status == 404):
                return BlobNotFoundError(f"blob {subject!r} not found")
            detail = f"{code or status}: {message or 'no message'}"
        else:
            detail = str(exc) or exc.__class__.__name__
        return UnavailableError(
            f"S3 blob store {self.url} at endpoint {self.endpoint}: cannot {action} {subject!r}: {detail}"
        )

    # -- the port ----------------------------------------------------------------------------------------

    def put(self, key: str, data: bytes | BinaryIO) -> BlobInfo:
        full = self.prefix + check_key(key)
        if isinstance(data, bytes | bytearray | memoryview):
            body = bytes(data)
            try:
                self._client.put_object(Bucket=self.bucket, Key=full, Body=body)
            except _VENDOR_ERRORS as exc:
                raise self._translate(exc, "put", key) from exc
            return BlobInfo(key=key, size=len(body))
        reader = _FullReader(data)
        try:
            self._client.upload_fileobj(cast("BinaryIO", reader), self.bucket, full)
        except _VENDOR_ERRORS as exc:
            raise self._translate(exc, "put", key, object_call=False) from exc
        return BlobInfo(key=key, size=reader.count)

    def _read(self, action: str, key: str, byte_range: str | None = None) -> bytes:
        full = self.prefix + check_key(key)
        try:
            if byte_range is None:
                response = self._client.get_object(Bucket=self.bucket, Key=full)
            else:
                response = self._client.get_object(Bucket=self.bucket, Key=full, Range=byte_range)
            body = response["Body"]
            try:
                return body.read()
            finally:
                body.close()
        except _VENDOR_ERRORS as exc:
            if byte_range and isinstance(exc, ClientError) and _error_fields(exc)[1] == 416:
                return b""  # InvalidRange: the object exists and the offset is at or past its end
            raise self._translate(exc, action, key) from exc

    def get(self, key: str) -> bytes:
        return self._read("get", key)

    def get_range(self, key: str, offset: int, length: int) -> bytes:
        if offset < 0 or length < 0:
            raise ValueError(f"offset and length must be >= 0 (got {offset}, {length})")
        if length == 0:  # an empty HTTP range cannot be expressed; still answer "not found" when absent
            if self.head(key) is None:
                raise BlobNotFoundError(f"blob {key!r} not found")
            return b""
        return self._read("get a range of", key, f"bytes={offset}-{offset + length - 1}")

    def head(self, key: str) -> BlobInfo | None:
        full = self.prefix + check_key(key)
        try:
            response = self._client.head_object(Bucket=self.bucket, Key=full)
        except _VENDOR_ERRORS as exc:
            translated = self._translate(exc, "head", key)
            if isinstance(translated, BlobNotFoundError):
                return None
            raise translated from exc
        return BlobInfo(key=key, size=int(response["ContentLength"]))

    def delete(self, key: str) -> None:
        full = self.prefix + check_key(key)
        try:
            self._client.delete_object(Bucket=self.bucket, Key=full)
        except _VENDOR_ERRORS as exc:
            translated = self._translate(exc, "delete", key)
            if isinstance(translated, BlobNotFoundError):  # S3 answers 204 for a missing key; not every clone
                return
            raise translated from exc

    def iter_prefix(self, prefix: str) -> Iterator[str]:
        check_prefix(prefix)
        return self._list(prefix)

    def _list(self, prefix: str) -> Iterator[str]:
        skip = len(self.prefix)
        paginator = self._client.get_paginator("list_objects_v2")
        pages = paginator.paginate(Bucket=self.bucket, Prefix=self.prefix + prefix)
        try:
            for page in pages:
                for obj in page.get("Contents", []):
                    key = obj["Key"][skip:]
                    if key and not key.endswith("/"):  # "folder" markers made by consoles are not blobs
                        yield key
        except _VENDOR_ERRORS as exc:
            raise self._translate(exc, "list", prefix, object_call=False) from exc

    def check(self) -> None:
        """``HeadBucket``: the endpoint answers, the credentials work and the bucket exists."""
        try:
            self._client.head_bucket(Bucket=self.bucket)
        except ClientError as exc:
            code, status, message = _error_fields(exc)
            if status == 404 or code in _MISSING_BUCKET_CODES or code in {"404", "NotFound"}:
                raise self._missing_bucket() from exc
            if status == 403:
                raise UnavailableError(
                    f"access to S3 bucket {self.bucket!r} at endpoint {self.endpoint} was denied "
                    "(check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or the bucket policy)"
                ) from exc
            raise UnavailableError(
                f"S3 bucket {self.bucket!r} at endpoint {self.endpoint} is not usable: "
                f"{code or status}: {message or 'no message'}"
            ) from exc
        except _TRANSPORT_ERRORS as exc:
            raise UnavailableError(
                f"cannot reach S3 endpoint {self.endpoint} for bucket {self.bucket!r}: {exc}"
            ) from exc


def from_url(url: str, client: Any | None = None) -> S3BlobStore:
    """``s3://bucket`` or ``s3://bucket/some/prefix`` -> ``S3BlobStore`` (the prefix is taken literally)."""
    parts = urlsplit(url)
    if parts.scheme != "s3":
        raise ValueError(f"not an s3:// URL: {url!r}")
    if not parts.netloc:
        raise ValueError(f"s3 URL has no bucket: {url!r} (expected s3://bucket/prefix)")
    if "@" in parts.netloc:  # never echo what may be credentials
        raise ValueError("s3 URL must not carry credentials (use the standard AWS variables)")
    if parts.query or parts.fragment:
        raise ValueError(f"s3 URL must not have a query or fragment: {url!r} (expected s3://bucket/prefix)")
    return S3BlobStore(parts.netloc, parts.path, client=client)
