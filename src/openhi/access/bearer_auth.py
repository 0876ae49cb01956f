"""Bearer-token requests to a data store: find its authorizer, then run the OIDC flow (guide 2665-3216).

Only data stores created with ``lambdaAuthorizerArn`` accept ``Authorization: Bearer`` (guide 2790: OIDC is
chosen when the data store is created and cannot be turned on later); a bearer token sent to any other data
store is refused like an invalid token (403). The ARN never changes after creation, so it is cached per data
store id (a bounded map; a deleted data store is looked up again and answers 404).
"""

from __future__ import annotations

from openhi.access.oidc import OidcAuthenticator
from openhi.auth.bearer import INVALID_TOKEN
from openhi.datastores.model import DatastoreStatus
from openhi.datastores.service import require_datastore_id
from openhi.errors import AuthenticationError, NotFoundError
from openhi.iam.principals import Caller
from openhi.index.port import Index

MAX_CACHED_DATASTORES = 10_000


class BearerAuthentication:
    """``authenticate(datastore_id, operation, token) -> Caller`` for the DICOMweb edge."""

    def __init__(self, index: Index, oidc: OidcAuthenticator) -> None:
        self._index = index
        self._oidc = oidc
        self._arns: dict[str, str | None] = {}

    def authenticate(self, datastore_id: str, operation: str, token: str) -> Caller:
        """The caller the data store's authorizer vouches for; the domain errors of ``OidcAuthenticator``."""
        arn = self._authorizer_arn(require_datastore_id(datastore_id))
        if arn is None:
            raise AuthenticationError(
                INVALID_TOKEN,
                f"Invalid or expired token: datastore {datastore_id} was created without lambdaAuthorizerArn "
                "and accepts SigV4-signed requests only",
            )
        return self._oidc.authenticate(arn, datastore_id, operation, token)

    def _authorizer_arn(self, datastore_id: str) -> str | None:
        if datastore_id in self._arns:
            return self._arns[datastore_id]
        datastore = self._index.run(lambda uow: uow.datastores.get(datastore_id), readonly=True)
        if datastore is None or datastore.status == DatastoreStatus.DELETED:
            raise NotFoundError(f"Datastore {datastore_id} does not exist")
        if len(self._arns) >= MAX_CACHED_DATASTORES:
            self._arns.clear()
        self._arns[datastore_id] = datastore.lambda_authorizer_arn
        return datastore.lambda_authorizer_arn
