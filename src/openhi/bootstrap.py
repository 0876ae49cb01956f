"""The composition root: Settings -> adapters -> services -> the ASGI app.

The only module that names concrete backend classes (learned from cosmicpython's ``bootstrap.py``):
the index adapter is chosen by ``index_url`` (``sqlite:///`` or ``postgresql://``), the blob adapter by
``blob_url`` (``file://``, ``s3://bucket/prefix``, ``memory://``).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from starlette.applications import Starlette

from openhi.access.bearer_auth import BearerAuthentication
from openhi.access.directory import PrincipalDirectory
from openhi.access.iam_file import load_iam_file
from openhi.access.oidc import OidcAuthenticator
from openhi.api.app import Periodic, create_app
from openhi.api.authn import SigV4Authenticator
from openhi.api.aws import model
from openhi.api.aws.endpoint import AwsEndpoint
from openhi.api.aws.handlers import AwsHandlers, Identity
from openhi.api.aws.image_set_handlers import ImageSetHandlers
from openhi.api.aws.image_set_write_handlers import ImageSetWriteHandlers
from openhi.api.aws.import_handlers import ImportHandlers
from openhi.api.aws.search_handlers import SearchHandlers
from openhi.api.cors import parse_origins
from openhi.api.dicomweb.endpoint import DicomWebEndpoint
from openhi.api.dicomweb.qido import QidoHandlers
from openhi.api.dicomweb.render import RenderHandlers
from openhi.api.dicomweb.routes import build_routes
from openhi.api.dicomweb.stow import StowHandlers
from openhi.api.dicomweb.wado import WadoHandlers
from openhi.api.observe import CallObserver
from openhi.api.sts import STS_SERVICE, StsEndpoint
from openhi.auth.credentials import AccessKey, load_or_create_root_key
from openhi.authorizers.registry import AuthorizerRegistry
from openhi.blobs.factory import open_blob_store
from openhi.blobs.port import BlobStore
from openhi.clock import Clock, utc_now
from openhi.config import Settings
from openhi.datastores.lifecycle import DatastoreLifecycle
from openhi.datastores.service import DatastoreService
from openhi.dicomweb.cache import DOCUMENT_CACHE_BYTES, DocumentCache
from openhi.dicomweb.qido.backfill import CatalogBackfill
from openhi.dicomweb.qido.service import QidoSearch
from openhi.dicomweb.render import Renderer
from openhi.dicomweb.retrieve import WadoService
from openhi.dicomweb.stow import StowService
from openhi.errors import ValidationError
from openhi.imagesets.copies import ImageSetCopies
from openhi.imagesets.deletes import ImageSetDeletes
from openhi.imagesets.locks import Locks
from openhi.imagesets.model import ImageSetWorkflowStatus
from openhi.imagesets.recovery import WriteRecovery
from openhi.imagesets.search import ImageSetSearch
from openhi.imagesets.service import ImageSetReader
from openhi.imagesets.updates import ImageSetUpdates
from openhi.imports.runner import ImportLimits, ImportRunner
from openhi.imports.service import ImportService
from openhi.imports.workers import process_pool, run_tasks
from openhi.index.port import Index
from openhi.index.sql.adapter import SqlIndex
from openhi.search.tokens import TokenCodec
from openhi.tagging.service import TaggingService
from openhi.throttling.throttle import Throttle, open_throttle

log = logging.getLogger(__name__)

LIFECYCLE_INTERVAL_SECONDS = 0.2
IMPORT_POLL_SECONDS = 0.5
RECOVERY_INTERVAL_SECONDS = 2.0
CATALOG_BACKFILL_SECONDS = 1.0
SESSION_PURGE_SECONDS = 60.0


@dataclass
class Services:
    """The opened backends and the services over them (what the server and the CLI commands share)."""

    index: Index
    blobs: BlobStore
    root_key: AccessKey
    root_key_generated: bool
    directory: PrincipalDirectory
    tokens: TokenCodec
    datastores: DatastoreService
    lifecycle: DatastoreLifecycle
    tagging: TaggingService
    reader: ImageSetReader
    imports: ImportService
    runner: ImportRunner
    locks: Locks
    updates: ImageSetUpdates
    copies: ImageSetCopies
    deletes: ImageSetDeletes
    background: ThreadPoolExecutor
    search: ImageSetSearch
    recovery: WriteRecovery


@dataclass
class Application:
    """Everything a running server holds."""

    app: Starlette
    services: Services


def token_secret(root_key: AccessKey) -> bytes:
    """Pagination token secret, derived so that every process with the same root key shares it."""
    return hmac.new(root_key.secret_access_key.encode(), b"openhi pagination tokens v1", hashlib.sha256).digest()


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


def open_output_store(url: str) -> BlobStore:
    """Where an import job writes its outputs; a local output folder is created when missing."""
    if url.startswith("file://"):
        Path(url.removeprefix("file://")).mkdir(parents=True, exist_ok=True)
    return _open_blobs(url)


def import_runner(settings: Settings, index: Index, blobs: BlobStore, clock: Clock) -> ImportRunner:
    """The import job runner with its pool of worker processes."""
    workers = settings.import_workers or os.cpu_count() or 1
    return ImportRunner(
        index,
        blobs,
        settings.effective_blob_url,
        open_input=_open_blobs,
        open_output=open_output_store,
        executor=lambda: process_pool(workers),
        task_fn=run_tasks,
        clock=clock,
        lease_seconds=settings.import_lease_seconds,
        in_flight=3 * workers,
        limits=ImportLimits(
            max_files=settings.max_import_files, max_metadata_bytes=settings.max_image_set_metadata_bytes
        ),
    )


def write_quotas(settings: Settings) -> dict[ImageSetWorkflowStatus, int]:
    """Concurrent UpdateImageSetMetadata / CopyImageSet / DeleteImageSet per data store (guide 22741-22765)."""
    return {
        ImageSetWorkflowStatus.UPDATING: settings.max_concurrent_image_set_updates,
        ImageSetWorkflowStatus.COPYING_WITH_READ_ONLY_ACCESS: settings.max_concurrent_image_set_copies,
        ImageSetWorkflowStatus.DELETING: settings.max_concurrent_image_set_deletes,
    }


def throttle(settings: Settings, dicomweb_operations: Iterable[str]) -> Throttle:
    """The throttle of the two endpoints; overrides may name any native or DICOMweb operation."""
    known = {operation.name for operation in model.operations()} | set(dicomweb_operations)
    chosen = open_throttle(settings, known)
    log.info("throttling: %s", chosen.description)
    return chosen


def principal_directory(settings: Settings, index: Index, root_key: AccessKey, clock: Clock) -> PrincipalDirectory:
    """Users, roles and STS sessions from the index and the IAM file (``iam_file``), checked against each other."""
    principals = load_iam_file(Path(settings.iam_file), settings.account_id, clock()) if settings.iam_file else None
    directory = PrincipalDirectory(
        index, settings.account_id, root_key, clock, principals, cache_seconds=settings.iam_cache_seconds
    )
    directory.check_file_principals()
    return directory


def open_directory(settings: Settings, clock: Clock = utc_now) -> tuple[PrincipalDirectory, Index]:
    """For ``openhi iam``: the index (migrated) and the principal directory over it; the caller closes the index."""
    root_key, _ = load_or_create_root_key(settings.access_key_id, settings.secret_access_key, settings.data_dir)
    index = _open_index(settings.effective_index_url)
    try:
        return principal_directory(settings, index, root_key, clock), index
    except BaseException:
        index.close()
        raise


def build_services(settings: Settings, clock: Clock = utc_now) -> Services:
    """Open the backends (running index migrations) and the services over them."""
    root_key, generated = load_or_create_root_key(settings.access_key_id, settings.secret_access_key, settings.data_dir)
    index = _open_index(settings.effective_index_url)
    directory = principal_directory(settings, index, root_key, clock)
    if not settings.blob_url:  # the embedded default lives in the data dir; a given URL must already exist
        (settings.data_dir / "blobs").mkdir(parents=True, exist_ok=True)
    blobs = _open_blobs(settings.effective_blob_url)
    tokens = TokenCodec(token_secret(root_key))
    background = ThreadPoolExecutor(max_workers=4, thread_name_prefix="image-set-writes")
    locks = Locks(index, clock, background, write_quotas(settings))
    deletes = ImageSetDeletes(index, blobs, locks)
    return Services(
        index=index,
        blobs=blobs,
        root_key=root_key,
        root_key_generated=generated,
        directory=directory,
        tokens=tokens,
        datastores=DatastoreService(index, clock, tokens, settings.max_active_datastores),
        lifecycle=DatastoreLifecycle(index, blobs, clock, settings.datastore_transition_seconds),
        tagging=TaggingService(index, settings.account_id, settings.region),
        reader=ImageSetReader(index, blobs, tokens),
        imports=ImportService(index, clock, tokens, settings.max_concurrent_import_jobs),
        runner=import_runner(settings, index, blobs, clock),
        locks=locks,
        updates=ImageSetUpdates(
            index,
            blobs,
            locks,
            max_payload_bytes=settings.max_update_payload_bytes,
            max_metadata_bytes=settings.max_image_set_metadata_bytes,
        ),
        copies=ImageSetCopies(
            index,
            blobs,
            locks,
            max_frames=settings.max_frames_per_copy,
            max_metadata_bytes=settings.max_image_set_metadata_bytes,
        ),
        deletes=deletes,
        background=background,
        search=ImageSetSearch(index, tokens),
        recovery=WriteRecovery(index, locks, deletes, clock, settings.image_set_lock_timeout_seconds),
    )


def stow_service(settings: Settings, services: Services, clock: Clock) -> StowService:
    """STOW-RS over the import worker processes (one code path with import jobs)."""
    return StowService(
        services.index, services.blobs, settings.effective_blob_url, services.runner.warm_up, run_tasks, clock
    )


def build(settings: Settings, clock: Clock = utc_now) -> Application:
    """The services and the ASGI app over them."""
    services = build_services(settings, clock)
    handlers = AwsHandlers(
        Identity(settings.account_id, settings.region),
        services.datastores,
        services.tagging,
        ImageSetHandlers(services.reader, settings.region, settings.account_id),
        ImportHandlers(services.imports),
        ImageSetWriteHandlers(
            services.updates, services.copies, services.deletes, settings.region, settings.account_id
        ),
        SearchHandlers(services.search),
    )
    authenticator = SigV4Authenticator(services.directory, clock, settings.clock_skew_seconds)
    sts = StsEndpoint(
        services.directory, SigV4Authenticator(services.directory, clock, settings.clock_skew_seconds, STS_SERVICE)
    )
    qido_handlers = QidoHandlers(QidoSearch(services.index))
    stow = stow_service(settings, services, clock)
    documents = DocumentCache(DOCUMENT_CACHE_BYTES)  # metadata documents, shared by WADO-RS and rendered
    routes = build_routes(
        StowHandlers(stow),
        WadoHandlers(WadoService(services.index, services.blobs, documents)),
        qido_handlers,
        RenderHandlers(Renderer(services.index, services.blobs, documents)),
    )
    throttled = throttle(settings, (route.operation for route in routes))
    observers: list[CallObserver] = []  # told about every answered call (api/observe.py)
    endpoint = AwsEndpoint(
        handlers,
        authenticator,
        settings.max_request_bytes,
        throttle=throttled,
        region=settings.region,
        observers=observers,
    )
    authorizers = AuthorizerRegistry.from_setting(settings.authorizers)
    oidc = OidcAuthenticator(
        authorizers,
        services.directory.role_caller,
        clock,
        account_id=settings.account_id,
        region=settings.region,
    )
    dicomweb = DicomWebEndpoint(
        routes,
        authenticator,
        settings.max_stow_request_bytes,
        spool_dir=stow.spool_root,
        throttle=throttled,
        region=settings.region,
        bearer=BearerAuthentication(services.index, oidc),
        observers=observers,
    )
    app = create_app(
        endpoint,
        dicomweb,
        readiness_checks={"index": services.index.check, "blobs": services.blobs.check},
        periodic=[
            Periodic("datastore-lifecycle", services.lifecycle.sweep, LIFECYCLE_INTERVAL_SECONDS),
            Periodic("import-jobs", services.runner.tick, IMPORT_POLL_SECONDS),
            Periodic("image-set-write-recovery", services.recovery.sweep, RECOVERY_INTERVAL_SECONDS),
            Periodic("iam-session-purge", services.directory.purge_expired_sessions, SESSION_PURGE_SECONDS),
            Periodic(
                "qido-catalog-backfill", CatalogBackfill(services.index, services.blobs).step, CATALOG_BACKFILL_SECONDS
            ),
        ],
        on_startup=[services.runner.warm_up, stow.sweep_stale],
        on_shutdown=[
            services.runner.stop,
            lambda: services.background.shutdown(wait=True),
            throttled.close,
            oidc.close,
            authorizers.close,
            services.index.close,  # last: the steps above may still write (closing twice is harmless)
        ],
        cors_origins=parse_origins(settings.cors_allowed_origins),
        sts=sts,
    )
    return Application(app, services)
