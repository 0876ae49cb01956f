"""An authorizer that is a Python function in this process, named ``package.module:function``.

The function has the AWS Lambda Python handler signature, ``handler(event, context)`` (AWS Lambda developer
guide, "Define Lambda function handler in Python"), so the same file can be deployed as the real Lambda
authorizer of guide 2820-2870 and 3040-3216. ``event`` is the guide's payload dict (``datastoreId``,
``operation``, ``bearerToken``); ``context`` is an :class:`InvocationContext` offering the members of Lambda's
context object that an authorizer plausibly reads: ``invoked_function_arn`` (the data store's
``lambdaAuthorizerArn``; the guide's example takes the region from it), ``function_name``, ``aws_request_id`` and
``get_remaining_time_in_millis()`` against the 1-second budget (guide 2745-2750). The function returns the answer
dict (``isTokenValid``, ``roleArn``).

The module is imported on the first call, not at start, so a broken authorizer fails the requests of its data
stores only. An import that fails, or a name that is not a callable, is "the authorizer does not exist or is
invalid" (guide 3000-3030: ``AuthorizerMisconfigurationException``).
"""

from __future__ import annotations

import importlib
import logging
import re
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from openhi.authorizers.port import AUTHORIZER_MISCONFIGURED, AuthorizerEvent, as_mapping
from openhi.errors import AuthorizerError, ValidationError

__all__ = ["InvocationContext", "PythonCallableAuthorizer", "parse_target"]

log = logging.getLogger(__name__)

_DOTTED = r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*"
_TARGET = re.compile(rf"({_DOTTED}):({_DOTTED})")

Handler = Callable[[dict[str, str], "InvocationContext"], object]


def parse_target(target: str) -> tuple[str, str]:
    """(module, attribute path) of ``package.module:function``; ValidationError if it is not that shape."""
    match = _TARGET.fullmatch(target)
    if match is None:
        raise ValidationError(f"authorizer target {target!r} is not 'package.module:function'", field="authorizers")
    return match.group(1), match.group(2)


@dataclass(frozen=True)
class InvocationContext:
    """The subset of the Lambda context object given to an in-process authorizer."""

    invoked_function_arn: str
    function_name: str
    deadline: float  # time.monotonic() value when the invocation's budget ends
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds left of the budget (never negative), as Lambda's context reports it."""
        return max(0, int((self.deadline - time.monotonic()) * 1000))


class PythonCallableAuthorizer:
    """Calls ``module:function`` with ``(event_payload, context)``; the module is imported on first use."""

    def __init__(self, arn: str, target: str, budget_seconds: float = 1.0) -> None:
        self._arn = arn
        self._module, self._attribute = parse_target(target)
        self._target = target
        self._budget = budget_seconds
        self._handler: Handler | None = None
        self._lock = threading.Lock()

    def _misconfigured(self, why: str) -> AuthorizerError:
        return AuthorizerError(AUTHORIZER_MISCONFIGURED, f"Authorizer {self._arn} does not exist or is invalid: {why}")

    def _resolve(self) -> Handler:
        with self._lock:
            if self._handler is not None:
                return self._handler
            try:
                value: object = importlib.import_module(self._module)
                for part in self._attribute.split("."):
                    value = getattr(value, part)
            except Exception as exc:  # any failure while importing user code means "cannot be loaded"
                log.warning("authorizer %s: cannot load %s", self._arn, self._target, exc_info=True)
                raise self._misconfigured(f"{self._target} cannot be loaded ({type(exc).__name__})") from exc
            if not callable(value):
                raise self._misconfigured(f"{self._target} is not callable")
            self._handler = value
            return value

    def __call__(self, event: AuthorizerEvent) -> Mapping[str, Any]:
        handler = self._resolve()
        context = InvocationContext(
            invoked_function_arn=self._arn,
            function_name=self._arn.split(":function:", 1)[-1].split(":", 1)[0],
            deadline=time.monotonic() + self._budget,
        )
        return as_mapping(handler(event.to_payload(), context))
