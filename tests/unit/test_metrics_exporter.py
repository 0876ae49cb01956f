"""The metrics room without a server: call outcomes and labels, the resource gauges over a memory index, the
scrape-time cache, the endpoint outside CORS, and the multiprocess directory of ``--workers``."""

from __future__ import annotations

import asyncio
import gzip
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from tests.support.counter_workload import commit

from openhi.api.compression import SelectiveGZipMiddleware
from openhi.api.cors import cors_middleware
from openhi.api.observe import CallRecord
from openhi.datastores.model import Datastore, DatastoreStatus, LosslessStorageFormat
from openhi.iam.principals import Caller, CallerKind, root_arn
from openhi.ids import new_id
from openhi.imports.model import FileStatus, ImportFile, ImportJob, JobStatus
from openhi.index.memory import MemoryIndex
from openhi.metrics import exporter
from openhi.metrics.calls import CallMetrics, datastore_label, outcome
from openhi.metrics.exporter import MetricsEndpoint, MetricsRoute, open_metrics, prepare_multiprocess
from openhi.metrics.resources import ResourceCollector, UsageReader
from openhi.metrics.usage import ARCHIVE_INSTANT_ACCESS

ACCOUNT = "123456789012"
T0 = datetime(2024, 5, 1, tzinfo=UTC)
ROOT = Caller(root_arn(ACCOUNT), ACCOUNT, CallerKind.ROOT)
DS = "a" * 32


def record(status: int, *, operation: str | None = "GetDatastore", **fields: Any) -> CallRecord:
    values: dict[str, Any] = {
        "request_id": "r",
        "surface": "native",
        "operation": operation,
        "datastore_id": DS,
        "caller": ROOT,
        "source_ip": "127.0.0.1",
        "user_agent": "test",
        "started_at": T0,
        "duration_seconds": 0.003,
        "status": status,
        "error_code": None,
        "error_message": None,
        "request_parameters": {},
        "response_elements": None,
    }
    values.update(fields)
    return CallRecord(**values)


def samples(registry: CollectorRegistry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = generate_latest(registry).decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


# -- calls -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "code", "expected"),
    [
        (200, None, "success"),
        (304, None, "success"),
        (400, "ValidationException", "client_error"),
        (404, "ResourceNotFoundException", "client_error"),
        (409, "ConflictException", "client_error"),
        (403, "AccessDeniedException", "denied"),
        (403, "InvalidSignatureException", "denied"),
        (401, None, "denied"),
        (429, "ThrottlingException", "throttled"),
        (500, "InternalServerException", "server_error"),
        (503, "ServiceUnavailableException", "server_error"),
    ],
)
def test_the_outcome_of_a_call(status: int, code: str | None, expected: str) -> None:
    assert outcome(record(status, error_code=code)) == expected


def test_a_data_store_label_needs_a_caller_a_valid_id_and_an_answer_other_than_404() -> None:
    assert datastore_label(record(200)) == DS
    assert datastore_label(record(403)) == DS
    assert datastore_label(record(403, caller=None)) == ""  # anonymous: could be anything
    assert datastore_label(record(404)) == ""  # perhaps a made-up id
    assert datastore_label(record(200, datastore_id="not-an-id")) == ""
    assert datastore_label(record(200, datastore_id=None)) == ""


def test_call_metrics_count_by_operation_data_store_and_outcome_and_time_each_call() -> None:
    registry = CollectorRegistry()
    metrics = CallMetrics(registry)
    for answered in (
        record(200),
        record(200),
        record(429, error_code="ThrottlingException"),
        record(400, operation=None),
    ):
        metrics.observe(answered)
    found = samples(registry)
    ok = (("datastore_id", DS), ("operation", "GetDatastore"), ("outcome", "success"))
    throttled = (("datastore_id", DS), ("operation", "GetDatastore"), ("outcome", "throttled"))
    unknown = (("datastore_id", DS), ("operation", "unknown"), ("outcome", "client_error"))
    assert found[("openhi_call_count_total", ok)] == 2
    assert found[("openhi_call_count_total", throttled)] == 1
    assert found[("openhi_call_count_total", unknown)] == 1
    assert found[("openhi_request_duration_seconds_count", (("operation", "GetDatastore"),))] == 3
    assert found[("openhi_request_duration_seconds_bucket", (("le", "0.005"), ("operation", "GetDatastore")))] == 3
    assert found[("openhi_request_duration_seconds_sum", (("operation", "GetDatastore"),))] == pytest.approx(0.009)


# -- resources ---------------------------------------------------------------------------------------------------


def _datastore(index: MemoryIndex, status: DatastoreStatus) -> str:
    datastore = Datastore(new_id(), "d", status, LosslessStorageFormat.HTJ2K, T0, T0, new_id())
    index.run(lambda uow: uow.datastores.add(datastore))
    return datastore.datastore_id


@pytest.fixture
def index() -> MemoryIndex:
    return MemoryIndex()


def test_resource_gauges_carry_the_guide_metrics_with_its_dimensions(index: MemoryIndex) -> None:
    one, two = _datastore(index, DatastoreStatus.ACTIVE), _datastore(index, DatastoreStatus.ACTIVE)
    gone = _datastore(index, DatastoreStatus.DELETED)
    archived = new_id()
    index.run(lambda uow: commit(uow, one, new_id(), "1.2.1", instances=2, frame_sizes=[10, 20]))
    index.run(lambda uow: commit(uow, one, archived, "1.2.2", instances=1, frame_sizes=[6 * 1024 * 1024]))
    index.run(lambda uow: uow.counters.move_tier(one, archived, ARCHIVE_INSTANT_ACCESS))
    index.run(lambda uow: commit(uow, two, new_id(), "1.2.3", instances=3, frame_sizes=[5], primary=False))
    registry = CollectorRegistry()
    registry.register(ResourceCollector(UsageReader(index, lambda: T0), ACCOUNT))
    found = samples(registry)

    def value(name: str, **labels: str) -> float:
        return found[(name, tuple(sorted(labels.items())))]

    assert value("openhi_resource_metrics_up") == 1
    assert value("openhi_datastores", account_id=ACCOUNT, status="ACTIVE") == 2
    assert value("openhi_datastores", account_id=ACCOUNT, status="DELETED") == 1
    assert value("openhi_datastores", account_id=ACCOUNT, status="CREATING") == 0
    assert value("openhi_image_sets", account_id=ACCOUNT) == 3
    assert value("openhi_storage_bytes", account_id=ACCOUNT, storage_tier="FrequentAccessStorage") == 35
    assert value("openhi_storage_bytes", account_id=ACCOUNT, storage_tier="ArchiveInstantAccessStorage") == 6 << 20
    assert value("openhi_datastore_image_sets", datastore_id=one) == 2
    assert value("openhi_datastore_primary_image_sets", datastore_id=two) == 0
    assert value("openhi_datastore_small_image_sets", datastore_id=one) == 1
    assert value("openhi_datastore_storage_bytes", datastore_id=one, storage_tier="ArchiveInstantAccessStorage") == (
        6 << 20
    )
    assert value("openhi_datastore_dicom_studies", datastore_id=one) == 1
    assert value("openhi_datastore_dicom_series", datastore_id=one) == 2
    assert value("openhi_datastore_dicom_instances", datastore_id=one) == 3
    assert value("openhi_datastore_structured_storage_bytes", datastore_id=one) == 1024 + 2 * 830 + 3 * 680
    assert not any(labels and ("datastore_id", gone) in labels for _, labels in found)  # DELETED: no series


def test_the_usage_is_read_once_per_second_and_a_failing_index_answers_up_0(index: MemoryIndex) -> None:
    now = [0.0]
    reads = [0]
    real_run = index.run

    def counting_run(work: Any, *, readonly: bool = False) -> Any:
        reads[0] += 1
        return real_run(work, readonly=readonly)

    index.run = counting_run  # type: ignore[method-assign]
    reader = UsageReader(index, lambda: T0, monotonic=lambda: now[0])
    reader.read()
    reader.read()
    now[0] = 0.99
    reader.read()
    assert reads == [1]
    now[0] = 1.0
    reader.read()
    assert reads == [2]

    def broken(work: Any, *, readonly: bool = False) -> Any:
        raise ConnectionError("index down")

    index.run = broken  # type: ignore[method-assign]
    now[0] = 5.0
    registry = CollectorRegistry()
    registry.register(ResourceCollector(reader, ACCOUNT))
    found = samples(registry)
    assert found[("openhi_resource_metrics_up", ())] == 0
    assert not any(name.startswith("openhi_datastore") for name, _ in found)


def test_import_progress_gauges_per_running_job(index: MemoryIndex) -> None:
    datastore_id = _datastore(index, DatastoreStatus.ACTIVE)
    job = ImportJob(new_id(), datastore_id, "j", JobStatus.IN_PROGRESS, "arn", "s3://i/", "s3://o/", new_id(), T0, T0)

    def add(uow: Any) -> None:
        uow.import_jobs.add(job)
        uow.import_jobs.add_files(
            [
                ImportFile(job.job_id, 1, "a", 1000, FileStatus.STAGED, group_key="g"),
                ImportFile(job.job_id, 2, "b", 500),
            ]
        )

    index.run(add)
    registry = CollectorRegistry()
    registry.register(ResourceCollector(UsageReader(index, lambda: T0 + timedelta(seconds=4)), ACCOUNT))
    found = samples(registry)
    labels = (("datastore_id", datastore_id), ("job_id", job.job_id))
    assert found[("openhi_import_job_files", labels)] == 2
    assert found[("openhi_import_job_files_done", labels)] == 1
    assert found[("openhi_import_job_files_failed", labels)] == 0
    assert found[("openhi_import_job_bytes", labels)] == 1500
    assert found[("openhi_import_job_bytes_done", labels)] == 1000
    assert found[("openhi_import_job_bytes_per_second", labels)] == 250


# -- the endpoint ------------------------------------------------------------------------------------------------


def call(app: Any, method: str, path: str, headers: dict[str, str] | None = None) -> httpx.Response:
    """One request to the ASGI app in process."""

    async def send() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://openhi.test") as test_client:
            return await test_client.request(method, path, headers=headers)

    return asyncio.run(send())


@pytest.fixture
def app(index: MemoryIndex) -> Starlette:
    """An app assembled as ``create_app`` does: the metrics route outside CORS ("*") and gzip."""
    metrics = open_metrics(index, ACCOUNT, lambda: T0)
    metrics.calls.observe(record(200))

    async def other(request: Any) -> PlainTextResponse:
        return PlainTextResponse("other")

    middleware = [*metrics.middleware, *cors_middleware(("*",)), Middleware(SelectiveGZipMiddleware)]
    return Starlette(routes=[Route("/other", other)], middleware=middleware)


def test_metrics_are_served_outside_cors_in_the_prometheus_text_format(app: Starlette) -> None:
    answer = call(app, "GET", "/metrics", {"Origin": "https://viewer.example", "Accept-Encoding": "identity"})
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert "access-control-allow-origin" not in answer.headers
    assert "content-encoding" not in answer.headers
    names = {family.name for family in text_string_to_metric_families(answer.text)}
    assert {"openhi_call_count", "openhi_request_duration_seconds", "openhi_datastores"} <= names
    # Other paths still get the CORS headers.
    other = call(app, "GET", "/other", {"Origin": "https://viewer.example"})
    assert other.headers["access-control-allow-origin"] == "*"


def test_metrics_are_gzipped_when_accepted_and_openmetrics_when_asked(app: Starlette) -> None:
    answer = call(app, "GET", "/metrics", {"Accept-Encoding": "gzip"})
    assert answer.headers["content-encoding"] == "gzip"
    assert b"openhi_call_count_total" in answer.content  # httpx decoded it
    openmetrics = call(app, "GET", "/metrics", {"Accept": "application/openmetrics-text; version=1.0.0"})
    assert openmetrics.headers["content-type"].startswith("application/openmetrics-text")
    assert openmetrics.text.rstrip().endswith("# EOF")


def test_metrics_answer_get_and_head_only(app: Starlette) -> None:
    assert call(app, "HEAD", "/metrics").status_code == 200
    refused = call(app, "POST", "/metrics")
    assert (refused.status_code, refused.headers["allow"]) == (405, "GET, HEAD")


def test_the_route_passes_every_other_path_through() -> None:
    seen: list[str] = []

    async def inner(scope: Any, receive: Any, send: Any) -> None:
        seen.append(scope["path"])
        await PlainTextResponse("app")(scope, receive, send)

    routed = MetricsRoute(inner, MetricsEndpoint(CollectorRegistry()))
    assert call(routed, "GET", "/metrics/").text == "app"
    assert call(routed, "GET", "/metrics").status_code == 200
    assert seen == ["/metrics/"]


# -- multiprocess ------------------------------------------------------------------------------------------------


def test_prepare_multiprocess_empties_the_directory_and_names_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(exporter.MULTIPROC_ENV, raising=False)
    stale = tmp_path / exporter.MULTIPROC_DIRNAME / "counter_123.db"
    stale.parent.mkdir()
    stale.write_bytes(gzip.compress(b"old"))
    path = prepare_multiprocess(tmp_path)
    assert path == stale.parent.resolve()
    assert list(path.iterdir()) == []
    assert os.environ[exporter.MULTIPROC_ENV] == str(path)
    # prometheus_client was imported without it: this process keeps its metrics in memory (and says so).
    assert not exporter.multiprocess_mode()
