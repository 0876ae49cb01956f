"""TagResource, UntagResource and ListTagsForResource (guide 8867-9500).

Resources are data stores and image sets named by ARN. An ARN of another account or region, a data
store that does not exist or is DELETED, or an image set that does not exist, is ResourceNotFound. A
resource holds at most 50 tags (guide 8867-9500 and the AWS tagging limits); a TagResource that would
exceed it changes nothing and is a ValidationException. Keys are compared case-sensitively.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from openhi.access import guard
from openhi.datastores.model import DatastoreStatus
from openhi.errors import NotFoundError
from openhi.ids import ResourceArn
from openhi.index.port import Index, UnitOfWork
from openhi.tagging.rules import check_tag_count


class TaggingService:
    """Tag use cases over the index port."""

    def __init__(self, index: Index, account_id: str, region: str) -> None:
        self._index = index
        self._account_id = account_id
        self._region = region

    def _resolve(self, uow: UnitOfWork, resource_arn: str) -> ResourceArn:
        arn = ResourceArn.parse(resource_arn)
        missing = NotFoundError(f"Resource {resource_arn} does not exist")
        if arn.account_id != self._account_id or arn.region != self._region:
            raise missing
        datastore = uow.datastores.get(arn.datastore_id)
        if datastore is None or datastore.status == DatastoreStatus.DELETED:
            raise missing
        if arn.image_set_id is not None and not uow.image_sets.exists(arn.datastore_id, arn.image_set_id):
            raise missing
        return arn

    def tag(self, resource_arn: str, tags: Mapping[str, str]) -> None:
        """Add or overwrite tags, keeping the total at most 50."""
        guard.require("TagResource", resource_arn=resource_arn)

        def work(uow: UnitOfWork) -> None:
            arn = self._resolve(uow, resource_arn)
            check_tag_count(uow.tags.get(arn.datastore_id, arn.image_set_id), tags)
            uow.tags.put(arn.datastore_id, arn.image_set_id, tags)

        self._index.run(work)

    def untag(self, resource_arn: str, keys: Sequence[str]) -> None:
        """Remove the named tags; names that are not set are ignored."""
        guard.require("UntagResource", resource_arn=resource_arn)

        def work(uow: UnitOfWork) -> None:
            arn = self._resolve(uow, resource_arn)
            uow.tags.remove(arn.datastore_id, arn.image_set_id, keys)

        self._index.run(work)

    def list(self, resource_arn: str) -> dict[str, str]:
        """Every tag of the resource."""
        guard.require("ListTagsForResource", resource_arn=resource_arn)

        def work(uow: UnitOfWork) -> dict[str, str]:
            arn = self._resolve(uow, resource_arn)
            return uow.tags.get(arn.datastore_id, arn.image_set_id)

        return self._index.run(work, readonly=True)
