"""The ``cors_allowed_origins`` setting: comma-separated origins, ``*`` for any, empty for none."""

from __future__ import annotations

import pytest

from openhi.api.cors import cors_middleware, parse_origins
from openhi.errors import ValidationError


@pytest.mark.parametrize(
    ("setting", "expected"),
    [
        ("*", ("*",)),
        ("https://a.example, *", ("*",)),
        ("", ()),
        (" , ", ()),
        ("https://viewer.example", ("https://viewer.example",)),
        ("http://localhost:3000,https://viewer.example:8443", ("http://localhost:3000", "https://viewer.example:8443")),
    ],
)
def test_parse(setting: str, expected: tuple[str, ...]) -> None:
    assert parse_origins(setting) == expected


@pytest.mark.parametrize(
    "entry", ["viewer.example", "https://viewer.example/", "https://viewer.example/app", "http://"]
)
def test_not_an_origin(entry: str) -> None:
    with pytest.raises(ValidationError, match="cors_allowed_origins"):
        parse_origins(f"https://ok.example,{entry}")


def test_no_origins_no_middleware() -> None:
    assert cors_middleware(()) == []
    assert len(cors_middleware(("*",))) == 1
