"""The staged instance: what the pipeline learned about one input file, kept until it joins an image set.

A worker process turns a DICOM file into a ``StagedInstance`` (normalized metadata by level, frame
descriptors of frames already written to the blob store, warnings) and the runner stores it, gzip JSON,
in the ``import_files`` row; the commit phase later merges staged instances into image set metadata. Keeping
it in the index rather than in memory bounds the server's memory whatever the job's size, and lets a
restarted server resume without re-processing staged files.
"""

from __future__ import annotations

import gzip
import json
from dataclasses import asdict, dataclass, field
from typing import Any

from openhi.dicom.normalize import GroupingKey


@dataclass(frozen=True)
class StagedInstance:
    """One imported SOP instance before it joins an image set (guide 4330-4395 for the level dicts)."""

    input_key: str
    sop_instance_uid: str
    grouping: GroupingKey
    patient: dict[str, Any]
    study: dict[str, Any]
    series: dict[str, Any]
    instance: dict[str, Any]
    instance_vrs: dict[str, str]
    stored_transfer_syntax: str
    image_frames: list[dict[str, Any]] = field(default_factory=list)
    stored_frame_sizes: list[int] = field(default_factory=list)  # bytes of each stored frame blob
    warnings: list[dict[str, Any]] = field(default_factory=list)

    @property
    def group_key(self) -> str:
        """Instances are grouped per series (guide 3217-3360)."""
        return self.grouping.series_instance_uid or ""

    def to_bytes(self) -> bytes:
        """gzip JSON, as stored in the index."""
        return gzip.compress(json.dumps(asdict(self), separators=(",", ":")).encode(), compresslevel=5)

    @classmethod
    def from_bytes(cls, data: bytes) -> StagedInstance:
        """Inverse of ``to_bytes``."""
        document = json.loads(gzip.decompress(data))
        document["grouping"] = GroupingKey(**document["grouping"])
        return cls(**document)
