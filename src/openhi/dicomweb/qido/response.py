"""QIDO-RS results as PS3.18 F.2 DICOM JSON objects, with the attributes the request asks for.

Each result carries its level's default attributes (``fields.DEFAULTS``), the matching attributes, what
``includefield`` names (a dotted path keeps only the named attributes of the sequence's items, guide 2308-2316),
and with ``all`` the level's list (``fields.ALL``). Private data elements are returned only when their creator is
given as a query parameter and equals the one in the data (guide 2318-2326). Values are converted by
``dicom.dicom_json.convert``; the counts, ModalitiesInStudy, InstanceAvailability and RetrieveURL are computed
(PS3.18 Table 6.7.1-2). Bulk values at the instance level become BulkDataURIs of the instance (guide 2328);
study and series attributes have no instance to serve them from, so they are answered without a value.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from openhi.catalog import fields
from openhi.catalog.derive import read_attributes
from openhi.catalog.model import CatalogStudy, InstanceRow, SeriesRow
from openhi.catalog.query import Level
from openhi.dicom.dicom_json import DicomJson, convert
from openhi.dicom.json_values import BULK_REFERENCE_KEY, is_private, key_to_tag, tag_key
from openhi.dicomweb.qido.params import IncludeTree, QidoQuery, is_private_creator

type Attributes = tuple[dict[str, Any], dict[str, str]]


def _creator_of(tag: int) -> int:
    """The private creator element of a private data element (gggg,xxyy -> gggg,00xx)."""
    return (tag & 0xFFFF0000) | ((tag >> 8) & 0xFF)


def _project(value: Any, tree: IncludeTree) -> Any:
    """A sequence's items with only the attributes of ``tree``."""
    if not isinstance(value, list):
        return value
    return [_select_tree(item, tree) for item in value if isinstance(item, dict)]


def _tagged(obj: Mapping[str, Any]) -> Iterator[tuple[str, int, Any]]:
    """(key, tag, value) of each attribute of a ``DICOM`` object; keys that name no tag are skipped."""
    for key, value in obj.items():
        try:
            tag = key_to_tag(key)
        except ValueError:
            continue
        yield key, tag, value


def _select_tree(obj: Mapping[str, Any], tree: IncludeTree) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, tag, value in _tagged(obj):
        if tag in tree:
            sub = tree[tag]
            out[key] = value if sub is None else _project(value, sub)
    return out


class Selector:
    """Chooses the attributes of one result level from its stored ``DICOM`` object."""

    def __init__(self, query: QidoQuery, level: Level) -> None:
        self._query = query
        allowed = fields.ALL[level] if query.include_all else frozenset()
        self._everything = query.include_all and allowed is None
        self._whole = fields.DEFAULTS[level] | (allowed or frozenset())
        self._wanted = self._whole | frozenset(query.include)

    def wants(self, tag: int) -> bool:
        """Whether a (computed) attribute belongs in the answer."""
        return self._everything or tag in self._wanted

    def _private_ok(self, tag: int, obj: Mapping[str, Any]) -> bool:
        if is_private_creator(tag):
            return True
        creator = _creator_of(tag)
        asked = self._query.creators.get(creator)
        stored = obj.get(tag_key(creator))
        return asked is not None and isinstance(stored, str) and stored.strip() == asked

    def select(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        """The attributes of ``obj`` that go into the answer."""
        out: dict[str, Any] = {}
        for key, tag, value in _tagged(obj):
            if tag in fields.PIXEL_DATA:
                continue
            if self._everything:
                out[key] = value
                continue
            if tag not in self._wanted:
                continue
            if is_private(tag) and not self._private_ok(tag, obj):
                continue
            sub = self._query.include.get(tag)
            out[key] = value if sub is None or tag in self._whole else _project(value, sub)
        return out


def _merge(*levels: Attributes) -> Attributes:
    dicom: dict[str, Any] = {}
    vrs: dict[str, str] = {}
    for level_dicom, level_vrs in levels:
        dicom.update(level_dicom)
        vrs.update(level_vrs)
    return dicom, vrs


def _drop_bulk(value: Any) -> Any:
    if isinstance(value, dict):
        return None if BULK_REFERENCE_KEY in value else {k: _drop_bulk(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_drop_bulk(item) for item in value]
    return value


def _computed(tag: int, vr: str, values: list[Any]) -> tuple[str, dict[str, Any]]:
    return tag_key(tag), ({"vr": vr, "Value": values} if values else {"vr": vr})


def _finish(converted: DicomJson, extra: list[tuple[str, dict[str, Any]]]) -> DicomJson:
    converted.update(extra)
    return dict(sorted(converted.items()))


class Answers:
    """Builds the DICOM JSON of results; ``base`` is ``{scheme}://{host}/datastore/{id}`` (for RetrieveURL)."""

    def __init__(self, query: QidoQuery, base: str) -> None:
        self._query = query
        self._base = base
        self._selectors: dict[Level, Selector] = {}
        self._owners: dict[tuple[str, str], Attributes] = {}  # one answer's rows share their series rows

    def _selector(self, level: Level) -> Selector:
        found = self._selectors.get(level)
        if found is None:
            found = self._selectors[level] = Selector(self._query, level)
        return found

    def _owner_attributes(self, key: tuple[str, str], owner: SeriesRow) -> Attributes:
        """The merged study and series attributes of a series row, parsed once per answer."""
        found = self._owners.get(key)
        if found is None:
            series = owner.series
            found = self._owners[key] = _merge(
                read_attributes(series.study_attributes), read_attributes(series.attributes)
            )
        return found

    def study(self, study: CatalogStudy) -> DicomJson:
        """One study result."""
        selector = self._selector(Level.STUDY)
        dicom, vrs = read_attributes(study.attributes)
        converted = convert(_drop_bulk(selector.select(dicom)), vrs=vrs)
        extra = [
            _computed(tag, vr, values)
            for tag, vr, values in (
                (fields.MODALITIES_IN_STUDY, "CS", list(study.modalities)),
                (fields.STUDY_RELATED_SERIES, "IS", [study.series_count]),
                (fields.STUDY_RELATED_INSTANCES, "IS", [study.instance_count]),
                (fields.INSTANCE_AVAILABILITY, "CS", ["ONLINE"]),
                (fields.RETRIEVE_URL, "UR", [f"{self._base}/studies/{study.study_uid}"]),
            )
            if selector.wants(tag)
        ]
        return _finish(converted, extra)

    def series(self, row: SeriesRow) -> DicomJson:
        """One series result (its study's attributes are available to ``includefield``)."""
        selector = self._selector(Level.SERIES)
        dicom, vrs = _merge(read_attributes(row.series.study_attributes), read_attributes(row.series.attributes))
        converted = convert(_drop_bulk(selector.select(dicom)), vrs=vrs)
        url = f"{self._base}/studies/{row.series.study_uid}/series/{row.series.series_uid}"
        extra = [
            _computed(tag, vr, values)
            for tag, vr, values in (
                (fields.SERIES_RELATED_INSTANCES, "IS", [row.series.instance_count]),
                (fields.INSTANCE_AVAILABILITY, "CS", ["ONLINE"]),
                (fields.RETRIEVE_URL, "UR", [url]),
            )
            if selector.wants(tag)
        ]
        return _finish(converted, extra)

    def instance(self, row: InstanceRow, series: Mapping[tuple[str, str], SeriesRow]) -> DicomJson:
        """One instance result; ``series`` maps (image set id, series UID) to the series row it belongs to."""
        selector = self._selector(Level.INSTANCE)
        instance = row.instance
        key = (row.image_set_id, instance.series_uid)
        owner = series.get(key)
        levels: list[Attributes] = [] if owner is None else [self._owner_attributes(key, owner)]
        dicom, vrs = _merge(*levels, read_attributes(instance.attributes))
        url = f"{self._base}/studies/{instance.study_uid}/series/{instance.series_uid}/instances/{instance.sop_uid}"
        bulk_uri: Callable[[str], str] = lambda reference: f"{url}/bulkdata/{reference}"  # noqa: E731
        converted = convert(selector.select(dicom), vrs=vrs, bulk_uri=bulk_uri)
        extra = [
            _computed(tag, vr, values)
            for tag, vr, values in (
                (fields.INSTANCE_AVAILABILITY, "CS", ["ONLINE"]),
                (fields.RETRIEVE_URL, "UR", [url]),
            )
            if selector.wants(tag)
        ]
        return _finish(converted, extra)
