"""The STOW-RS result and its Store Instances Response Module (PS3.18 §10.5.3, Annex I; DICOM JSON, F.2).

HTTP status (PS3.18 Table 10.5.3-1): 200 when every instance was stored without a warning, 202 when some
were stored and others failed or carry a warning, 409 when none was stored (the request was well formed;
a malformed request is answered 400 before anything is stored). The body:

- Retrieve URL (0008,1190, type 2): the study of the target resource (StoreDICOMStudy), or the one study of
  the stored instances; present without a value when there is none, or more than one.
- Referenced SOP Sequence (0008,1199): one item per stored instance with Referenced SOP Class / Instance UID,
  Retrieve URL (the instance's WADO-RS URL; ``?imageSetId=`` when it went to a non-primary image set, the
  only way to reach it, guide 1960-1990) and Warning Reason (0008,1196) when a warning applies.
- Failed SOP Sequence (0008,1198): one item per failed part with Referenced SOP Class / Instance UID when they
  could be read, and Failure Reason (0008,1197).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

RETRIEVE_URL = "00081190"
FAILED_SOP_SEQUENCE = "00081198"
REFERENCED_SOP_SEQUENCE = "00081199"
REFERENCED_SOP_CLASS_UID = "00081150"
REFERENCED_SOP_INSTANCE_UID = "00081155"
FAILURE_REASON = "00081197"
WARNING_REASON = "00081196"


@dataclass(frozen=True)
class StoredInstance:
    """One instance that joined an image set."""

    number: int  # the part's position in the request (1-based)
    sop_class_uid: str | None
    sop_instance_uid: str
    study_instance_uid: str
    series_instance_uid: str
    image_set_id: str
    is_primary: bool
    warning: int | None = None


@dataclass(frozen=True)
class FailedInstance:
    """One part that was not stored, with the reason (and a message for the server log)."""

    number: int
    reason: int
    message: str
    sop_class_uid: str | None = None
    sop_instance_uid: str | None = None


@dataclass
class StowResult:
    """What one Store transaction did."""

    target_study: str | None = None  # the study of StoreDICOMStudy's URL
    stored: list[StoredInstance] = field(default_factory=list)
    failed: list[FailedInstance] = field(default_factory=list)

    @property
    def status(self) -> int:
        """The HTTP status of PS3.18 Table 10.5.3-1."""
        if not self.stored:
            return 409
        if self.failed or any(s.warning is not None for s in self.stored):
            return 202
        return 200

    @property
    def study(self) -> str | None:
        """The study the response's Retrieve URL names, if there is exactly one."""
        if self.target_study:
            return self.target_study
        studies = {s.study_instance_uid for s in self.stored}
        return next(iter(studies)) if len(studies) == 1 else None


def _ui(value: str) -> dict[str, Any]:
    return {"vr": "UI", "Value": [value]}


def _us(value: int) -> dict[str, Any]:
    return {"vr": "US", "Value": [value]}


def _ur(value: str | None) -> dict[str, Any]:
    return {"vr": "UR", "Value": [value]} if value else {"vr": "UR"}


def study_url(base_url: str, study: str) -> str:
    """WADO-RS URL of a study under ``base_url`` (``.../datastore/{id}``)."""
    return f"{base_url}/studies/{quote(study, safe='.')}"


def instance_url(base_url: str, stored: StoredInstance) -> str:
    """WADO-RS URL of a stored instance; ``?imageSetId=`` when it is in a non-primary image set."""
    url = (
        f"{study_url(base_url, stored.study_instance_uid)}/series/{quote(stored.series_instance_uid, safe='.')}"
        f"/instances/{quote(stored.sop_instance_uid, safe='.')}"
    )
    return url if stored.is_primary else f"{url}?imageSetId={stored.image_set_id}"


def _referenced(base_url: str, stored: StoredInstance) -> dict[str, Any]:
    item: dict[str, Any] = {}
    if stored.sop_class_uid:
        item[REFERENCED_SOP_CLASS_UID] = _ui(stored.sop_class_uid)
    item[REFERENCED_SOP_INSTANCE_UID] = _ui(stored.sop_instance_uid)
    item[RETRIEVE_URL] = _ur(instance_url(base_url, stored))
    if stored.warning is not None:
        item[WARNING_REASON] = _us(stored.warning)
    return dict(sorted(item.items()))


def _failed(failed: FailedInstance) -> dict[str, Any]:
    item: dict[str, Any] = {}
    if failed.sop_class_uid:
        item[REFERENCED_SOP_CLASS_UID] = _ui(failed.sop_class_uid)
    if failed.sop_instance_uid:
        item[REFERENCED_SOP_INSTANCE_UID] = _ui(failed.sop_instance_uid)
    item[FAILURE_REASON] = _us(failed.reason)
    return dict(sorted(item.items()))


def response_body(result: StowResult, base_url: str) -> dict[str, Any]:
    """The Store Instances Response Module as a DICOM JSON object (attributes in tag order)."""
    study = result.study
    body: dict[str, Any] = {RETRIEVE_URL: _ur(study_url(base_url, study) if study else None)}
    if result.failed:
        body[FAILED_SOP_SEQUENCE] = {
            "vr": "SQ",
            "Value": [_failed(f) for f in sorted(result.failed, key=lambda f: f.number)],
        }
    if result.stored:
        body[REFERENCED_SOP_SEQUENCE] = {
            "vr": "SQ",
            "Value": [_referenced(base_url, s) for s in sorted(result.stored, key=lambda s: s.number)],
        }
    return body
