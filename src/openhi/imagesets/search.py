"""SearchImageSets (guide 4407-5624): criteria in, one page of image set summaries out.

The criteria are parsed first (``search.criteria``: ValidationException for anything malformed), then one
read-only unit of work checks the data store (ResourceNotFoundException), reads ``limit + 1`` matching image
sets from the index (ACTIVE and LOCKED ones: deleted image sets are never found) and the study counts of the
page (DICOMNumberOfStudyRelatedSeries / Instances). Pagination is keyset: the token carries the sort value
and id of the last image set served, and is bound to the data store and the canonical criteria, so a token
replayed with other criteria is refused (ValidationException), while image sets created or updated between
pages neither repeat nor shift the rest of the results.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from openhi.access import guard
from openhi.datastores.service import load_datastore
from openhi.errors import ValidationError
from openhi.imagesets.model import ImageSet
from openhi.index.port import Index, UnitOfWork
from openhi.search.criteria import SearchCursor, SearchQuery, Sort, SortField, parse_criteria
from openhi.search.tokens import TokenCodec

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 50  # model: SearchImageSetsRequestMaxResultsInteger 1..50


@dataclass(frozen=True)
class SearchHit:
    """One image set found, with the counts of its study over the data store's primary image sets."""

    image_set: ImageSet
    study_series: int | None = None
    study_instances: int | None = None


@dataclass(frozen=True)
class SearchPage:
    """One page of SearchImageSets: the hits, the sort applied (echoed) and the next page's token."""

    hits: list[SearchHit]
    sort: Sort
    next_token: str | None


def _scope(datastore_id: str, query: SearchQuery) -> str:
    return f"SearchImageSets:{datastore_id}:{query.digest()}"


def _position(query: SearchQuery, image_set: ImageSet) -> dict[str, Any]:
    if query.sort.field is SortField.UPDATED_AT:
        value: str | None = image_set.updated_at.isoformat()
    elif query.sort.field is SortField.CREATED_AT:
        value = image_set.created_at.isoformat()
    else:
        value = image_set.study_datetime
    return {"v": value, "i": image_set.image_set_id}


def _cursor(query: SearchQuery, position: Mapping[str, Any]) -> SearchCursor:
    value, image_set_id = position.get("v"), position.get("i")
    invalid = ValidationError("Invalid nextToken: it was not issued for this request", field="nextToken")
    if not isinstance(image_set_id, str) or not (value is None or isinstance(value, str)):
        raise invalid
    if query.sort.field is SortField.STUDY_DATE_AND_TIME:
        return SearchCursor(value, image_set_id)
    try:
        moment = datetime.fromisoformat(value or "")
    except ValueError as exc:
        raise invalid from exc
    if moment.utcoffset() is None:
        raise invalid
    return SearchCursor(moment, image_set_id)


class ImageSetSearch:
    """The SearchImageSets use case."""

    def __init__(self, index: Index, tokens: TokenCodec) -> None:
        self._index = index
        self._tokens = tokens

    def search(
        self,
        datastore_id: str,
        criteria: Mapping[str, Any] | None,
        next_token: str | None,
        max_results: int | None,
    ) -> SearchPage:
        """One page of the image sets of ``datastore_id`` that match ``criteria`` (the validated member)."""
        guard.require("SearchImageSets", datastore_id=datastore_id)
        query = parse_criteria(criteria)
        if max_results is not None and not 1 <= max_results <= MAX_PAGE_SIZE:
            raise ValidationError(f"maxResults must be between 1 and {MAX_PAGE_SIZE}", field="maxResults")
        limit = max_results or DEFAULT_PAGE_SIZE
        scope = _scope(datastore_id, query)
        after = _cursor(query, self._tokens.decode(scope, next_token)) if next_token else None

        def work(uow: UnitOfWork) -> tuple[list[ImageSet], dict[str, tuple[int, int]]]:
            load_datastore(uow, datastore_id)
            found = uow.image_sets.search(datastore_id, query, after, limit + 1)
            studies = sorted({s.grouping.study_instance_uid for s in found[:limit] if s.grouping.study_instance_uid})
            return found, uow.image_sets.study_counts(datastore_id, studies) if studies else {}

        found, counts = self._index.run(work, readonly=True)
        page, token = self._tokens.paginate(scope, found, limit, lambda last: _position(query, last))
        hits = []
        for image_set in page:
            series, instances = counts.get(image_set.grouping.study_instance_uid or "", (None, None))
            hits.append(SearchHit(image_set, series, instances))
        return SearchPage(hits, query.sort, token)
