"""Encryption at rest from the settings: the master key file, the customer key provider, the keyring, the wrapper.

Settings (docs/encryption.md): ``encryption`` (new data stores get a key: on by default, as HealthImaging always
encrypts), ``master_key_file`` (default ``{data_dir}/master-keys.json``, generated 0600 at first start),
``kms_provider`` ("" none, "local", "aws") with ``local_kms_path`` / ``kms_endpoint_url``, and
``data_key_cache_seconds``. The AWS provider is imported only when chosen (it needs boto3).
"""

from __future__ import annotations

from pathlib import Path

from openhi.blobs.port import BlobStore
from openhi.clock import Clock
from openhi.config import Settings
from openhi.crypto.blob_store import SealedBlobStore
from openhi.crypto.keyring import DatastoreKeys
from openhi.crypto.master import MasterKeyring
from openhi.crypto.providers import KeyProvider, LocalKeyProvider, NoKeyProvider
from openhi.errors import ValidationError
from openhi.index.port import Index

PROVIDERS = ("", "local", "aws")
MASTER_KEY_FILE = "master-keys.json"


def master_key_path(settings: Settings) -> Path:
    """The master key file: the setting, or ``{data_dir}/master-keys.json``."""
    return (
        Path(settings.master_key_file).expanduser() if settings.master_key_file else settings.data_dir / MASTER_KEY_FILE
    )


def key_provider(settings: Settings) -> KeyProvider:
    """The customer key provider the settings name."""
    if settings.kms_provider not in PROVIDERS:
        raise ValidationError(
            f"setting 'kms_provider' must be one of 'local', 'aws' or empty, not {settings.kms_provider!r}",
            field="kms_provider",
        )
    if settings.kms_provider == "local":
        if not settings.local_kms_path:
            raise ValidationError("kms_provider 'local' needs the setting 'local_kms_path'", field="local_kms_path")
        return LocalKeyProvider(Path(settings.local_kms_path).expanduser())
    if settings.kms_provider == "aws":
        from openhi.crypto.aws_kms import AwsKmsProvider

        return AwsKmsProvider(settings.kms_endpoint_url or None)
    return NoKeyProvider()


def datastore_keys(settings: Settings, index: Index, clock: Clock) -> DatastoreKeys:
    """The keyring of this process (creates the master key file at first start)."""
    if settings.data_key_cache_seconds < 0:
        raise ValidationError("setting 'data_key_cache_seconds' must be >= 0", field="data_key_cache_seconds")
    return DatastoreKeys(
        index,
        MasterKeyring(master_key_path(settings)),
        key_provider(settings),
        clock,
        encrypt_new=settings.encryption,
        cache_seconds=settings.data_key_cache_seconds,
    )


def sealed_store(blobs: BlobStore, keys: DatastoreKeys) -> SealedBlobStore:
    """``blobs`` with every data store object sealed (the outermost wrapper of the blob store)."""
    return SealedBlobStore(blobs, keys)
