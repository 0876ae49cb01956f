"""Example authorizers shipped with OpenHI, usable as ``python:openhi.authorizers.examples.<module>:handler``.

``jwks``: verifies a JWT against the IdP's JWKS and returns one role; ``claims_to_roles``: the same verification,
then a role chosen from the token's claims (guide 2800-2810).
"""
