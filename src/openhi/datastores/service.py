"""Data store operations: CreateDatastore, GetDatastore, ListDatastores, DeleteDatastore (guide 501-1793).

Creation is idempotent on ``clientToken``: the same token with the same parameters answers the data
store it created; with other parameters it is a ConflictException. At most ``max_active`` data stores
may hold a slot (CREATING, ACTIVE or DELETING) at once -> ServiceQuotaExceededException (guide
22672-22816). The count and the insert run in one serializable unit of work, so two processes cannot
both take the last slot. A data store is answered CREATING and becomes ACTIVE once ``DatastoreLifecycle``
has provisioned it; DeleteDatastore refuses while image sets exist (ConflictException) and answers
DELETING until the lifecycle has purged its blobs.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from openhi.access import guard
from openhi.clock import Clock
from openhi.datastores.model import QUOTA_STATUSES, Datastore, DatastoreStatus, LosslessStorageFormat
from openhi.errors import ConflictError, NotFoundError, QuotaExceededError, ValidationError
from openhi.events import emit
from openhi.ids import is_valid_id, new_id
from openhi.index.port import DatastorePageKey, Index, UnitOfWork
from openhi.search.tokens import TokenCodec
from openhi.tagging.rules import check_tag_count

DEFAULT_PAGE_SIZE = 50
NAME_PATTERN = re.compile(r"[A-Za-z0-9._/#-]+")


@dataclass(frozen=True)
class CreateDatastoreRequest:
    """The inputs of CreateDatastore, already validated against the model."""

    client_token: str
    name: str | None = None
    lossless_storage_format: LosslessStorageFormat = LosslessStorageFormat.HTJ2K
    kms_key_arn: str | None = None
    lambda_authorizer_arn: str | None = None
    tags: Mapping[str, str] | None = None


@dataclass(frozen=True)
class DatastorePage:
    """One page of ListDatastores."""

    datastores: list[Datastore]
    next_token: str | None


def default_name(datastore_id: str) -> str:
    """The name given when CreateDatastore omits ``datastoreName`` (the model requires one on output)."""
    return f"datastore-{datastore_id[:8]}"


def _same_request(existing: Datastore, request: CreateDatastoreRequest) -> bool:
    return (
        (request.name is None or request.name == existing.name)
        and request.lossless_storage_format == existing.lossless_storage_format
        and request.kms_key_arn == existing.kms_key_arn
        and request.lambda_authorizer_arn == existing.lambda_authorizer_arn
    )


def require_datastore_id(datastore_id: str) -> str:
    """Refuse ids that cannot exist (the model's ``[0-9a-z]{32}``)."""
    if not is_valid_id(datastore_id):
        raise ValidationError(
            f"Value '{datastore_id}' at 'datastoreId' failed to satisfy constraint: "
            "Member must satisfy regular expression pattern: [0-9a-z]{32}",
            field="datastoreId",
        )
    return datastore_id


def load_datastore(uow: UnitOfWork, datastore_id: str) -> Datastore:
    """The data store or ResourceNotFoundException."""
    datastore = uow.datastores.get(require_datastore_id(datastore_id))
    if datastore is None:
        raise NotFoundError(f"Datastore {datastore_id} does not exist")
    return datastore


class DatastoreService:
    """Use cases of data stores, orchestrating the index port."""

    def __init__(self, index: Index, clock: Clock, tokens: TokenCodec, max_active: int) -> None:
        self._index = index
        self._clock = clock
        self._tokens = tokens
        self._max_active = max_active

    def create(self, request: CreateDatastoreRequest) -> Datastore:
        """Create a data store in CREATING (or answer the one this client token already created)."""
        guard.require("CreateDatastore")
        if request.tags:
            guard.require("TagResource")

        check_tag_count({}, request.tags or {})

        def work(uow: UnitOfWork) -> Datastore:
            existing = uow.datastores.get_by_client_token(request.client_token)
            if existing is not None:
                if not _same_request(existing, request):
                    raise ConflictError(
                        f"clientToken {request.client_token} was already used to create datastore "
                        f"{existing.datastore_id} with different parameters"
                    )
                return existing
            if uow.datastores.count_in(QUOTA_STATUSES) >= self._max_active:
                raise QuotaExceededError(
                    f"Cannot create datastore: the quota of {self._max_active} active datastores has been reached"
                )
            now = self._clock()
            datastore_id = new_id()
            datastore = Datastore(
                datastore_id=datastore_id,
                name=request.name or default_name(datastore_id),
                status=DatastoreStatus.CREATING,
                lossless_storage_format=request.lossless_storage_format,
                created_at=now,
                updated_at=now,
                client_token=request.client_token,
                kms_key_arn=request.kms_key_arn,
                lambda_authorizer_arn=request.lambda_authorizer_arn,
            )
            uow.datastores.add(datastore)
            emit.datastore_changed(uow, datastore)
            if request.tags:
                uow.tags.put(datastore_id, None, request.tags)
            return datastore

        return self._index.run(work)

    def get(self, datastore_id: str) -> Datastore:
        """The data store in whatever status it is (DELETED ones stay readable)."""
        guard.require("GetDatastore", datastore_id=datastore_id)
        return self._index.run(lambda uow: load_datastore(uow, datastore_id), readonly=True)

    def list(self, status: DatastoreStatus | None, next_token: str | None, max_results: int | None) -> DatastorePage:
        """Newest first, ``max_results`` (1..50, default 50) per page, with an opaque continuation token."""
        guard.require("ListDatastores")
        scope = f"ListDatastores:{status or ''}"
        after = None
        if next_token:
            position = self._tokens.decode(scope, next_token)
            after = DatastorePageKey(datetime.fromisoformat(position["c"]), position["i"])
        limit = max_results or DEFAULT_PAGE_SIZE
        rows = self._index.run(lambda uow: uow.datastores.list_page(status, after, limit + 1), readonly=True)
        page, token = self._tokens.paginate(
            scope, rows, limit, lambda last: {"c": last.created_at.isoformat(), "i": last.datastore_id}
        )
        return DatastorePage(page, token)

    def delete(self, datastore_id: str) -> Datastore:
        """Start deleting an empty data store; repeated calls answer its current status (idempotent)."""
        guard.require("DeleteDatastore", datastore_id=datastore_id)

        def work(uow: UnitOfWork) -> Datastore:
            datastore = load_datastore(uow, datastore_id)
            if datastore.status in (DatastoreStatus.DELETING, DatastoreStatus.DELETED):
                return datastore
            if datastore.status == DatastoreStatus.CREATING:
                raise ConflictError(f"Datastore {datastore_id} is still being created; retry when ACTIVE")
            remaining = uow.image_sets.count_in_datastore(datastore_id)
            if remaining:
                raise ConflictError(f"Datastore {datastore_id} still holds {remaining} image sets; delete them first")
            now = self._clock()
            if not emit.transition_datastore(uow, datastore, datastore.status, DatastoreStatus.DELETING, now):
                raise ConflictError(f"Datastore {datastore_id} changed status concurrently; retry")
            return datastore.with_status(DatastoreStatus.DELETING, now)

        return self._index.run(work)
