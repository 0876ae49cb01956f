"""An event as the outbox keeps it, and its EventBridge form (guide 20268-20911).

The guide's events are EventBridge events (``version`` "0", a version-4 UUID ``id``, ``detail-type``, ``source``
``aws.medical-imaging``, ``account``, ``time``, ``region``, ``resources`` and a ``detail`` whose
``imagingVersion`` is "1.0"). The outbox stores what the change decided -- the id, the detail type, the time, the
resource and the detail fields -- and ``render`` adds what belongs to the deployment: the account and the region,
from which the ARNs of ``resources`` (and a copy's ``sourceImageSetArn``) are built. That is how every API answer
of OpenHI builds ARNs too (the index keeps ids, the settings name the account and region).

Field order follows the guide's examples: the envelope's keys in the order above, the detail's as each example
lists them (``catalogue.py`` builds the detail in that order; JSON keeps it).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from openhi.ids import datastore_arn, image_set_arn

SOURCE = "aws.medical-imaging"  # guide 20274: the source of every HealthImaging event
ENVELOPE_VERSION = "0"  # EventBridge event schema version
IMAGING_VERSION = "1.0"  # detail.imagingVersion of every example
TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"  # "2024-03-14T00:01:00Z"

type DetailValue = str | bool


@dataclass(frozen=True)
class EventOrigin:
    """The deployment's identity: the account that owns every data store, and the region."""

    account_id: str
    region: str


@dataclass(frozen=True)
class ChangeEvent:
    """One state change, as appended to the outbox in the unit of work that made it.

    ``resources`` of the rendered event is the image set's ARN when ``image_set_id`` is set, else the data store's
    (import job events name their data store, guide 20443). ``detail`` holds the detail fields after
    ``imagingVersion`` in the guide's order; ``source_image_set_id`` (a copy's source)
    becomes ``sourceImageSetArn`` (CopyImageSet copies within one data store).
    """

    event_id: str
    detail_type: str
    time: datetime
    datastore_id: str
    detail: Mapping[str, DetailValue]
    image_set_id: str | None = None
    source_image_set_id: str | None = None

    def __post_init__(self) -> None:
        if self.time.tzinfo is None or self.time.utcoffset() is None:
            raise ValueError(f"an event time must be aware, got naive {self.time!r}")

    @property
    def resource_key(self) -> str:
        """What the event is about, for ordering per resource: the image set, the import job or the data store."""
        if self.image_set_id is not None:
            return f"{self.datastore_id}/{self.image_set_id}"
        job_id = self.detail.get("jobId")
        return f"{self.datastore_id}/job/{job_id}" if isinstance(job_id, str) else self.datastore_id


@dataclass(frozen=True)
class PublishedEvent:
    """An event with its place in the feed: ``sequence`` grows by one per event, in commit order."""

    sequence: int
    event: ChangeEvent


@dataclass(frozen=True)
class SinkCursor:
    """How far a sink has been delivered (every event up to ``delivered`` is), and who delivers it now."""

    sink: str
    delivered: int
    lease_owner: str | None = None
    lease_until: datetime | None = None


def format_time(value: datetime) -> str:
    """EventBridge's ``time``: UTC, whole seconds, ``Z``."""
    return value.astimezone(UTC).strftime(TIME_FORMAT)


def render(event: ChangeEvent, origin: EventOrigin) -> dict[str, Any]:
    """The EventBridge event of guide 20268-20911."""
    if event.image_set_id is not None:
        resource = image_set_arn(origin.region, origin.account_id, event.datastore_id, event.image_set_id)
    else:
        resource = datastore_arn(origin.region, origin.account_id, event.datastore_id)
    detail: dict[str, Any] = {"imagingVersion": IMAGING_VERSION, **event.detail}
    if event.source_image_set_id is not None:
        detail["sourceImageSetArn"] = image_set_arn(
            origin.region, origin.account_id, event.datastore_id, event.source_image_set_id
        )
    return {
        "version": ENVELOPE_VERSION,
        "id": event.event_id,
        "detail-type": event.detail_type,
        "source": SOURCE,
        "account": origin.account_id,
        "time": format_time(event.time),
        "region": origin.region,
        "resources": [resource],
        "detail": detail,
    }
