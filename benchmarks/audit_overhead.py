"""What the audit trail costs (issue 7, Performance): frame retrieval and import with the audit trail on and off.

Two ``openhi serve`` processes run side by side on the same machine, one with ``audit_enabled = false`` (the
baseline) and one with the default audit trail (data events included, so every frame read is recorded). Each
step is measured on both, in ABBA order over ``--rounds`` rounds (off, on, on, off, ...), and the median of each
mode is printed with the ratio on/off. The issue's budget is 10% (ratio >= 0.90 for throughput).

Steps:

- **GetImageFrame** through boto3 (what an SDK user sees; the Python client costs about as much CPU as the
  server, so this dilutes the server's share) on ``--clients`` threads;
- **DICOMweb frames** (``GetDICOMInstanceFrames`` in the stored HTJ2K syntax, no transcoding) through curl, a
  native client, so the figure is the server's; both come with the server's CPU time per frame;
- **import job** (``StartDICOMImportJob`` of a file:// folder until COMPLETED, new data store each time): the
  pipeline runs in worker processes and the trail records only the start and the polls;
- **STOW-RS**, one instance per request on ``--clients`` threads, new data store each time: an import path where
  every request is recorded;
- the audit trail's own CPU per call, in this process (``observe`` on the event loop, then the writer thread's
  build + encode + write), set against the server CPU per frame: the figure that does not move with the load
  other processes put on a shared machine.

Corpus: ``--series`` x ``--slices`` CT slices of ``--size``^2 (tests/support/dicom_corpus.py). Run:
``.venv/bin/python -m benchmarks.audit_overhead [--quick]``.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.dicomweb import cpu_seconds
from benchmarks.dicomweb_http import FRAMES_STORED, Rate, Target, curl_throughput, multipart, throughput
from tests.support.dicom_corpus import SeriesSpec, write_series
from tests.support.dicomweb import SigV4RequestsAuth
from tests.support.server import ACCESS_KEY_ID, SECRET_ACCESS_KEY, ServerProcess, server_env

from openhi.api.observe import CallRecord
from openhi.audit.files import RotatingNdjson
from openhi.audit.record import AuditContext
from openhi.audit.trail import AuditTrail
from openhi.clock import utc_now
from openhi.iam.principals import Caller, CallerKind

ACCOUNT = "123456789012"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/Benchmark"
MODES = {"audit off": {"OPENHI_AUDIT_ENABLED": "false"}, "audit on": {"OPENHI_AUDIT_ENABLED": "true"}}


@dataclass
class Options:
    series: int = 2
    slices: int = 20
    size: int = 512
    clients: int = 4
    seconds: float = 8.0
    rounds: int = 2
    workers: int = 1


@dataclass
class Frame:
    image_set: str
    frame_id: str
    study: str
    series: str
    sop: str


@dataclass
class Bench:
    """One running server and what was loaded into it."""

    name: str
    server: ServerProcess
    target: Target  # DICOMweb root of the data store holding the corpus
    datastore: str
    frames: list[Frame] = field(default_factory=list)
    results: dict[str, list[tuple[float, float]]] = field(default_factory=dict)  # step -> [(rate, cpu ms/op)]

    def cpu(self) -> float:
        assert self.server.process is not None
        return cpu_seconds(self.server.process.pid)

    def record(self, step: str, rate: float, cpu_ms: float) -> None:
        self.results.setdefault(step, []).append((rate, cpu_ms))


def _active_datastore(client: Any, name: str) -> str:
    datastore: str = client.create_datastore(datastoreName=name)["datastoreId"]
    deadline = time.monotonic() + 60
    while client.get_datastore(datastoreId=datastore)["datastoreProperties"]["datastoreStatus"] != "ACTIVE":
        if time.monotonic() > deadline:
            raise RuntimeError("data store not ACTIVE after 60 s")
        time.sleep(0.1)
    return datastore


def _import(bench: Bench, datastore: str, corpus: Path) -> float:
    """Run one import job to completion; seconds from StartDICOMImportJob to COMPLETED."""
    client = bench.server.client()
    started = time.perf_counter()
    job = client.start_dicom_import_job(
        datastoreId=datastore,
        jobName="audit-bench",
        dataAccessRoleArn=ROLE,
        inputS3Uri=f"file://{corpus}/",
        outputS3Uri=f"file://{corpus.parent}/out-{bench.name.replace(' ', '-')}/",
    )
    while True:
        status = client.get_dicom_import_job(datastoreId=datastore, jobId=job["jobId"])["jobProperties"]["jobStatus"]
        if status in ("COMPLETED", "FAILED"):
            break
        time.sleep(0.1)
    if status != "COMPLETED":
        raise RuntimeError(f"import job {status}")
    return time.perf_counter() - started


@contextmanager
def running(name: str, env: dict[str, str], root: Path, corpus: Path, options: Options) -> Iterator[Bench]:
    """A server in ``mode``, with the corpus imported and its frames listed."""
    home = root / name.replace(" ", "-")
    home.mkdir(parents=True)
    server = ServerProcess(
        home / "data",
        server_env({"OPENHI_LOG_LEVEL": "error", **env}),
        ["--workers", str(options.workers)],
    )
    server.start()
    try:
        client = server.client()
        datastore = _active_datastore(client, "audit-bench")
        target = Target(name, f"{server.endpoint}/datastore/{datastore}", SigV4RequestsAuth())
        target.curl_auth = (
            "--aws-sigv4",
            "aws:amz:us-east-1:medical-imaging",
            "--user",
            f"{ACCESS_KEY_ID}:{SECRET_ACCESS_KEY}",
        )
        bench = Bench(name, server, target, datastore)
        target.cpu_seconds = bench.cpu
        _import(bench, datastore, corpus)
        bench.frames = _frames(client, datastore)
        yield bench
    finally:
        server.stop()


def _frames(client: Any, datastore: str) -> list[Frame]:
    found: list[Frame] = []
    for summary in client.search_image_sets(datastoreId=datastore)["imageSetsMetadataSummaries"]:
        image_set = summary["imageSetId"]
        blob = client.get_image_set_metadata(datastoreId=datastore, imageSetId=image_set)["imageSetMetadataBlob"]
        document = json.loads(gzip.decompress(blob.read()))
        study = document["Study"]["DICOM"]["StudyInstanceUID"]
        for series_uid, series in document["Study"]["Series"].items():
            for sop, instance in series["Instances"].items():
                found.append(Frame(image_set, instance["ImageFrames"][0]["ID"], study, series_uid, sop))
    if not found:
        raise RuntimeError("no frames after the import")
    return found


def step_boto3_frames(bench: Bench, options: Options) -> None:
    local = threading.local()

    def one(rng: random.Random) -> int:
        client = getattr(local, "client", None)
        if client is None:
            client = local.client = bench.server.client()
        frame = rng.choice(bench.frames)
        answer = client.get_image_frame(
            datastoreId=bench.datastore,
            imageSetId=frame.image_set,
            imageFrameInformation={"imageFrameId": frame.frame_id},
        )
        return len(answer["imageFrameBlob"].read())

    rate = throughput(one, options.clients, options.seconds, bench.cpu)
    bench.record("GetImageFrame (boto3)", rate.per_second, rate.cpu_seconds / rate.count * 1e3)


def step_dicomweb_frames(bench: Bench, options: Options, scratch: Path) -> None:
    def path(rng: random.Random) -> str:
        frame = rng.choice(bench.frames)
        return f"/studies/{frame.study}/series/{frame.series}/instances/{frame.sop}/frames/1"

    rate: Rate = curl_throughput(bench.target, path, FRAMES_STORED, options.clients, options.seconds, scratch)
    bench.record("DICOMweb frames (curl)", rate.per_second, rate.cpu_seconds / rate.count * 1e3)


def step_import_job(bench: Bench, corpus: Path, count: int) -> None:
    datastore = _active_datastore(bench.server.client(), "audit-bench-import")
    cpu_before = bench.cpu()
    seconds = _import(bench, datastore, corpus)
    bench.record("import job", count / seconds, (bench.cpu() - cpu_before) / count * 1e3)


def step_stow(bench: Bench, bodies: list[bytes], options: Options) -> None:
    datastore = _active_datastore(bench.server.client(), "audit-bench-stow")
    target = Target(bench.name, f"{bench.server.endpoint}/datastore/{datastore}", SigV4RequestsAuth())
    queue = list(range(len(bodies)))
    lock = threading.Lock()

    def worker() -> None:
        while True:
            with lock:
                if not queue:
                    return
                index = queue.pop()
            body, content_type = multipart([bodies[index]])
            answer = target.post("/studies", body, content_type)
            if answer.status_code != 200:
                raise RuntimeError(f"STOW-RS: HTTP {answer.status_code} {answer.text[:200]}")

    cpu_before, started = bench.cpu(), time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(options.clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - started
    bench.record("STOW-RS (1 instance/request)", len(bodies) / seconds, (bench.cpu() - cpu_before) / len(bodies) * 1e3)


def in_process_cost(count: int = 20000) -> tuple[float, float]:
    """Seconds per call of the audit trail itself: ``observe`` (event loop) and the writer thread (build + write).

    A GetImageFrame call of an IAM user with a 100 kB frame, as the edge reports it; best of three runs.
    """
    caller = Caller(f"arn:aws:iam::{ACCOUNT}:user/alice", ACCOUNT, CallerKind.IAM_USER, access_key_id="AKIAALICE")
    call = CallRecord(
        request_id=str(uuid.uuid4()),
        surface="native",
        operation="GetImageFrame",
        datastore_id="a" * 32,
        caller=caller,
        source_ip="127.0.0.1",
        user_agent="Boto3/1.44.8 md/Botocore#1.44.8 ua/2.1 os/linux lang/python#3.12.1 cfg/retry-mode#standard",
        started_at=datetime.now(UTC),
        duration_seconds=0.001,
        status=200,
        error_code=None,
        error_message=None,
        request_parameters={
            "datastoreId": "a" * 32,
            "imageSetId": "b" * 32,
            "imageFrameInformation": {"imageFrameId": "c" * 32},
        },
        response_elements={"imageFrameBlob": b"x" * 100_000, "contentType": "image/jph"},
    )
    observe, write = float("inf"), float("inf")
    for _ in range(3):
        with tempfile.TemporaryDirectory() as folder:
            trail = AuditTrail(
                AuditContext("us-east-1", ACCOUNT), RotatingNdjson(Path(folder), utc_now), queue_size=count + 1
            )
            started = time.perf_counter()
            for _ in range(count):
                trail.observe(call)
            observe = min(observe, (time.perf_counter() - started) / count)
            started = time.perf_counter()
            trail.start()
            trail.close()  # the thread drains the queue: build, encode, write every record
            write = min(write, (time.perf_counter() - started) / count)
    return observe, write


def audit_files(bench: Bench) -> tuple[int, int, int]:
    """(records, bytes, records reported dropped) in the server's audit files."""
    files = list((bench.server.data_dir / "audit").glob("audit-*.ndjson"))
    lines = [line for path in files for line in path.read_bytes().splitlines()]
    dropped = sum(
        json.loads(line)["serviceEventDetails"]["droppedRecords"] for line in lines if b"AuditRecordsDropped" in line
    )
    return len(lines), sum(p.stat().st_size for p in files), dropped


def report(benches: dict[str, Bench], options: Options) -> None:
    off, on = benches["audit off"], benches["audit on"]
    print(
        f"\n{options.rounds} rounds (ABBA), median per mode; {options.clients} clients, {options.seconds:.0f} s per"
        f" throughput step; openhi serve --workers {options.workers}; {os.cpu_count()} cores"
    )
    header = f"{'step':<30}{'off /s':>10}{'on /s':>10}{'on/off':>8}{'off CPU ms':>12}{'on CPU ms':>11}{'CPU +%':>8}"
    print(header)
    for step in off.results:
        rate_off = statistics.median(r for r, _ in off.results[step])
        rate_on = statistics.median(r for r, _ in on.results[step])
        cpu_off = statistics.median(c for _, c in off.results[step])
        cpu_on = statistics.median(c for _, c in on.results[step])
        print(
            f"{step:<30}{rate_off:>10.1f}{rate_on:>10.1f}{rate_on / rate_off:>8.3f}"
            f"{cpu_off:>12.2f}{cpu_on:>11.2f}{100 * (cpu_on / cpu_off - 1):>+8.1f}"
        )
    records, size, dropped = audit_files(on)
    print(
        f"audit on: {records} records, {size / 1e6:.1f} MB, {size / max(records, 1):.0f} bytes per record,"
        f" {dropped} dropped (queue full)"
    )
    observe, write = in_process_cost()
    frame_cpu = statistics.median(c for _, c in off.results["DICOMweb frames (curl)"])
    share = 100 * (observe + write) * 1e3 / frame_cpu
    print(
        f"audit trail in process, per call: observe() {observe * 1e6:.1f} us on the event loop + writer thread"
        f" {write * 1e6:.1f} us = {(observe + write) * 1e6:.0f} us, i.e. {share:.1f}%"
        f" of the server CPU per DICOMweb frame without audit ({frame_cpu:.2f} ms)"
    )
    print("(each throughput row: per-round figures)")
    for step in off.results:
        rows = ", ".join(
            f"{name} {' '.join(f'{r:.0f}' for r, _ in bench.results[step])}" for name, bench in benches.items()
        )
        print(f"  {step}: {rows}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--series", type=int, default=Options.series)
    parser.add_argument("--slices", type=int, default=Options.slices)
    parser.add_argument("--size", type=int, default=Options.size)
    parser.add_argument("--clients", type=int, default=Options.clients)
    parser.add_argument("--seconds", type=float, default=Options.seconds)
    parser.add_argument("--rounds", type=int, default=Options.rounds)
    parser.add_argument("--workers", type=int, default=Options.workers, help="openhi serve --workers")
    parser.add_argument("--quick", action="store_true", help="1 series x 10 slices, 4 s per step, 1 round")
    args = parser.parse_args()
    options = Options(args.series, args.slices, args.size, args.clients, args.seconds, args.rounds, args.workers)
    if args.quick:
        options.series, options.slices, options.seconds, options.rounds = 1, 10, 4.0, 1
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        corpus = root / "corpus"
        paths = [
            path
            for n in range(options.series)
            for path in write_series(
                corpus, SeriesSpec(series=f"s{n}", slices=options.slices, size=options.size, series_number=n + 1)
            )
        ]
        bodies = [path.read_bytes() for path in paths]
        print(f"corpus: {len(paths)} CT slices {options.size}x{options.size}, {sum(map(len, bodies)) / 1e6:.1f} MB")
        with ExitStack() as stack:
            benches = {
                name: stack.enter_context(running(name, env, root, corpus, options)) for name, env in MODES.items()
            }
            order = [name for n in range(options.rounds) for name in (list(MODES) if n % 2 == 0 else list(MODES)[::-1])]
            steps: list[Callable[[Bench], None]] = [
                partial(step_boto3_frames, options=options),
                partial(step_dicomweb_frames, options=options, scratch=root),
                partial(step_import_job, corpus=corpus, count=len(paths)),
                partial(step_stow, bodies=bodies, options=options),
            ]
            for step in steps:
                for name in order:
                    step(benches[name])
        report(benches, options)  # the servers stopped: their audit writers wrote everything queued


if __name__ == "__main__":
    main()
