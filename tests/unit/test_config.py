"""Settings precedence: defaults < TOML file < OPENHI_* env < flags, each value with its source."""

from __future__ import annotations

from pathlib import Path

import pytest

from openhi.config import describe, load_settings
from openhi.errors import ValidationError


def test_defaults() -> None:
    settings, sources = load_settings(environ={})
    assert (settings.host, settings.port, settings.account_id, settings.region) == (
        "127.0.0.1",
        8080,
        "123456789012",
        "us-east-1",
    )
    assert settings.effective_index_url.startswith("sqlite:///")
    assert settings.effective_index_url.endswith("openhi-data/index.sqlite3")
    assert settings.effective_blob_url.endswith("openhi-data/blobs")
    assert set(sources.values()) == {"default"}


def test_precedence_and_sources(tmp_path: Path) -> None:
    config = tmp_path / "openhi.toml"
    config.write_text('[openhi]\nport = 9000\nregion = "eu-west-1"\nmax_active_datastores = 3\n')
    env = {"OPENHI_PORT": "9100", "OPENHI_ACCOUNT_ID": "210987654321"}
    settings, sources = load_settings(flags={"port": 9200, "host": None}, environ=env, config_file=config)
    assert settings.port == 9200
    assert sources["port"] == "flag"
    assert settings.account_id == "210987654321"
    assert sources["account_id"] == "env OPENHI_ACCOUNT_ID"
    assert settings.region == "eu-west-1"
    assert sources["region"] == f"file {config}"
    assert settings.max_active_datastores == 3
    assert sources["host"] == "default"


def test_config_file_from_env_and_top_level_keys(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text('index_url = "postgresql://db/x"\n')
    settings, _ = load_settings(environ={"OPENHI_CONFIG": str(config)})
    assert settings.effective_index_url == "postgresql://db/x"


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("nope = 1\n", "unknown setting"),
        ("port = [1\n", "not valid TOML"),
        ('port = "x"\n', "not a valid int"),
    ],
)
def test_bad_files_are_clear_errors(tmp_path: Path, text: str, fragment: str) -> None:
    config = tmp_path / "bad.toml"
    config.write_text(text)
    with pytest.raises(ValidationError, match=fragment):
        load_settings(environ={}, config_file=config)


@pytest.mark.parametrize(
    "env",
    [
        {"OPENHI_ACCOUNT_ID": "12"},
        {"OPENHI_REGION": "Mars"},
        {"OPENHI_PORT": "99999"},
        {"OPENHI_ACCESS_KEY_ID": "AKIA"},
        {"OPENHI_MAX_ACTIVE_DATASTORES": "-1"},
    ],
)
def test_invalid_values_are_refused(env: dict[str, str]) -> None:
    with pytest.raises(ValidationError):
        load_settings(environ=env)


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="does not exist"):
        load_settings(environ={}, config_file=tmp_path / "missing.toml")


def test_describe_masks_the_secret() -> None:
    settings, sources = load_settings(
        environ={"OPENHI_ACCESS_KEY_ID": "AKIAX", "OPENHI_SECRET_ACCESS_KEY": "very-secret"}
    )
    rows = {name: (value, source) for name, value, source in describe(settings, sources)}
    assert rows["secret_access_key"] == ("********", "env OPENHI_SECRET_ACCESS_KEY")
    assert rows["access_key_id"] == ("AKIAX", "env OPENHI_ACCESS_KEY_ID")
    assert "very-secret" not in str(rows)
