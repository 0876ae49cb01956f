"""``AwsKmsProvider``: customer keys through the AWS KMS API (AWS KMS, or a compatible endpoint: LocalStack, moto).

The verbs the guide's key policy grants HealthImaging (guide 21005-21060): ``GenerateDataKey`` creates a data store
key under the customer key (AES_256, with the encryption context ``kms-arn`` + ``aws:medical-imaging:datastoreId``)
and ``Decrypt`` opens it again (same context, ``KeyId`` pinned to the ARN so a ciphertext of another key is refused).
The client of a key's region is made once (region from the ARN); endpoint from the ``kms_endpoint_url`` setting or
the standard AWS configuration (``AWS_ENDPOINT_URL_KMS``), credentials from the standard chain. KMS errors are
translated here: a key that is missing, disabled, pending deletion or denied -> ``EncryptionKeyError``
(KMSAccessDeniedException); a ciphertext that is not the key's -> DecryptionFailureException; throttling, internal
errors and unreachable endpoints -> ``UnavailableError`` (retried by clients).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, PartialCredentialsError

from openhi.crypto import envelope
from openhi.crypto.providers import KMS_ARN, refused
from openhi.errors import EncryptionKeyError, OpenHIError, UnavailableError

if TYPE_CHECKING:
    from mypy_boto3_kms import KMSClient

CLIENT_CONFIG = Config(connect_timeout=5, read_timeout=10, retries={"max_attempts": 3, "mode": "standard"})
REFUSALS = frozenset(
    {
        "NotFoundException",
        "DisabledException",
        "KMSInvalidStateException",
        "AccessDeniedException",
        "InvalidKeyUsageException",
        "UnrecognizedClientException",
        "InvalidGrantTokenException",
    }
)
WRONG_CIPHERTEXT = frozenset({"InvalidCiphertextException", "IncorrectKeyException"})


class AwsKmsProvider:
    """``KeyProvider`` over the AWS KMS API."""

    def __init__(self, endpoint_url: str | None = None) -> None:
        self._endpoint_url = endpoint_url or None
        self._clients: dict[str, KMSClient] = {}
        self._lock = threading.Lock()

    def _client(self, key_arn: str) -> KMSClient:
        match = KMS_ARN.fullmatch(key_arn)
        if match is None:
            raise refused(key_arn, "it is not a KMS key or alias ARN")
        region = match.group("region")
        with self._lock:
            if region not in self._clients:
                self._clients[region] = boto3.client(
                    "kms", region_name=region, endpoint_url=self._endpoint_url, config=CLIENT_CONFIG
                )
            return self._clients[region]

    def _translate(self, exc: Exception, key_arn: str) -> OpenHIError:
        if isinstance(exc, ClientError):
            code = str(exc.response.get("Error", {}).get("Code", ""))
            message = str(exc.response.get("Error", {}).get("Message", "")) or code
            if code in REFUSALS:
                return refused(key_arn, f"AWS KMS answered {code}: {message}")
            if code in WRONG_CIPHERTEXT:
                return EncryptionKeyError(
                    envelope.DECRYPTION_FAILURE, f"a data key under {key_arn} cannot be decrypted: {code}: {message}"
                )
            return UnavailableError(f"AWS KMS could not serve {key_arn}: {code}: {message}")
        if isinstance(exc, NoCredentialsError | PartialCredentialsError):  # configuration, not a transient failure
            return refused(key_arn, f"no usable AWS credentials for KMS: {exc}")
        return UnavailableError(f"AWS KMS is unreachable for {key_arn}: {exc}")

    def generate(self, key_arn: str, context: Mapping[str, str]) -> tuple[bytes, bytes]:
        client = self._client(key_arn)
        try:
            answer = client.generate_data_key(KeyId=key_arn, KeySpec="AES_256", EncryptionContext=dict(context))
        except (ClientError, BotoCoreError) as exc:
            raise self._translate(exc, key_arn) from exc
        return envelope.check_key(answer["Plaintext"], "a KMS data key"), answer["CiphertextBlob"]

    def unwrap(self, key_arn: str, wrapped: bytes, context: Mapping[str, str]) -> bytes:
        client = self._client(key_arn)
        try:
            answer = client.decrypt(CiphertextBlob=wrapped, KeyId=key_arn, EncryptionContext=dict(context))
        except (ClientError, BotoCoreError) as exc:
            raise self._translate(exc, key_arn) from exc
        return envelope.check_key(answer["Plaintext"], "a KMS data key")
