"""Identifiers and ARNs: generate, parse and validate.

Ids are 32 lowercase alphanumerics (model pattern ``[0-9a-z]{32}``); ARNs follow the model's
``arn:aws:medical-imaging:{region}:{account}:datastore/{id}(/imageset/{id})?`` (guide 8867-9500).
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

from openhi.errors import ValidationError

ID_PATTERN = re.compile(r"[0-9a-z]{32}")
ARN_PATTERN = re.compile(
    r"arn:(?P<partition>aws((-us-gov)|(-iso)|(-iso-b)|(-cn))?):medical-imaging:(?P<region>[a-z0-9-]+):"
    r"(?P<account>[0-9]{12}):datastore/(?P<datastore>[0-9a-z]{32})(/imageset/(?P<imageset>[0-9a-z]{32}))?"
)


def new_id() -> str:
    """A fresh random 32-character id (128 bits of entropy, hex)."""
    return secrets.token_hex(16)


def is_valid_id(value: str) -> bool:
    """True when ``value`` matches the model's id pattern exactly."""
    return ID_PATTERN.fullmatch(value) is not None


@dataclass(frozen=True)
class ResourceArn:
    """A parsed data store or image set ARN."""

    region: str
    account_id: str
    datastore_id: str
    image_set_id: str | None = None
    partition: str = "aws"

    def __str__(self) -> str:
        base = f"arn:{self.partition}:medical-imaging:{self.region}:{self.account_id}:datastore/{self.datastore_id}"
        return base if self.image_set_id is None else f"{base}/imageset/{self.image_set_id}"

    @classmethod
    def parse(cls, value: str) -> ResourceArn:
        """Parse an ARN; raise ValidationError naming ``resourceArn`` when it is not one of ours."""
        match = ARN_PATTERN.fullmatch(value)
        if match is None:
            raise ValidationError(
                f"Value '{value}' at 'resourceArn' failed to satisfy constraint: "
                "Member must be a data store or image set ARN",
                field="resourceArn",
            )
        return cls(
            region=match["region"],
            account_id=match["account"],
            datastore_id=match["datastore"],
            image_set_id=match["imageset"],
            partition=match["partition"],
        )


def datastore_arn(region: str, account_id: str, datastore_id: str) -> str:
    """The ARN of a data store."""
    return str(ResourceArn(region, account_id, datastore_id))


def image_set_arn(region: str, account_id: str, datastore_id: str, image_set_id: str) -> str:
    """The ARN of an image set."""
    return str(ResourceArn(region, account_id, datastore_id, image_set_id))
