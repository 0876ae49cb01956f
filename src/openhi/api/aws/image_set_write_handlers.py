"""Wire <-> service for the image set writes: UpdateImageSetMetadata, CopyImageSet, DeleteImageSet."""

from __future__ import annotations

from typing import Any

from openhi.ids import image_set_arn
from openhi.imagesets.copies import CopyRequest, ImageSetCopies
from openhi.imagesets.deletes import ImageSetDeletes
from openhi.imagesets.model import ImageSet
from openhi.imagesets.updates import ImageSetUpdates, UpdateRequest


class ImageSetWriteHandlers:
    """Handlers of the asynchronous image set writes (guide 6922-8866)."""

    def __init__(
        self, updates: ImageSetUpdates, copies: ImageSetCopies, deletes: ImageSetDeletes, region: str, account_id: str
    ) -> None:
        self._updates = updates
        self._copies = copies
        self._deletes = deletes
        self._region = region
        self._account_id = account_id

    def _properties(self, image_set: ImageSet, version_id: int) -> dict[str, Any]:
        return {
            "imageSetId": image_set.image_set_id,
            "latestVersionId": str(version_id),
            "imageSetState": image_set.state.value,
            "imageSetWorkflowStatus": image_set.workflow_status.value,
            "createdAt": image_set.created_at,
            "updatedAt": image_set.updated_at,
            "imageSetArn": image_set_arn(
                self._region, self._account_id, image_set.datastore_id, image_set.image_set_id
            ),
        }

    def update_image_set_metadata(self, params: dict[str, Any]) -> dict[str, Any]:
        """UpdateImageSetMetadata: LOCKED / UPDATING now, the new version in the background."""
        accepted = self._updates.update(
            UpdateRequest(
                datastore_id=params["datastoreId"],
                image_set_id=params["imageSetId"],
                latest_version_id=int(params["latestVersionId"]),
                updates=params["updateImageSetMetadataUpdates"],
                force=bool(params.get("force", False)),
                include_study_image_sets=bool(params.get("includeStudyImageSets", False)),
            )
        )
        image_set = accepted.image_set
        return {
            "datastoreId": image_set.datastore_id,
            "imageSetId": image_set.image_set_id,
            "latestVersionId": str(accepted.next_version_id),
            "imageSetState": image_set.state.value,
            "imageSetWorkflowStatus": image_set.workflow_status.value,
            "createdAt": image_set.created_at,
            "updatedAt": image_set.updated_at,
        }

    def copy_image_set(self, params: dict[str, Any]) -> dict[str, Any]:
        """CopyImageSet: both sides locked now, the copy finished in the background."""
        information = params["copyImageSetInformation"]
        source = information["sourceImageSet"]
        destination = information.get("destinationImageSet") or {}
        accepted = self._copies.copy(
            CopyRequest(
                datastore_id=params["datastoreId"],
                source_image_set_id=params["sourceImageSetId"],
                source_latest_version_id=int(source["latestVersionId"]),
                copiable_attributes=(source.get("DICOMCopies") or {}).get("copiableAttributes"),
                destination_image_set_id=destination.get("imageSetId"),
                destination_latest_version_id=int(destination["latestVersionId"]) if destination else None,
                force=bool(params.get("force", False)),
                promote_to_primary=bool(params.get("promoteToPrimary", False)),
            )
        )
        return {
            "datastoreId": params["datastoreId"],
            "sourceImageSetProperties": self._properties(accepted.source, accepted.source.version_id),
            "destinationImageSetProperties": self._properties(accepted.destination, accepted.destination_version_id),
        }

    def delete_image_set(self, params: dict[str, Any]) -> dict[str, Any]:
        """DeleteImageSet: LOCKED / DELETING now, DELETED once its bytes are released."""
        image_set = self._deletes.delete(params["datastoreId"], params["imageSetId"])
        return {
            "datastoreId": image_set.datastore_id,
            "imageSetId": image_set.image_set_id,
            "imageSetState": image_set.state.value,
            "imageSetWorkflowStatus": image_set.workflow_status.value,
        }
