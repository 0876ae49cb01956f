"""Root credentials: given, or generated once into the data dir with mode 0600."""

from __future__ import annotations

import stat
from pathlib import Path

from openhi.auth.credentials import load_or_create_root_key


def test_given_credentials_win(tmp_path: Path) -> None:
    key, generated = load_or_create_root_key("AKIAGIVEN", "secret", tmp_path)
    assert (key.access_key_id, key.secret_access_key, generated) == ("AKIAGIVEN", "secret", False)
    assert not (tmp_path / "credentials.json").exists()


def test_generated_once_private_and_reused(tmp_path: Path) -> None:
    data_dir = tmp_path / "nested" / "data"
    first, generated = load_or_create_root_key("", "", data_dir)
    assert generated
    assert first.access_key_id.startswith("AKIA")
    assert len(first.access_key_id) == 20
    assert len(first.secret_access_key) == 40
    path = data_dir / "credentials.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    second, generated_again = load_or_create_root_key("", "", data_dir)
    assert second == first
    assert not generated_again
