"""One function per model operation: validated parameters in, result dict (output shape) out.

Handlers translate between wire members and service calls and nothing more; rules live in the
services. Operations whose issue has not landed yet answer NotImplementedException (501) with the
operation's name, never a fake success.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from openhi.api.aws.image_set_handlers import ImageSetHandlers
from openhi.api.aws.image_set_write_handlers import ImageSetWriteHandlers
from openhi.api.aws.import_handlers import ImportHandlers
from openhi.api.aws.search_handlers import SearchHandlers
from openhi.datastores.model import Datastore, DatastoreStatus, LosslessStorageFormat
from openhi.datastores.service import CreateDatastoreRequest, DatastoreService
from openhi.errors import NotImplementedYetError
from openhi.ids import datastore_arn
from openhi.tagging.service import TaggingService

Handler = Callable[[dict[str, Any]], dict[str, Any]]

# Operations of the model that arrive with later issues, and what brings them.
PLANNED: dict[str, str] = {}


@dataclass(frozen=True)
class Identity:
    """Account and region that ARNs are minted in."""

    account_id: str
    region: str


class AwsHandlers:
    """The operation table of the native API."""

    def __init__(
        self,
        identity: Identity,
        datastores: DatastoreService,
        tagging: TaggingService,
        image_sets: ImageSetHandlers,
        imports: ImportHandlers,
        writes: ImageSetWriteHandlers,
        search: SearchHandlers,
    ) -> None:
        self._identity = identity
        self._datastores = datastores
        self._tagging = tagging
        self.table: dict[str, Handler] = {
            "StartDICOMImportJob": imports.start,
            "GetDICOMImportJob": imports.get,
            "ListDICOMImportJobs": imports.list,
            "GetImageSet": image_sets.get_image_set,
            "GetImageSetMetadata": image_sets.get_image_set_metadata,
            "GetImageFrame": image_sets.get_image_frame,
            "ListImageSetVersions": image_sets.list_image_set_versions,
            "UpdateImageSetMetadata": writes.update_image_set_metadata,
            "CopyImageSet": writes.copy_image_set,
            "DeleteImageSet": writes.delete_image_set,
            "SearchImageSets": search.search_image_sets,
            "CreateDatastore": self.create_datastore,
            "GetDatastore": self.get_datastore,
            "ListDatastores": self.list_datastores,
            "DeleteDatastore": self.delete_datastore,
            "TagResource": self.tag_resource,
            "UntagResource": self.untag_resource,
            "ListTagsForResource": self.list_tags_for_resource,
        }
        for name, issue in PLANNED.items():
            self.table[name] = _planned(name, issue)

    def _arn(self, datastore: Datastore) -> str:
        return datastore_arn(self._identity.region, self._identity.account_id, datastore.datastore_id)

    def _summary(self, datastore: Datastore) -> dict[str, Any]:
        return {
            "datastoreId": datastore.datastore_id,
            "datastoreName": datastore.name,
            "datastoreStatus": datastore.status.value,
            "datastoreArn": self._arn(datastore),
            "createdAt": datastore.created_at,
            "updatedAt": datastore.updated_at,
        }

    def create_datastore(self, params: dict[str, Any]) -> dict[str, Any]:
        """CreateDatastore (guide 645-760)."""
        fmt = params.get("losslessStorageFormat")
        datastore = self._datastores.create(
            CreateDatastoreRequest(
                client_token=params["clientToken"],
                name=params.get("datastoreName"),
                lossless_storage_format=LosslessStorageFormat(fmt) if fmt else LosslessStorageFormat.HTJ2K,
                kms_key_arn=params.get("kmsKeyArn"),
                lambda_authorizer_arn=params.get("lambdaAuthorizerArn"),
                tags=params.get("tags"),
            )
        )
        return {"datastoreId": datastore.datastore_id, "datastoreStatus": datastore.status.value}

    def get_datastore(self, params: dict[str, Any]) -> dict[str, Any]:
        """GetDatastore (guide 960-1030)."""
        datastore = self._datastores.get(params["datastoreId"])
        properties = self._summary(datastore) | {
            "losslessStorageFormat": datastore.lossless_storage_format.value,
            "kmsKeyArn": datastore.kms_key_arn,
            "lambdaAuthorizerArn": datastore.lambda_authorizer_arn,
        }
        return {"datastoreProperties": properties}

    def list_datastores(self, params: dict[str, Any]) -> dict[str, Any]:
        """ListDatastores with status filter and pagination."""
        status = params.get("datastoreStatus")
        page = self._datastores.list(
            DatastoreStatus(status) if status else None, params.get("nextToken"), params.get("maxResults")
        )
        return {
            "datastoreSummaries": [self._summary(d) for d in page.datastores],
            "nextToken": page.next_token,
        }

    def delete_datastore(self, params: dict[str, Any]) -> dict[str, Any]:
        """DeleteDatastore."""
        datastore = self._datastores.delete(params["datastoreId"])
        return {"datastoreId": datastore.datastore_id, "datastoreStatus": datastore.status.value}

    def tag_resource(self, params: dict[str, Any]) -> dict[str, Any]:
        """TagResource."""
        self._tagging.tag(params["resourceArn"], params["tags"])
        return {}

    def untag_resource(self, params: dict[str, Any]) -> dict[str, Any]:
        """UntagResource."""
        self._tagging.untag(params["resourceArn"], params["tagKeys"])
        return {}

    def list_tags_for_resource(self, params: dict[str, Any]) -> dict[str, Any]:
        """ListTagsForResource."""
        return {"tags": self._tagging.list(params["resourceArn"])}


def _planned(operation: str, issue: str) -> Handler:
    def handler(params: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedYetError(
            f"{operation} is part of the AWS HealthImaging API but is not implemented in this version "
            f"of OpenHI yet (it arrives with the {issue} work)"
        )

    return handler
