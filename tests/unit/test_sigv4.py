"""SigV4 verification: the AWS test-suite vectors, botocore's own signer, and every failure code.

Vectors live in tests/data/sigv4 (see its README for provenance and how a vector is fed to the verifier).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from unittest import mock
from urllib.parse import quote, urlsplit

import boto3
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest, AWSResponse
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.utils import percent_encode_sequence
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from openhi.auth import sigv4
from openhi.auth.sigv4 import KeyMaterial, SignedRequest, VerifiedIdentity, verify
from openhi.errors import AuthenticationError

DATA = Path(__file__).resolve().parents[1] / "data" / "sigv4"
VECTOR_NAMES = sorted(path.name for path in DATA.iterdir() if path.is_dir())

SUITE_KEY = "AKIDEXAMPLE"
SUITE_SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
SUITE_TIME = datetime(2015, 8, 30, 12, 36, tzinfo=UTC)

KEY = "AKIAOPENHITEST000001"
SECRET = "openhi/test+secret/0123456789abcdefghijkl"
ENDPOINT = "http://127.0.0.1:39279"
EMPTY = hashlib.sha256(b"").hexdigest()
WHEN = datetime(2026, 11, 28, 10, 30, tzinfo=UTC)
ARN = "arn:aws:medical-imaging:us-east-1:123456789012:datastore/" + "a" * 32

MISMATCH = (
    "The request signature we calculated does not match the signature you provided. Check your AWS Secret "
    "Access Key and signing method. Consult the service documentation for details."
)
INVALID_TOKEN = "The security token included in the request is invalid."


def secrets(mapping: Mapping[str, str]) -> Any:
    return mapping.get


# ----------------------------------------------------------------------------------------- suite vectors


@dataclass(frozen=True)
class Vector:
    request: SignedRequest
    canonical: str
    to_sign: str
    signed_headers: tuple[str, ...]
    signature: str


def parse_wire_request(text: str) -> SignedRequest:
    """A raw HTTP/1.1 request as a server front end would hand it over: target split at '?', names lowered."""
    head, _, body = text.partition("\n\n")
    request_line, *header_lines = head.split("\n")
    method, _, rest = request_line.partition(" ")
    target, _, version = rest.rpartition(" ")  # the target may contain a space (get-space-normalized)
    assert version == "HTTP/1.1"
    raw_path, _, raw_query = target.partition("?")
    values: dict[str, list[str]] = {}
    for line in header_lines:
        assert not line[:1].isspace(), "folded header lines are not accepted (RFC 7230 §3.2.4)"
        name, separator, value = line.partition(":")
        assert separator
        values.setdefault(name.strip().lower(), []).append(value.strip())
    headers = {name: ",".join(parts) for name, parts in values.items()}
    return SignedRequest(method, raw_path, raw_query, headers, hashlib.sha256(body.encode()).hexdigest())


def load_vector(name: str) -> Vector:
    folder = DATA / name
    request = parse_wire_request((folder / "header-signed-request.txt").read_text(encoding="utf-8"))
    match = re.search(r"SignedHeaders=([^,]+), Signature=([0-9a-f]{64})", request.headers["authorization"])
    assert match
    return Vector(
        request=request,
        canonical=(folder / "header-canonical-request.txt").read_text(encoding="utf-8").rstrip("\n"),
        to_sign=(folder / "header-string-to-sign.txt").read_text(encoding="utf-8").rstrip("\n"),
        signed_headers=tuple(match.group(1).split(";")),
        signature=match.group(2),
    )


SUITE_SCOPE = sigv4.credential_scope("20150830", "us-east-1", "service")
SUITE_SIGNING_KEY = sigv4.signing_key(SUITE_SECRET, "20150830", "us-east-1", "service")
TOKEN_VECTORS = [name for name in VECTOR_NAMES if "session-token" in name or "sts-header" in name]
PLAIN_VECTORS = [name for name in VECTOR_NAMES if name not in TOKEN_VECTORS]


def test_the_vector_set_is_the_documented_one() -> None:
    assert len(VECTOR_NAMES) == 28
    assert TOKEN_VECTORS == ["get-vanilla-with-session-token", "post-sts-header-before"]


def test_vector_files_match_readme_checksums() -> None:
    readme = (DATA / "README.md").read_text(encoding="utf-8")
    listed = {path: digest for digest, path in re.findall(r"^([0-9a-f]{64})  (\S+)$", readme, re.MULTILINE)}
    actual = {
        path.relative_to(DATA).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest() for path in DATA.rglob("*.txt")
    }
    assert listed == actual


@pytest.mark.parametrize("name", VECTOR_NAMES)
def test_vector_data_is_self_consistent(name: str) -> None:
    """Independently of our canonicalization: creq hashes into the sts, the sts signs to the .authz value."""
    vector = load_vector(name)
    assert vector.to_sign.split("\n")[-1] == hashlib.sha256(vector.canonical.encode()).hexdigest()
    assert sigv4.signature(SUITE_SIGNING_KEY, vector.to_sign) == vector.signature


@pytest.mark.parametrize("name", VECTOR_NAMES)
def test_vector_canonical_request(name: str) -> None:
    vector = load_vector(name)
    request = vector.request
    payload_hash = request.headers.get("x-amz-content-sha256", request.payload_sha256)
    canonical = sigv4.canonical_request(
        request.method,
        request.raw_path,
        request.raw_query,
        request.headers,
        vector.signed_headers,
        payload_hash,
    )
    assert canonical == vector.canonical


@pytest.mark.parametrize("name", VECTOR_NAMES)
def test_vector_string_to_sign_and_signature(name: str) -> None:
    vector = load_vector(name)
    to_sign = sigv4.string_to_sign(vector.request.headers["x-amz-date"], SUITE_SCOPE, vector.canonical)
    assert to_sign == vector.to_sign
    assert sigv4.signature(SUITE_SIGNING_KEY, to_sign) == vector.signature


@pytest.mark.parametrize("name", PLAIN_VECTORS)
def test_verify_accepts_vector(name: str) -> None:
    request = load_vector(name).request
    identity = verify(request, secrets({SUITE_KEY: SUITE_SECRET}), SUITE_TIME, service="service")
    assert identity == VerifiedIdentity(SUITE_KEY, "us-east-1", SUITE_TIME)


@pytest.mark.parametrize("name", TOKEN_VECTORS)
def test_verify_refuses_vector_with_session_token(name: str) -> None:
    request = load_vector(name).request
    with pytest.raises(AuthenticationError) as caught:
        verify(request, secrets({SUITE_KEY: SUITE_SECRET}), SUITE_TIME, service="service")
    assert (caught.value.code, caught.value.message) == ("UnrecognizedClientException", INVALID_TOKEN)


def test_s3_single_encoding_signature_is_refused() -> None:
    """get-percent-single-encoded signs the same wire request with S3's single encoding: not ours."""
    request = load_vector("get-percent-encoded").request
    authorization = request.headers["authorization"].replace(
        "64ee2b4fb5e80890c58f8ccc1221231f3e3a556ba0f9c485d32bb2742a74e8ac",
        "dad1caab96f91a79dbba9fa5b6381af14f5d1be97a92e0dc2210d64cf26ef9d0",
    )
    single = replace(request, headers={**request.headers, "authorization": authorization})
    with pytest.raises(AuthenticationError) as caught:
        verify(single, secrets({SUITE_KEY: SUITE_SECRET}), SUITE_TIME, service="service")
    assert (caught.value.code, caught.value.message) == ("InvalidSignatureException", MISMATCH)


# ------------------------------------------------------------------------------------- building blocks


def test_canonical_query_sorts_repeated_keys_by_value() -> None:
    assert sigv4.canonical_query("tagKeys=team&tagKeys=env") == "tagKeys=env&tagKeys=team"


def test_canonical_query_reencodes_with_unreserved_only() -> None:
    assert sigv4.canonical_query("nextToken=abc%2Fdef%2B%3D") == "nextToken=abc%2Fdef%2B%3D"
    assert sigv4.canonical_query("nextToken=abc/def%2b=") == "nextToken=abc%2Fdef%2B%3D"
    assert sigv4.canonical_query("a=b c&x=~y") == "a=b%20c&x=~y"
    assert sigv4.canonical_query("c+d") == "c%2Bd="  # '+' is a literal plus, not a space
    assert sigv4.canonical_query("") == ""


def test_canonical_uri_normalizes_then_encodes_again() -> None:
    assert sigv4.canonical_uri("") == "/"
    assert sigv4.canonical_uri("/a/./b/../c//d/") == "/a/c/d/"
    assert sigv4.canonical_uri("/x%2Fy z") == "/x%252Fy%20z"


def test_canonical_headers_trims_and_collapses() -> None:
    headers = {"host": "h:1", "my-header": "  a   b \t c  "}
    assert sigv4.canonical_headers(headers, ["host", "my-header"]) == "host:h:1\nmy-header:a b c\n"


def test_spec_10_3_tags_arn_path_is_double_encoded() -> None:
    """The worked example of aws-wire-api.md §10.3 (ListTagsForResource), byte for byte."""
    raw_path = "/tags/arn%3Aaws%3Amedical-imaging%3Aus-east-1%3A123456789012%3Adatastore%2F" + "a" * 32
    headers = {"host": "127.0.0.1:39279", "x-amz-date": "20261128T174443Z"}
    expected = (
        "GET\n"
        "/tags/arn%253Aaws%253Amedical-imaging%253Aus-east-1%253A123456789012%253Adatastore%252F" + "a" * 32 + "\n"
        "\n"
        "host:127.0.0.1:39279\n"
        "x-amz-date:20261128T174443Z\n"
        "\n"
        "host;x-amz-date\n"
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    )
    assert sigv4.canonical_request("GET", raw_path, "", headers, ["host", "x-amz-date"], EMPTY) == expected

    # botocore, signing that very request at that instant, agrees and is accepted.
    botocore_request = AWSRequest(method="GET", url="http://127.0.0.1:39279" + raw_path)
    signer = SigV4Auth(Credentials("AKIDEXAMPLE", "x"), "medical-imaging", "us-east-1")
    botocore_request.headers["X-Amz-Date"] = "20261128T174443Z"
    assert signer.canonical_request(botocore_request) == expected
    moment = datetime(2026, 11, 28, 17, 44, 43)
    with mock.patch("botocore.auth.get_current_datetime", return_value=moment):
        signer.add_auth(botocore_request)
    identity = verify(to_signed_request(botocore_request), secrets({"AKIDEXAMPLE": "x"}), moment)
    assert identity == VerifiedIdentity("AKIDEXAMPLE", "us-east-1", moment.replace(tzinfo=UTC))


@pytest.mark.parametrize(
    ("method", "target", "extra", "body", "amz_date", "sig"),
    [
        (
            "POST",
            "/datastore",
            {"content-type": "application/json"},
            b'{"datastoreName": "my-store", "tags": {"env": "dev"}, "losslessStorageFormat": "HTJ2K", '
            b'"kmsKeyArn": "arn:aws:kms:us-east-1:123456789012:key/11111111-2222-3333-4444-555555555555", '
            b'"clientToken": "6e3fe12e-8d04-4c28-b590-683a48f35b14"}',
            "20261128T174442Z",
            "c73d3924f7142174c2300c511f71f9c223f0c877cab1a8579994129d5488792a",
        ),
        (
            "POST",
            "/datastore/" + "a" * 32 + "/imageSet/" + "b" * 32 + "/getImageSet?version=1",
            {},
            b"",
            "20261128T174443Z",
            "c5857378338d43efba4143c7a2772acc0f45d79b08c4e0272c693f723731ec17",
        ),
    ],
    ids=["CreateDatastore", "GetImageSet"],
)
def test_spec_10_2_recorded_boto3_requests_verify(
    method: str, target: str, extra: dict[str, str], body: bytes, amz_date: str, sig: str
) -> None:
    """The full-header examples of aws-wire-api.md §10.2, signed by boto3 1.44.8 with secret 'x'."""
    signed = ";".join(sorted(["host", "x-amz-date", *extra]))
    authorization = (
        f"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/{amz_date[:8]}/us-east-1/medical-imaging/aws4_request, "
        f"SignedHeaders={signed}, Signature={sig}"
    )
    raw_path, _, raw_query = target.partition("?")
    headers = {"host": "127.0.0.1:39279", "x-amz-date": amz_date, "authorization": authorization, **extra}
    request = SignedRequest(method, raw_path, raw_query, headers, hashlib.sha256(body).hexdigest())
    now = datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    assert verify(request, secrets({"AKIDEXAMPLE": "x"}), now).access_key_id == "AKIDEXAMPLE"


# ------------------------------------------------------------------------------------ botocore's signer


def to_signed_request(prepared: Any) -> SignedRequest:
    """What the API layer would build from the request botocore puts on the wire."""
    parts = urlsplit(prepared.url)
    headers = {
        name.lower(): value.decode("latin-1") if isinstance(value, bytes) else value
        for name, value in prepared.headers.items()
    }
    headers.setdefault("host", parts.netloc)
    body = prepared.body or b""
    if isinstance(body, str):
        body = body.encode("utf-8")
    return SignedRequest(prepared.method, parts.path, parts.query, headers, hashlib.sha256(body).hexdigest())


def botocore_sign(
    method: str = "GET",
    path: str = "/datastore",
    query: str = "",
    body: bytes = b"",
    headers: Mapping[str, str] | None = None,
    *,
    when: datetime = WHEN,
    key: str = KEY,
    secret: str = SECRET,
    region: str = "us-east-1",
    service: str = "medical-imaging",
    token: str | None = None,
) -> SignedRequest:
    url = ENDPOINT + path + (f"?{query}" if query else "")
    request = AWSRequest(method=method, url=url, data=body or None, headers=dict(headers or {}))
    signer = SigV4Auth(Credentials(key, secret, token), service, region)
    with mock.patch("botocore.auth.get_current_datetime", return_value=when.replace(tzinfo=None)):
        signer.add_auth(request)
    return to_signed_request(request.prepare())


def encode_query(pairs: list[tuple[str, str]]) -> str:
    """botocore's query serialization (repeated keys stay in order)."""
    sequence: Any = pairs
    return str(percent_encode_sequence(sequence))


label_text = st.text(st.characters(codec="utf-8"), min_size=0, max_size=12)
path_label = st.one_of(
    st.from_regex(r"[0-9a-z]{32}", fullmatch=True),
    st.builds(
        lambda region, kind, ident: f"arn:aws:medical-imaging:{region}:123456789012:{kind}/{ident}",
        st.sampled_from(["us-east-1", "eu-west-1"]),
        st.sampled_from(["datastore", "datastore/" + "a" * 32 + "/imageset"]),
        st.from_regex(r"[0-9a-f]{32}", fullmatch=True),
    ),
    st.sampled_from(["datastore", "imageSet", "tags", "getImageFrame", ".", ".."]),
    label_text,
)
query_key = st.one_of(st.sampled_from(["tagKeys", "maxResults", "nextToken", "version", "force"]), label_text)
query_value = st.one_of(st.sampled_from(["abc/def+=", "a b", "true", "%41", "x&y=z", "ሴ"]), label_text)
json_body = st.one_of(
    st.just(b""),
    st.dictionaries(st.text(max_size=8), st.one_of(st.integers(), st.booleans(), st.text(max_size=16)), max_size=4).map(
        lambda document: json.dumps(document, ensure_ascii=False).encode("utf-8")
    ),
)


@dataclass(frozen=True)
class Case:
    method: str
    path: str
    query: str
    body: bytes
    region: str
    secret: str


cases = st.builds(
    Case,
    method=st.sampled_from(["GET", "POST", "PUT", "DELETE"]),
    path=st.lists(path_label, min_size=1, max_size=5).map(
        lambda labels: "/" + "/".join(quote(label, safe="-_.~") for label in labels)
    ),
    query=st.lists(st.tuples(query_key, query_value), max_size=5).map(encode_query),
    body=json_body,
    region=st.from_regex(r"[a-z]{2}-[a-z]{4,9}-[1-9]", fullmatch=True),
    secret=st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/", min_size=40, max_size=40),
)


def sign_case(case: Case) -> SignedRequest:
    headers = {"Content-Type": "application/json"} if case.body else {}
    return botocore_sign(case.method, case.path, case.query, case.body, headers, region=case.region, secret=case.secret)


def expect_mismatch(request: SignedRequest, secret: str) -> None:
    with pytest.raises(AuthenticationError) as caught:
        verify(request, secrets({KEY: secret}), WHEN)
    assert (caught.value.code, caught.value.message) == ("InvalidSignatureException", MISMATCH)


def flip_query_char(raw_query: str, seed: int) -> str:
    """Change one letter or digit that is not part of a %XX escape (so the decoded query changes)."""
    positions = [
        index
        for index, char in enumerate(raw_query)
        if char.isascii() and char.isalnum() and "%" not in raw_query[max(0, index - 2) : index]
    ]
    if not positions:
        return raw_query + ("&" if raw_query else "") + "x=1"
    index = positions[seed % len(positions)]
    replacement = "y" if raw_query[index] == "x" else "x"
    return raw_query[:index] + replacement + raw_query[index + 1 :]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=cases, seed=st.integers(min_value=0))
def test_botocore_signed_requests_verify_and_any_tampering_fails(case: Case, seed: int) -> None:
    request = sign_case(case)
    identity = verify(request, secrets({KEY: case.secret}), WHEN)
    assert identity == VerifiedIdentity(KEY, case.region, WHEN)

    expect_mismatch(request, case.secret + "x")
    expect_mismatch(replace(request, raw_query=flip_query_char(request.raw_query, seed)), case.secret)
    expect_mismatch(replace(request, headers={**request.headers, "host": "127.0.0.1:39278"}), case.secret)
    expect_mismatch(replace(request, method="PATCH"), case.secret)
    if case.body:
        flipped = bytes([case.body[0] ^ 0x01]) + case.body[1:]
        expect_mismatch(replace(request, payload_sha256=hashlib.sha256(flipped).hexdigest()), case.secret)
        tampered_type = {**request.headers, "content-type": "application/x-amz-json-1.1"}
        expect_mismatch(replace(request, headers=tampered_type), case.secret)


class _Raw:
    def stream(self) -> Iterator[bytes]:
        yield b"{}"


def test_real_boto3_client_requests_verify() -> None:
    """The real medical-imaging serializer: ARN labels, repeated query keys, special characters, JSON."""
    client = boto3.client(
        "medical-imaging",
        endpoint_url=ENDPOINT,
        region_name="us-west-2",
        aws_access_key_id=KEY,
        aws_secret_access_key=SECRET,
        config=Config(inject_host_prefix=False, retries={"max_attempts": 1, "mode": "standard"}),
    )
    captured: list[Any] = []

    def capture(request: Any, **_: Any) -> AWSResponse:
        captured.append(request)
        headers: Any = {"content-type": "application/json"}
        return AWSResponse(request.url, 200, headers, _Raw())

    client.meta.events.register("before-send", capture)
    datastore, image_set = "a" * 32, "b" * 32
    client.untag_resource(resourceArn=ARN + "/imageset/" + image_set, tagKeys=["team", "env", "a b/c+d"])
    client.list_dicom_import_jobs(datastoreId=datastore, jobStatus="COMPLETED", maxResults=5, nextToken="abc/def+=")
    client.tag_resource(resourceArn=ARN, tags={"env": "dev", "ключ": "значение"})
    client.get_image_set(datastoreId=datastore, imageSetId=image_set, versionId="1")
    client.search_image_sets(
        datastoreId=datastore,
        searchCriteria={"filters": [{"operator": "EQUAL", "values": [{"DICOMPatientId": "PAT^1"}]}]},
    )
    assert len(captured) == 5
    assert "/tags/arn%3Aaws%3Amedical-imaging%3A" in captured[0].url
    for prepared in captured:
        now = datetime.now(UTC)
        assert verify(to_signed_request(prepared), secrets({KEY: SECRET}), now).region == "us-west-2"


# ----------------------------------------------------------------------------------------- failure codes


def expect_failure(request: SignedRequest, code: str, *, now: datetime = WHEN, **kwargs: Any) -> str:
    with pytest.raises(AuthenticationError) as caught:
        verify(request, secrets({KEY: SECRET}), now, **kwargs)
    assert caught.value.code == code
    return caught.value.message


def with_headers(request: SignedRequest, **changes: str | None) -> SignedRequest:
    headers = dict(request.headers)
    for name, value in changes.items():
        name = name.replace("_", "-")
        if value is None:
            headers.pop(name, None)
        else:
            headers[name] = value
    return replace(request, headers=headers)


def test_missing_authorization() -> None:
    request = with_headers(botocore_sign(), authorization=None)
    message = expect_failure(request, "MissingAuthenticationTokenException")
    assert message == "Missing Authentication Token"


def test_presigned_query_authentication_is_not_supported_yet() -> None:
    request = replace(
        with_headers(botocore_sign(), authorization=None),
        raw_query="X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature=00",
    )
    assert "presigned" in expect_failure(request, "IncompleteSignatureException")


def test_malformed_authorization_names_what_is_missing() -> None:
    request = botocore_sign()
    no_signature = request.headers["authorization"].split(", Signature=")[0]
    message = expect_failure(with_headers(request, authorization=no_signature), "IncompleteSignatureException")
    assert message == f"Authorization header requires 'Signature' parameter. Authorization={no_signature}"

    message = expect_failure(with_headers(request, authorization="Bearer abc"), "IncompleteSignatureException")
    assert message.startswith("Unsupported AWS 'algorithm': 'Bearer'")

    bare = "AWS4-HMAC-SHA256 Foo=bar"
    message = expect_failure(with_headers(request, authorization=bare), "IncompleteSignatureException")
    assert message == (
        "Authorization header requires 'Credential' parameter. Authorization header requires 'Signature' "
        "parameter. Authorization header requires 'SignedHeaders' parameter. Authorization=" + bare
    )


def test_missing_date_header() -> None:
    request = with_headers(botocore_sign(), x_amz_date=None)
    message = expect_failure(request, "IncompleteSignatureException")
    assert "requires existence of either a 'X-Amz-Date' or a 'Date' header." in message


def test_unparsable_date_header() -> None:
    request = with_headers(botocore_sign(), x_amz_date="2026-11-28T10:30:00Z")
    message = expect_failure(request, "IncompleteSignatureException")
    assert message.startswith("Date must be in ISO-8601 'basic format'. Got '2026-11-28T10:30:00Z'.")


def test_malformed_credential_scope() -> None:
    request = botocore_sign()
    authorization = request.headers["authorization"].replace("/us-east-1/", "/")
    message = expect_failure(with_headers(request, authorization=authorization), "IncompleteSignatureException")
    assert message == (
        "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, "
        f"got '{KEY}/20261128/medical-imaging/aws4_request'"
    )


def test_host_must_be_signed() -> None:
    request = botocore_sign()
    authorization = request.headers["authorization"].replace("SignedHeaders=host;", "SignedHeaders=")
    message = expect_failure(with_headers(request, authorization=authorization), "IncompleteSignatureException")
    assert message == "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization."


def test_unknown_access_key() -> None:
    message = expect_failure(botocore_sign(key="AKIAUNKNOWNKEY000000"), "UnrecognizedClientException")
    assert message == INVALID_TOKEN


def test_session_token_is_refused() -> None:
    request = botocore_sign(token="FwoGZXIvYXdzEXAMPLETOKEN")
    assert "x-amz-security-token" in request.headers
    assert expect_failure(request, "UnrecognizedClientException") == INVALID_TOKEN


@pytest.mark.parametrize("name", TOKEN_VECTORS)
def test_verify_accepts_vector_with_its_session_token(name: str) -> None:
    request = load_vector(name).request
    material = KeyMaterial(SUITE_SECRET, request.headers["x-amz-security-token"])
    identity = verify(request, {SUITE_KEY: material}.get, SUITE_TIME, service="service")
    assert identity == VerifiedIdentity(SUITE_KEY, "us-east-1", SUITE_TIME)


SESSION_TOKEN = "IQoJb3JpZ2luX2VjEXAMPLESESSIONTOKEN0123456789abcdef"


def test_temporary_key_with_its_token_verifies() -> None:
    request = botocore_sign(token=SESSION_TOKEN)
    lookup = {KEY: KeyMaterial(SECRET, SESSION_TOKEN)}.get
    assert verify(request, lookup, WHEN).access_key_id == KEY


@pytest.mark.parametrize("presented", [None, SESSION_TOKEN + "x", SESSION_TOKEN[:-1], ""])
def test_temporary_key_without_its_token_is_unrecognized(presented: str | None) -> None:
    request = botocore_sign(token=presented) if presented else botocore_sign()
    with pytest.raises(AuthenticationError) as caught:
        verify(request, {KEY: KeyMaterial(SECRET, SESSION_TOKEN)}.get, WHEN)
    assert (caught.value.code, caught.value.message) == ("UnrecognizedClientException", INVALID_TOKEN)


def test_long_term_key_material_with_a_token_header_is_unrecognized() -> None:
    with pytest.raises(AuthenticationError) as caught:
        verify(botocore_sign(token=SESSION_TOKEN), {KEY: KeyMaterial(SECRET)}.get, WHEN)
    assert caught.value.code == "UnrecognizedClientException"


def test_token_check_does_not_skip_the_signature() -> None:
    request = botocore_sign(token=SESSION_TOKEN, secret=SECRET + "x")
    with pytest.raises(AuthenticationError) as caught:
        verify(request, {KEY: KeyMaterial(SECRET, SESSION_TOKEN)}.get, WHEN)
    assert caught.value.code == "InvalidSignatureException"


def test_errors_raised_by_the_key_lookup_propagate() -> None:
    def expired(_: str) -> KeyMaterial:
        raise AuthenticationError("ExpiredTokenException", "The security token included in the request is expired")

    with pytest.raises(AuthenticationError) as caught:
        verify(botocore_sign(token=SESSION_TOKEN), expired, WHEN)
    assert caught.value.code == "ExpiredTokenException"


def test_wrong_service_in_scope() -> None:
    message = expect_failure(botocore_sign(service="execute-api"), "InvalidSignatureException")
    assert message == "Credential should be scoped to correct service: 'medical-imaging'. "


def test_wrong_terminator_in_scope() -> None:
    request = botocore_sign()
    authorization = request.headers["authorization"].replace("/aws4_request,", "/aws5_request,")
    message = expect_failure(with_headers(request, authorization=authorization), "InvalidSignatureException")
    assert message == "Credential should be scoped with a valid terminator: 'aws4_request', not 'aws5_request'. "


def test_scope_date_must_match_request_date() -> None:
    request = botocore_sign()
    authorization = request.headers["authorization"].replace("/20261128/", "/20261127/")
    message = expect_failure(with_headers(request, authorization=authorization), "InvalidSignatureException")
    assert message == (
        "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: "
        "'20261127' != '20261128', from '20261128T103000Z'. "
    )


def test_expired_16_minutes_old() -> None:
    request = botocore_sign(when=WHEN - timedelta(minutes=16))
    message = expect_failure(request, "InvalidSignatureException")
    assert message == (
        "Signature expired: 20261128T101400Z is now earlier than 20261128T101500Z (20261128T103000Z - 15 min.)"
    )


def test_expired_message_matches_aws_wording() -> None:
    request = botocore_sign(when=datetime(2026, 11, 28, 10, 0, tzinfo=UTC))
    message = expect_failure(request, "InvalidSignatureException")
    assert message == (
        "Signature expired: 20261128T100000Z is now earlier than 20261128T101500Z (20261128T103000Z - 15 min.)"
    )


def test_not_yet_current_16_minutes_ahead() -> None:
    request = botocore_sign(when=WHEN + timedelta(minutes=16))
    message = expect_failure(request, "InvalidSignatureException")
    assert message == (
        "Signature not yet current: 20261128T104600Z is still later than 20261128T104500Z (20261128T103000Z + 15 min.)"
    )


@pytest.mark.parametrize("offset", [timedelta(minutes=-14), timedelta(minutes=14), timedelta(minutes=-15)])
def test_skew_within_15_minutes_is_accepted(offset: timedelta) -> None:
    when = WHEN + offset
    assert verify(botocore_sign(when=when), secrets({KEY: SECRET}), WHEN).request_time == when


def test_max_skew_is_configurable() -> None:
    request = botocore_sign(when=WHEN - timedelta(minutes=2))
    message = expect_failure(request, "InvalidSignatureException", max_skew=timedelta(minutes=1))
    assert message.endswith("(20261128T103000Z - 1 min.)")


def test_naive_now_is_taken_as_utc() -> None:
    assert verify(botocore_sign(), secrets({KEY: SECRET}), WHEN.replace(tzinfo=None)).request_time == WHEN


def test_signature_mismatch_wrong_secret() -> None:
    with pytest.raises(AuthenticationError) as caught:
        verify(botocore_sign(), secrets({KEY: SECRET + "x"}), WHEN)
    assert (caught.value.code, caught.value.message) == ("InvalidSignatureException", MISMATCH)


def test_non_hex_signature_is_a_mismatch() -> None:
    request = botocore_sign()
    authorization = re.sub(r"Signature=\w+", "Signature=zz\u00e9", request.headers["authorization"])
    assert expect_failure(with_headers(request, authorization=authorization), "InvalidSignatureException") == MISMATCH


def test_date_header_instead_of_x_amz_date() -> None:
    request = botocore_sign(headers={"Date": "placeholder"})
    assert "x-amz-date" not in request.headers
    assert request.headers["date"] == "Sat, 28 Nov 2026 10:30:00 -0000"
    assert verify(request, secrets({KEY: SECRET}), WHEN).request_time == WHEN


def test_x_amz_content_sha256_must_match_the_body() -> None:
    body = b'{"tags": {"env": "dev"}}'
    declared = hashlib.sha256(body).hexdigest()
    request = botocore_sign("POST", "/tags/x", body=body, headers={"X-Amz-Content-SHA256": declared})
    assert verify(request, secrets({KEY: SECRET}), WHEN).access_key_id == KEY
    tampered = replace(request, payload_sha256=hashlib.sha256(body + b" ").hexdigest())
    message = expect_failure(tampered, "InvalidSignatureException")
    assert message == "The provided 'x-amz-content-sha256' header does not match what was computed."


def test_unsigned_payload_is_accepted_whatever_the_body() -> None:
    request = botocore_sign("POST", "/tags/x", body=b"{}", headers={"X-Amz-Content-SHA256": "UNSIGNED-PAYLOAD"})
    other_body = replace(request, payload_sha256=hashlib.sha256(b"anything").hexdigest())
    assert verify(other_body, secrets({KEY: SECRET}), WHEN).access_key_id == KEY


def test_unsupported_content_sha256_value() -> None:
    request = botocore_sign(headers={"X-Amz-Content-SHA256": "STREAMING-UNSIGNED-PAYLOAD-TRAILER"})
    assert "Unsupported 'x-amz-content-sha256'" in expect_failure(request, "InvalidSignatureException")


def test_streaming_literal_over_a_plain_body_is_signed_as_the_literal() -> None:
    """The guide's STOW-RS curl examples (1830-1860) sign the literal and send the body unencoded."""
    headers = {"X-Amz-Content-SHA256": "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"}
    request = botocore_sign("POST", "/datastore/x/studies", body=b"dicom", headers=headers)
    assert verify(request, secrets({KEY: SECRET}), WHEN).access_key_id == KEY


def test_aws_chunked_bodies_are_refused() -> None:
    headers = {"X-Amz-Content-SHA256": "STREAMING-AWS4-HMAC-SHA256-PAYLOAD", "Content-Encoding": "aws-chunked"}
    request = botocore_sign("POST", "/datastore/x/studies", body=b"dicom", headers=headers)
    assert "aws-chunked" in expect_failure(request, "InvalidSignatureException")


def test_any_region_is_accepted_and_reported() -> None:
    assert verify(botocore_sign(region="eu-central-2"), secrets({KEY: SECRET}), WHEN).region == "eu-central-2"


def test_failure_order_scope_before_key_before_signature() -> None:
    """Unknown key plus wrong service reports the scope; unknown key plus bad signature reports the key."""
    wrong_service = botocore_sign(key="AKIAUNKNOWNKEY000000", service="s3")
    assert expect_failure(wrong_service, "InvalidSignatureException").startswith("Credential should be scoped")
    unknown = botocore_sign(key="AKIAUNKNOWNKEY000000", secret="other")
    assert expect_failure(unknown, "UnrecognizedClientException") == INVALID_TOKEN
