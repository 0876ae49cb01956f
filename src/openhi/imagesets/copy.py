"""CopyImageSet as pure functions: what to copy, and the destination's metadata document afterwards.

Guide 7874-7890 (notes), 7891-8040 (CLI examples 1-3), 7766-7873 (the workflows that use copy), quotas 22767.

- ``parse_copiable`` reads ``DICOMCopies.copiableAttributes``, a JSON *string* (aws-wire-api.md §4, 1..260000
  characters) such as ``{"SchemaVersion": "1.1", "Study": {"Series": {"<series>": {"Instances": {"<sop>": {}}}}}}``.
  ``SchemaVersion`` may be the string "1.1" or the number 1.1 (both appear in the guide's SDK examples) or be left
  out. Members other than those shown, an instance value other than ``{}``, and a series that names no instance
  are refused: the selection picks "one or more SOP instances" (guide 7886) and nothing else.
- ``select`` cuts the selected series / instances out of the source document (the whole document without a
  selection); a series or instance the source does not hold is a ValidationException.
- ``copy_into`` builds the destination's document:

  * no destination (example 1, guide 7882): a new image set holding the selection, with the destination's
    DatastoreID / ImageSetID;
  * into an existing image set (example 2, "merge two image sets", guide 7876): the selected instances join the
    destination. Source and destination must have consistent metadata unless ``force`` (guide 7888). "Consistent"
    means equal grouping elements, the seven elements that split one DICOM series into several image sets at import
    (guide 4270-4290, which 7888 refers to): Patient ID, Study Instance UID, Study ID, Accession Number, Study Date,
    Series Instance UID, Series Number. Each selected series is compared with the destination series of the same
    UID, else with the destination's first series; an element present on one side only is a difference. When
    consistent, the source's Patient / Study / Series elements update the destination's (as the latest import
    does, ``document.merge``), so values outside the grouping elements follow the copied data;
  * with ``force`` (example 3, guide 7889): the destination keeps its Patient / Study / Series elements untouched
    and only instances are added. An instance of a series the destination does not hold goes into the destination's
    first series, so the image set keeps its one series and its grouping elements;
  * a destination holding no series yet is filled like a new image set (nothing to be inconsistent with).

- SOP Instance UIDs must be unique in the image set (guide 7885): a selected instance the destination already
  holds (in any series) is refused, **with or without** ``force``: the guide gives ``force`` only for inconsistent
  Patient/Study/Series metadata (7888-7889), never for uniqueness, and an import-like "replace" would silently drop
  the destination's instance and its frames.
- At most 1,000 image frames per CopyImageSet request (quota table 22767, adjustable: ``max_frames``); more is
  ServiceQuotaExceededException (``QuotaExceededError``), checked before anything else.
- Frames are shared, not duplicated: instance entries keep their ``ImageFrames`` (IDs included) and the plan lists
  the frame ids that now also belong to the destination.

Inputs are never modified. The caller (the service) owns versions, locks, promoteToPrimary and storage.
"""

from __future__ import annotations

import json
from copy import deepcopy
from dataclasses import dataclass
from typing import Any

from openhi.dicom.normalize import GroupingKey
from openhi.errors import QuotaExceededError, ValidationError
from openhi.imagesets.document import SCHEMA_VERSION

MAX_FRAMES_PER_COPY = 1000  # guide 22767
MAX_COPIABLE_LENGTH = 260_000  # aws-wire-api.md: CopiableAttributes len 1..260000
FIELD = "copiableAttributes"


@dataclass(frozen=True)
class CopyPlan:
    """The destination's document after the copy, the frame ids it gained, and its grouping elements."""

    document: dict[str, Any]
    copied_frame_ids: set[str]
    grouping: GroupingKey


def _invalid(message: str) -> ValidationError:
    return ValidationError(f"copiableAttributes: {message}", field=FIELD)


def _object(value: object, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _invalid(f"{where} must be a JSON object")
    return value


def _members(value: object, where: str, allowed: frozenset[str]) -> dict[str, Any]:
    value = _object(value, where)
    unknown = sorted(set(value) - allowed)
    if unknown:
        raise _invalid(f"{where} has unsupported member(s) {', '.join(unknown)}")
    return value


def _check_selection(selection: object) -> dict[str, set[str]]:
    """The selection as {series UID: {SOP UIDs}}; ValidationError when its shape is wrong."""
    top = _members(selection, "the document", frozenset({"SchemaVersion", "Study"}))
    if "SchemaVersion" in top and str(top["SchemaVersion"]) != SCHEMA_VERSION:
        raise _invalid(f"SchemaVersion must be {SCHEMA_VERSION}, not {top['SchemaVersion']!r}")
    if "Study" not in top:
        raise _invalid("Study.Series is required")
    study = _members(top["Study"], "Study", frozenset({"Series"}))
    series_map = _object(study.get("Series"), "Study.Series")
    if not series_map:
        raise _invalid("Study.Series names no series")
    wanted: dict[str, set[str]] = {}
    for series_uid, series in series_map.items():
        where = f"series {series_uid}"
        members = _members(series, where, frozenset({"Instances"}))
        instances = _object(members.get("Instances"), f"{where} Instances")
        if not instances:
            raise _invalid(f"{where} names no instance")
        for sop_uid, value in instances.items():
            if value != {}:
                raise _invalid(f"instance {sop_uid} of {where} must be an empty object {{}}")
        wanted[series_uid] = set(instances)
    return wanted


def parse_copiable(text: str | None) -> dict[str, Any] | None:
    """The selection in ``copiableAttributes`` (None: copy everything); ValidationError when it is invalid."""
    if text is None:
        return None
    if not 1 <= len(text) <= MAX_COPIABLE_LENGTH:
        raise _invalid(f"length must be 1..{MAX_COPIABLE_LENGTH} characters")
    try:
        selection = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise _invalid(f"not valid JSON ({exc})") from exc
    _check_selection(selection)
    checked: dict[str, Any] = selection
    return checked


def select(source: dict[str, Any], selection: dict[str, Any] | None) -> dict[str, Any]:
    """The part of ``source`` to copy: a document with only the selected series and instances (a deep copy)."""
    if selection is None:
        return deepcopy(source)
    wanted = _check_selection(selection)
    source_series: dict[str, Any] = source["Study"]["Series"]
    chosen: dict[str, Any] = {}
    for series_uid, sop_uids in wanted.items():
        series = source_series.get(series_uid)
        if series is None:
            raise _invalid(f"series {series_uid} is not in the source image set")
        missing = sorted(sop_uids - set(series["Instances"]))
        if missing:
            raise _invalid(f"instance(s) {', '.join(missing)} of series {series_uid} are not in the source image set")
        chosen[series_uid] = {
            **{key: deepcopy(value) for key, value in series.items() if key != "Instances"},
            "Instances": {sop: deepcopy(entry) for sop, entry in series["Instances"].items() if sop in sop_uids},
        }
    selected = {key: deepcopy(value) for key, value in source.items() if key != "Study"}
    selected["Study"] = {
        **{key: deepcopy(value) for key, value in source["Study"].items() if key != "Series"},
        "Series": chosen,
    }
    return selected


def _text(obj: dict[str, Any], key: str) -> str | None:
    value = obj.get(key)
    return value if isinstance(value, str) else None


def _grouping(document: dict[str, Any], series_uid: str | None) -> GroupingKey:
    patient: dict[str, Any] = document.get("Patient", {}).get("DICOM", {})
    study: dict[str, Any] = document.get("Study", {}).get("DICOM", {})
    series: dict[str, Any] = {}
    if series_uid is not None:
        series = document["Study"]["Series"][series_uid].get("DICOM", {})
    return GroupingKey(
        study_date=_text(study, "StudyDate"),
        accession_number=_text(study, "AccessionNumber"),
        patient_id=_text(patient, "PatientID"),
        study_instance_uid=_text(study, "StudyInstanceUID"),
        study_id=_text(study, "StudyID"),
        series_instance_uid=_text(series, "SeriesInstanceUID") or (series_uid or None),
        series_number=_text(series, "SeriesNumber"),
    )


def _series_uids(document: dict[str, Any]) -> list[str]:
    return list(document.get("Study", {}).get("Series", {}))


def grouping_of(document: dict[str, Any]) -> GroupingKey:
    """The seven grouping elements (guide 4270-4290) of the document's Patient, Study and first Series objects."""
    uids = _series_uids(document)
    return _grouping(document, uids[0] if uids else None)


def _frames(document: dict[str, Any]) -> list[str]:
    return [
        frame["ID"]
        for series in document["Study"]["Series"].values()
        for instance in series["Instances"].values()
        for frame in instance.get("ImageFrames", [])
    ]


def _describe(key: GroupingKey, other: GroupingKey) -> str:
    names = {
        "patient_id": "PatientID",
        "study_instance_uid": "StudyInstanceUID",
        "study_id": "StudyID",
        "accession_number": "AccessionNumber",
        "study_date": "StudyDate",
        "series_instance_uid": "SeriesInstanceUID",
        "series_number": "SeriesNumber",
    }
    return ", ".join(
        f"{dicom} {getattr(key, field)!r} != {getattr(other, field)!r}"
        for field, dicom in names.items()
        if getattr(key, field) != getattr(other, field)
    )


def _check_unique(selected: dict[str, Any], destination: dict[str, Any] | None) -> None:
    seen: set[str] = set()
    if destination is not None:
        seen = {sop for series in destination["Study"]["Series"].values() for sop in series["Instances"]}
    clashes: list[str] = []
    for series in selected["Study"]["Series"].values():
        for sop in series["Instances"]:
            if sop in seen:
                clashes.append(sop)
            seen.add(sop)
    if clashes:
        shown = ", ".join(sorted(set(clashes))[:10])
        raise ValidationError(
            f"SOP Instance UIDs must be unique in the image set; the destination already holds {shown}"
        )


def _new_document(selected: dict[str, Any], datastore_id: str, destination_id: str) -> dict[str, Any]:
    document = deepcopy(selected)
    document["SchemaVersion"] = SCHEMA_VERSION
    document["DatastoreID"] = datastore_id
    document["ImageSetID"] = destination_id
    return document


def _merge(selected: dict[str, Any], destination: dict[str, Any], *, force: bool) -> dict[str, Any]:
    merged = deepcopy(destination)
    target_series: dict[str, Any] = merged["Study"]["Series"]
    first = next(iter(target_series))
    if not force:
        dest_uids = set(target_series)
        for series_uid in selected["Study"]["Series"]:
            theirs = _grouping(destination, series_uid if series_uid in dest_uids else first)
            ours = _grouping(selected, series_uid)
            if ours != theirs:
                raise ValidationError(
                    "Source and destination image sets have inconsistent metadata "
                    f"({_describe(ours, theirs)}); use force to copy anyway"
                )
        merged["Patient"]["DICOM"].update(deepcopy(selected.get("Patient", {}).get("DICOM", {})))
        merged["Study"]["DICOM"].update(deepcopy(selected["Study"].get("DICOM", {})))
    for series_uid, series in selected["Study"]["Series"].items():
        if series_uid in target_series:
            target = target_series[series_uid]
            if not force:
                target["DICOM"].update(deepcopy(series.get("DICOM", {})))
        else:  # only reachable with force: the destination keeps its one series
            target = target_series[first]
        target["Instances"].update(deepcopy(series["Instances"]))
    return merged


def copy_into(
    selected: dict[str, Any],
    destination: dict[str, Any] | None,
    *,
    datastore_id: str,
    destination_id: str,
    force: bool,
    max_frames: int = MAX_FRAMES_PER_COPY,
) -> CopyPlan:
    """The destination document once ``selected`` (from ``select``) is copied into it (module docstring rules)."""
    copied = _frames(selected)
    if len(copied) > max_frames:
        raise QuotaExceededError(
            f"CopyImageSet copies {len(copied)} image frames; at most {max_frames} are allowed per request"
        )
    _check_unique(selected, destination)
    if destination is None or not _series_uids(destination):
        document = _new_document(selected, datastore_id, destination_id)
    else:
        document = _merge(selected, destination, force=force)
        document["DatastoreID"] = datastore_id
        document["ImageSetID"] = destination_id
    return CopyPlan(document=document, copied_frame_ids=set(copied), grouping=grouping_of(document))
