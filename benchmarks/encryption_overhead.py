"""What encryption at rest costs: frame retrieval and import throughput with it on and off, side by side in one run.

Issue 7 ("Performance"): encryption (and audit) must not cost more than 10% of frame-retrieval throughput or of
import throughput. Configurations (``--audit`` adds the audit trail to the comparison):

- ``clear``: ``encryption = false`` (new data stores keep no key, objects are stored in the clear), audit off;
- ``encrypted``: ``encryption = true`` (the default: every object sealed, AES-256-GCM in 64 KiB segments), audit off;
- with ``--audit``: ``audited`` (clear + audit trail with data events) and ``encrypted+audited``.

Frame retrieval: one ``openhi serve`` per configuration (embedded SQLite + files, fresh data dir), all running at
once, each loaded with the same corpus by STOW-RS (``--series`` x ``--slices`` CT slices of ``--size``^2, stored as
HTJ2K). Then random frames on ``--clients`` concurrent connections, through curl (a native client: a Python client
spends as much CPU per request as the server, so on a small machine it would measure itself), signed with curl's
own ``--aws-sigv4``: GetImageFrame (POST, the native API) and DICOMweb WADO-RS frames in the stored syntax
(``transfer-syntax=*``). Figures: frames/s and the server's CPU milliseconds per frame (user + system of the server
process from /proc: the figure load from elsewhere on the machine does not distort). Every answer must be 200 and
the first frame of each configuration is checked bit-exact against the clear server's.

Import: ``--import-series`` x ``--slices`` slices from a local folder through ``ImportRunner.run_now`` exactly as
``openhi import`` runs it
(as benchmarks/import_throughput.py does: fresh data dir, worker processes started before the clock starts), with
the CPU time of the process and its workers per instance.

Each measurement runs ``--rounds`` times (imports twice as many), configurations taking turns in alternating order
(A B, B A, ...), and the best round of each counts, so that load from elsewhere hits every configuration alike; the
spread of the rounds is printed beside it (on a shared machine it is wider than the effect measured). Also printed:
the raw cost of sealing and opening in process (AES-256-GCM through ``SealedBlobStore`` over a memory store).
Nothing is asserted: the table shows each ratio against ``clear`` and whether it is within the 10% budget.

Run: ``.venv/bin/python benchmarks/encryption_overhead.py [--quick] [--audit]``.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.dicomweb import cpu_seconds
from benchmarks.dicomweb_http import FRAMES_STORED, Rate, Target, curl_throughput, multipart, parts
from tests.support.dicom_corpus import iter_corpus, write_series
from tests.support.dicomweb import SigV4RequestsAuth
from tests.support.server import ACCESS_KEY_ID, SECRET_ACCESS_KEY, ServerProcess, server_env

from openhi.blobs import keys
from openhi.blobs.memory import MemoryBlobStore
from openhi.bootstrap import build_services
from openhi.config import load_settings
from openhi.crypto.blob_store import SealedBlobStore, SingleKey
from openhi.crypto.envelope import new_key
from openhi.crypto.model import DataKey
from openhi.datastores.model import DatastoreStatus
from openhi.datastores.service import CreateDatastoreRequest
from openhi.ids import new_id
from openhi.imports.service import StartImportRequest

ROLE = "arn:aws:iam::123456789012:role/Benchmark"
BUDGET = 0.10  # issue 7: at most 10% of the throughput
SIGV4 = ("--aws-sigv4", "aws:amz:us-east-1:medical-imaging", "--user", f"{ACCESS_KEY_ID}:{SECRET_ACCESS_KEY}")


@dataclass(frozen=True)
class Config:
    """One configuration under comparison: its name and the settings that make it."""

    name: str
    encryption: bool
    audit: bool

    def env(self) -> dict[str, str]:
        return {
            "OPENHI_ENCRYPTION": str(self.encryption).lower(),
            "OPENHI_AUDIT_ENABLED": str(self.audit).lower(),
            "OPENHI_AUDIT_DATA_EVENTS": str(self.audit).lower(),
        }


@dataclass
class Loaded:
    """A server of one configuration with the corpus stored: what the frame requests need."""

    config: Config
    server: ServerProcess
    target: Target
    frames: list[tuple[str, str]] = field(default_factory=list)  # (image set id, frame id)
    wado: list[str] = field(default_factory=list)  # DICOMweb frame paths (/studies/.../frames/1)
    first_frame: bytes = b""


def _best(rates: Sequence[Rate]) -> Rate:
    return max(rates, key=lambda rate: rate.per_second)


@contextmanager
def serve(config: Config, root: Path) -> Iterator[ServerProcess]:
    """``openhi serve`` of one configuration on a fresh data dir."""
    env = server_env({"OPENHI_LOG_LEVEL": "error", "OPENHI_IMPORT_WORKERS": "1", **config.env()})
    folder = root / config.name.replace("+", "-")
    folder.mkdir(parents=True, exist_ok=True)
    server = ServerProcess(folder / "data", env).start()
    try:
        yield server
    finally:
        code = server.stop()
        if code != 0:
            print(f"note: {config.name} server exited with {code}:\n{server.output()[-1500:]}")


def load(config: Config, server: ServerProcess, corpus: Path) -> Loaded:
    """A data store with the corpus stored by STOW-RS, and the list of its frames."""
    client = server.client()
    datastore = client.create_datastore(datastoreName=f"bench-{config.name.replace('+', '-')}")["datastoreId"]
    while client.get_datastore(datastoreId=datastore)["datastoreProperties"]["datastoreStatus"] != "ACTIVE":
        time.sleep(0.1)
    assert server.process is not None
    target = Target(config.name, f"{server.endpoint}/datastore/{datastore}", SigV4RequestsAuth())
    target.cpu_seconds = partial(cpu_seconds, server.process.pid)
    target.curl_auth = SIGV4
    files = sorted(corpus.rglob("*.dcm"))
    for start in range(0, len(files), 10):
        body, content_type = multipart([path.read_bytes() for path in files[start : start + 10]])
        response = target.post("/studies", body, content_type)
        assert response.status_code == 200, response.text[:300]
    loaded = Loaded(config, server, target)
    for summary in client.search_image_sets(datastoreId=datastore, searchCriteria={})["imageSetsMetadataSummaries"]:
        blob = client.get_image_set_metadata(datastoreId=datastore, imageSetId=summary["imageSetId"])
        document = json.loads(gzip.decompress(blob["imageSetMetadataBlob"].read()))
        study = document["Study"]["DICOM"]["StudyInstanceUID"]
        for series_uid, series in document["Study"]["Series"].items():
            for sop, instance in series["Instances"].items():
                for entry in instance["ImageFrames"]:
                    loaded.frames.append((summary["imageSetId"], entry["ID"]))
                loaded.wado.append(f"/studies/{study}/series/{series_uid}/instances/{sop}/frames/1")
    assert len(loaded.wado) == len(files), (len(loaded.wado), len(files))
    loaded.first_frame = parts(target.get(loaded.wado[0], FRAMES_STORED))[0][1]
    return loaded


def curl_posts(target: Target, bodies: Sequence[tuple[str, str]], clients: int, folder: Path) -> Rate:
    """POST every (path, JSON body) with one curl process, ``clients`` transfers at a time; every answer 200."""
    config = folder / f"curl-{uuid.uuid4().hex}.cfg"
    blocks = []
    for path, body in bodies:
        escaped = body.replace("\\", "\\\\").replace('"', '\\"')
        options = [f'url = "{target.root}{path}"', f'data-binary = "{escaped}"', 'output = "/dev/null"']
        options += ['header = "Content-Type: application/json"', 'write-out = "%{http_code} %{size_download}\\n"']
        options += [f'aws-sigv4 = "{target.curl_auth[1]}"', f'user = "{target.curl_auth[3]}"']
        blocks.append("\n".join(options))
    config.write_text("\nnext\n".join(blocks) + "\n")
    command = ["curl", "--silent", "--parallel", "--parallel-max", str(clients), "--config", str(config)]
    started, cpu_before = time.perf_counter(), target.cpu_seconds()
    try:
        done = subprocess.run(command, capture_output=True, text=True, check=False)
    finally:
        config.unlink(missing_ok=True)
    seconds, cpu = time.perf_counter() - started, target.cpu_seconds() - cpu_before
    answers = [line.split() for line in done.stdout.splitlines() if line.strip()]
    failed = [code for code, _ in answers if code != "200"]
    if len(answers) != len(bodies) or failed:
        raise RuntimeError(f"curl: {len(answers)} answers of {len(bodies)}, not 200: {failed[:5]} {done.stderr[-300:]}")
    return Rate(len(bodies), seconds, sum(int(size) for _, size in answers), cpu)


def get_image_frames(loaded: Loaded, clients: int, seconds: float, folder: Path) -> Rate:
    """Random GetImageFrame calls for about ``seconds``."""
    rng = random.Random(11)  # noqa: S311 - reproducible load, not secrets

    def bodies(count: int) -> list[tuple[str, str]]:
        chosen = [rng.choice(loaded.frames) for _ in range(count)]
        return [(f"/imageSet/{i}/getImageFrame", json.dumps({"imageFrameId": f})) for i, f in chosen]

    probe = curl_posts(loaded.target, bodies(max(20, clients * 5)), clients, folder)
    return curl_posts(loaded.target, bodies(max(clients * 10, int(probe.per_second * seconds))), clients, folder)


def wado_frames(loaded: Loaded, clients: int, seconds: float, folder: Path) -> Rate:
    """Random DICOMweb frames in the stored syntax for about ``seconds``."""
    return curl_throughput(loaded.target, lambda rng: rng.choice(loaded.wado), FRAMES_STORED, clients, seconds, folder)


def import_run(data_dir: Path, input_uri: str, config: Config, workers: int) -> Rate:
    """One import of the corpus into a fresh data dir, as ``openhi import`` runs it: instances, seconds, and the CPU
    time of this process and its worker processes."""
    settings, _ = load_settings(
        environ={
            "OPENHI_DATASTORE_TRANSITION_SECONDS": "0",
            "OPENHI_ACCESS_KEY_ID": "AKIABENCH",
            "OPENHI_IMPORT_WORKERS": str(workers),
            **config.env(),
        },
        flags={"data_dir": data_dir, "secret_access_key": "bench"},
    )
    services = build_services(settings)
    try:
        created = services.datastores.create(CreateDatastoreRequest(client_token="bench"))
        while services.datastores.get(created.datastore_id).status != DatastoreStatus.ACTIVE:
            services.lifecycle.sweep()
        request = StartImportRequest(created.datastore_id, "bench", ROLE, input_uri, f"file://{data_dir}/out/")
        job = services.imports.start(request)
        services.runner.warm_up()  # a server starts its workers at start-up: not part of the import
        started, cpu_before = time.perf_counter(), cpu_seconds(os.getpid())
        finished = services.runner.run_now(created.datastore_id, job.job_id)
        seconds, cpu = time.perf_counter() - started, cpu_seconds(os.getpid()) - cpu_before
        if finished.status.value != "COMPLETED":
            raise RuntimeError(f"{config.name}: import {finished.status.value}: {finished.message}")
        count = len(services.index.run(lambda uow: uow.import_jobs.list_files(job.job_id), readonly=True))
        return Rate(count, seconds, 0, cpu)
    finally:
        services.runner.stop()
        services.index.close()


def alternating(items: Sequence[Loaded], rounds: int) -> Iterator[Loaded]:
    """Every item once per round, the order reversed every other round (A B, B A, ...)."""
    for n in range(rounds):
        yield from (items if n % 2 == 0 else list(reversed(items)))


def in_process_cost(frame: bytes) -> tuple[float, float, float, float]:
    """(seal MB/s, open MB/s, seal µs per frame, open µs per frame) of SealedBlobStore over a memory store."""
    store = SealedBlobStore(MemoryBlobStore(), SingleKey(DataKey("0" * 32, 1, new_key())))
    payload = os.urandom(8 * 1024 * 1024)
    key = keys.bulk_value("0" * 32, new_id())
    started = time.perf_counter()
    for _ in range(8):
        store.put(key, payload)
    seal = 8 * len(payload) / (time.perf_counter() - started) / 1e6
    started = time.perf_counter()
    for _ in range(8):
        store.get(key)
    opened = 8 * len(payload) / (time.perf_counter() - started) / 1e6
    frame_key = keys.frame("0" * 32, new_id())
    started = time.perf_counter()
    for _ in range(200):
        store.put(frame_key, frame)
    seal_frame = (time.perf_counter() - started) / 200 * 1e6
    started = time.perf_counter()
    for _ in range(200):
        store.get(frame_key)
    open_frame = (time.perf_counter() - started) / 200 * 1e6
    return seal, opened, seal_frame, open_frame


def verdict(ratio: float) -> str:
    return "within 10%" if ratio >= 1 - BUDGET else "OVER BUDGET"


def table(title: str, unit: str, rounds: dict[str, list[Rate]], baseline: str) -> None:
    """Rows: configuration, best round's throughput and CPU per item against the baseline's, and the spread of the
    rounds (what load from elsewhere on the machine does to the figures)."""
    print(f"\n{title}")
    figures = {name: _best(rates) for name, rates in rounds.items()}
    base_rate, base_cpu = figures[baseline].per_second, figures[baseline].cpu_seconds / figures[baseline].count * 1e3
    for name, best in figures.items():
        rate, cpu_ms = best.per_second, best.cpu_seconds / best.count * 1e3
        spread = sorted(r.per_second for r in rounds[name])
        line = (
            f"  {name:<18} {rate:8.1f} {unit}s/s {cpu_ms:7.2f} ms CPU/{unit}  (rounds {spread[0]:.0f}-{spread[-1]:.0f})"
        )
        if name != baseline:
            ratio = rate / base_rate if base_rate else 0.0
            cpu_ratio = cpu_ms / base_cpu if base_cpu else 0.0
            line += f"   throughput {ratio:5.3f}x ({verdict(ratio)}), CPU per {unit} {cpu_ratio:5.3f}x"
            line += f" ({verdict(1 / cpu_ratio if cpu_ratio else 0.0)})"
        print(line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a small corpus and short runs (about 3 minutes)")
    parser.add_argument("--audit", action="store_true", help="also compare with the audit trail on")
    parser.add_argument("--series", type=int, help="series of the frame corpus (quick: 1, else 2)")
    parser.add_argument("--import-series", type=int, help="series of the import corpus (quick: 4, else 3)")
    parser.add_argument("--slices", type=int)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--seconds", type=float)
    parser.add_argument("--rounds", type=int)
    parser.add_argument("--workers", type=int, default=0, help="import worker processes (0: one per core)")
    args = parser.parse_args()
    series = args.series or (1 if args.quick else 2)
    import_series = args.import_series or (4 if args.quick else 3)
    slices = args.slices or (24 if args.quick else 100)
    seconds = args.seconds or (4.0 if args.quick else 10.0)
    rounds = args.rounds or (2 if args.quick else 4)
    import_rounds = 2 * rounds  # an import of the corpus takes a second or two: more rounds against the noise
    configs = [Config("clear", False, False), Config("encrypted", True, False)]
    if args.audit:
        configs += [Config("audited", False, True), Config("encrypted+audited", True, True)]

    with tempfile.TemporaryDirectory() as tmp, ExitStack() as servers:
        root = Path(tmp)
        paths = [p for spec in iter_corpus(series, slices, args.size) for p in write_series(root / "corpus", spec)]
        imported = [
            p for spec in iter_corpus(import_series, slices, args.size) for p in write_series(root / "in", spec)
        ]
        megabytes = sum(p.stat().st_size for p in paths) / 1e6
        print(
            f"corpus: {len(paths)} CT slices {args.size}x{args.size} int16 ({megabytes:.1f} MB), "
            f"{os.cpu_count()} cores, {args.clients} clients, {rounds} rounds, best round counts"
        )
        loaded = [load(c, servers.enter_context(serve(c, root)), root / "corpus") for c in configs]
        reference = loaded[0].first_frame
        for each in loaded:
            if each.first_frame != reference:
                raise RuntimeError(f"{each.config.name}: the first frame differs from the clear server's")
        size = len(reference)
        print(f"stored frame: {size / 1024:.0f} KiB HTJ2K; every configuration answers it bit-exact")

        measures: dict[str, Callable[[Loaded], Rate]] = {
            "GetImageFrame": lambda item: get_image_frames(item, args.clients, seconds, root),
            "DICOMweb frames": lambda item: wado_frames(item, args.clients, seconds, root),
        }
        results: dict[str, dict[str, list[Rate]]] = {name: {} for name in measures}
        for name, measure in measures.items():
            for item in alternating(loaded, rounds):
                results[name].setdefault(item.config.name, []).append(measure(item))
        servers.close()  # free the cores for the imports

        imports: dict[str, list[Rate]] = {}
        plain = [c for c in configs if not c.audit]
        for n, config in enumerate(c for r in range(import_rounds) for c in (plain if r % 2 == 0 else plain[::-1])):
            rate = import_run(root / f"import-{n}", f"file://{root / 'in'}/", config, args.workers)
            imports.setdefault(config.name, []).append(rate)

    seal, opened, seal_frame, open_frame = in_process_cost(reference)
    for name in measures:
        title = f"{name} (random frames, {args.clients} concurrent connections, curl)"
        table(title, "frame", results[name], "clear")
    title = f"Import ({len(imported)} files from a local folder, worker processes, {import_rounds} rounds)"
    table(title, "instance", imports, "clear")
    if args.audit:
        print("  (the audit trail records API calls, not imported files: an audited import is the clear one)")
    print(
        f"\nin process, AES-256-GCM through SealedBlobStore: seal {seal:.0f} MB/s, open {opened:.0f} MB/s; "
        f"one {size / 1024:.0f} KiB frame: seal {seal_frame:.0f} µs, open {open_frame:.0f} µs"
    )


if __name__ == "__main__":
    main()
