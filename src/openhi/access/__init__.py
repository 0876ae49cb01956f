"""Access control services: the per-request guard, the principal directory and the OIDC flow."""
