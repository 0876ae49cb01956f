"""OIDC bearer tokens on DICOMweb, end to end against ``openhi serve`` (guide 2665-3216; error table 3000-3030).

One server for the module. The test is the identity provider (key pairs, JWKS served on loopback) and runs the
HTTP authorizers on loopback too; the server maps one Lambda ARN per behaviour (``OPENHI_AUTHORIZERS``) to the
shipped example authorizers (``openhi.authorizers.examples.jwks`` and ``.claims_to_roles``, configured through
the environment variables they read), to Lambda-style handlers of ``tests.support.oidc`` and to the loopback URLs.
Each data store names one of those ARNs (``lambdaAuthorizerArn``); roles come from an IAM file. Requests carry
``Authorization: Bearer <jwt>`` and no SigV4 signature; each case is checked against the guide's status and the
``__type`` of the JSON error body:

=====================================================  ======  ==========================================
case                                                   status  ``__type``
=====================================================  ======  ==========================================
expired, ``nbf`` ahead, ``iat`` over 12 h, bad          403     InvalidTokenException
signature, authorizer says invalid
authorizer returned an empty role                      403     AccessDeniedException
role policy does not allow the request                 403     AccessDeniedException
authorizer unknown / not loadable / malformed answer,  424     AuthorizerMisconfigurationException
role not assumable (untrusting, unknown)
authorizer crashed (HTTP 500, exception)               424     AuthorizerFailureException
authorizer in another account                          424     AuthorizerCrossAccountAccessException
authorizer ran over 1 s                                408     AuthorizerTimeoutException
request rate above the operation's limit               429     ThrottlingException
=====================================================  ======  ==========================================

Only the embedded backend: the flow reads the data store's ``lambdaAuthorizerArn`` through the index port (whose
adapters the contract and data store suites cover on both backends) and otherwise touches neither the index nor the
blob store, so the scale-out backend would add runtime and no coverage. Throttling is on in this server, turned off
for the data store operations the setup repeats, with a one-request bucket for ``SearchDICOMInstances``, an
operation only the throttling test calls.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from pydicom.dataset import Dataset
from pydicom.uid import UID
from tests.e2e.conftest import ServerFactory
from tests.e2e.helpers import wait_for_status
from tests.support.dicom_corpus import SeriesSpec, ct_dataset
from tests.support.dicomweb import dicomweb_client, dicomweb_url, signed_session
from tests.support.oidc import CRASH_DETAIL, SLOW_SECONDS, IdentityProvider, LoopbackHttp, Reply, constant
from tests.support.server import ServerProcess

ACCOUNT = "123456789012"
REGION = "us-east-1"
ISSUER = "https://idp.openhi.test/realms/ward"
AUDIENCE = "openhi-dicomweb"
REPO_ROOT = Path(__file__).resolve().parents[2]

STUDY_A = "1.2.826.0.1.3680043.8.498.310.1"
STUDY_B = "1.2.826.0.1.3680043.8.498.320.1"
SERIES_A = "1.2.826.0.1.3680043.8.498.310.2"
SERIES_B = "1.2.826.0.1.3680043.8.498.320.2"
FRAMES = "multipart/related; type=application/octet-stream"
DICOM_JSON = "application/dicom+json"

READ_ACTIONS = [
    "medical-imaging:SearchDICOMStudies",
    "medical-imaging:SearchDICOMSeries",
    "medical-imaging:SearchDICOMInstances",
    "medical-imaging:GetDICOMInstanceFrames",
    "medical-imaging:GetDICOMInstanceMetadata",
]


def role(name: str) -> str:
    return f"arn:aws:iam::{ACCOUNT}:role/{name}"


def lambda_arn(name: str, account: str = ACCOUNT) -> str:
    return f"arn:aws:lambda:{REGION}:{account}:function:{name}"


READER, STUDY_A_ONLY, UNTRUSTING = role("oidc-reader"), role("oidc-study-a"), role("untrusting")

# Lambda function name -> the loopback reply of its HTTP authorizer
HTTP_AUTHORIZERS = {
    "http-slow": Reply.json({"isTokenValid": True, "roleArn": READER}, delay=SLOW_SECONDS),
    "http-crash": Reply(500, b'{"errorMessage": "boom"}'),
    "http-empty-role": Reply.json({"isTokenValid": True, "roleArn": ""}),
    "http-untrusting-role": Reply.json({"isTokenValid": True, "roleArn": UNTRUSTING}),
    "http-unknown-role": Reply.json({"isTokenValid": True, "roleArn": role("no-such-role")}),
    "http-not-a-role": Reply.json({"isTokenValid": True, "roleArn": "arn:aws:iam::123456789012:user/alice"}),
    "http-garbage": Reply(200, b"<html>502 Bad Gateway</html>", "text/html"),
    "http-no-valid-flag": Reply.json({"roleArn": READER}),
    "http-says-invalid": Reply.json({"isTokenValid": False, "roleArn": ""}),
}
# Lambda function name -> python: spec (loaded in the server process)
PYTHON_AUTHORIZERS = {
    "jwks": "openhi.authorizers.examples.jwks:handler",
    "claims": "openhi.authorizers.examples.claims_to_roles:handler",
    "py-crash": "tests.support.oidc:crashing_authorizer",
    "py-slow": "tests.support.oidc:slow_authorizer",
    "py-missing": "tests.support.no_such_module:handler",
}
UNLISTED = lambda_arn("not-in-the-setting")
FOREIGN = lambda_arn("jwks", account="999999999999")


@pytest.fixture(scope="module")
def backend() -> str:
    """Embedded only (see the module docstring)."""
    return "embedded"


def _policy(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def _trust(principal: dict[str, str]) -> str:
    return _policy({"Effect": "Allow", "Principal": principal, "Action": "sts:AssumeRole"})


def _role_toml(name: str, trust: str, policy: str) -> str:
    return "\n".join(
        [
            "[[roles]]",
            f"name = {json.dumps(name)}",
            f"trust_policy = {json.dumps(trust)}",
            "[roles.policies]",
            f"dicomweb = {json.dumps(policy)}",
            "",
        ]
    )


def _iam_file(path: Path) -> Path:
    """The roles: a reader, a reader of study A only, and a reader that does not trust the service."""
    service = {"Service": "medical-imaging.amazonaws.com"}
    everything = _policy({"Effect": "Allow", "Action": READ_ACTIONS, "Resource": "*"})
    study_a = _policy(
        {
            "Effect": "Allow",
            "Action": READ_ACTIONS,
            "Resource": f"arn:aws:medical-imaging:{REGION}:{ACCOUNT}:datastore/*",
            "Condition": {"StringEquals": {"medical-imaging:StudyInstanceUID": STUDY_A}},
        }
    )
    path.write_text(
        _role_toml("oidc-reader", _trust(service), everything)
        + _role_toml("oidc-study-a", _trust(service), study_a)
        + _role_toml("untrusting", _trust({"AWS": ACCOUNT}), everything)
    )
    return path


def _series(study: str, series: str, label: str) -> list[Dataset]:
    spec = SeriesSpec(study=label, series=label, patient_id=label, slices=1, size=16)
    ds = ct_dataset(spec, 0)
    ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = UID(f"{series}.1")
    return [ds]


@dataclass
class World:
    server: ServerProcess
    idp: IdentityProvider
    http: LoopbackHttp
    stores: dict[str, str]  # authorizer name (or "plain", "unlisted", "foreign") -> data store id

    def url(self, store: str, path: str) -> str:
        return f"{dicomweb_url(self.server, self.stores[store])}{path}"

    def get(self, store: str, path: str, token: str, accept: str = DICOM_JSON) -> requests.Response:
        """A DICOMweb GET with a bearer token and no SigV4 signature."""
        return requests.get(
            self.url(store, path), headers={"Authorization": f"Bearer {token}", "Accept": accept}, timeout=10
        )


@pytest.fixture(scope="module")
def world(make_server: ServerFactory, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    idp = IdentityProvider(ISSUER, AUDIENCE)
    routes = {("GET", "/jwks.json"): lambda: Reply.json(idp.jwks())}
    routes |= {("POST", f"/authorizers/{name}"): constant(reply) for name, reply in HTTP_AUTHORIZERS.items()}
    http = LoopbackHttp(routes).start()
    try:
        authorizers = {lambda_arn(name): f"python:{spec}" for name, spec in PYTHON_AUTHORIZERS.items()}
        authorizers |= {lambda_arn(name): http.url(f"/authorizers/{name}") for name in HTTP_AUTHORIZERS}
        claims_map = [
            {"claim": "scope", "value": "dicom.read", "roleArn": READER},
            {"claim": ["realm_access", "roles"], "value": "study-a", "roleArn": STUDY_A_ONLY},
        ]
        server = make_server(
            env={
                "OPENHI_IAM_FILE": str(_iam_file(tmp_path_factory.mktemp("oidc") / "iam.toml")),
                "OPENHI_AUTHORIZERS": json.dumps(authorizers),
                "OPENHI_JWKS_URL": http.url("/jwks.json"),
                "OPENHI_JWT_ISSUER": ISSUER,
                "OPENHI_JWT_AUDIENCE": f"another-app,{AUDIENCE}",
                "OPENHI_JWT_ROLE_ARN": READER,
                "OPENHI_CLAIMS_ROLE_MAP": json.dumps(claims_map),
                "PYTHONPATH": str(REPO_ROOT),  # for the python:tests.support.oidc:... authorizers
                "OPENHI_THROTTLING": "true",
                "OPENHI_THROTTLE_RATES": json.dumps(
                    {"CreateDatastore": None, "GetDatastore": None, "SearchDICOMInstances": [0.01, 1]}
                ),
            }
        )
        root = server.client()
        arns = {name: lambda_arn(name) for name in [*PYTHON_AUTHORIZERS, *HTTP_AUTHORIZERS]}
        arns |= {"unlisted": UNLISTED, "foreign": FOREIGN}
        stores = {
            name: root.create_datastore(datastoreName=name, lambdaAuthorizerArn=arn)["datastoreId"]
            for name, arn in arns.items()
        }
        stores["plain"] = root.create_datastore(datastoreName="plain")["datastoreId"]
        for name, datastore in stores.items():
            properties = wait_for_status(root, datastore, "ACTIVE")
            assert properties.get("lambdaAuthorizerArn") == arns.get(name), properties
        for name in ("jwks", "claims", "plain"):  # stored with SigV4: OIDC data stores still accept it
            dicomweb_client(server, stores[name]).store_instances(
                datasets=_series(STUDY_A, SERIES_A, "a") + _series(STUDY_B, SERIES_B, "b")
            )
        yield World(server, idp, http, stores)
    finally:
        http.stop()


def _refused(answer: requests.Response, status: int, code: str) -> str:
    assert (answer.status_code, answer.headers.get("content-type")) == (status, "application/json"), answer.text
    body = answer.json()
    assert body["__type"] == code, body
    assert answer.headers["x-amzn-ErrorType"] == code
    return str(body["message"])


def _studies(answer: requests.Response) -> set[str]:
    assert answer.status_code == 200, answer.text
    return {row["0020000D"]["Value"][0] for row in answer.json()}


FRAME_A = f"/studies/{STUDY_A}/series/{SERIES_A}/instances/{SERIES_A}.1/frames/1"
FRAME_B = f"/studies/{STUDY_B}/series/{SERIES_B}/instances/{SERIES_B}.1/frames/1"


# --- valid tokens -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("alg", ["RS256", "ES256"])
def test_a_valid_token_searches_and_retrieves_frames(world: World, alg: str) -> None:
    token = world.idp.token(alg)
    assert _studies(world.get("jwks", "/studies", token)) == {STUDY_A, STUDY_B}
    frame = world.get("jwks", FRAME_A, token, FRAMES)
    assert frame.status_code == 200, frame.text
    assert frame.headers["content-type"].startswith("multipart/related")
    assert len(frame.content) >= 16 * 16 * 2  # one 16x16 16-bit frame (and its multipart framing)
    assert world.http.requests_to("/jwks.json"), "the authorizer verified the signature against the loopback JWKS"


def test_the_token_only_reaches_a_role_the_policy_allows(world: World) -> None:
    """The token's claims pick the role (claims_to_roles); that role's policy is limited to study A."""
    token = world.idp.token(realm_access={"roles": ["study-a"]})
    assert _studies(world.get("claims", "/studies", token)) == {STUDY_A}  # only what the role may see
    assert world.get("claims", f"/studies/{STUDY_A}/series", token).status_code == 200
    assert world.get("claims", FRAME_A, token, FRAMES).status_code == 200
    message = _refused(world.get("claims", f"/studies/{STUDY_B}/series", token), 403, "AccessDeniedException")
    assert "assumed-role/oidc-study-a/" in message
    _refused(world.get("claims", FRAME_B, token, FRAMES), 403, "AccessDeniedException")
    reader = world.idp.token(scope="openid dicom.read")
    assert _studies(world.get("claims", "/studies", reader)) == {STUDY_A, STUDY_B}


def test_the_role_decides_writes_too(world: World) -> None:
    """StoreDICOM is not in the reader role's policy: refused after a successful authentication."""
    answer = requests.post(
        world.url("jwks", "/studies"),
        data=b"not even DICOM",
        headers={
            "Authorization": f"Bearer {world.idp.token()}",
            "Content-Type": "application/dicom",
            "Accept": DICOM_JSON,
        },
        timeout=10,
    )
    _refused(answer, 403, "AccessDeniedException")


def test_the_authorizer_receives_the_guide_event(world: World) -> None:
    token = world.idp.token()
    _refused(world.get("http-says-invalid", f"/studies/{STUDY_A}/series", token), 403, "InvalidTokenException")
    events = [r.json() for r in world.http.requests_to("/authorizers/http-says-invalid")]
    assert events[-1] == {
        "datastoreId": world.stores["http-says-invalid"],
        "operation": "SearchDICOMSeries",
        "bearerToken": token,
    }


# --- invalid tokens: 403 InvalidTokenException -------------------------------------------------------------------

HOUR = 3600


def _time_claims(case: str) -> dict[str, Any]:
    now = int(time.time())
    cases: dict[str, dict[str, Any]] = {
        "expired": {"iat": now - 600, "exp": now - 10},
        "not-yet-valid": {"nbf": now + HOUR},
        "issued-over-12-hours-ago": {"iat": now - 13 * HOUR, "exp": now + HOUR},
        "issued-in-the-future": {"iat": now + HOUR, "exp": now + 2 * HOUR},
        "no-exp": {"exp": None},
        "no-iat": {"iat": None},
    }
    return cases[case]


@pytest.mark.parametrize(
    "case", ["expired", "not-yet-valid", "issued-over-12-hours-ago", "issued-in-the-future", "no-exp", "no-iat"]
)
def test_time_claims_are_refused_before_the_authorizer_is_called(world: World, case: str) -> None:
    token = world.idp.token(**_time_claims(case))
    message = _refused(world.get("jwks", "/studies", token), 403, "InvalidTokenException")
    assert message.startswith("Invalid or expired token")
    # the empty-role authorizer would answer 403 AccessDenied: InvalidToken shows it was never asked
    before = len(world.http.requests_to("/authorizers/http-empty-role"))
    _refused(world.get("http-empty-role", "/studies", token), 403, "InvalidTokenException")
    assert len(world.http.requests_to("/authorizers/http-empty-role")) == before


def test_a_token_expired_by_one_second_is_refused(world: World) -> None:
    """No leeway on ``exp`` (docs/oidc.md), even though the example authorizer itself would allow 5 s."""
    now = int(time.time())
    _refused(world.get("jwks", "/studies", world.idp.token(iat=now - 60, exp=now - 1)), 403, "InvalidTokenException")


@pytest.mark.parametrize("case", ["forged", "tampered", "unsigned", "unknown-kid", "wrong-audience", "wrong-issuer"])
def test_a_token_the_authorizer_cannot_verify_is_refused(world: World, case: str) -> None:
    idp = world.idp
    makers: dict[str, Callable[[], str]] = {
        "forged": idp.forged,
        "tampered": idp.tampered,
        "unsigned": idp.unsigned,
        "unknown-kid": lambda: idp.token(kid="rotated-away"),
        "wrong-audience": lambda: idp.token(aud="someone-else"),
        "wrong-issuer": lambda: idp.token(iss="https://evil.example"),
    }
    token = makers[case]()
    _refused(world.get("jwks", "/studies", token), 403, "InvalidTokenException")
    _refused(world.get("claims", "/studies", token), 403, "InvalidTokenException")


@pytest.mark.parametrize("header", ["Bearer", "Bearer ", "Bearer not a token", "bearer x.y", "Bearer " + "a" * 17_000])
def test_a_malformed_bearer_header_is_refused(world: World, header: str) -> None:
    answer = requests.get(
        world.url("jwks", "/studies"), headers={"Authorization": header, "Accept": DICOM_JSON}, timeout=10
    )
    _refused(answer, 403, "InvalidTokenException")


def test_a_data_store_without_an_authorizer_refuses_bearer_tokens(world: World) -> None:
    message = _refused(world.get("plain", "/studies", world.idp.token()), 403, "InvalidTokenException")
    assert "lambdaAuthorizerArn" in message
    signed = signed_session().get(world.url("plain", "/studies"), headers={"Accept": DICOM_JSON})
    assert _studies(signed) == {STUDY_A, STUDY_B}


def test_the_native_api_does_not_accept_bearer_tokens(world: World) -> None:
    """Bearer tokens are for DICOMweb only (guide 2665): GetDatastore / ListDatastores stay SigV4."""
    token = world.idp.token(sub="native-api")
    calls_before = len(world.http.received)
    for path in (f"/datastore/{world.stores['jwks']}", "/datastore"):
        answer = requests.get(
            f"{world.server.endpoint}{path}", headers={"Authorization": f"Bearer {token}"}, timeout=10
        )
        # as AWS: an Authorization header of another scheme is an incomplete SigV4 signature
        _refused(answer, 403, "IncompleteSignatureException")
    assert len(world.http.received) == calls_before  # no authorizer, no JWKS fetch
    assert token.split(".")[2] not in world.server.output()


# --- authorizer outcomes -------------------------------------------------------------------------------------------


def test_an_empty_role_is_an_explicit_deny(world: World) -> None:
    message = _refused(world.get("http-empty-role", "/studies", world.idp.token()), 403, "AccessDeniedException")
    assert "empty role" in message
    # a verified token no claims rule matches gets an empty role from claims_to_roles
    _refused(world.get("claims", "/studies", world.idp.token(scope="openid")), 403, "AccessDeniedException")


@pytest.mark.parametrize("store", ["http-slow", "py-slow"])
def test_an_authorizer_over_one_second_times_out(world: World, store: str) -> None:
    started = time.monotonic()
    answer = world.get(store, "/studies", world.idp.token())
    elapsed = time.monotonic() - started
    _refused(answer, 408, "AuthorizerTimeoutException")
    # answered at the 1 s budget: not when the authorizer ends (3 s), nor at the HTTP adapter's own timeout (2 s)
    assert 1.0 <= elapsed < 2.0 < SLOW_SECONDS, elapsed


@pytest.mark.parametrize("store", ["http-crash", "py-crash"])
def test_a_crashing_authorizer_is_a_failure(world: World, store: str) -> None:
    message = _refused(world.get(store, "/studies", world.idp.token()), 424, "AuthorizerFailureException")
    assert CRASH_DETAIL not in message
    assert "boom" not in message


def test_an_authorizer_exception_is_logged_on_the_server(world: World) -> None:
    token = world.idp.token(sub="logged-crash")
    _refused(world.get("py-crash", "/studies", token), 424, "AuthorizerFailureException")
    deadline = time.monotonic() + 5
    while CRASH_DETAIL not in world.server.output():
        assert time.monotonic() < deadline, "the authorizer's exception is not in the server log"
        time.sleep(0.05)
    assert token.split(".")[2] not in world.server.output()  # the token is never logged


@pytest.mark.parametrize(
    "store",
    [
        "unlisted",  # the data store's ARN is not in OPENHI_AUTHORIZERS
        "py-missing",  # its python: module cannot be imported
        "http-garbage",  # an answer that is not JSON
        "http-no-valid-flag",  # JSON without isTokenValid
        "http-untrusting-role",  # the role's trust policy does not name medical-imaging.amazonaws.com
        "http-unknown-role",
        "http-not-a-role",
    ],
)
def test_a_misconfigured_authorizer_or_role(world: World, store: str) -> None:
    _refused(world.get(store, "/studies", world.idp.token()), 424, "AuthorizerMisconfigurationException")


def test_an_authorizer_in_another_account(world: World) -> None:
    _refused(world.get("foreign", "/studies", world.idp.token()), 424, "AuthorizerCrossAccountAccessException")


# --- throttling -------------------------------------------------------------------------------------------------


def test_bearer_requests_are_throttled(world: World) -> None:
    """SearchDICOMInstances: burst 1 here. A refused token takes no token from the bucket (auth comes first)."""
    path = f"/studies/{STUDY_A}/series/{SERIES_A}/instances"
    now = int(time.time())
    _refused(world.get("jwks", path, world.idp.token(iat=now - 60, exp=now - 1)), 403, "InvalidTokenException")
    first = world.get("jwks", path, world.idp.token())
    assert first.status_code == 200, first.text
    message = _refused(world.get("jwks", path, world.idp.token()), 429, "ThrottlingException")
    assert message == "Rate exceeded for SearchDICOMInstances"
