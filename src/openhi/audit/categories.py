"""Which CloudTrail event category an operation belongs to, and whether it only reads (guide 20042).

The guide: every native HealthImaging operation is a *management* event except ``GetImageFrame``, which is a
*data* event; the DICOMweb WADO-RS operations are data events too. OpenHI's WADO-RS routes are every DICOMweb
``GetDICOM*`` operation (study / series / instance retrieval, metadata, frames, bulk data and the rendered and
thumbnail resources of PS3.18 §10.4, which retrieve the same pixels).

The guide says nothing about QIDO-RS (``SearchDICOM*``) and STOW-RS (``StoreDICOM*``). OpenHI records them as
management events, by analogy with their native counterparts ``SearchImageSets`` and ``StartDICOMImportJob``,
which the guide classifies as management events; so a search of patient data or a write is always in the trail,
even when data events are switched off (``audit_data_events = false``). docs/audit.md states this choice.

``readOnly`` follows the operation's verb, as CloudTrail's does: ``Get*``, ``List*`` and ``Search*`` only read.
"""

from __future__ import annotations

from dataclasses import dataclass

DATA_EVENT_NATIVE_OPERATIONS = frozenset({"GetImageFrame"})
WADO_RS_PREFIX = "GetDICOM"
READ_ONLY_PREFIXES = ("Get", "List", "Search")


@dataclass(frozen=True)
class Category:
    """How one call is recorded."""

    data_event: bool  # eventCategory "Data" / managementEvent false
    read_only: bool

    @property
    def event_category(self) -> str:
        """CloudTrail's ``eventCategory``."""
        return "Data" if self.data_event else "Management"


def categorize(surface: str, operation: str | None) -> Category:
    """The category of ``operation`` served on ``surface`` ("native", "dicomweb", "sts").

    A call no operation was matched for (unknown route, or a native request that failed authentication before
    it was routed) is a management event that is not read-only.
    """
    if operation is None:
        return Category(data_event=False, read_only=False)
    if surface == "dicomweb":
        data = operation.startswith(WADO_RS_PREFIX)
    else:
        data = surface == "native" and operation in DATA_EVENT_NATIVE_OPERATIONS
    return Category(data_event=data, read_only=operation.startswith(READ_ONLY_PREFIXES))
