"""The one place where blob keys are built.

Layout (every key is relative to the store's root or ``s3://bucket/prefix``)::

    datastores/{datastoreId}/datastore.json        the data store's descriptor, written when provisioned
    datastores/{datastoreId}/...                   everything a data store holds lives under its prefix

Keeping each data store under one prefix makes deletion a prefix sweep that can be re-run.
"""

from __future__ import annotations

from openhi.ids import is_valid_id


def _checked(datastore_id: str) -> str:
    if not is_valid_id(datastore_id):
        raise ValueError(f"not a data store id: {datastore_id!r}")
    return datastore_id


def datastore_prefix(datastore_id: str) -> str:
    """Prefix under which every object of one data store lives (ends with ``/``)."""
    return f"datastores/{_checked(datastore_id)}/"


def datastore_descriptor(datastore_id: str) -> str:
    """Key of the data store's JSON descriptor."""
    return f"{datastore_prefix(datastore_id)}datastore.json"
