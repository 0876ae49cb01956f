"""``AwsKmsProvider`` against moto's KMS in server mode: GenerateDataKey and Decrypt with the guide's encryption
context, and the translation of KMS answers into clear errors."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from tests.support.backends import S3Server, free_port

from openhi.crypto.aws_kms import AwsKmsProvider
from openhi.crypto.providers import encryption_context
from openhi.errors import EncryptionKeyError, UnavailableError

pytestmark = pytest.mark.s3
MISSING = "arn:aws:kms:us-east-1:123456789012:key/99999999-8888-7777-6666-555555555555"


@pytest.fixture
def kms(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> Any:
    for name, value in s3_server.env().items():
        monkeypatch.setenv(name, value)
    return boto3.client("kms", endpoint_url=s3_server.endpoint, region_name="us-east-1")


@pytest.fixture
def key_arn(kms: Any) -> str:
    arn: str = kms.create_key(Description="openhi test customer key")["KeyMetadata"]["Arn"]
    return arn


def test_generate_then_unwrap(s3_server: S3Server, key_arn: str) -> None:
    provider = AwsKmsProvider(s3_server.endpoint)
    context = encryption_context(key_arn, "a" * 32)
    material, wrapped = provider.generate(key_arn, context)
    assert len(material) == 32
    assert material not in wrapped
    assert provider.unwrap(key_arn, wrapped, context) == material


def test_the_context_binds_the_key_to_its_datastore(s3_server: S3Server, key_arn: str) -> None:
    provider = AwsKmsProvider(s3_server.endpoint)
    _, wrapped = provider.generate(key_arn, encryption_context(key_arn, "a" * 32))
    with pytest.raises(EncryptionKeyError) as caught:
        provider.unwrap(key_arn, wrapped, encryption_context(key_arn, "b" * 32))
    assert caught.value.code == "DecryptionFailureException"


def test_a_missing_key_is_refused(s3_server: S3Server, kms: Any) -> None:
    with pytest.raises(EncryptionKeyError) as caught:
        AwsKmsProvider(s3_server.endpoint).generate(MISSING, encryption_context(MISSING, "a" * 32))
    assert caught.value.code == "KMSAccessDeniedException"
    assert "NotFoundException" in caught.value.message


def test_an_unreachable_endpoint_is_unavailable(kms: Any) -> None:
    provider = AwsKmsProvider(f"http://127.0.0.1:{free_port()}")
    with pytest.raises(UnavailableError):
        provider.generate(MISSING, encryption_context(MISSING, "a" * 32))
