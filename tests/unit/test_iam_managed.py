"""The AWS managed policies of the guide (21930-22000): lookup by name or ARN, and what each one grants."""

from __future__ import annotations

import pytest

from openhi.iam.evaluate import AccessRequest, Decision, evaluate
from openhi.iam.managed import MANAGED_POLICY_NAMES, managed_policy, managed_policy_arn
from openhi.iam.policy import PolicyDocument

DATASTORE = "arn:aws:medical-imaging:us-east-1:123456789012:datastore/abc"
READ_ONLY_ACTIONS = (
    "GetDICOMImportJob",
    "GetDatastore",
    "GetImageFrame",
    "GetImageSet",
    "GetImageSetMetadata",
    "ListDICOMImportJobs",
    "ListDatastores",
    "ListImageSetVersions",
    "ListTagsForResource",
    "SearchImageSets",
)
WRITE_ACTIONS = (
    "CreateDatastore",
    "DeleteDatastore",
    "StartDICOMImportJob",
    "UpdateImageSetMetadata",
    "CopyImageSet",
    "DeleteImageSet",
    "TagResource",
    "UntagResource",
    "GetDICOMInstance",  # a DICOMweb read the read-only policy does not list
)


def decide(name: str, action: str, resource: str = DATASTORE, **context: list[str]) -> Decision:
    document = managed_policy(name)
    assert document is not None
    return evaluate([document], AccessRequest(action, resource, context))


def test_names_and_arns() -> None:
    assert MANAGED_POLICY_NAMES == ("AWSHealthImagingFullAccess", "AWSHealthImagingReadOnlyAccess")
    assert managed_policy_arn("AWSHealthImagingFullAccess") == "arn:aws:iam::aws:policy/AWSHealthImagingFullAccess"
    for name in MANAGED_POLICY_NAMES:
        document = managed_policy(name)
        assert isinstance(document, PolicyDocument)
        assert managed_policy(managed_policy_arn(name)) is document


@pytest.mark.parametrize(
    "unknown",
    [
        "AWSHealthImagingServiceRolePolicy",
        "awshealthimagingfullaccess",
        "arn:aws:iam::123456789012:policy/AWSHealthImagingFullAccess",
        "arn:aws:iam::aws:policy/",
        "",
    ],
)
def test_unknown_names(unknown: str) -> None:
    assert managed_policy(unknown) is None


def test_documents_are_the_printed_ones() -> None:
    full = managed_policy("AWSHealthImagingFullAccess")
    read = managed_policy("AWSHealthImagingReadOnlyAccess")
    assert full is not None
    assert read is not None
    assert full.version == read.version == "2012-10-17"
    assert [s.actions for s in full.statements] == [("medical-imaging:*",), ("iam:PassRole",)]
    assert [s.resources for s in full.statements] == [("*",), ("*",)]
    assert full.statements[1].conditions[0].key == "iam:passedtoservice"
    assert full.statements[1].conditions[0].values == ("medical-imaging.amazonaws.com",)
    (statement,) = read.statements
    assert statement.actions == tuple(f"medical-imaging:{action}" for action in READ_ONLY_ACTIONS)


@pytest.mark.parametrize("action", READ_ONLY_ACTIONS)
def test_read_only_allows_the_ten_read_actions(action: str) -> None:
    assert decide("AWSHealthImagingReadOnlyAccess", f"medical-imaging:{action}") is Decision.ALLOW


@pytest.mark.parametrize("action", WRITE_ACTIONS)
def test_read_only_denies_everything_else(action: str) -> None:
    assert decide("AWSHealthImagingReadOnlyAccess", f"medical-imaging:{action}") is Decision.IMPLICIT_DENY


@pytest.mark.parametrize("action", READ_ONLY_ACTIONS + WRITE_ACTIONS)
def test_full_access_allows_every_medical_imaging_action(action: str) -> None:
    assert decide("AWSHealthImagingFullAccess", f"medical-imaging:{action}") is Decision.ALLOW
    image_set = f"{DATASTORE}/imageset/def"
    assert decide("AWSHealthImagingFullAccess", f"medical-imaging:{action}", image_set) is Decision.ALLOW


def test_full_access_passes_roles_only_to_the_service() -> None:
    role = "arn:aws:iam::123456789012:role/ImportJobDataAccessRole"
    name = "AWSHealthImagingFullAccess"
    allowed = decide(name, "iam:PassRole", role, **{"iam:PassedToService": ["medical-imaging.amazonaws.com"]})
    assert allowed is Decision.ALLOW
    assert decide(name, "iam:PassRole", role, **{"iam:PassedToService": ["ec2.amazonaws.com"]}) is (
        Decision.IMPLICIT_DENY
    )
    assert decide(name, "iam:PassRole", role) is Decision.IMPLICIT_DENY
    assert decide(name, "s3:GetObject", "arn:aws:s3:::bucket/key") is Decision.IMPLICIT_DENY
