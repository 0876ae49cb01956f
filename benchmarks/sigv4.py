"""In-process cost of SigV4 verification (OpenHI) against signing the same requests (botocore's signer)."""

from __future__ import annotations

import hashlib
import time
from datetime import UTC, datetime
from urllib.parse import quote, urlsplit

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from openhi.auth.sigv4 import SignedRequest, verify

SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
ARN = quote("arn:aws:medical-imaging:us-east-1:123456789012:datastore/" + "a" * 32, safe="-_.~")
COUNT = 5000


def sign(n: int) -> AWSRequest:
    request = AWSRequest(
        method="POST",
        url=f"http://127.0.0.1:8080/tags/{ARN}?n={n}",
        data=b'{"tags": {"env": "dev"}}',
        headers={"Content-Type": "application/json"},
    )
    SigV4Auth(Credentials("AKIDEXAMPLE", SECRET), "medical-imaging", "us-east-1").add_auth(request)
    return request


def as_signed_request(request: AWSRequest) -> SignedRequest:
    url = urlsplit(request.url)
    return SignedRequest(
        method=request.method,
        raw_path=url.path,
        raw_query=url.query,
        headers={"host": url.netloc} | {k.lower(): v for k, v in request.headers.items()},
        payload_sha256=hashlib.sha256(request.body).hexdigest(),
    )


def main() -> None:
    started = time.perf_counter()
    requests = [sign(n) for n in range(COUNT)]
    signing = (time.perf_counter() - started) / COUNT
    wire = [as_signed_request(r) for r in requests]
    now = datetime.now(UTC)
    started = time.perf_counter()
    for request in wire:
        verify(request, lambda _: SECRET, now)
    verifying = (time.perf_counter() - started) / COUNT
    print(f"{COUNT} requests")
    print(f"baseline botocore SigV4Auth.add_auth: {signing * 1e6:8.1f} us/request")
    ratio = verifying / signing
    print(f"openhi sigv4.verify:                  {verifying * 1e6:8.1f} us/request ({ratio:.2f}x baseline)")


if __name__ == "__main__":
    main()
