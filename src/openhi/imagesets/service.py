"""Reading image sets (guide 5625-6921).

GetImageSet, GetImageSetMetadata, GetImageFrame and ListImageSetVersions.

Every read may name a version (``versionId``); without it the latest is read. Metadata is served exactly as
stored: gzip JSON (the API edge adds ``Content-Encoding: gzip``). Frames are served in their stored transfer
syntax, one blob read, with the Content-Type of aws-wire-api.md §8b.
"""

from __future__ import annotations

from dataclasses import dataclass

from openhi.access import guard
from openhi.blobs import keys
from openhi.blobs.port import BlobStore
from openhi.codecs.syntaxes import content_type
from openhi.datastores.service import load_datastore
from openhi.errors import NotFoundError
from openhi.imagesets.model import ImageSet, ImageSetState, ImageSetVersion
from openhi.index.port import Index, UnitOfWork
from openhi.search.tokens import TokenCodec
from openhi.tiers.access import NO_ACCESS_RECORDING, AccessRecorder

DEFAULT_PAGE_SIZE = 50


@dataclass(frozen=True)
class VersionView:
    """An image set as one of its versions shows it."""

    image_set: ImageSet
    version: ImageSetVersion


@dataclass(frozen=True)
class Frame:
    """A stored frame and its media type."""

    data: bytes
    content_type: str


@dataclass(frozen=True)
class VersionPage:
    """One page of ListImageSetVersions, with the image set's current row (the latest version's live state)."""

    image_set: ImageSet
    versions: list[ImageSetVersion]
    next_token: str | None


def load_image_set(uow: UnitOfWork, datastore_id: str, image_set_id: str, *, deleted_too: bool = False) -> ImageSet:
    """The image set, or ResourceNotFoundException; a DELETED one only when ``deleted_too``."""
    image_set = uow.image_sets.get(datastore_id, image_set_id)
    if image_set is None or (image_set.state == ImageSetState.DELETED and not deleted_too):
        raise NotFoundError(f"Image set {image_set_id} does not exist in datastore {datastore_id}")
    return image_set


def _image_set(uow: UnitOfWork, datastore_id: str, image_set_id: str, *, deleted_too: bool = False) -> ImageSet:
    load_datastore(uow, datastore_id)
    return load_image_set(uow, datastore_id, image_set_id, deleted_too=deleted_too)


def _version(uow: UnitOfWork, image_set: ImageSet, version_id: str | None) -> ImageSetVersion:
    number = image_set.version_id if version_id is None else int(version_id)
    version = uow.image_sets.get_version(image_set.datastore_id, image_set.image_set_id, number)
    if version is None:
        raise NotFoundError(f"Image set {image_set.image_set_id} has no version {number}")
    return version


class ImageSetReader:
    """Read use cases of image sets."""

    def __init__(
        self, index: Index, blobs: BlobStore, tokens: TokenCodec, access: AccessRecorder = NO_ACCESS_RECORDING
    ) -> None:
        self._index = index
        self._blobs = blobs
        self._tokens = tokens
        self._access = access  # storage tiers: metadata and frame reads are accesses (guide 23026-23030)

    def get(self, datastore_id: str, image_set_id: str, version_id: str | None = None) -> VersionView:
        """The image set at ``version_id`` (latest when None)."""
        guard.require("GetImageSet", datastore_id=datastore_id, image_set_id=image_set_id)

        def work(uow: UnitOfWork) -> VersionView:
            # GetImageSet keeps answering for a deleted image set (state DELETED, deletedAt); the other reads don't.
            image_set = _image_set(uow, datastore_id, image_set_id, deleted_too=True)
            return VersionView(image_set, _version(uow, image_set, version_id))

        return self._index.run(work, readonly=True)

    def metadata(self, datastore_id: str, image_set_id: str, version_id: str | None = None) -> bytes:
        """The version's metadata document, gzip-compressed JSON."""
        guard.require("GetImageSetMetadata", datastore_id=datastore_id, image_set_id=image_set_id)

        def work(uow: UnitOfWork) -> str:
            image_set = _image_set(uow, datastore_id, image_set_id)
            return _version(uow, image_set, version_id).metadata_key

        key = self._index.run(work, readonly=True)
        self._access.accessed(datastore_id, image_set_id)
        return self._blobs.get(key)

    def frame(self, datastore_id: str, image_set_id: str, frame_id: str) -> Frame:
        """One frame of the image set, as stored."""
        guard.require("GetImageFrame", datastore_id=datastore_id, image_set_id=image_set_id)

        def work(uow: UnitOfWork) -> str:
            _image_set(uow, datastore_id, image_set_id)
            ref = uow.image_sets.get_frame(datastore_id, image_set_id, frame_id)
            if ref is None:
                raise NotFoundError(f"Image frame {frame_id} does not exist in image set {image_set_id}")
            return ref.stored_transfer_syntax

        syntax = self._index.run(work, readonly=True)
        self._access.accessed(datastore_id, image_set_id)
        return Frame(self._blobs.get(keys.frame(datastore_id, frame_id)), content_type(syntax))

    def versions(
        self, datastore_id: str, image_set_id: str, next_token: str | None, max_results: int | None
    ) -> VersionPage:
        """Newest version first, paginated."""
        guard.require("ListImageSetVersions", datastore_id=datastore_id, image_set_id=image_set_id)
        scope = f"ListImageSetVersions:{datastore_id}:{image_set_id}"
        before = int(self._tokens.decode(scope, next_token)["v"]) if next_token else None
        limit = max_results or DEFAULT_PAGE_SIZE

        def work(uow: UnitOfWork) -> tuple[ImageSet, list[ImageSetVersion]]:
            image_set = _image_set(uow, datastore_id, image_set_id, deleted_too=True)
            return image_set, uow.image_sets.list_versions(datastore_id, image_set_id, before, limit + 1)

        image_set, rows = self._index.run(work, readonly=True)
        page, token = self._tokens.paginate(scope, rows, limit, lambda last: {"v": last.version_id})
        return VersionPage(image_set, page, token)
