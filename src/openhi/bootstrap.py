"""The composition root: Settings -> adapters -> services -> the ASGI app.

The only module that names concrete backend classes (learned from cosmicpython's ``bootstrap.py``):
the index adapter is chosen by ``index_url`` (``sqlite:///`` or ``postgresql://``), the blob adapter by
``blob_url`` (``file://``, ``s3://bucket/prefix``, ``memory://``).
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from starlette.applications import Starlette

from openhi.api.app import Periodic, create_app
from openhi.api.authn import SigV4Authenticator
from openhi.api.aws.endpoint import AwsEndpoint
from openhi.api.aws.handlers import AwsHandlers, Identity
from openhi.auth.credentials import AccessKey, CredentialStore, load_or_create_root_key
from openhi.blobs.factory import open_blob_store
from openhi.blobs.port import BlobStore
from openhi.clock import Clock, utc_now
from openhi.config import Settings
from openhi.datastores.lifecycle import DatastoreLifecycle
from openhi.datastores.service import DatastoreService
from openhi.errors import ValidationError
from openhi.index.port import Index
from openhi.index.sql.adapter import SqlIndex
from openhi.search.tokens import TokenCodec
from openhi.tagging.service import TaggingService

LIFECYCLE_INTERVAL_SECONDS = 0.2


@dataclass
class Application:
    """Everything a running server holds."""

    app: Starlette
    index: Index
    blobs: BlobStore
    root_key: AccessKey
    root_key_generated: bool


def token_secret(root_key: AccessKey) -> bytes:
    """Pagination token secret, derived so that every process with the same root key shares it."""
    return hmac.new(
        root_key.secret_access_key.encode(), b"openhi pagination tokens v1", hashlib.sha256
    ).digest()


def _open_index(url: str) -> SqlIndex:
    try:
        return SqlIndex.open(url)
    except ValueError as exc:
        raise ValidationError(f"setting 'index_url': {exc}", field="index_url") from exc


def _open_blobs(url: str) -> BlobStore:
    """The blob store, checked once at start so that a wrong URL or bucket fails now, not on first use."""
    try:
        blobs = open_blob_store(url)
    except ValueError as exc:
        raise ValidationError(f"setting 'blob_url': {exc}", field="blob_url") from exc
    blobs.check()
    return blobs


def build(settings: Settings, clock: Clock = utc_now) -> Application:
    """Open the backends (running index migrations) and assemble the app."""
    root_key, generated = load_or_create_root_key(
        settings.access_key_id, settings.secret_access_key, settings.data_dir
    )
    index = _open_index(settings.effective_index_url)
    if not settings.blob_url:  # the embedded default lives in the data dir; a given URL must already exist
        (settings.data_dir / "blobs").mkdir(parents=True, exist_ok=True)
    blobs = _open_blobs(settings.effective_blob_url)
    tokens = TokenCodec(token_secret(root_key))
    datastores = DatastoreService(index, clock, tokens, settings.max_active_datastores)
    tagging = TaggingService(index, settings.account_id, settings.region)
    lifecycle = DatastoreLifecycle(index, blobs, clock, settings.datastore_transition_seconds)
    handlers = AwsHandlers(Identity(settings.account_id, settings.region), datastores, tagging)
    authenticator = SigV4Authenticator(CredentialStore([root_key]), clock, settings.clock_skew_seconds)
    endpoint = AwsEndpoint(handlers, authenticator, settings.max_request_bytes)
    app = create_app(
        endpoint,
        readiness_checks={"index": index.check, "blobs": blobs.check},
        periodic=[Periodic("datastore-lifecycle", lifecycle.sweep, LIFECYCLE_INTERVAL_SECONDS)],
    )
    return Application(app, index, blobs, root_key, generated)
