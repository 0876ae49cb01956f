"""Small helpers shared by the e2e modules."""

from __future__ import annotations

import time
from typing import Any


def wait_for_status(client: Any, datastore_id: str, status: str, timeout: float = 15.0) -> dict[str, Any]:
    """Poll GetDatastore until the data store is in ``status``; return its properties."""
    deadline = time.monotonic() + timeout
    while True:
        properties: dict[str, Any] = client.get_datastore(datastoreId=datastore_id)["datastoreProperties"]
        if properties["datastoreStatus"] == status or time.monotonic() > deadline:
            assert properties["datastoreStatus"] == status, properties
            return properties
        time.sleep(0.1)


def settled(client: Any, datastore: str, image_set_id: str, timeout: float = 30) -> dict[str, Any]:
    """GetImageSet once the image set is no longer LOCKED."""
    deadline = time.monotonic() + timeout
    while True:
        properties: dict[str, Any] = client.get_image_set(datastoreId=datastore, imageSetId=image_set_id)
        if properties["imageSetState"] != "LOCKED":
            return properties
        assert time.monotonic() < deadline, properties
        time.sleep(0.05)


def error_of(call: Any, **kwargs: Any) -> tuple[str, int, str]:
    """(code, HTTP status, message) of a call that must fail with a ClientError."""
    from botocore.exceptions import ClientError

    try:
        call(**kwargs)
    except ClientError as exc:
        response = exc.response
        return (
            response["Error"]["Code"],
            response["ResponseMetadata"]["HTTPStatusCode"],
            response["Error"]["Message"],
        )
    raise AssertionError(f"{call} succeeded but should have failed")
