"""``looks_like_uid``: the one UID syntax check of DICOMweb URLs, queries and STOW parts (PS3.5 §9.1)."""

from __future__ import annotations

import pytest

from openhi.dicom.uids import looks_like_uid


@pytest.mark.parametrize("text", ["1", "1.2.840.10008.1.2.1", "1.02.3", "9" * 64])
def test_accepts_digit_groups_up_to_64_characters(text: str) -> None:
    assert looks_like_uid(text)


@pytest.mark.parametrize("text", ["", "1.", ".1", "1..2", "1.2a", "1.2\n", "9" * 65, "not-a-uid"])
def test_refuses_everything_else(text: str) -> None:
    assert not looks_like_uid(text)
