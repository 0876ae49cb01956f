"""The one place where blob keys are built.

Layout (every key is relative to the store's root or ``s3://bucket/prefix``)::

    datastores/{datastoreId}/datastore.json        the data store's descriptor, written when provisioned
    datastores/{datastoreId}/frames/{frameId}      one image frame, in its stored transfer syntax
    datastores/{datastoreId}/metadata/{contentId}.json.gz   an image set metadata document (immutable,
                                                   content-addressed: versions share equal documents)
    datastores/{datastoreId}/bulk/{referenceId}    a bulk value over 1 MB, stored apart from the metadata
    datastores/{datastoreId}/...                   everything a data store holds lives under its prefix

Keeping each data store under one prefix makes deletion a prefix sweep that can be re-run.
"""

from __future__ import annotations

from openhi.ids import is_valid_id


def _checked(identifier: str) -> str:
    if not is_valid_id(identifier):
        raise ValueError(f"not a 32-character id: {identifier!r}")
    return identifier


def datastore_prefix(datastore_id: str) -> str:
    """Prefix under which every object of one data store lives (ends with ``/``)."""
    return f"datastores/{_checked(datastore_id)}/"


def datastore_descriptor(datastore_id: str) -> str:
    """Key of the data store's JSON descriptor."""
    return f"{datastore_prefix(datastore_id)}datastore.json"


def frame(datastore_id: str, frame_id: str) -> str:
    """Key of one stored image frame (frames are shared by every version that references them)."""
    return f"{datastore_prefix(datastore_id)}frames/{_checked(frame_id)}"


def metadata_document(datastore_id: str, content_id: str) -> str:
    """Key of an encoded (gzip JSON) image set metadata document."""
    return f"{datastore_prefix(datastore_id)}metadata/{_checked(content_id)}.json.gz"


def bulk_value(datastore_id: str, reference_id: str) -> str:
    """Key of a bulk-data value stored apart from its metadata (guide 3217-3360: binary values over 1 MB)."""
    return f"{datastore_prefix(datastore_id)}bulk/{_checked(reference_id)}"
