"""DICOMweb clients for the tests: dicomweb-client (PyPI) and requests, signed with botocore's SigV4 signer.

HealthImaging's DICOMweb routes are SigV4-signed like the native API (guide 1800-1830: ``curl --aws-sigv4
"aws:amz:$AWS_REGION:medical-imaging"``). ``SigV4RequestsAuth`` signs each prepared request exactly as
botocore would, so the tests drive OpenHI with the unmodified dicomweb-client over a real socket.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from dicomweb_client.api import DICOMwebClient

from tests.support.server import ACCESS_KEY_ID, SECRET_ACCESS_KEY, ServerProcess


def _body_bytes(body: Any) -> bytes:
    if body is None:
        return b""
    if isinstance(body, bytes):
        return body
    if isinstance(body, str):
        return body.encode()
    if isinstance(body, Iterable):  # a chunked body (dicomweb-client's chunk_size): joined to be signed
        return b"".join(bytes(chunk) for chunk in body)
    raise TypeError(f"cannot sign a body of type {type(body).__name__}")


class SigV4RequestsAuth(requests.auth.AuthBase):
    """requests auth that adds botocore's SigV4 headers (service ``medical-imaging``)."""

    def __init__(
        self,
        access_key_id: str = ACCESS_KEY_ID,
        secret: str = SECRET_ACCESS_KEY,
        region: str = "us-east-1",
        service: str = "medical-imaging",
    ) -> None:
        self._signer = SigV4Auth(Credentials(access_key_id, secret), service, region)

    def __call__(self, prepared: requests.PreparedRequest) -> requests.PreparedRequest:
        body = _body_bytes(prepared.body)
        prepared.body = body
        if body:
            prepared.headers["Content-Length"] = str(len(body))
            prepared.headers.pop("Transfer-Encoding", None)
        signable = {k: v for k, v in prepared.headers.items() if k.lower() not in ("connection", "user-agent")}
        aws = AWSRequest(method=prepared.method, url=prepared.url, data=body, headers=signable)
        self._signer.add_auth(aws)
        for name, value in aws.headers.items():
            prepared.headers[name] = value
        return prepared


def signed_session(**auth: Any) -> requests.Session:
    """A requests session whose every request is SigV4-signed."""
    session = requests.Session()
    session.auth = SigV4RequestsAuth(**auth)
    return session


def dicomweb_url(server: ServerProcess, datastore_id: str) -> str:
    """The DICOMweb base URL of a data store (guide: ``.../datastore/{datastoreId}``; routes add /studies)."""
    return f"{server.endpoint}/datastore/{datastore_id}"


def dicomweb_client(server: ServerProcess, datastore_id: str, **auth: Any) -> DICOMwebClient:
    """dicomweb-client pointed at one data store of ``server``."""
    return DICOMwebClient(url=dicomweb_url(server, datastore_id), session=signed_session(**auth))
