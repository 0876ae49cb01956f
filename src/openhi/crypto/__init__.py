"""Encryption at rest: per data store keys, envelope encryption of blobs, key providers (docs/encryption.md)."""
