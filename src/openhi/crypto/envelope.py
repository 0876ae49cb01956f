"""Key wrapping with AES-256-GCM (NIST SP 800-38D), the primitive every layer of the envelope uses.

A wrapped key is ``nonce (12) || ciphertext (32) || tag (16)``; the additional authenticated data binds it to what
it belongs to (a data store and version, an object key), so a wrapped key moved elsewhere does not open. Random
96-bit nonces: NIST SP 800-38D 8.3 bounds one wrapping key to 2^32 uses, which is why each data store has its own
key and can rotate it. A failed unwrap is an ``EncryptionKeyError`` (DecryptionFailureException), never bytes.
"""

from __future__ import annotations

import hashlib
import secrets

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from openhi.crypto.model import KEY_BYTES
from openhi.errors import EncryptionKeyError

NONCE_BYTES = 12
TAG_BYTES = 16
WRAPPED_BYTES = NONCE_BYTES + KEY_BYTES + TAG_BYTES
DECRYPTION_FAILURE = "DecryptionFailureException"
KMS_ACCESS_DENIED = "KMSAccessDeniedException"


def new_key() -> bytes:
    """A fresh random 256-bit key."""
    return secrets.token_bytes(KEY_BYTES)


def check_key(material: bytes, what: str) -> bytes:
    """``material`` if it is a 256-bit key; ``ValueError`` naming ``what`` otherwise."""
    if len(material) != KEY_BYTES:
        raise ValueError(f"{what} must be {KEY_BYTES} bytes (AES-256), not {len(material)}")
    return material


def wrap(kek: bytes, key: bytes, aad: bytes) -> bytes:
    """``key`` encrypted under ``kek`` and bound to ``aad``."""
    nonce = secrets.token_bytes(NONCE_BYTES)
    return nonce + AESGCM(kek).encrypt(nonce, key, aad)


def unwrap(kek: bytes, wrapped: bytes, aad: bytes, what: str) -> bytes:
    """The key inside ``wrapped``; ``EncryptionKeyError`` when ``kek`` or ``aad`` is not the one it was wrapped with."""
    if len(wrapped) != WRAPPED_BYTES:
        raise EncryptionKeyError(DECRYPTION_FAILURE, f"{what} cannot be decrypted: its wrapped key is malformed")
    try:
        return AESGCM(kek).decrypt(wrapped[:NONCE_BYTES], wrapped[NONCE_BYTES:], aad)
    except InvalidTag:
        raise EncryptionKeyError(
            DECRYPTION_FAILURE, f"{what} cannot be decrypted: it was not sealed with this key (wrong key or altered)"
        ) from None


def key_id(kek: bytes, label: bytes = b"openhi master key") -> str:
    """A stable, non-secret name of a key (a truncated SHA-256 of it), so that a mismatch can be reported."""
    return hashlib.sha256(label + b"\0" + kek).hexdigest()[:16]
