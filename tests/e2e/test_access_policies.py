"""Access control end to end: boto3 and signed DICOMweb requests by different users against ``openhi serve``.

Users come from an IAM file (``--iam-file``); each signs with its own access key. Covered: the managed
read-only policy, default deny, explicit deny over an allow, wildcard actions and resources, study- and
series-level conditions on the DICOMweb operations (guide 21721-21860) including a study search that returns only
the studies the caller may see, and a user allowed nothing answered 403 on every native operation and every
DICOMweb route (no route skips the service-layer check).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydicom.dataset import Dataset
from tests.e2e.conftest import ServerFactory
from tests.e2e.helpers import error_of, wait_for_status
from tests.support.dicom_corpus import SeriesSpec, ct_dataset
from tests.support.dicomweb import dicomweb_client, dicomweb_url, signed_session
from tests.support.iam_cli import iam_json
from tests.support.server import ServerProcess

ACCOUNT = "123456789012"
REGION = "us-east-1"


def _key(name: str) -> tuple[str, str]:
    """A deterministic access key pair per test user."""
    suffix = "".join(c for c in name.upper() if c.isalnum()).ljust(16, "X")[:16]
    return f"AKIA{suffix}", f"secret-of-{name}".ljust(40, "s")


def _policy(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def _allow(actions: Any, resources: Any = "*", condition: dict[str, Any] | None = None) -> dict[str, Any]:
    statement: dict[str, Any] = {"Effect": "Allow", "Action": actions, "Resource": resources}
    if condition:
        statement["Condition"] = condition
    return statement


def _toml_string(value: str) -> str:
    return json.dumps(value)  # a JSON string literal is a valid TOML basic string


def _user(name: str, policies: dict[str, str] | None = None, managed: list[str] | None = None) -> str:
    key_id, secret = _key(name)
    lines = [
        "[[users]]",
        f"name = {_toml_string(name)}",
        f"access_key_id = {_toml_string(key_id)}",
        f"secret_access_key = {_toml_string(secret)}",
    ]
    if managed:
        lines.append(f"managed_policies = {json.dumps(managed)}")
    if policies:
        lines.append("[users.policies]")
        lines += [f"{_toml_string(policy_name)} = {_toml_string(doc)}" for policy_name, doc in policies.items()]
    return "\n".join(lines) + "\n"


STUDY_A = "1.2.826.0.1.3680043.8.498.100.1"
STUDY_B = "1.2.826.0.1.3680043.8.498.200.1"
SERIES_A = "1.2.826.0.1.3680043.8.498.100.2"
SERIES_B = "1.2.826.0.1.3680043.8.498.200.2"


def _series(study: str, series: str, label: str) -> list[Dataset]:
    spec = SeriesSpec(study=label, series=label, patient_id=label, slices=2, size=16)
    datasets = []
    for index in range(spec.slices):
        ds = ct_dataset(spec, index)
        ds.StudyInstanceUID = study
        ds.SeriesInstanceUID = series
        ds.SOPInstanceUID = f"{series}.{index + 1}"
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        datasets.append(ds)
    return datasets


@pytest.fixture(scope="module")
def world(make_server: ServerFactory, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A server with users, one data store with two studies (stored by the root key), and its ids."""
    folder = tmp_path_factory.mktemp("iam")
    iam_file = folder / "iam.toml"
    # The data store id is not known before the server runs: resource patterns use the account and wildcards.
    ds_arn = f"arn:aws:medical-imaging:{REGION}:{ACCOUNT}:datastore/"
    users = [
        _user("reader", managed=["AWSHealthImagingReadOnlyAccess"]),
        _user("nobody"),
        _user(
            "admin-but-delete",
            policies={
                "all": _policy(_allow("medical-imaging:*")),
                "no-delete": _policy({"Effect": "Deny", "Action": "medical-imaging:Delete*", "Resource": "*"}),
            },
        ),
        _user("getter", policies={"get": _policy(_allow(["medical-imaging:Get*", "medical-imaging:List*"]))}),
        _user(
            "study-a",
            policies={
                "dicomweb": _policy(
                    _allow(
                        [
                            "medical-imaging:SearchDICOMSeries",
                            "medical-imaging:SearchDICOMStudies",
                            "medical-imaging:GetDICOMInstanceFrames",
                            "medical-imaging:GetDICOMSeriesMetadata",
                        ],
                        f"{ds_arn}*",
                        {"StringEquals": {"medical-imaging:StudyInstanceUID": [STUDY_A, "9.9.9"]}},
                    )
                )
            },
        ),
        _user(
            "series-like",
            policies={
                "dicomweb": _policy(
                    _allow(
                        ["medical-imaging:SearchDICOMInstances", "medical-imaging:GetDICOMInstanceFrames"],
                        "*",
                        {"StringLike": {"medical-imaging:SeriesInstanceUID": "1.2.826.0.1.3680043.8.498.200.*"}},
                    )
                )
            },
        ),
    ]
    iam_file.write_text("\n".join(users))
    server = make_server(env={"OPENHI_IAM_FILE": str(iam_file)})
    root = server.client()
    datastore = root.create_datastore(datastoreName="iam")["datastoreId"]
    other = root.create_datastore(datastoreName="iam-other")["datastoreId"]
    wait_for_status(root, datastore, "ACTIVE")
    wait_for_status(root, other, "ACTIVE")
    web = dicomweb_client(server, datastore)
    web.store_instances(datasets=_series(STUDY_A, SERIES_A, "a") + _series(STUDY_B, SERIES_B, "b"))
    image_sets = root.search_image_sets(datastoreId=datastore)["imageSetsMetadataSummaries"]
    return {
        "server": server,
        "datastore": datastore,
        "other": other,
        "image_set": image_sets[0]["imageSetId"],
        "iam_file": iam_file,
    }


def _client(world: dict[str, Any], user: str) -> Any:
    key_id, secret = _key(user)
    server: ServerProcess = world["server"]
    return server.client(aws_access_key_id=key_id, aws_secret_access_key=secret)


def _web(world: dict[str, Any], user: str) -> Any:
    key_id, secret = _key(user)
    return signed_session(access_key_id=key_id, secret=secret)


def _denied(call: Any, **kwargs: Any) -> str:
    code, status, message = error_of(call, **kwargs)
    assert (code, status) == ("AccessDeniedException", 403), message
    return message


def test_read_only_managed_policy_reads_but_cannot_write(world: dict[str, Any]) -> None:
    reader = _client(world, "reader")
    assert reader.get_datastore(datastoreId=world["datastore"])["datastoreProperties"]["datastoreName"] == "iam"
    ids = {d["datastoreId"] for d in reader.list_datastores()["datastoreSummaries"]}
    assert world["datastore"] in ids
    assert reader.get_image_set(datastoreId=world["datastore"], imageSetId=world["image_set"])["imageSetId"]
    message = _denied(reader.create_datastore, datastoreName="nope")
    assert "user/reader" in message
    assert "medical-imaging:CreateDatastore" in message
    _denied(reader.delete_image_set, datastoreId=world["datastore"], imageSetId=world["image_set"])


def test_default_deny_for_a_user_without_policies(world: dict[str, Any]) -> None:
    nobody = _client(world, "nobody")
    _denied(nobody.list_datastores)
    _denied(nobody.get_datastore, datastoreId=world["datastore"])
    # an unknown data store is denied too: the check comes before the lookup, so nothing leaks
    _denied(nobody.get_datastore, datastoreId="0" * 32)


def test_explicit_deny_wins_over_allow(world: dict[str, Any]) -> None:
    admin = _client(world, "admin-but-delete")
    created = admin.create_datastore(datastoreName="admin-made")["datastoreId"]
    assert admin.get_datastore(datastoreId=created)["datastoreProperties"]["datastoreId"] == created
    message = _denied(admin.delete_datastore, datastoreId=created)
    assert "explicit deny" in message
    _denied(admin.delete_image_set, datastoreId=world["datastore"], imageSetId=world["image_set"])
    wait_for_status(world["server"].client(), created, "ACTIVE")
    world["server"].client().delete_datastore(datastoreId=created)


def test_wildcard_actions(world: dict[str, Any]) -> None:
    getter = _client(world, "getter")
    getter.get_image_set_metadata(datastoreId=world["datastore"], imageSetId=world["image_set"])
    assert getter.list_image_set_versions(datastoreId=world["datastore"], imageSetId=world["image_set"])
    _denied(getter.search_image_sets, datastoreId=world["datastore"])
    _denied(getter.tag_resource, resourceArn=_arn(world["datastore"]), tags={"k": "v"})


def _arn(datastore: str, image_set: str | None = None) -> str:
    base = f"arn:aws:medical-imaging:{REGION}:{ACCOUNT}:datastore/{datastore}"
    return base if image_set is None else f"{base}/imageset/{image_set}"


def test_wildcard_resources_reach_one_data_store_only(world: dict[str, Any], tmp_path: Path) -> None:
    """Resource ``datastore/{id}*`` covers the data store and its image sets, not another data store."""
    server: ServerProcess = world["server"]
    datastore, other = world["datastore"], world["other"]
    policy = _policy(_allow("medical-imaging:*", f"arn:aws:medical-imaging:*:{ACCOUNT}:datastore/{datastore}*"))
    key_id, secret = _add_user_with_cli(server, "one-store", policy)
    scoped = server.client(aws_access_key_id=key_id, aws_secret_access_key=secret)
    assert scoped.get_datastore(datastoreId=datastore)
    assert scoped.get_image_set(datastoreId=datastore, imageSetId=world["image_set"])
    assert scoped.search_image_sets(datastoreId=datastore)["imageSetsMetadataSummaries"]
    _denied(scoped.get_datastore, datastoreId=other)
    _denied(scoped.search_image_sets, datastoreId=other)
    _denied(scoped.list_datastores)  # resource "*" is not covered by a data store pattern


def _add_user_with_cli(server: ServerProcess, name: str, policy: str) -> tuple[str, str]:
    """Create a user through ``openhi iam`` on the server's index and return its new access key."""
    iam_json(server, "create-user", "--user", name)
    iam_json(server, "put-user-policy", "--user", name, "--name", "p", "--document", policy)
    created = iam_json(server, "create-access-key", "--user", name)["AccessKey"]
    return str(created["AccessKeyId"]), str(created["SecretAccessKey"])


def _get(world: dict[str, Any], user: str, path: str, accept: str = "application/dicom+json") -> Any:
    return _web(world, user).get(
        f"{dicomweb_url(world['server'], world['datastore'])}{path}", headers={"Accept": accept}
    )


def test_study_condition_on_search_series_and_frames(world: dict[str, Any]) -> None:
    allowed = _get(world, "study-a", f"/studies/{STUDY_A}/series")
    assert allowed.status_code == 200, allowed.text
    assert [row["0020000E"]["Value"][0] for row in allowed.json()] == [SERIES_A]
    refused = _get(world, "study-a", f"/studies/{STUDY_B}/series")
    assert refused.status_code == 403
    assert refused.json()["__type"] == "AccessDeniedException"
    frames = _get(
        world,
        "study-a",
        f"/studies/{STUDY_A}/series/{SERIES_A}/instances/{SERIES_A}.1/frames/1",
        "multipart/related; type=application/octet-stream",
    )
    assert frames.status_code == 200
    assert (
        _get(
            world,
            "study-a",
            f"/studies/{STUDY_B}/series/{SERIES_B}/instances/{SERIES_B}.1/frames/1",
            "multipart/related; type=application/octet-stream",
        ).status_code
        == 403
    )
    # SearchDICOMInstances is not in this user's policy at all
    assert _get(world, "study-a", f"/studies/{STUDY_A}/series/{SERIES_A}/instances").status_code == 403


def test_study_search_returns_only_visible_studies(world: dict[str, Any]) -> None:
    root = signed_session().get(f"{dicomweb_url(world['server'], world['datastore'])}/studies")
    assert {row["0020000D"]["Value"][0] for row in root.json()} == {STUDY_A, STUDY_B}
    found = _get(world, "study-a", "/studies")
    assert found.status_code == 200
    assert [row["0020000D"]["Value"][0] for row in found.json()] == [STUDY_A]
    assert _get(world, "nobody", "/studies").status_code == 403


def test_series_condition_with_string_like(world: dict[str, Any]) -> None:
    instances = _get(world, "series-like", f"/studies/{STUDY_B}/series/{SERIES_B}/instances")
    assert instances.status_code == 200
    assert len(instances.json()) == 2
    assert _get(world, "series-like", f"/studies/{STUDY_A}/series/{SERIES_A}/instances").status_code == 403
    # SearchDICOMStudies does not support the series key: as if absent, so the StringLike does not match
    assert _get(world, "series-like", "/studies").status_code == 403


def test_a_user_allowed_nothing_is_refused_by_every_native_operation(world: dict[str, Any]) -> None:
    nobody = _client(world, "nobody")
    ds, image_set = world["datastore"], world["image_set"]
    calls: list[tuple[Any, dict[str, Any]]] = [
        (nobody.create_datastore, {"datastoreName": "x"}),
        (nobody.get_datastore, {"datastoreId": ds}),
        (nobody.list_datastores, {}),
        (nobody.delete_datastore, {"datastoreId": world["other"]}),
        (
            nobody.start_dicom_import_job,
            {
                "datastoreId": ds,
                "dataAccessRoleArn": f"arn:aws:iam::{ACCOUNT}:role/r",
                "inputS3Uri": "s3://bucket/in/",
                "outputS3Uri": "s3://bucket/out/",
            },
        ),
        (nobody.get_dicom_import_job, {"datastoreId": ds, "jobId": "0" * 32}),
        (nobody.list_dicom_import_jobs, {"datastoreId": ds}),
        (nobody.search_image_sets, {"datastoreId": ds}),
        (nobody.get_image_set, {"datastoreId": ds, "imageSetId": image_set}),
        (nobody.get_image_set_metadata, {"datastoreId": ds, "imageSetId": image_set}),
        (
            nobody.get_image_frame,
            {"datastoreId": ds, "imageSetId": image_set, "imageFrameInformation": {"imageFrameId": "0" * 32}},
        ),
        (nobody.list_image_set_versions, {"datastoreId": ds, "imageSetId": image_set}),
        (
            nobody.update_image_set_metadata,
            {
                "datastoreId": ds,
                "imageSetId": image_set,
                "latestVersionId": "1",
                "updateImageSetMetadataUpdates": {"DICOMUpdates": {"updatableAttributes": b"{}"}},
            },
        ),
        (
            nobody.copy_image_set,
            {
                "datastoreId": ds,
                "sourceImageSetId": image_set,
                "copyImageSetInformation": {"sourceImageSet": {"latestVersionId": "1"}},
            },
        ),
        (nobody.delete_image_set, {"datastoreId": ds, "imageSetId": image_set}),
        (nobody.tag_resource, {"resourceArn": _arn(ds), "tags": {"k": "v"}}),
        (nobody.untag_resource, {"resourceArn": _arn(ds), "tagKeys": ["k"]}),
        (nobody.list_tags_for_resource, {"resourceArn": _arn(ds)}),
    ]
    assert len(calls) == 18
    for call, kwargs in calls:
        _denied(call, **kwargs)
    # nothing changed: the root still sees the image set at version 1
    root = world["server"].client()
    assert root.get_image_set(datastoreId=ds, imageSetId=image_set)["imageSetState"] == "ACTIVE"


def test_a_user_allowed_nothing_is_refused_by_every_dicomweb_route(world: dict[str, Any]) -> None:
    instance = f"/studies/{STUDY_A}/series/{SERIES_A}/instances/{SERIES_A}.1"
    paths = [
        "/studies",
        f"/studies/{STUDY_A}/series",
        f"/studies/{STUDY_A}/series/{SERIES_A}/instances",
        f"/studies/{STUDY_A}/instances",
        f"/studies/{STUDY_A}",
        f"/studies/{STUDY_A}/metadata",
        f"/studies/{STUDY_A}/series/{SERIES_A}",
        f"/studies/{STUDY_A}/series/{SERIES_A}/metadata",
        f"/studies/{STUDY_A}/series/{SERIES_A}/rendered",
        f"/studies/{STUDY_A}/series/{SERIES_A}/thumbnail",
        instance,
        f"{instance}/metadata",
        f"{instance}/rendered",
        f"{instance}/thumbnail",
        f"{instance}/frames/1",
        f"{instance}/frames/1/rendered",
        f"{instance}/frames/1/thumbnail",
        f"{instance}/bulkdata/any",
    ]
    session = _web(world, "nobody")
    base = dicomweb_url(world["server"], world["datastore"])
    for path in paths:
        answer = session.get(f"{base}{path}", headers={"Accept": "*/*"})
        assert answer.status_code == 403, (path, answer.status_code, answer.text)
        assert answer.json()["__type"] == "AccessDeniedException"
    body = b"not even DICOM"
    for path in ("/studies", f"/studies/{STUDY_A}"):
        answer = session.post(
            f"{base}{path}",
            data=body,
            headers={"Content-Type": "application/dicom", "Accept": "application/dicom+json"},
        )
        assert answer.status_code == 403, (path, answer.status_code, answer.text)
