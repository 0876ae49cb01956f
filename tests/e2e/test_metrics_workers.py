"""``openhi serve --workers 2``: a scrape answered by either process shows the calls answered by both.

Each worker keeps its counters in its own file under ``{data_dir}/prometheus-multiproc`` (prometheus_client's
multiprocess mode); the supervisor empties the directory at start. Calls go over fresh connections until both
processes have answered some (their files say so), then several scrapes, each on a fresh connection and so
answered by either process, must all show the total; a restart starts from zero; ``metrics_enabled = false``
removes the route. None of this depends on the index or blob backend, so this module runs on the embedded one only.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from tests.support.server import ServerPool, ServerProcess

MULTIPROC = "prometheus-multiproc"


@pytest.fixture(scope="module")
def pool(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerPool]:
    servers = ServerPool(tmp_path_factory, "metrics-workers")
    try:
        yield servers
    finally:
        servers.stop_all()


def _pids(data_dir: Path) -> set[str]:
    """Processes that wrote call counters (files ``counter_{pid}.db``)."""
    return {path.stem.removeprefix("counter_") for path in (data_dir / MULTIPROC).glob("counter_*.db")}


def _list_calls(server: ServerProcess) -> tuple[float, float]:
    """(ListDatastores successes, their histogram count) in one scrape on a fresh connection."""
    with httpx.Client(timeout=30) as fresh:
        text = fresh.get(f"{server.endpoint}/metrics").text
    calls = histogram = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.labels.get("operation") != "ListDatastores":
                continue
            if sample.name == "openhi_call_count_total" and sample.labels["outcome"] == "success":
                calls += sample.value
            elif sample.name == "openhi_request_duration_seconds_count":
                histogram += sample.value
    return calls, histogram


def test_two_workers_are_summed_by_every_scrape(pool: ServerPool) -> None:
    server = pool.start(args=["--workers", "2"])
    made = 0
    deadline = time.monotonic() + 60
    while len(_pids(server.data_dir)) < 2 or made < 10:
        assert time.monotonic() < deadline, f"one process answered every call: {_pids(server.data_dir)}"
        server.client().list_datastores()  # a new client: a new connection, accepted by either process
        made += 1
    assert len(_pids(server.data_dir)) == 2
    for _ in range(6):
        assert _list_calls(server) == (made, made)


def test_a_restart_starts_from_zero(pool: ServerPool) -> None:
    server = pool.start(args=["--workers", "2"])
    folder = server.data_dir / MULTIPROC
    server.client().list_datastores()
    assert _list_calls(server) == (1, 1)
    assert server.stop() == 0
    leftovers = sorted(path.name for path in folder.glob("*.db"))
    assert leftovers  # the stopped processes' files stay until the next start
    server.start()
    assert not any((folder / name).exists() for name in leftovers if name.startswith("counter_"))
    assert _list_calls(server) == (0, 0)


def test_metrics_can_be_turned_off(pool: ServerPool) -> None:
    server = pool.start({"OPENHI_METRICS_ENABLED": "false"}, ["--workers", "2"])
    answer = httpx.get(f"{server.endpoint}/metrics", timeout=30)
    assert answer.status_code != 200  # the native API's answer to an unsigned request
    assert "openhi_call_count" not in answer.text
    assert not (server.data_dir / MULTIPROC).exists()
