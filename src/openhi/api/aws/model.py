"""The wire contract: the botocore service model ``medical-imaging`` 2023-07-19, loaded once.

The installed botocore's model is the source of truth for routes, shapes, constraints and error
statuses (shared/spec/aws-wire-api.md §1-§8), so routes and validation are derived from it rather than
written by hand: a new botocore model version shows up as a conformance test failure, not as drift.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from botocore.loaders import Loader
from botocore.model import OperationModel, ServiceModel

SERVICE_NAME = "medical-imaging"
API_VERSION = "2023-07-19"


@cache
def service_model() -> ServiceModel:
    """The parsed ``medical-imaging`` model of the installed botocore."""
    loaded: dict[str, Any] = Loader().load_service_model(SERVICE_NAME, "service-2", API_VERSION)
    return ServiceModel(loaded, service_name=SERVICE_NAME)


def operations() -> list[OperationModel]:
    """Every operation of the model."""
    model = service_model()
    return [model.operation_model(name) for name in model.operation_names]


@cache
def error_statuses() -> dict[str, int]:
    """Error shape name -> modelled HTTP status (e.g. ServiceQuotaExceededException -> 402)."""
    statuses: dict[str, int] = {}
    for operation in operations():
        for shape in operation.error_shapes:
            statuses[shape.name] = int(shape.metadata["error"]["httpStatusCode"])
    return statuses
