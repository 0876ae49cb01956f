"""Root credentials: taken from settings, or generated once and kept in the data dir (mode 0600).

The root access key pair signs requests exactly like an AWS access key (SigV4). When the settings give
none, the first start generates a pair that looks like AWS's (``AKIA`` + 16 base32 characters, a
40-character secret), writes it to ``{data_dir}/credentials.json`` readable only by its owner, and the
CLI prints it once. Several server processes sharing one index must be given the same pair through
settings (the file is per data dir). Keys are looked up for SigV4 by the principal directory
(``access.directory``), which also knows the IAM users' keys and STS session keys.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

CREDENTIALS_FILE = "credentials.json"


@dataclass(frozen=True)
class AccessKey:
    """An access key pair."""

    access_key_id: str
    secret_access_key: str


def generate_access_key() -> AccessKey:
    """A random key pair shaped like AWS's."""
    key_id = "AKIA" + base64.b32encode(secrets.token_bytes(10)).decode()[:16]
    secret = base64.b64encode(secrets.token_bytes(30)).decode().replace("/", "+")[:40]
    return AccessKey(key_id, secret)


def _read(path: Path) -> AccessKey:
    document = json.loads(path.read_text())
    return AccessKey(document["access_key_id"], document["secret_access_key"])


def _write_private(path: Path, key: AccessKey) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = json.dumps({"access_key_id": key.access_key_id, "secret_access_key": key.secret_access_key})
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(payload + "\n")


def load_or_create_root_key(access_key_id: str, secret_access_key: str, data_dir: Path) -> tuple[AccessKey, bool]:
    """The root key and whether it was generated just now (so the caller prints it once).

    Given values win; else ``{data_dir}/credentials.json``; else a new pair is generated and stored.
    A concurrent first start of two processes on one data dir both end with the stored pair.
    """
    if access_key_id and secret_access_key:
        return AccessKey(access_key_id, secret_access_key), False
    path = data_dir / CREDENTIALS_FILE
    if path.exists():
        return _read(path), False
    key = generate_access_key()
    try:
        _write_private(path, key)
    except FileExistsError:
        return _read(path), False
    return key, True
