"""A customer managed key through the AWS KMS-compatible provider (moto's KMS in server mode), end to end: a data store
created with ``kmsKeyArn`` gets a key from GenerateDataKey, import and STOW-RS seal with it, reads Decrypt it (also
after a restart), and a key KMS does not know makes the data store CREATE_FAILED (guide 20990-21060).

The provider does not depend on the index backend: the scale-out backend (PostgreSQL + S3) only.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import boto3
import pytest
from tests.e2e.conftest import ServerFactory
from tests.e2e.helpers import wait_for_status
from tests.e2e.import_helpers import run_job, upload
from tests.support.at_rest import all_frames, frame_windows, keys_json, plaintext_found, stored_objects
from tests.support.backends import S3Server
from tests.support.dicom_corpus import SeriesSpec, ct_dataset, write_series
from tests.support.dicomweb import dicomweb_client
from tests.support.server import ServerProcess

NAME = "PANGOLIN^WILHELMINA"


@pytest.fixture(scope="module", params=["scaleout"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def server(make_server: ServerFactory, s3_server: S3Server) -> ServerProcess:
    return make_server(
        env={
            **s3_server.env(),
            "OPENHI_IMPORT_WORKERS": "1",
            "OPENHI_KMS_PROVIDER": "aws",
            "OPENHI_KMS_ENDPOINT_URL": s3_server.endpoint,
        }
    )


@pytest.fixture(scope="module")
def key_arn(s3_server: S3Server) -> str:
    kms = boto3.client(
        "kms",
        endpoint_url=s3_server.endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    arn: str = kms.create_key(Description="customer managed key of an OpenHI data store")["KeyMetadata"]["Arn"]
    return arn


def test_a_datastore_sealed_with_a_kms_customer_key(
    server: ServerProcess, s3_server: S3Server, key_arn: str, tmp_path: Path
) -> None:
    client = server.client()
    datastore_id = client.create_datastore(datastoreName=f"kms-{uuid.uuid4().hex[:6]}", kmsKeyArn=key_arn)[
        "datastoreId"
    ]
    assert wait_for_status(client, datastore_id, "ACTIVE")["kmsKeyArn"] == key_arn
    [key] = keys_json(server, "list", "--datastore-id", datastore_id)["DatastoreKeys"]
    assert (key["WrappedBy"], key["WrappingKeyId"]) == ("CUSTOMER", key_arn)

    write_series(tmp_path / "in", SeriesSpec(study="kms", patient_name=NAME, slices=2, size=64))
    bucket = s3_server.new_bucket()
    upload(s3_server, tmp_path / "in", bucket, "in")
    assert run_job(client, datastore_id, f"s3://{bucket}/in/", f"s3://{bucket}/out/")["jobStatus"] == "COMPLETED"
    stowed = SeriesSpec(study="kms", series="stowed", patient_name=NAME, slices=1, size=64, series_number=2)
    dicomweb_client(server, datastore_id).store_instances([ct_dataset(stowed, 0)])
    frames = all_frames(client, datastore_id)
    assert len(frames) == 3

    objects = stored_objects(server, s3_server)
    probes = [NAME.encode(), *(window for frame in frames.values() for window in frame_windows(frame))]
    assert plaintext_found(objects, probes) == {}

    assert server.stop() == 0
    server.start()  # nothing cached: every data key comes from KMS Decrypt again
    assert all_frames(server.client(), datastore_id) == frames


def test_a_key_kms_does_not_know_fails_the_creation(server: ServerProcess) -> None:
    client: Any = server.client()
    missing = "arn:aws:kms:us-east-1:123456789012:key/99999999-8888-7777-6666-555555555555"
    datastore_id = client.create_datastore(datastoreName="kms-missing", kmsKeyArn=missing)["datastoreId"]
    wait_for_status(client, datastore_id, "CREATE_FAILED")
    assert keys_json(server, "list", "--datastore-id", datastore_id)["DatastoreKeys"] == []
