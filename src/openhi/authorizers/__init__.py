"""Adapters for OIDC authorizers (guide 2665-3216): the port, in-process Python callables, HTTP endpoints, the registry.

A data store created with ``lambdaAuthorizerArn`` names its authorizer by a Lambda ARN; OpenHI runs no Lambda,
so the ``authorizers`` setting maps each such ARN to something it can call (see ``registry.py``).
"""
