"""The audit writer and trail (openhi.audit.writer, trail): queued writes off the request path, drops counted and
reported, data events switchable, settings checked."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from openhi.api.observe import CallRecord
from openhi.audit.files import RotatingNdjson, audit_files
from openhi.audit.record import AuditContext, dropped_records_event
from openhi.audit.trail import AuditTrail, from_settings
from openhi.audit.writer import AuditWriter
from openhi.config import Settings
from openhi.errors import ValidationError
from openhi.iam.principals import Caller, CallerKind

CONTEXT = AuditContext("us-east-1", "123456789012")
NOW = datetime(2024, 5, 1, tzinfo=UTC)


def clock() -> datetime:
    return NOW


def records(folder: Path) -> list[dict[str, Any]]:
    return [json.loads(raw) for path in audit_files(folder) for raw in path.read_bytes().splitlines()]


def writer(folder: Path, queue_size: int = 100) -> AuditWriter:
    return AuditWriter(
        RotatingNdjson(folder, clock),
        queue_size=queue_size,
        notice=lambda count: dropped_records_event(count, CONTEXT, NOW),
    )


def test_writes_every_record_in_order_and_close_drains(tmp_path: Path) -> None:
    audit = writer(tmp_path, queue_size=1000)
    audit.start()
    for n in range(1000):
        assert audit.submit({"n": n, "name": "Ünïcode^Name"})
    audit.close()
    written = records(tmp_path)
    assert [r["n"] for r in written] == list(range(1000))
    assert written[0]["name"] == "Ünïcode^Name"
    assert (audit.written, audit.dropped) == (1000, 0)


def test_full_queue_drops_counts_warns_and_records_the_gap(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    audit = writer(tmp_path, queue_size=2)
    results = [audit.submit({"n": n}) for n in range(5)]  # not started: nothing drains the queue
    assert results == [True, True, False, False, False]
    assert audit.dropped == 3
    with caplog.at_level(logging.WARNING, logger="openhi.audit.writer"):
        audit.start()
        audit.close()
    written = records(tmp_path)
    assert [r.get("n") for r in written[:2]] == [0, 1]
    notice = written[2]
    assert notice["eventName"] == "AuditRecordsDropped"
    assert notice["serviceEventDetails"]["droppedRecords"] == 3
    assert any("3 records dropped" in r.getMessage() for r in caplog.records)


def test_a_failed_write_is_counted_and_the_writer_goes_on(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    class FlakySink(RotatingNdjson):
        fail = True

        def write(self, lines: Sequence[bytes]) -> None:
            if self.fail and b'"n"' in lines[0]:
                self.fail = False
                raise OSError(28, "No space left on device")
            super().write(lines)

    audit = AuditWriter(
        FlakySink(tmp_path, clock), queue_size=10, notice=lambda count: dropped_records_event(count, CONTEXT, NOW)
    )
    with caplog.at_level(logging.WARNING, logger="openhi.audit.writer"):
        audit.submit({"n": 1})
        audit.start()
        audit.close()
    assert audit.dropped == 1
    assert [r["serviceEventDetails"]["droppedRecords"] for r in records(tmp_path)] == [1]
    assert any("writing 1 records failed" in r.getMessage() for r in caplog.records)


def test_an_item_that_cannot_be_rendered_is_counted(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    def render(item: Any) -> dict[str, Any]:
        if item == "bad":
            raise ValueError("cannot")
        return {"n": item}

    audit = AuditWriter(
        RotatingNdjson(tmp_path, clock),
        queue_size=10,
        notice=lambda count: dropped_records_event(count, CONTEXT, NOW),
        render=render,
    )
    for item in (1, "bad", 2):
        audit.submit(item)
    with caplog.at_level(logging.ERROR, logger="openhi.audit.writer"):
        audit.start()
        audit.close()
    assert [r.get("n", r.get("eventName")) for r in records(tmp_path)] == [1, 2, "AuditRecordsDropped"]
    assert audit.dropped == 1


def test_submit_after_close_is_counted(tmp_path: Path) -> None:
    audit = writer(tmp_path)
    audit.start()
    audit.close()
    assert not audit.submit({"n": 1})
    assert audit.dropped == 1


def call(operation: str, surface: str = "native") -> CallRecord:
    return CallRecord(
        request_id=f"req-{operation}",
        surface=surface,  # type: ignore[arg-type]
        operation=operation,
        datastore_id="a" * 32,
        caller=Caller("arn:aws:iam::123456789012:root", "123456789012", CallerKind.ROOT, access_key_id="AKIA"),
        source_ip="127.0.0.1",
        user_agent="test",
        started_at=NOW,
        duration_seconds=0.001,
        status=200,
        error_code=None,
        error_message=None,
        request_parameters={"datastoreId": "a" * 32},
        response_elements={"imageFrameBlob": b"\x01" * 64},
    )


@pytest.mark.parametrize("data_events", [True, False])
def test_trail_switches_data_events(tmp_path: Path, data_events: bool) -> None:
    trail = AuditTrail(CONTEXT, RotatingNdjson(tmp_path, clock), clock, data_events=data_events)
    trail.start()
    for record in (
        call("GetImageFrame"),
        call("GetDICOMInstanceFrames", "dicomweb"),
        call("SearchDICOMStudies", "dicomweb"),
        call("GetImageSet"),
    ):
        trail.observe(record)
    trail.close()
    names = [r["eventName"] for r in records(tmp_path)]
    expected = ["SearchDICOMStudies", "GetImageSet"]
    assert names == (["GetImageFrame", "GetDICOMInstanceFrames", *expected] if data_events else expected)


def test_from_settings(tmp_path: Path) -> None:
    assert from_settings(Settings(data_dir=tmp_path, audit_enabled=False)) is None
    trail = from_settings(Settings(data_dir=tmp_path), clock)
    assert trail is not None
    trail.start()
    trail.observe(call("GetImageSet"))
    trail.close()
    assert [r["eventName"] for r in records(tmp_path / "audit")] == ["GetImageSet"]
    elsewhere = tmp_path / "elsewhere"
    trail = from_settings(Settings(data_dir=tmp_path, audit_dir=str(elsewhere)), clock)
    assert trail is not None
    trail.start()
    trail.close()
    assert elsewhere.is_dir()


@pytest.mark.parametrize(
    ("name", "value"), [("audit_max_bytes", -1), ("audit_keep_files", -1), ("audit_queue_size", 0)]
)
def test_settings_are_checked(tmp_path: Path, name: str, value: int) -> None:
    with pytest.raises(ValidationError) as caught:
        from_settings(replace(Settings(data_dir=tmp_path), **{name: value}))  # type: ignore[arg-type]
    assert caught.value.field == name
