"""Throttling through the real clients (guide 22777-22816): ThrottlingException 429 on both API surfaces.

Throttling does not depend on the index or blob backend, so these servers run the embedded backend only. The
test servers of every other module start with throttling off (``tests/support/server.py``); here it is on, with
the guide's defaults plus a few low overrides so that a burst is cheap to exceed.
"""

from __future__ import annotations

import io
import json
import secrets
import uuid
from collections.abc import Iterator
from typing import Any

import pydicom
import pytest
import redis
from botocore.config import Config
from botocore.exceptions import ClientError
from tests.e2e.helpers import wait_for_status
from tests.support.backends import unavailable
from tests.support.dicom_corpus import SeriesSpec, ct_dataset, uid
from tests.support.dicomweb import dicomweb_url
from tests.support.server import ServerPool, ServerProcess
from tests.support.signing import send, signed

REDIS_URL = "redis://127.0.0.1:6379/15"
OVERRIDES = {
    "ListDatastores": [0.5, 2],
    "ListDICOMImportJobs": [20, 1],
    "GetDICOMInstanceMetadata": [0.5, 2],
}
NO_RETRIES = Config(inject_host_prefix=False, retries={"total_max_attempts": 1})
STANDARD_RETRIES = Config(inject_host_prefix=False, retries={"mode": "standard"})  # 3 attempts, jittered backoff


@pytest.fixture(scope="module")
def pool(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerPool]:
    servers = ServerPool(tmp_path_factory, "throttling")
    try:
        yield servers
    finally:
        servers.stop_all()


@pytest.fixture(scope="module")
def server(pool: ServerPool) -> ServerProcess:
    return pool.start({"OPENHI_THROTTLING": "true", "OPENHI_THROTTLE_RATES": json.dumps(OVERRIDES)})


@pytest.fixture(scope="module")
def datastore(server: ServerProcess) -> str:
    client = server.client()
    datastore_id: str = client.create_datastore(datastoreName="throttled")["datastoreId"]
    wait_for_status(client, datastore_id, "ACTIVE")  # GetDatastore: 10 per second, burst 20
    return datastore_id


def _code(call: Any, **kwargs: Any) -> str | None:
    """None when the call succeeds, else "<error code> <HTTP status>"."""
    try:
        call(**kwargs)
    except ClientError as exc:
        return f"{exc.response['Error']['Code']} {exc.response['ResponseMetadata']['HTTPStatusCode']}"
    return None


def test_a_burst_beyond_the_bucket_is_throttled_with_429(server: ServerProcess) -> None:
    client = server.client(config=NO_RETRIES)
    outcomes = [_code(client.list_datastores) for _ in range(5)]
    assert outcomes[:2] == [None, None]  # the burst of 2
    assert outcomes[2:] == ["ThrottlingException 429"] * 3  # 0.5 per second: nothing comes back in these few ms
    with pytest.raises(client.exceptions.ThrottlingException) as caught:
        client.list_datastores()
    response = caught.value.response
    assert response["Error"]["Message"] == "Rate exceeded for ListDatastores"
    assert response["ResponseMetadata"]["HTTPHeaders"]["x-amzn-errortype"] == "ThrottlingException"
    assert response["ResponseMetadata"]["RetryAttempts"] == 0


def test_the_guide_default_applies_to_create_datastore(server: ServerProcess, datastore: str) -> None:
    """0.085 per second, burst 1: after the module's data store, a second one within 12 s is refused."""
    client = server.client(config=NO_RETRIES)
    outcomes = [_code(client.create_datastore, datastoreName=f"again-{n}") for n in range(2)]
    assert outcomes[-1] == "ThrottlingException 429"


def test_a_standard_retrying_client_recovers(server: ServerProcess, datastore: str) -> None:
    """ListDICOMImportJobs at 20 per second, burst 1: back-to-back calls are throttled, then retried."""
    client = server.client(config=STANDARD_RETRIES)
    responses = [client.list_dicom_import_jobs(datastoreId=datastore) for _ in range(3)]
    assert all(r["ResponseMetadata"]["HTTPStatusCode"] == 200 for r in responses)
    assert sum(r["ResponseMetadata"]["RetryAttempts"] for r in responses) >= 1  # a 429 was retried away


def test_dicomweb_instance_metadata_burst_gets_429(server: ServerProcess, datastore: str) -> None:
    spec = SeriesSpec(study=f"t{uuid.uuid4().hex[:6]}", slices=1, size=16)
    dataset = ct_dataset(spec, 0)
    body = io.BytesIO()
    pydicom.dcmwrite(body, dataset, enforce_file_format=True)
    base = dicomweb_url(server, datastore)
    stored = send(
        signed(
            "POST",
            f"{base}/studies",
            body.getvalue(),
            {"Content-Type": "application/dicom", "Accept": "application/dicom+json"},
        )
    )
    assert stored.status_code == 200, stored.text  # StoreDICOM is not in the guide's table: not throttled
    url = f"{base}/studies/{uid(spec.study)}/series/{uid(spec.study, spec.series)}/instances/{dataset.SOPInstanceUID}"
    answers = [send(signed("GET", f"{url}/metadata", headers={"Accept": "application/dicom+json"})) for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 429, 429]
    assert answers[2].headers["x-amzn-ErrorType"] == "ThrottlingException"
    assert answers[2].json() == {
        "__type": "ThrottlingException",
        "message": "Rate exceeded for GetDICOMInstanceMetadata",
    }
    assert send(signed("GET", url, headers={"Accept": "application/dicom"})).status_code == 200  # its own bucket


def _successes(server: ServerProcess, calls: int) -> int:
    """ListDatastores ``calls`` times, each from a new client (a new connection, so any process may answer)."""
    return sum(_code(server.client(config=NO_RETRIES).list_datastores) is None for _ in range(calls))


def _account() -> str:
    """A fresh account id: the Redis keys name the account, so runs never share a bucket."""
    return str(secrets.randbelow(9 * 10**11) + 10**11)


def test_workers_without_redis_divide_the_limits(pool: ServerPool) -> None:
    """Burst 3 over 2 processes: 1.5 each, so one request per process passes (undivided: 3 per process)."""
    server = pool.start(
        {"OPENHI_THROTTLING": "true", "OPENHI_THROTTLE_RATES": json.dumps({"ListDatastores": [0.01, 3]})},
        ["--workers", "2"],
    )
    assert _successes(server, 8) in (1, 2)


def test_workers_share_one_bucket_through_redis(pool: ServerPool) -> None:
    """Burst 3 shared by 2 processes through Redis: exactly 3 of 8 requests pass, whichever process answers."""
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except redis.RedisError as exc:
        unavailable(f"Redis not reachable at {REDIS_URL}: {exc}")
    server = pool.start(
        {
            "OPENHI_THROTTLING": "true",
            "OPENHI_THROTTLE_RATES": json.dumps({"ListDatastores": [0.01, 3]}),
            "OPENHI_THROTTLE_URL": REDIS_URL,
            "OPENHI_ACCOUNT_ID": _account(),
        },
        ["--workers", "2"],
    )
    assert _successes(server, 8) == 3
