"""Where imported instances go: the primary image set of their series, or a non-primary one.

Guide 3217-3360 and 4248-4406: instances of one series whose grouping elements (Study Date, Accession
Number, Patient ID, Study Instance UID, Study ID, Series Instance UID, Series Number; guide 4270-4290)
agree with the series' primary image set join it (a new version); across jobs too. Instances that
conflict with it go to a non-primary image set, one per distinct set of grouping elements. When the series
has no primary image set yet, the elements of the first instance of the job (in input order) define it.
Pure functions: the commit step applies the plan.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from openhi.dicom.normalize import GroupingKey
from openhi.imagesets.staged import StagedInstance


@dataclass
class Placement:
    """Instances bound for one image set: the existing primary (``image_set_id`` set) or a new one."""

    grouping: GroupingKey
    is_primary: bool
    image_set_id: str | None = None
    instances: list[StagedInstance] = field(default_factory=list)


def plan(
    instances: Sequence[StagedInstance], primary_id: str | None, primary_grouping: GroupingKey | None
) -> list[Placement]:
    """Split one series' staged instances into placements, the primary first."""
    placements: dict[GroupingKey, Placement] = {}
    primary_key = primary_grouping
    if primary_id is not None and primary_key is not None:
        placements[primary_key] = Placement(primary_key, True, primary_id)
    for staged in instances:
        if primary_key is None:
            primary_key = staged.grouping
            placements[primary_key] = Placement(primary_key, True)
        placement = placements.get(staged.grouping)
        if placement is None:
            placement = placements[staged.grouping] = Placement(staged.grouping, False)
        placement.instances.append(staged)
    return [p for p in placements.values() if p.instances]
