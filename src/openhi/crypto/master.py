"""The master keys: what wraps data store keys in the service-owned key mode (guide 20970-20990, "AWS owned keys").

A JSON file, readable only by its owner (0600), like the root credentials (``auth/credentials.py``)::

    {"format": "openhi-master-keys/1", "current": "<id>",
     "keys": [{"id": "<id>", "key": "<base64 of 32 bytes>", "createdAt": "2027-01-10T12:00:00Z"}, ...]}

Generated at first start when missing (``{data_dir}/master-keys.json`` by default); several servers sharing one
index must share the file (setting ``master_key_file``). A key's id is a truncated SHA-256 of it
(``envelope.key_id``), so the same key has the same id everywhere and a server missing a key can say which.
``rotate`` adds a key and makes it current (``openhi keys rotate-master`` then re-wraps every data store key with
it); ``prune`` drops keys that no longer wrap anything. Servers re-read the file when it changes, so a rotation
done by the CLI reaches running servers without a restart. Every write is atomic (temp file + ``os.replace``).
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from openhi.crypto import envelope
from openhi.errors import EncryptionKeyError, ValidationError

FORMAT = "openhi-master-keys/1"


@dataclass(frozen=True)
class MasterKeys:
    """The content of the file: every key by id, and which one wraps new data store keys."""

    current: str
    keys: dict[str, bytes]
    created: dict[str, str]

    def to_json(self) -> str:
        entries = [
            {"id": key_id, "key": base64.b64encode(material).decode(), "createdAt": self.created.get(key_id, "")}
            for key_id, material in self.keys.items()
        ]
        return json.dumps({"format": FORMAT, "current": self.current, "keys": entries}, indent=2) + "\n"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _fresh() -> MasterKeys:
    material = envelope.new_key()
    key_id = envelope.key_id(material)
    return MasterKeys(key_id, {key_id: material}, {key_id: _now()})


def parse(text: str, path: Path) -> MasterKeys:
    """The keys of a master key file; ``ValidationError`` naming the file when it is not one."""
    try:
        document = json.loads(text)
        if document.get("format") != FORMAT:
            raise ValueError(f"format is not {FORMAT!r}")
        keys: dict[str, bytes] = {}
        created: dict[str, str] = {}
        for entry in document["keys"]:
            material = envelope.check_key(base64.b64decode(entry["key"], validate=True), "a master key")
            if envelope.key_id(material) != entry["id"]:
                raise ValueError(f"key {entry['id']!r} does not match its id")
            keys[entry["id"]] = material
            created[entry["id"]] = str(entry.get("createdAt", ""))
        current = str(document["current"])
        if current not in keys:
            raise ValueError(f"the current key {current!r} is not in the file")
    except (ValueError, KeyError, TypeError, AttributeError, binascii.Error) as exc:
        raise ValidationError(f"master key file {path} is not valid: {exc}", field="master_key_file") from exc
    return MasterKeys(current, keys, created)


def write(path: Path, keys: MasterKeys) -> None:
    """Replace the file atomically with ``keys`` (mode 0600)."""
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temp.unlink(missing_ok=True)  # a leftover of a crash: created afresh below, so with mode 0600
    descriptor = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(keys.to_json())
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temp, path)


def load_or_create(path: Path) -> tuple[MasterKeys, bool]:
    """The file's keys, and whether the file was generated just now (concurrent first starts end with one file)."""
    if path.exists():
        return parse(path.read_text(), path), False
    path.parent.mkdir(parents=True, exist_ok=True)
    keys = _fresh()
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return parse(path.read_text(), path), False
    with os.fdopen(descriptor, "w") as handle:
        handle.write(keys.to_json())
    return keys, True


def rotate(path: Path) -> MasterKeys:
    """Add a new key to the file and make it current; the old keys stay (they still wrap data store keys)."""
    keys = parse(path.read_text(), path)
    material = envelope.new_key()
    key_id = envelope.key_id(material)
    rotated = MasterKeys(key_id, {**keys.keys, key_id: material}, {**keys.created, key_id: _now()})
    write(path, rotated)
    return rotated


def prune(path: Path, in_use: set[str]) -> list[str]:
    """Drop the keys that are not current and wrap nothing (not in ``in_use``); their ids."""
    keys = parse(path.read_text(), path)
    dropped = [key_id for key_id in keys.keys if key_id != keys.current and key_id not in in_use]
    if dropped:
        kept = {key_id: material for key_id, material in keys.keys.items() if key_id not in dropped}
        write(path, MasterKeys(keys.current, kept, {k: v for k, v in keys.created.items() if k in kept}))
    return dropped


class MasterKeyring:
    """The master keys of a running process, re-read from the file when it changes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._keys, self.generated = load_or_create(path)
        self._stamp = self._file_stamp()

    def _file_stamp(self) -> tuple[int, int]:
        try:
            st = os.stat(self.path)
        except OSError:
            return (0, 0)
        return (st.st_mtime_ns, st.st_size)

    def _refresh(self) -> MasterKeys:
        stamp = self._file_stamp()
        with self._lock:
            if stamp != self._stamp and stamp != (0, 0):
                self._keys, self._stamp = parse(self.path.read_text(), self.path), stamp
            return self._keys

    @property
    def current_id(self) -> str:
        """Id of the key that wraps new data store keys."""
        return self._refresh().current

    def ids(self) -> list[str]:
        """Every key id the file holds."""
        return list(self._refresh().keys)

    def wrap(self, material: bytes, aad: bytes) -> tuple[bytes, str]:
        """``material`` wrapped by the current key, and that key's id."""
        keys = self._refresh()
        return envelope.wrap(keys.keys[keys.current], material, aad), keys.current

    def unwrap(self, wrapped: bytes, key_id: str, aad: bytes, what: str) -> bytes:
        """The key wrapped by master key ``key_id``; ``EncryptionKeyError`` when this process does not hold it."""
        kek = self._refresh().keys.get(key_id)
        if kek is None:
            raise EncryptionKeyError(
                envelope.DECRYPTION_FAILURE,
                f"{what} is wrapped by master key {key_id}, which {self.path} does not hold "
                "(servers sharing an index must share the master key file: setting master_key_file)",
            )
        return envelope.unwrap(kek, wrapped, aad, what)
