"""Where archived blobs go: the ``archive_blob_url`` setting, or a default beside the hot location.

- ``file://`` hot location (the embedded default): ``file://{data_dir}/archive``;
- ``s3://bucket/prefix``: ``s3://bucket/prefix-archive`` (``s3://bucket/archive`` without a prefix), the same
  bucket under a sibling prefix, so a bucket lifecycle rule may give it a cheaper storage class (e.g.
  GLACIER_IR, which keeps millisecond reads as guide 23014 asks);
- ``memory://``: another in-memory store.

Any URL ``openhi.blobs.factory`` accepts may be given instead (another bucket, another volume).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from openhi.config import Settings


def archive_blob_url(settings: Settings) -> str:
    """The archive location's blob URL for these settings."""
    if settings.archive_blob_url:
        return settings.archive_blob_url
    hot = settings.effective_blob_url
    parts = urlsplit(hot)
    if parts.scheme == "s3":
        prefix = parts.path.strip("/")
        return f"s3://{parts.netloc}/{prefix}-archive" if prefix else f"s3://{parts.netloc}/archive"
    if parts.scheme == "memory":
        return "memory://"
    return f"file://{(settings.data_dir / 'archive').resolve()}"


def is_default_local_archive(settings: Settings) -> bool:
    """True when the archive is the default folder in the data dir (created at start when missing)."""
    return not settings.archive_blob_url and archive_blob_url(settings).startswith("file://")
