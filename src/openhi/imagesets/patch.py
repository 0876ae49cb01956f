"""UpdateImageSetMetadata patches: ``updatableAttributes`` / ``removableAttributes`` applied to a document.

A patch is a JSON document shaped like the metadata (guide 6922-7873, aws-wire-api §8b)::

    {"SchemaVersion": 1.1, "Patient": {"DICOM": {...}}, "Study": {"DICOM": {...}, "Series": {"<SeriesUID>":
        {"DICOM": {...}, "Instances": {"<SOPUID>": {"DICOM": {...}, "DICOMVRs": {"001910F9": "DS"}}}}}}}

``updatableAttributes`` inserts or replaces the elements it names (a sequence is replaced whole, guide 6943);
``removableAttributes`` removes the elements it names when the value given is the stored one (guide 7497:
"Attribute key and value must match the existing attribute"), and an instance named with an empty object is
removed whole (guide 7034-7070, with ``force``, guide 6941). Removals are applied first, then updates, on a copy.

The constraints of guide 22644-22656 and 6936-6943 are checked element by element (see :mod:`.patch_rules`):
every refusal is a ValidationError naming the patch field and the element's path. Pure code: no I/O.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, NoReturn

from openhi.dicom.json_values import needs_vr_record
from openhi.dicom.levels import Level
from openhi.errors import ValidationError
from openhi.imagesets.document import frame_ids
from openhi.imagesets.patch_rules import (
    FORCE_KEYS,
    IDENTITY_KEYS,
    SERVICE_KEYS,
    VR_NAMES,
    Element,
    classify,
    dictionary_vr,
    drop_vrs,
    is_multi_valued,
    is_uid,
    is_vr_path,
    same_value,
    set_vrs,
    stored_value,
    structure_problem,
    vr_problem,
)

SCHEMA_VERSION = "1.1"
MAX_PATCH_BYTES = 10 * 1024
"""Guide 22770: UpdateImageSetMetadata accepts payloads of at most 10 KB."""

UPDATABLE = "updatableAttributes"
REMOVABLE = "removableAttributes"


@dataclass(frozen=True)
class PatchResult:
    """The patched document (a new object) and the frames it no longer references (removed instances)."""

    document: dict[str, Any]
    removed_frame_ids: set[str]


def parse_patch(data: bytes, field: str, max_bytes: int = MAX_PATCH_BYTES) -> dict[str, Any]:
    """The patch document in ``data`` (the blob, already base64-decoded); ValidationError naming ``field``."""
    if len(data) == 0:
        raise ValidationError(f"{field} is empty", field=field)
    if len(data) > max_bytes:
        limit = "the 10 KB" if max_bytes == MAX_PATCH_BYTES else f"the {max_bytes} bytes"
        raise ValidationError(f"{field} is {len(data)} bytes, more than {limit} a patch may have", field=field)
    try:
        patch = json.loads(bytes(data).decode("utf-8"), parse_constant=_no_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ValidationError(f"{field} is not a valid JSON document: {exc}", field=field) from exc
    if not isinstance(patch, dict):
        raise ValidationError(f"{field} must be a JSON object", field=field)
    _check_schema(patch, field)
    return patch


def _no_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not JSON")


def _check_schema(patch: dict[str, Any], field: str) -> None:
    version = patch.get("SchemaVersion")
    if isinstance(version, bool) or version not in (1.1, SCHEMA_VERSION):
        raise ValidationError(f"{field}: SchemaVersion must be 1.1", field=field)


def apply_updates(
    document: dict[str, Any],
    updatable: dict[str, Any] | None,
    removable: dict[str, Any] | None,
    *,
    force: bool,
    is_primary: bool,
) -> PatchResult:
    """``document`` with ``removable`` then ``updatable`` applied (the input is not modified)."""
    if updatable is None and removable is None:
        raise ValidationError("DICOMUpdates needs updatableAttributes or removableAttributes", field="DICOMUpdates")
    result: dict[str, Any] = copy.deepcopy(document)
    if removable is not None:
        _Patcher(_Rules(REMOVABLE, force, is_primary), result).remove(removable)
    if updatable is not None:
        _Patcher(_Rules(UPDATABLE, force, is_primary), result).update(updatable)
    return PatchResult(result, frame_ids(document) - frame_ids(result))


@dataclass(frozen=True)
class _Rules:
    field: str
    force: bool
    is_primary: bool

    def refuse(self, where: str, message: str) -> NoReturn:
        raise ValidationError(f"{self.field}: {where} {message}", field=self.field)


@dataclass
class _Target:
    """One ``DICOM`` object of the patch, and where it applies in the document."""

    level: Level
    where: str
    dicom: dict[str, Any]
    vrs: dict[str, str] = field(default_factory=dict)
    series: str | None = None
    sop: str | None = None


_ALLOWED = {
    "": ("SchemaVersion", "Patient", "Study"),
    "Patient": ("DICOM",),
    "Study": ("DICOM", "Series"),
    "Series": ("DICOM", "Instances"),
    "Instance": ("DICOM", "DICOMVRs"),
}
_LEVEL_HOME = {
    Level.PATIENT: "Patient.DICOM",
    Level.STUDY: "Study.DICOM",
    Level.SERIES: "Study.Series[<SeriesInstanceUID>].DICOM",
    Level.INSTANCE: "Study.Series[<SeriesInstanceUID>].Instances[<SOPInstanceUID>].DICOM",
}


class _Patcher:
    def __init__(self, rules: _Rules, document: dict[str, Any]) -> None:
        self.rules = rules
        self.document = document
        self.removed_instances: list[tuple[str, str]] = []

    # -- the patch's shape ----------------------------------------------------------------------------------

    def _object(self, value: Any, where: str, kind: str | None) -> dict[str, Any]:
        """``value`` as an object whose keys are strings (and, for ``kind``, among that part's members)."""
        if not isinstance(value, dict):
            self.rules.refuse(where or "the patch", "must be a JSON object")
        for key in value:
            if not isinstance(key, str):
                self.rules.refuse(where or "the patch", "has a key that is not a string")
            if kind is not None and key not in _ALLOWED[kind]:
                path = f"{where}.{key}" if where else key
                if key in SERVICE_KEYS:
                    self.rules.refuse(path, "is generated by HealthImaging and cannot be updated (guide 22649)")
                self.rules.refuse(path, f"is not part of a metadata patch here (expected {', '.join(_ALLOWED[kind])})")
        return value

    def _targets(self, patch: dict[str, Any]) -> Iterator[_Target]:
        """Every DICOM object of the patch, after checking its shape and that its modules exist (guide 22656)."""
        _check_schema(patch, self.rules.field)
        self._object(patch, "", "")
        patient = self._object(patch.get("Patient", {}), "Patient", "Patient")
        yield _Target(Level.PATIENT, "Patient", self._object(patient.get("DICOM", {}), "Patient.DICOM", None))
        study = self._object(patch.get("Study", {}), "Study", "Study")
        yield _Target(Level.STUDY, "Study", self._object(study.get("DICOM", {}), "Study.DICOM", None))
        stored_series = self.document["Study"]["Series"]
        for uid, series_value in self._object(study.get("Series", {}), "Study.Series", None).items():
            where = f"Study.Series[{uid}]"
            series = self._object(series_value, where, "Series")
            if uid not in stored_series:
                self.rules.refuse(where, "does not exist in the image set: a patch cannot add a series (guide 22656)")
            if not series and self.rules.field == REMOVABLE:
                self.rules.refuse(where, "names a whole series: remove its instances one by one")
            yield _Target(
                Level.SERIES, where, self._object(series.get("DICOM", {}), f"{where}.DICOM", None), series=uid
            )
            instances = self._object(series.get("Instances", {}), f"{where}.Instances", None)
            for sop, instance_value in instances.items():
                instance_where = f"{where}.Instances[{sop}]"
                instance = self._object(instance_value, instance_where, "Instance")
                if sop not in stored_series[uid]["Instances"]:
                    self.rules.refuse(
                        instance_where, "does not exist in the image set: a patch cannot add an instance (guide 22656)"
                    )
                if not instance and self.rules.field == REMOVABLE:
                    self.removed_instances.append((uid, sop))
                    continue
                dicom = self._object(instance.get("DICOM", {}), f"{instance_where}.DICOM", None)
                vrs = self._vrs(instance.get("DICOMVRs", {}), f"{instance_where}.DICOMVRs", dicom)
                yield _Target(Level.INSTANCE, instance_where, dicom, vrs, uid, sop)

    def _vrs(self, value: Any, where: str, dicom: dict[str, Any]) -> dict[str, str]:
        """A patch's DICOMVRs: dotted 8-hex keys of elements the same patch names, to VR names."""
        vrs = self._object(value, where, None)
        named = {found.vr_key for key in dicom if isinstance(found := classify(key), Element)}
        for key, vr in vrs.items():
            if not is_vr_path(key):
                self.rules.refuse(
                    f"{where}.{key}", "is not a DICOMVRs key (8 uppercase hex digits, dotted when nested)"
                )
            if not isinstance(vr, str) or vr not in VR_NAMES:
                self.rules.refuse(f"{where}.{key}", "must be a DICOM VR name such as DS or LO")
            if key.split(".")[0] not in named:
                self.rules.refuse(f"{where}.{key}", "gives the VR of an element this patch does not name in DICOM")
        return vrs

    def _entry(self, target: _Target) -> dict[str, Any]:
        """The document's object (holding ``DICOM``) that ``target`` applies to."""
        if target.level is Level.PATIENT:
            entry: dict[str, Any] = self.document["Patient"]
        elif target.level is Level.STUDY:
            entry = self.document["Study"]
        else:
            entry = self.document["Study"]["Series"][target.series]
            if target.level is Level.INSTANCE:
                entry = entry["Instances"][target.sop]
        return entry

    # -- element rules shared by both fields ----------------------------------------------------------------

    def _element(self, target: _Target, key: str, where: str) -> Element:
        rules = self.rules
        if key in SERVICE_KEYS:
            rules.refuse(where, "is generated by HealthImaging and cannot be updated or removed (guide 22649)")
        found = classify(key)
        if isinstance(found, str):
            rules.refuse(where, found)
        if found.level is not target.level:
            if found.private:
                rules.refuse(where, "is a private element: private elements belong to instances (guide 6940, 22648)")
            if not found.standard:
                rules.refuse(
                    where, "is not a DICOM attribute: non-standard attributes belong to instances (guide 22654)"
                )
            rules.refuse(
                where,
                f"is a {found.level.value}-level attribute: attributes cannot be updated across modules "
                f"(guide 22655); give it under {_LEVEL_HOME[found.level]}",
            )
        if key in IDENTITY_KEYS and rules.field == REMOVABLE:
            rules.refuse(where, f"identifies the {IDENTITY_KEYS[key].value.lower()} and cannot be removed")
        if key in FORCE_KEYS:
            if rules.is_primary:
                rules.refuse(
                    where,
                    "cannot be changed on a primary image set, even with force (guide 6937): copy the image set, "
                    "update the copy and promote it to primary (guide 7766-7873)",
                )
            if not rules.force:
                rules.refuse(where, "can only be changed with force (guide 22650, 6939)")
        if found.private and not rules.force:
            rules.refuse(
                where,
                "is a private element: private elements are added, updated or removed with force (guide 6940, 22648)",
            )
        return found

    # -- removableAttributes --------------------------------------------------------------------------------

    def remove(self, patch: dict[str, Any]) -> None:
        for target in list(self._targets(patch)):
            entry = self._entry(target)
            for key, value in target.dicom.items():
                self._remove_element(target, entry, key, value)
        for uid, sop in self.removed_instances:
            if not self.rules.force:
                self.rules.refuse(
                    f"Study.Series[{uid}].Instances[{sop}]", "can only be removed with force (guide 6941)"
                )
            series = self.document["Study"]["Series"]
            del series[uid]["Instances"][sop]
            if not series[uid]["Instances"]:
                del series[uid]
        if self.removed_instances and not self.document["Study"]["Series"]:
            self.rules.refuse("the patch", "would remove every instance of the image set: use DeleteImageSet")

    def _remove_element(self, target: _Target, entry: dict[str, Any], key: str, value: Any) -> None:
        where = f"{target.where}.DICOM.{key}"
        found = self._element(target, key, where)
        stored = entry["DICOM"]
        if key not in stored:
            self.rules.refuse(where, "is not in the image set metadata, so it cannot be removed")
        if not same_value(value, stored[key]):
            self.rules.refuse(
                where,
                "does not match the value in the image set: an attribute is removed only when its key and "
                "value match the existing attribute (guide 7497)",
            )
        del stored[key]
        if target.level is Level.INSTANCE and found.vr_key is not None:
            drop_vrs(entry, found.vr_key, keep_top=False)

    # -- updatableAttributes --------------------------------------------------------------------------------

    def update(self, patch: dict[str, Any]) -> None:
        renamed_instances: dict[tuple[str, str], str] = {}
        renamed_series: dict[str, str] = {}
        for target in list(self._targets(patch)):
            entry = self._entry(target)
            for key, value in target.dicom.items():
                self._update_element(target, entry, key, value)
            if target.series is None:
                continue
            if target.sop is not None and "SOPInstanceUID" in target.dicom:
                renamed_instances[(target.series, target.sop)] = target.dicom["SOPInstanceUID"]
            elif target.sop is None and "SeriesInstanceUID" in target.dicom:
                renamed_series[target.series] = target.dicom["SeriesInstanceUID"]
        self._rename_instances(renamed_instances)
        self._rename_series(renamed_series)

    def _update_element(self, target: _Target, entry: dict[str, Any], key: str, value: Any) -> None:
        rules = self.rules
        where = f"{target.where}.DICOM.{key}"
        found = self._element(target, key, where)
        if key in IDENTITY_KEYS and not is_uid(value):
            rules.refuse(where, "must be a valid UID (digits and dots, at most 64 characters)")
        if not found.standard and not found.private and not rules.force:
            rules.refuse(where, "is not a valid DICOM attribute: it can only be updated with force (guide 22654)")
        vr_key = found.vr_key
        stored_vrs: dict[str, str] = entry.get("DICOMVRs", {}) if target.level is Level.INSTANCE else {}
        given_vr = target.vrs.get(vr_key) if vr_key is not None else None
        known_vr = dictionary_vr(found)
        vr = given_vr or (stored_vrs.get(vr_key) if vr_key is not None else None) or known_vr
        if vr is None and found.tag is not None:
            rules.refuse(where, "has no known VR: give it in the instance's DICOMVRs (guide 7102-7141)")
        if given_vr and known_vr and found.standard and not rules.force and given_vr not in known_vr.split(" or "):
            rules.refuse(where, f"has VR {known_vr} in the DICOM dictionary, not {given_vr} (guide 22653)")
        problem = structure_problem(vr, value)
        if problem is not None:
            rules.refuse(where, problem)
        if not rules.force:
            if vr == "SQ":
                rules.refuse(
                    where,
                    "is a sequence (VR SQ): sequences can only be updated with force, and are then "
                    "replaced whole (guide 22651, 6943)",
                )
            if is_multi_valued(found, vr, value):
                rules.refuse(where, "is a multi-valued attribute: it can only be updated with force (guide 22652)")
            problem = vr_problem(vr, value) if vr is not None else None
            if problem is not None:
                rules.refuse(where, f"value {problem}: it can only be stored with force (guide 22653)")
        entry["DICOM"][key] = stored_value(vr, value)
        if target.level is Level.INSTANCE and vr_key is not None:
            drop_vrs(entry, vr_key, keep_top=True)
            vrs = dict(entry.get("DICOMVRs", {}))
            vrs.update({path: one for path, one in target.vrs.items() if path.split(".")[0] == vr_key})
            if vr_key not in vrs and vr is not None and found.tag is not None and needs_vr_record(found.tag, vr):
                vrs[vr_key] = vr
            set_vrs(entry, vrs)

    def _rename_instances(self, renamed: dict[tuple[str, str], str]) -> None:
        """SOPInstanceUID updated with force: the instance is now known by its new UID (unique in the set)."""
        changes = {old: new for old, new in renamed.items() if old[1] != new}
        if not changes:
            return
        series = self.document["Study"]["Series"]
        kept = {sop for uid, entry in series.items() for sop in entry["Instances"] if (uid, sop) not in changes}
        seen: set[str] = set()
        for (uid, sop), new in changes.items():
            if new in kept or new in seen:
                self.rules.refuse(
                    f"Study.Series[{uid}].Instances[{sop}].DICOM.SOPInstanceUID",
                    f"{new} is the SOP Instance UID of another instance: they must be unique in the image set",
                )
            seen.add(new)
        for uid in {uid for uid, _ in changes}:
            instances = series[uid]["Instances"]
            series[uid]["Instances"] = {changes.get((uid, sop), sop): entry for sop, entry in instances.items()}

    def _rename_series(self, renamed: dict[str, str]) -> None:
        """SeriesInstanceUID updated with force: the series is now known by its new UID."""
        changes = {old: new for old, new in renamed.items() if old != new}
        if not changes:
            return
        series = self.document["Study"]["Series"]
        kept = {uid for uid in series if uid not in changes}
        seen: set[str] = set()
        for uid, new in changes.items():
            if new in kept or new in seen:
                self.rules.refuse(
                    f"Study.Series[{uid}].DICOM.SeriesInstanceUID",
                    f"{new} is the UID of another series of the image set",
                )
            seen.add(new)
        self.document["Study"]["Series"] = {changes.get(uid, uid): entry for uid, entry in series.items()}
