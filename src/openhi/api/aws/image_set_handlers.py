"""Wire <-> service for the image set reads.

GetImageSet, GetImageSetMetadata, GetImageFrame and ListImageSetVersions.
"""

from __future__ import annotations

from typing import Any

from openhi.ids import image_set_arn
from openhi.imagesets.model import ImageSet, ImageSetVersion
from openhi.imagesets.service import ImageSetReader


class ImageSetHandlers:
    """Handlers of the image set read operations."""

    def __init__(self, reader: ImageSetReader, region: str, account_id: str) -> None:
        self._reader = reader
        self._region = region
        self._account_id = account_id

    def get_image_set(self, params: dict[str, Any]) -> dict[str, Any]:
        """GetImageSet (guide 5625-5844): the version's state, workflow status and primary flag."""
        view = self._reader.get(params["datastoreId"], params["imageSetId"], params.get("versionId"))
        version = view.version
        latest = version.version_id == view.image_set.version_id
        return {
            "datastoreId": version.datastore_id,
            "imageSetId": version.image_set_id,
            "versionId": str(version.version_id),
            "imageSetState": (view.image_set.state if latest else version.state).value,
            "imageSetWorkflowStatus": (view.image_set.workflow_status if latest else version.workflow_status).value,
            "createdAt": version.created_at,
            "updatedAt": version.updated_at,
            "deletedAt": view.image_set.deleted_at,
            "message": view.image_set.message if latest else version.message,
            "imageSetArn": image_set_arn(self._region, self._account_id, version.datastore_id, version.image_set_id),
            "isPrimary": version.is_primary,
            # Storage tiers (guide 23009-23052, openhi.tiers): the image set's, whatever version is asked.
            "storageTier": view.image_set.storage_tier.value,
            "lastAccessedAt": view.image_set.last_accessed_at,
        }

    def get_image_set_metadata(self, params: dict[str, Any]) -> dict[str, Any]:
        """GetImageSetMetadata (guide 5845-6298): gzip JSON with ``Content-Encoding: gzip``."""
        data = self._reader.metadata(params["datastoreId"], params["imageSetId"], params.get("versionId"))
        return {"imageSetMetadataBlob": data, "contentType": "application/json", "contentEncoding": "gzip"}

    def get_image_frame(self, params: dict[str, Any]) -> dict[str, Any]:
        """GetImageFrame (guide 6299-6621): the stored bytes and their media type."""
        frame_id = params["imageFrameInformation"]["imageFrameId"]
        frame = self._reader.frame(params["datastoreId"], params["imageSetId"], frame_id)
        return {"imageFrameBlob": frame.data, "contentType": frame.content_type}

    def list_image_set_versions(self, params: dict[str, Any]) -> dict[str, Any]:
        """ListImageSetVersions (guide 6622-6921); note the model's capital-I ``ImageSetWorkflowStatus``."""
        page = self._reader.versions(
            params["datastoreId"], params["imageSetId"], params.get("nextToken"), params.get("maxResults")
        )
        return {
            "imageSetPropertiesList": [_properties(v, page.image_set) for v in page.versions],
            "nextToken": page.next_token,
        }


def _properties(version: ImageSetVersion, image_set: ImageSet) -> dict[str, Any]:
    """One version; the latest shows the image set's live state (LOCKED, a failure message, DELETED)."""
    latest = version.version_id == image_set.version_id
    return {
        "imageSetId": version.image_set_id,
        "versionId": str(version.version_id),
        "imageSetState": (image_set.state if latest else version.state).value,
        "ImageSetWorkflowStatus": (image_set.workflow_status if latest else version.workflow_status).value,
        "createdAt": version.created_at,
        "updatedAt": image_set.updated_at if latest else version.updated_at,
        "deletedAt": image_set.deleted_at,
        "message": image_set.message if latest else version.message,
        "isPrimary": version.is_primary,
    }
