"""Blob storage: the port every pixel and document goes through, its adapters and the key layout."""
