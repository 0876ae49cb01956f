"""API metrics (guide 20122-20128): CallCount per operation, data store and outcome, and request latency.

``CallMetrics`` is a ``CallObserver`` (``api/observe.py``): both edges hand it every answered request. It keeps

- ``openhi_call_count_total{operation, datastore_id, outcome}``: the guide's CallCount (dimensions Operation and
  DatastoreId) with the outcome as a third label: ``success`` (below 400), ``throttled`` (429,
  ThrottlingException), ``denied`` (401 / 403: authentication failed or access denied), ``client_error`` (any
  other 4xx), ``server_error`` (5xx);
- ``openhi_request_duration_seconds{operation}``: a histogram of the time to the answer, with buckets from 5 ms
  (a cached frame) to 60 s (a large STOW-RS request).

Labels are kept bounded, because every value of a label is a series the scraper stores: the operation is one of
the routes' names (``unknown`` when no route matched), and a data store id is recorded only for an authenticated
caller, when the id is well formed and the answer is not 404; otherwise the label is empty. So neither an anonymous
client nor a mistyped id creates series.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

from openhi.api.observe import CallRecord
from openhi.ids import is_valid_id

SUCCESS, CLIENT_ERROR, SERVER_ERROR, THROTTLED, DENIED = (
    "success",
    "client_error",
    "server_error",
    "throttled",
    "denied",
)
OUTCOMES = (SUCCESS, CLIENT_ERROR, SERVER_ERROR, THROTTLED, DENIED)
UNKNOWN_OPERATION = "unknown"
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


def outcome(record: CallRecord) -> str:
    """The outcome label of a call."""
    if record.status == 429 or record.error_code == "ThrottlingException":
        return THROTTLED
    if record.status in (401, 403):
        return DENIED
    if record.status >= 500:
        return SERVER_ERROR
    if record.status >= 400:
        return CLIENT_ERROR
    return SUCCESS


def datastore_label(record: CallRecord) -> str:
    """The data store id, when it may become a label value (see the module docstring); else empty."""
    datastore_id = record.datastore_id or ""
    if record.caller is None or record.status == 404 or not is_valid_id(datastore_id):
        return ""
    return datastore_id


class CallMetrics:
    """The API metrics; ``registry`` None registers them nowhere (multiprocess mode reads them from files)."""

    def __init__(self, registry: CollectorRegistry | None) -> None:
        self.calls = Counter(
            "openhi_call_count",
            "API calls answered (CloudWatch CallCount), by operation, data store and outcome",
            ["operation", "datastore_id", "outcome"],
            registry=registry,
        )
        self.latency = Histogram(
            "openhi_request_duration_seconds",
            "Time from the request to its answer, by operation",
            ["operation"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )

    def observe(self, record: CallRecord) -> None:
        """Count one answered call (``CallObserver``)."""
        operation = record.operation or UNKNOWN_OPERATION
        self.calls.labels(operation, datastore_label(record), outcome(record)).inc()
        self.latency.labels(operation).observe(max(record.duration_seconds, 0.0))
