"""Customer key providers: the keys named by a data store's ``kmsKeyArn`` (guide 20990-21060, customer managed keys).

A provider generates a data store key under a customer key and unwraps it again, always with the encryption context
the guide's key policy example conditions on (``kms-arn`` and ``aws:medical-imaging:datastoreId``), so a wrapped key
opens only for its own data store. Providers: ``LocalKeyProvider`` (keys in local files, for a single host or tests),
``aws_kms.AwsKmsProvider`` (the AWS KMS API: AWS itself, LocalStack, moto) and ``NoKeyProvider`` (none configured:
a data store naming a customer key cannot be created). A key the provider does not have, or refuses, is an
``EncryptionKeyError`` (KMSAccessDeniedException); an unreachable provider is an ``UnavailableError`` (retried).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Protocol

from openhi.crypto import envelope
from openhi.crypto.model import KEY_BYTES
from openhi.errors import EncryptionKeyError, ValidationError

# The model's KmsKeyArn pattern (CreateDatastore): a key by id or an alias.
KMS_ARN = re.compile(
    r"arn:aws[a-zA-Z-]{0,16}:kms:(?P<region>[a-z]{2}(-[a-z]{1,16}){1,3}-\d):(?P<account>\d{12}):"
    r"(?P<resource>(key/[a-fA-F0-9]{8}-[a-fA-F0-9]{4}-[a-fA-F0-9]{4}-[a-fA-F0-9]{4}-[a-fA-F0-9]{12})"
    r"|(alias/[a-zA-Z0-9:/_-]{1,256}))"
)


def encryption_context(key_arn: str, datastore_id: str) -> dict[str, str]:
    """The encryption context of a data store key (guide 21020-21035, the key policy's conditions)."""
    return {"kms-arn": key_arn, "aws:medical-imaging:datastoreId": datastore_id}


class KeyProvider(Protocol):
    """Generates and unwraps data store keys under customer keys."""

    def generate(self, key_arn: str, context: Mapping[str, str]) -> tuple[bytes, bytes]:
        """A new 256-bit key: (plaintext, wrapped by the customer key ``key_arn`` with ``context``)."""
        ...

    def unwrap(self, key_arn: str, wrapped: bytes, context: Mapping[str, str]) -> bytes:
        """The plaintext of a key ``generate`` wrapped under ``key_arn`` with the same ``context``."""
        ...


def refused(key_arn: str, reason: str) -> EncryptionKeyError:
    """The error of a customer key that cannot be used."""
    return EncryptionKeyError(envelope.KMS_ACCESS_DENIED, f"The customer key {key_arn} cannot be used: {reason}")


class NoKeyProvider:
    """No customer key provider configured (setting ``kms_provider`` empty)."""

    def generate(self, key_arn: str, context: Mapping[str, str]) -> tuple[bytes, bytes]:
        raise refused(key_arn, "no key provider is configured (setting kms_provider: local or aws)")

    def unwrap(self, key_arn: str, wrapped: bytes, context: Mapping[str, str]) -> bytes:
        raise refused(key_arn, "no key provider is configured (setting kms_provider: local or aws)")


def _aad(key_arn: str, context: Mapping[str, str]) -> bytes:
    return json.dumps({"arn": key_arn, "context": dict(sorted(context.items()))}, sort_keys=True).encode()


class LocalKeyProvider:
    """Customer keys in local files: a directory of 32-byte key files, or a JSON keyring file.

    Directory: a key ``arn:...:key/<id>`` is the file ``<dir>/key/<id>``, an alias ``arn:...:alias/<name>`` the file
    ``<dir>/alias/<name>``, each holding the 32 raw key bytes. JSON file: ``{"<key or alias ARN>": "<base64>"}``.
    Keys are read when used, so a key file added or removed (a key disabled) takes effect at once.
    """

    def __init__(self, path: Path) -> None:
        if not path.exists():
            raise ValidationError(f"setting 'local_kms_path': {path} does not exist", field="local_kms_path")
        self.path = path

    def _key(self, key_arn: str) -> bytes:
        match = KMS_ARN.fullmatch(key_arn)
        if match is None:
            raise refused(key_arn, "it is not a KMS key or alias ARN")
        if self.path.is_dir():
            file = self.path.joinpath(*match.group("resource").split("/"))
            if ".." in match.group("resource").split("/") or not file.is_file():
                raise refused(key_arn, f"there is no key file {file}")
            material = file.read_bytes()
        else:
            try:
                encoded = json.loads(self.path.read_text()).get(key_arn)
            except (ValueError, AttributeError) as exc:
                raise refused(key_arn, f"the keyring {self.path} is not a JSON object") from exc
            if encoded is None:
                raise refused(key_arn, f"the keyring {self.path} does not hold it")
            try:
                material = base64.b64decode(encoded, validate=True)
            except (binascii.Error, TypeError) as exc:
                raise refused(key_arn, f"its entry in {self.path} is not base64") from exc
        if len(material) != KEY_BYTES:
            raise refused(key_arn, f"the local key is {len(material)} bytes, not {KEY_BYTES}")
        return material

    def generate(self, key_arn: str, context: Mapping[str, str]) -> tuple[bytes, bytes]:
        material = envelope.new_key()
        return material, envelope.wrap(self._key(key_arn), material, _aad(key_arn, context))

    def unwrap(self, key_arn: str, wrapped: bytes, context: Mapping[str, str]) -> bytes:
        return envelope.unwrap(self._key(key_arn), wrapped, _aad(key_arn, context), f"a data key under {key_arn}")
