"""The composition root: Settings -> adapters -> services -> the ASGI app.

The only module that names concrete backend classes (learned from cosmicpython's ``bootstrap.py``):
the index adapter is chosen by ``index_url`` (``sqlite:///`` or ``postgresql://``), the blob adapter by
``blob_url`` (``file://``, ``s3://bucket/prefix``, ``memory://``).
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import logging
import os
from collections.abc import Callable, Iterable
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
from openhi.api.events import EventsEndpoint
from openhi.api.observe import CallObserver
from openhi.api.sts import STS_SERVICE, StsEndpoint
from openhi.audit import trail as audit_trail
from openhi.auth.credentials import AccessKey, load_or_create_root_key
from openhi.authorizers.registry import AuthorizerRegistry
from openhi.blobs.factory import open_blob_store
from openhi.blobs.port import BlobStore
from openhi.clock import Clock, utc_now
from openhi.config import Settings
from openhi.crypto.factory import datastore_keys, sealed_store
from openhi.crypto.keyring import DatastoreKeys
from openhi.crypto.model import DataKey
from openhi.datastores.lifecycle import DatastoreLifecycle
from openhi.datastores.service import DatastoreService
from openhi.dicomweb.cache import DOCUMENT_CACHE_BYTES, DocumentCache
from openhi.dicomweb.qido.backfill import CatalogBackfill
from openhi.dicomweb.qido.service import QidoSearch
from openhi.dicomweb.render import Renderer
from openhi.dicomweb.retrieve import WadoService
from openhi.dicomweb.stow import StowService
from openhi.errors import ValidationError
from openhi.events.delivery import EventDelivery
from openhi.events.model import EventOrigin
from openhi.events.outbox import EventFeed
from openhi.events.sinks.factory import sinks_from_setting
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
from openhi.metrics.exporter import open_metrics
from openhi.search.tokens import TokenCodec
from openhi.tagging.service import TaggingService
from openhi.throttling.throttle import Throttle, open_throttle
from openhi.tiers.locations import archive_blob_url, is_default_local_archive
from openhi.tiers.policy import TierPolicy
from openhi.tiers.service import StorageTiers

log = logging.getLogger(__name__)

LIFECYCLE_INTERVAL_SECONDS = 0.2
IMPORT_POLL_SECONDS = 0.5
RECOVERY_INTERVAL_SECONDS = 2.0
CATALOG_BACKFILL_SECONDS = 1.0
SESSION_PURGE_SECONDS = 60.0
EVENT_PRUNE_SECONDS = 60.0


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
    tiers: StorageTiers  # storage tiers: access tracker, mover, sweep (docs/storage-tiers.md)
    keys: DatastoreKeys  # encryption at rest: each data store's key (docs/encryption.md)


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


def import_runner(
    settings: Settings,
    index: Index,
    blobs: BlobStore,
    clock: Clock,
    data_keys: Callable[[str], DataKey | None] | None = None,
) -> ImportRunner:
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
        data_keys=data_keys,  # encryption at rest: workers get the data store's key with each task
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


def open_datastore_keys(settings: Settings, clock: Clock = utc_now) -> tuple[DatastoreKeys, Index]:
    """For ``openhi keys``: the index (migrated) and the data store keys over it; the caller closes the index."""
    index = _open_index(settings.effective_index_url)
    try:
        return datastore_keys(settings, index, clock), index
    except BaseException:
        index.close()
        raise


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
    tiers = storage_tiers(settings, index, _open_blobs(settings.effective_blob_url), clock)
    blobs: BlobStore = tiers.blobs  # Tiered(hot, archive); encryption at rest wraps this one (moves stay below it)
    keys = datastore_keys(settings, index, clock)  # encryption at rest (docs/encryption.md): the outermost wrapper
    blobs = sealed_store(blobs, keys)
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
        lifecycle=DatastoreLifecycle(index, blobs, clock, settings.datastore_transition_seconds, keys),
        tagging=TaggingService(index, settings.account_id, settings.region),
        reader=ImageSetReader(index, blobs, tokens, tiers.tracker),
        imports=ImportService(index, clock, tokens, settings.max_concurrent_import_jobs),
        runner=import_runner(settings, index, blobs, clock, keys.for_write),
        locks=locks,
        updates=ImageSetUpdates(
            index,
            blobs,
            locks,
            max_payload_bytes=settings.max_update_payload_bytes,
            max_metadata_bytes=settings.max_image_set_metadata_bytes,
            access=tiers.tracker,
        ),
        copies=ImageSetCopies(
            index,
            blobs,
            locks,
            max_frames=settings.max_frames_per_copy,
            max_metadata_bytes=settings.max_image_set_metadata_bytes,
            access=tiers.tracker,
        ),
        deletes=deletes,
        background=background,
        search=ImageSetSearch(index, tokens),
        recovery=WriteRecovery(index, locks, deletes, clock, settings.image_set_lock_timeout_seconds),
        tiers=tiers,
        keys=keys,
    )


def storage_tiers(settings: Settings, index: Index, hot: BlobStore, clock: Clock) -> StorageTiers:
    """The storage tiers over the hot blob store and the archive location (docs/storage-tiers.md)."""
    if is_default_local_archive(settings):  # the embedded default lives in the data dir
        (settings.data_dir / "archive").mkdir(parents=True, exist_ok=True)
    try:
        archive = open_blob_store(archive_blob_url(settings))
    except ValueError as exc:
        raise ValidationError(f"setting 'archive_blob_url': {exc}", field="archive_blob_url") from exc
    archive.check()
    return StorageTiers.over(index, hot, archive, clock, TierPolicy.days(settings.archive_after_days))


def open_storage_tiers(settings: Settings, clock: Clock = utc_now) -> tuple[StorageTiers, Index]:
    """For ``openhi tiers``: the index (migrated) and the storage tiers over it; the caller closes the index."""
    index = _open_index(settings.effective_index_url)
    try:
        return storage_tiers(settings, index, _open_blobs(settings.effective_blob_url), clock), index
    except BaseException:
        index.close()
        raise


def tier_loops(settings: Settings, tiers: StorageTiers) -> list[Periodic]:
    """Accesses written every ``tier_access_flush_seconds``; the sweep every ``tier_sweep_seconds`` when on."""
    loops = [Periodic("storage-tier-access", tiers.tracker.flush, settings.tier_access_flush_seconds)]
    if settings.storage_tiering:
        loops.append(Periodic("storage-tier-sweep", tiers.sweep.run, settings.tier_sweep_seconds))
    return loops


def stow_service(settings: Settings, services: Services, clock: Clock) -> StowService:
    """STOW-RS over the import worker processes (one code path with import jobs)."""
    return StowService(
        services.index,
        services.blobs,
        settings.effective_blob_url,
        services.runner.warm_up,
        run_tasks,
        clock,
        data_keys=services.keys.for_write,  # encryption at rest: workers get the data store's key with each task
    )


def event_delivery(settings: Settings, index: Index, clock: Clock) -> tuple[EventFeed, EventDelivery, list[Periodic]]:
    """The event outbox's feed (pull API), the sinks of ``event_sinks`` and their loops (docs/events.md)."""
    feed = EventFeed(index, EventOrigin(settings.account_id, settings.region), clock, settings.event_retention_days)
    sinks = sinks_from_setting(settings.event_sinks)
    delivery = EventDelivery(index, feed, sinks, clock, lease_seconds=settings.event_lease_seconds)
    loops = [
        Periodic("events-publish", feed.publish, settings.event_delivery_seconds),
        Periodic("events-prune", lambda: feed.prune(delivery.delivered_by_every_sink), EVENT_PRUNE_SECONDS),
        *(
            Periodic(f"events-sink-{name}", functools.partial(delivery.run, name), settings.event_delivery_seconds)
            for name in delivery.sink_names
        ),
    ]
    return feed, delivery, loops


def build(settings: Settings, clock: Clock = utc_now) -> Application:
    """The services and the ASGI app over them."""
    services = build_services(settings, clock)
    feed, delivery, event_loops = event_delivery(settings, services.index, clock)
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
        WadoHandlers(WadoService(services.index, services.blobs, documents, access=services.tiers.tracker)),
        qido_handlers,
        RenderHandlers(Renderer(services.index, services.blobs, documents, services.tiers.tracker)),
    )
    throttled = throttle(settings, (route.operation for route in routes))
    observers: list[CallObserver] = []  # told about every answered call (api/observe.py)
    audit = audit_trail.from_settings(settings, clock)  # CloudTrail-shaped records (docs/audit.md)
    if audit is not None:
        observers.append(audit)
    metrics = open_metrics(services.index, settings.account_id, clock) if settings.metrics_enabled else None
    if metrics is not None:  # GET /metrics (docs/metrics.md)
        observers.append(metrics.calls)
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
            *event_loops,
            *tier_loops(settings, services.tiers),
        ],
        on_startup=[services.runner.warm_up, stow.sweep_stale, *([audit.start] if audit else [])],
        on_shutdown=[
            delivery.stop,  # first: a webhook backing off gives up its wait
            services.runner.stop,
            lambda: services.background.shutdown(wait=True),
            throttled.close,
            oidc.close,
            authorizers.close,
            *([audit.close] if audit else []),  # after the requests: uvicorn finished them before
            services.tiers.tracker.close,  # writes the accesses noted since the last flush
            services.index.close,  # last: the steps above may still write (closing twice is harmless)
        ],
        cors_origins=parse_origins(settings.cors_allowed_origins),
        sts=sts,
        events=EventsEndpoint(feed, authenticator, region=settings.region, observers=observers),
        outer_middleware=metrics.middleware if metrics is not None else (),
    )
    return Application(app, services)
