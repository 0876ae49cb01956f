"""Authentication and authorization: SigV4 verification, credentials."""
