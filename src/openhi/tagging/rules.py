"""Tag limits shared by every place that sets tags (guide 8867-9500)."""

from __future__ import annotations

from collections.abc import Mapping

from openhi.errors import ValidationError

MAX_TAGS_PER_RESOURCE = 50


def check_tag_count(current: Mapping[str, str], added: Mapping[str, str]) -> None:
    """Refuse a change that would leave a resource with more than 50 tags."""
    total = len(set(current) | set(added))
    if total > MAX_TAGS_PER_RESOURCE:
        raise ValidationError(
            f"Too many tags: the resource would have {total} tags, the maximum is {MAX_TAGS_PER_RESOURCE}",
            field="tags",
        )
