"""The AWS managed policies for HealthImaging, as the guide prints them (guide 21930-22000).

``AWSHealthImagingFullAccess`` grants every ``medical-imaging:*`` action plus ``iam:PassRole`` to the service;
``AWSHealthImagingReadOnlyAccess`` grants ten read actions. The guide's listing of the read-only policy closes its
statement list with ``}`` where ``]`` belongs; the document below is that listing with the bracket fixed.
``AWSHealthImagingServiceRolePolicy`` (guide 21920) is not printed in the guide and so is not offered.
"""

from __future__ import annotations

from functools import cache

from openhi.iam.policy import PolicyDocument

MANAGED_POLICY_ARN_PREFIX = "arn:aws:iam::aws:policy/"

_DOCUMENTS: dict[str, str] = {
    "AWSHealthImagingFullAccess": """
{
  "Version": "2012-10-17",
  "Statement": [
    {
      "Effect": "Allow",
      "Action": [
        "medical-imaging:*"
      ],
      "Resource": "*"
    },
    {
      "Effect": "Allow",
      "Action": "iam:PassRole",
      "Resource": "*",
      "Condition": {
        "StringEquals": {
          "iam:PassedToService": "medical-imaging.amazonaws.com"
        }
      }
    }
  ]
}
""",
    "AWSHealthImagingReadOnlyAccess": """
{
  "Version": "2012-10-17",
  "Statement": [{
    "Effect": "Allow",
    "Action": [
        "medical-imaging:GetDICOMImportJob",
        "medical-imaging:GetDatastore",
        "medical-imaging:GetImageFrame",
        "medical-imaging:GetImageSet",
        "medical-imaging:GetImageSetMetadata",
        "medical-imaging:ListDICOMImportJobs",
        "medical-imaging:ListDatastores",
        "medical-imaging:ListImageSetVersions",
        "medical-imaging:ListTagsForResource",
        "medical-imaging:SearchImageSets"
    ],
    "Resource": "*"
  }]
}
""",
}

MANAGED_POLICY_NAMES: tuple[str, ...] = tuple(_DOCUMENTS)


def managed_policy_arn(name: str) -> str:
    """``arn:aws:iam::aws:policy/NAME``, the ARN under which AWS publishes a managed policy."""
    return f"{MANAGED_POLICY_ARN_PREFIX}{name}"


def managed_policy(name_or_arn: str) -> PolicyDocument | None:
    """The managed policy named by its name or its ARN; None when it is not one of ``MANAGED_POLICY_NAMES``."""
    name = name_or_arn.removeprefix(MANAGED_POLICY_ARN_PREFIX)
    if name not in _DOCUMENTS:
        return None
    return _parsed(name)


@cache
def _parsed(name: str) -> PolicyDocument:
    return PolicyDocument.parse(_DOCUMENTS[name])
