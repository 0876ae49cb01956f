"""Data stores: their lifecycle (CREATING -> ACTIVE, DELETING -> DELETED), quotas and idempotent creation."""
