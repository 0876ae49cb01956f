"""DICOMweb: OpenHI against Orthanc on loopback, same client, same synthetic corpus, in one run.

Corpus (benchmarks/dicomweb_corpus.py, written to a temporary folder): ``--ct-series`` x ``--ct-slices`` CT
slices 512^2 signed 16-bit (default 2 x 100) and ``--mf-instances`` multi-frame instances of ``--mf-frames``
frames 512^2 (default 5 x 40), all Explicit VR Little Endian. Both servers run side by side and take turns, one
step at a time, so that load from elsewhere on the machine hits both alike: each gets the corpus by STOW-RS
(multipart, ``--batch`` instances per request, ``--clients`` concurrent clients), then QIDO-RS p50/p95 at each
level, series metadata p50/p95 (a 100-instance series), random frames/s in the stored syntax
(``transfer-syntax=*``) and in Explicit VR Little Endian for single-frame CT and for the multi-frame instances,
and whole CT instances/s, with the server CPU time per request (user + system of the server and its child
processes, from /proc: the figure that load from elsewhere on the machine does not distort); each of these runs
``--repeat`` times in alternating order (A B B A) and the best round counts. Also peak RSS (VmHWM of the server
and of its child processes) and bytes on disk.

Clients: latencies and STOW-RS use requests (one keep-alive session per thread; OpenHI's requests signed by
botocore's SigV4, tests/support/dicomweb.py). Throughput loops use curl by default (``--client``): one curl
process with ``--parallel-max`` = ``--clients`` transfers over kept-alive connections, signing with its own
``--aws-sigv4`` for OpenHI. A Python client spends 1.2-1.9 ms of CPU per request, as much as the servers, so
on a 2-core machine it measures itself; curl spends about 0.2 ms.

OpenHI: ``openhi serve`` (embedded SQLite + files, fresh data dir), a data store created with boto3, requests
signed with botocore SigV4. Orthanc (Debian ``orthanc`` + ``orthanc-dicomweb``, benchmarks/orthanc_server.py):
a generated configuration, files stored as received; skipped with a message when it is not installed.
Targets (issue 5) are ratios of the two in the same run; the table marks each met or not met.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import orthanc_server
from benchmarks.dicomweb_corpus import Corpus, CorpusShape, write_corpus
from benchmarks.dicomweb_http import Target
from benchmarks.dicomweb_suite import Results, Settings, disk_bytes, retrieval_steps, stow, wait_searchable
from tests.support.dicomweb import SigV4RequestsAuth
from tests.support.server import ACCESS_KEY_ID, SECRET_ACCESS_KEY, ServerProcess, server_env

ROLE = "arn:aws:iam::123456789012:role/Benchmark"
Loader = Callable[[Results], None]


@dataclass(frozen=True)
class Row:
    """One line of the table: which figure, its unit, whether higher is better, the target ratio if any."""

    key: str
    label: str
    higher_is_better: bool
    target: float | None = None


ROWS = [
    Row("stow_ct", "STOW-RS CT, instances/s", True, 1.0),
    Row("stow_mf", "STOW-RS multi-frame, instances/s", True, 1.0),
    Row("stow_ct_cpu", "  server CPU ms/instance, STOW-RS CT", False),
    Row("qido_studies_p50", "QIDO-RS studies p50, ms", False),
    Row("qido_studies_p95", "QIDO-RS studies p95, ms", False, 1.0),
    Row("qido_series_p50", "QIDO-RS series p50, ms", False),
    Row("qido_series_p95", "QIDO-RS series p95, ms", False, 1.0),
    Row("qido_instances_p50", "QIDO-RS instances (1 series) p50, ms", False),
    Row("qido_instances_p95", "QIDO-RS instances (1 series) p95, ms", False, 1.0),
    Row("metadata_p50", "series metadata p50, ms", False),
    Row("metadata_p95", "series metadata p95, ms", False, 1 / 3),
    Row("frames_ct_stored", "frames/s CT, stored syntax", True, 2.0),
    Row("frames_ct_ele", "frames/s CT, ELE", True, 2.0),
    Row("frames_mf_stored", "frames/s multi-frame, stored syntax", True, 10.0),
    Row("frames_mf_ele", "frames/s multi-frame, ELE", True, 10.0),
    Row("frames_ct_stored_mbs", "  MB/s CT frames, stored syntax", True),
    Row("frames_ct_ele_mbs", "  MB/s CT frames, ELE", True),
    Row("frames_ct_stored_cpu", "  server CPU ms/frame, CT stored", False),
    Row("frames_ct_ele_cpu", "  server CPU ms/frame, CT ELE", False),
    Row("frames_mf_stored_cpu", "  server CPU ms/frame, multi-frame stored", False),
    Row("frames_mf_ele_cpu", "  server CPU ms/frame, multi-frame ELE", False),
    Row("instances_ct_ele", "whole CT instances/s, ELE", True),
    Row("instances_ct_stored", "whole CT instances/s, stored syntax", True),
    Row("instances_ct_ele_cpu", "  server CPU ms/instance, ELE", False),
    Row("disk_ct_mb", "bytes on disk after CT STOW, MB", False, 0.40),
    Row("disk_all_mb", "bytes on disk after everything, MB", False),
    Row("rss_main_mib", "peak RSS server process, MiB", False),
    Row("rss_children_mib", "peak RSS child processes (sum), MiB", False),
]


TARGETS = {row.key: row.target for row in ROWS}
HIGHER_IS_BETTER = {row.key: row.higher_is_better for row in ROWS}


class PeakMemory:
    """Samples VmHWM of a process and of all its descendants while a run goes on; keeps each pid's maximum."""

    def __init__(self, pid: int, interval: float = 0.25) -> None:
        self.pid = pid
        self.interval = interval
        self.peaks: dict[int, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def sample(self) -> None:
        for pid in [self.pid, *descendants(self.pid)]:
            kib = vm_hwm_kib(pid)
            if kib:
                self.peaks[pid] = max(self.peaks.get(pid, 0), kib)

    @property
    def main_mib(self) -> float:
        return self.peaks.get(self.pid, 0) / 1024

    @property
    def children_mib(self) -> float:
        return sum(kib for pid, kib in self.peaks.items() if pid != self.pid) / 1024


def vm_hwm_kib(pid: int) -> int:
    """Peak resident set size of a live process (``VmHWM`` in /proc/<pid>/status), 0 when it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and its live descendants (/proc/<pid>/stat fields 14 and 15)."""
    total = 0
    for each in [pid, *descendants(pid)]:
        try:
            fields = Path(f"/proc/{each}/stat").read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def descendants(pid: int) -> list[int]:
    """Every live descendant of ``pid`` (from /proc/<pid>/task/*/children)."""
    found: list[int] = []
    pending = [pid]
    while pending:
        current = pending.pop()
        for task in Path(f"/proc/{current}/task").glob("*/children") if Path(f"/proc/{current}").exists() else []:
            try:
                children = [int(c) for c in task.read_text().split()]
            except (FileNotFoundError, ProcessLookupError):
                continue
            found.extend(children)
            pending.extend(children)
    return found


@dataclass
class Server:
    """A running server under measurement: its DICOMweb target, process, storage and figures."""

    target: Target
    pid: int
    storage: Path
    fallback: Loader | None = None
    results: Results = field(default_factory=Results)

    def __post_init__(self) -> None:
        self.memory = PeakMemory(self.pid)


def keep_best(results: Results, trial: Results, keys: tuple[str, ...]) -> None:
    """Merge one round into ``results``: its figures when they beat the figures so far (on the target's key)."""
    decisive = next((key for key in keys if TARGETS.get(key) is not None), keys[0])
    if decisive in trial.figures:
        new, old = trial.figures[decisive], results.figures.get(decisive)
        if old is None or (new > old if HIGHER_IS_BETTER[decisive] else new < old):
            results.figures.update({key: trial.figures[key] for key in keys})
        return
    if decisive not in results.figures:
        results.missing.update(trial.missing)
        results.notes.extend(trial.notes)
        for answer, failed in trial.unavailable.items():
            results.unavailable.setdefault(answer, []).extend(failed)


def measure(servers: list[Server], corpus: Corpus, settings: Settings, repeat: int) -> None:
    """Every step on every server, the servers taking turns step by step (so load from elsewhere hits both)."""
    for server in servers:
        server.memory.__enter__()
    try:
        for server in servers:
            server.results.record(("stow_ct", "stow_ct_cpu"), partial(stow, server.target, corpus.ct, settings))
        for server in servers:
            if "stow_ct" in server.results.figures:
                server.results.record(("disk_ct_mb",), partial(megabytes, server.storage))
            elif server.fallback is not None:
                server.fallback(server.results)
        for server in servers:
            if "stow_ct" in server.results.figures:
                server.results.record(
                    ("stow_mf", "stow_mf_cpu"), partial(stow, server.target, corpus.multiframe, settings)
                )
        for server in servers:
            try:
                waited = wait_searchable(server.target, corpus)
                if waited > 1:
                    server.results.notes.append(f"instances listed by QIDO-RS {waited:.1f}s after the last store")
            except Exception as error:  # reported; the retrievals tell the rest
                server.results.notes.append(f"waiting for QIDO-RS to list the corpus: {error}")
            server.results.record(("disk_all_mb",), partial(megabytes, server.storage))
        for turn, (keys, step) in enumerate(retrieval_steps(corpus, settings)):
            for round_ in range(repeat):
                for server in servers if (turn + round_) % 2 == 0 else servers[::-1]:
                    if round_ and keys[0] not in server.results.figures:
                        continue  # it failed (e.g. 501): no second try
                    trial = Results()
                    trial.record(keys, partial(step, server.target))
                    keep_best(server.results, trial, keys)
    finally:
        for server in servers:
            server.memory.__exit__()
            server.results.figures["rss_main_mib"] = server.memory.main_mib
            server.results.figures["rss_children_mib"] = server.memory.children_mib


def megabytes(folder: Path) -> tuple[float]:
    return (disk_bytes(folder) / 1e6,)


@contextmanager
def openhi(root: Path, corpus_dir: Path, workers: int) -> Iterator[Server]:
    """``openhi serve --workers N`` on a fresh data dir with one ACTIVE data store; stopped (SIGTERM) at the end."""
    root.mkdir(parents=True, exist_ok=True)
    server = ServerProcess(root / "data", server_env({"OPENHI_LOG_LEVEL": "error"}), ["--workers", str(workers)])
    server.start()
    try:
        assert server.process is not None
        client = server.client()
        datastore = client.create_datastore(datastoreName="dicomweb-bench")["datastoreId"]
        deadline = time.monotonic() + 60
        while client.get_datastore(datastoreId=datastore)["datastoreProperties"]["datastoreStatus"] != "ACTIVE":
            if time.monotonic() > deadline:
                raise RuntimeError("data store not ACTIVE after 60s")
            time.sleep(0.2)
        target = Target("OpenHI", f"{server.endpoint}/datastore/{datastore}", SigV4RequestsAuth())
        target.cpu_seconds = partial(cpu_seconds, server.process.pid)
        target.curl_auth = (
            "--aws-sigv4",
            "aws:amz:us-east-1:medical-imaging",
            "--user",
            f"{ACCESS_KEY_ID}:{SECRET_ACCESS_KEY}",
        )
        yield Server(target, server.process.pid, server.data_dir, partial(import_fallback, server, target, corpus_dir))
    finally:
        code = server.stop()
        if code != 0:
            print(f"note: openhi serve exited with {code} after SIGTERM; log tail:\n{server.output()[-2000:]}")


def import_fallback(server: ServerProcess, target: Target, corpus_dir: Path, results: Results) -> None:
    """When STOW-RS is not available yet, load the corpus with an import job so retrievals can still be timed."""
    client = server.client()
    datastore = target.root.rsplit("/", 1)[1]
    job = client.start_dicom_import_job(
        datastoreId=datastore,
        jobName="dicomweb-bench",
        dataAccessRoleArn=ROLE,
        clientToken="dicomweb-bench",
        inputS3Uri=f"file://{corpus_dir}/",
        outputS3Uri=f"file://{corpus_dir.parent}/import-out/",
    )
    while True:
        status = client.get_dicom_import_job(datastoreId=datastore, jobId=job["jobId"])["jobProperties"]["jobStatus"]
        if status in ("COMPLETED", "FAILED"):
            break
        time.sleep(0.5)
    results.notes.append(f"STOW-RS unavailable: corpus loaded by an import job ({status}) to time the retrievals")


@contextmanager
def orthanc(root: Path) -> Iterator[Server]:
    """Orthanc with the generated configuration; stopped on the way out (its log tail printed if it died)."""
    process = orthanc_server.OrthancServer(root)
    try:
        process.start()
        assert process.process is not None
        target = Target("Orthanc", process.dicomweb_root, cpu_seconds=partial(cpu_seconds, process.process.pid))
        server = Server(target, process.process.pid, process.storage)
        stacks = orthanc_server.thread_stack_sizes(process.process.pid)
        size, count = max(stacks.items(), key=lambda item: item[1])
        server.results.notes.append(f"largest group of anonymous mappings (thread stacks): {count} x {size} KiB")
        yield server
        if not process.alive():
            server.results.notes.append(f"Orthanc died during the run:\n{process.output()[-2000:]}")
    finally:
        process.stop()


def fmt(value: float | None, missing: str | None) -> str:
    if value is None:
        return missing or "-"
    return f"{value:,.1f}" if abs(value) < 1000 else f"{value:,.0f}"


def table(ours: Results, theirs: Results | None) -> list[str]:
    """The side-by-side table: OpenHI, Orthanc, OpenHI/Orthanc, the target and whether it is met."""
    lines = [f"{'metric':<40}{'OpenHI':>12}{'Orthanc':>12}{'ratio':>9}  {'target':<10}{'':<8}"]
    for row in ROWS:
        mine = ours.figures.get(row.key)
        other = theirs.figures.get(row.key) if theirs else None
        ratio = mine / other if mine is not None and other else None
        target, verdict = "", ""
        if row.target is not None:
            target = f"{'>=' if row.higher_is_better else '<='} {row.target:.2f}x"
            if ratio is not None:
                met = ratio >= row.target if row.higher_is_better else ratio <= row.target
                verdict = "met" if met else "NOT MET"
        cells = fmt(mine, ours.missing.get(row.key)), fmt(other, theirs.missing.get(row.key) if theirs else "n/a")
        lines.append(
            f"{row.label:<40}{cells[0]:>12}{cells[1]:>12}{fmt(ratio, '-') if ratio else '-':>9}  {target:<10}{verdict}"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small corpus and short loops (for a smoke run)")
    parser.add_argument("--ct-series", type=int, default=2)
    parser.add_argument("--ct-slices", type=int, default=100)
    parser.add_argument("--mf-instances", type=int, default=5)
    parser.add_argument("--mf-frames", type=int, default=40)
    parser.add_argument("--clients", type=int, default=4, help="concurrent client threads (same for both servers)")
    parser.add_argument("--batch", type=int, default=20, help="instances per STOW-RS request")
    parser.add_argument("--seconds", type=float, default=10.0, help="duration of each throughput loop")
    parser.add_argument("--samples", type=int, default=100, help="requests per latency figure")
    parser.add_argument(
        "--client",
        choices=("curl", "requests"),
        default="curl",
        help="throughput client: curl (native; requests when curl is missing) or requests in Python threads",
    )
    parser.add_argument("--repeat", type=int, default=2, help="rounds of each retrieval step; the best counts")
    parser.add_argument(
        "--openhi-workers",
        type=int,
        default=os.cpu_count() or 1,
        help="OpenHI server processes (openhi serve --workers; default one per core, as Orthanc uses every core)",
    )
    parser.add_argument("--skip-orthanc", action="store_true")
    parser.add_argument("--skip-openhi", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (server logs, corpus)")
    args = parser.parse_args()
    shape = CorpusShape(args.ct_series, args.ct_slices, args.mf_instances, args.mf_frames)
    client = args.client if args.client != "curl" or shutil.which("curl") else "requests"
    settings = Settings(args.clients, args.batch, args.seconds, args.samples, client=client)
    if args.quick:
        shape = CorpusShape(ct_series=1, ct_slices=20, mf_instances=2, mf_frames=40)
        settings = Settings(args.clients, args.batch, seconds=2.0, samples=20, max_latency_seconds=5.0, client=client)
        args.repeat = 1

    root = Path(tempfile.mkdtemp(prefix="openhi-dicomweb-bench-"))
    settings.scratch = root
    try:
        corpus = write_corpus(root / "corpus", shape)
        ct_mb, mf_mb = corpus.bytes(corpus.ct) / 1e6, corpus.bytes(corpus.multiframe) / 1e6
        print(
            f"corpus: {len(corpus.ct)} CT instances ({ct_mb:.0f} MB), {len(corpus.multiframe)} multi-frame instances"
            f" x {shape.mf_frames} frames ({mf_mb:.0f} MB), {shape.size}^2 16-bit, Explicit VR Little Endian; "
            f"{settings.clients} concurrent clients ({settings.client} for throughput), {settings.seconds:g}s per "
            f"throughput loop, {os.cpu_count()} cores, "
            f"load average {os.getloadavg()[0]:.1f}",
            flush=True,
        )
        theirs: Results | None = None
        ours = Results()
        with ExitStack() as stack:
            servers: list[Server] = []
            if not args.skip_openhi:
                try:
                    servers.append(stack.enter_context(openhi(root / "openhi", root / "corpus", args.openhi_workers)))
                    ours = servers[-1].results
                except Exception as error:  # the server did not start: still measure Orthanc
                    ours.notes.append(f"OpenHI not measured: {type(error).__name__}: {str(error)[-1500:]}")
            missing = None if args.skip_orthanc else orthanc_server.installed()
            if missing:
                print(f"Orthanc not measured: {missing} (Debian packages orthanc, orthanc-dicomweb)")
            elif not args.skip_orthanc:
                servers.append(stack.enter_context(orthanc(root / "orthanc")))
                theirs = servers[-1].results
            measure(servers, corpus, settings, args.repeat)
        print(f"load average (1, 5, 15 min) after the run: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
        print("\n".join(table(ours, theirs)))
        for label, results in (("OpenHI", ours), ("Orthanc", theirs)):
            if results is None:
                continue
            for note in dict.fromkeys(results.notes):
                print(f"note ({label}): {note[:300]}")
            for answer, keys in results.unavailable.items():
                print(f"note ({label}): {', '.join(keys)}: {answer}")
    finally:
        if args.keep:
            print(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
