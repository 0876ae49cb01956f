"""``openhi keys <command>``: the keys of encryption at rest (docs/encryption.md), with no server needed.

Takes the settings flags of ``openhi serve`` (``--config``, ``--data-dir``, ``--index-url`` ...) so it reaches the same
index and master key file. Running servers see a change within ``data_key_cache_seconds`` (they re-read the master
key file when it changes). Output is JSON on stdout; never a key, only ids and versions. A failure prints one line
``openhi: <message>`` on stderr and exits with status 2.

- ``list [--datastore-id ID]``: the master keys (current, in use) and the data store key versions.
- ``rotate --datastore-id ID``: a new version of the data store's key; new objects are sealed with it, the older
  versions stay to open what they sealed (no object is rewritten).
- ``rotate-master``: a new master key becomes current and every data store key it does not wrap yet is re-wrapped
  with it (only the wrapped keys in the index change); ``rewrap-master`` finishes an interrupted re-wrap.
- ``prune-master``: drop the master keys that wrap nothing any more (after ``rotate-master``).
"""

from __future__ import annotations

import argparse
import json
from datetime import UTC
from typing import Any

from openhi.config import Settings
from openhi.crypto import master
from openhi.crypto.keyring import DatastoreKeys
from openhi.crypto.model import StoredDataKey
from openhi.datastores.service import require_datastore_id


def _key(key: StoredDataKey) -> dict[str, Any]:
    return {
        "DatastoreId": key.datastore_id,
        "Version": key.version,
        "WrappedBy": key.kind.value,
        "WrappingKeyId": key.wrapping_key_id,
        "CreatedAt": key.created_at.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "LegacyPlaintext": key.legacy_plaintext,
    }


def _list(keys: DatastoreKeys, args: argparse.Namespace) -> dict[str, Any]:
    stored = keys.versions(require_datastore_id(args.datastore_id)) if args.datastore_id else keys.all_versions()
    in_use = keys.master_keys_in_use()
    current = keys.master.current_id
    masters = [
        {"KeyId": key_id, "Current": key_id == current, "InUse": key_id in in_use} for key_id in keys.master.ids()
    ]
    return {"MasterKeyFile": str(keys.master.path), "MasterKeys": masters, "DatastoreKeys": [_key(k) for k in stored]}


def _rotate(keys: DatastoreKeys, args: argparse.Namespace) -> dict[str, Any]:
    return _key(keys.rotate(require_datastore_id(args.datastore_id)))


def _rewrap(keys: DatastoreKeys) -> dict[str, Any]:
    return {"MasterKeyId": keys.master.current_id, "Rewrapped": keys.rewrap_master()}


def _rotate_master(keys: DatastoreKeys, args: argparse.Namespace) -> dict[str, Any]:
    previous = keys.master.ids()
    master.rotate(keys.master.path)
    return {**_rewrap(keys), "PreviousMasterKeyIds": previous}


def _prune_master(keys: DatastoreKeys, args: argparse.Namespace) -> dict[str, Any]:
    return {"Removed": master.prune(keys.master.path, keys.master_keys_in_use())}


COMMANDS = {
    "list": (_list, "the master keys and the data store key versions (ids only, never a key)"),
    "rotate": (_rotate, "a new version of a data store's key (objects are not rewritten)"),
    "rotate-master": (_rotate_master, "a new master key, then re-wrap every data store key with it"),
    "rewrap-master": (lambda keys, _: _rewrap(keys), "re-wrap the data store keys an older master key wraps"),
    "prune-master": (_prune_master, "drop the master keys that wrap no data store key"),
}


def add_keys_commands(commands: Any, common: argparse.ArgumentParser) -> None:
    """Register ``openhi keys <command>``; ``common`` holds the settings flags."""
    keys = commands.add_parser("keys", help="encryption at rest: rotate and list data store and master keys")
    subcommands = keys.add_subparsers(dest="keys_command", required=True)
    for name, (_, help_text) in COMMANDS.items():
        parser = subcommands.add_parser(name, parents=[common], help=help_text)
        if name in ("list", "rotate"):
            parser.add_argument("--datastore-id", required=name == "rotate", help="the data store (32 characters)")


def run_keys(args: argparse.Namespace, settings: Settings) -> int:
    """Run one ``openhi keys`` command; domain errors propagate to ``main`` (one line, exit status 2)."""
    from openhi.bootstrap import open_datastore_keys

    keys, index = open_datastore_keys(settings)
    try:
        result = COMMANDS[args.keys_command][0](keys, args)
    finally:
        index.close()
    print(json.dumps(result, indent=2))
    return 0
