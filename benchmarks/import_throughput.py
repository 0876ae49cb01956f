"""Import throughput of a synthetic CT corpus, from a local folder and from S3, with the time split by stage.

Corpus: ``--series`` x ``--slices`` CT slices of ``--size``^2 signed 16-bit (default 3 x 100 x 512^2), written
by tests/support/dicom_corpus.py. The import runs exactly as ``openhi import`` runs it (the job recorded in a
fresh SQLite index, files processed by a pool of worker processes, one per core). Baselines in the same run:
copying the corpus file by file (the I/O floor of any archive that stores files as received), and one core
encoding every frame to HTJ2K with imagecodecs in a plain loop (the CPU floor of transcoding).
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import imagecodecs
import pydicom

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.support.backends import S3Server
from tests.support.dicom_corpus import iter_corpus, write_series

from openhi.bootstrap import build_services
from openhi.config import load_settings
from openhi.datastores.model import DatastoreStatus
from openhi.datastores.service import CreateDatastoreRequest
from openhi.imports.pipeline import FileOutcome
from openhi.imports.service import StartImportRequest

ROLE = "arn:aws:iam::123456789012:role/Benchmark"
WORKERS = 0  # 0: one per core (the default); --workers sets it


def corpus(folder: Path, series: int, slices: int, size: int) -> tuple[int, int]:
    """Write the corpus; return (files, bytes)."""
    paths = [p for spec in iter_corpus(series, slices, size) for p in write_series(folder, spec)]
    return len(paths), sum(p.stat().st_size for p in paths)


def import_once(data_dir: Path, input_uri: str, env: dict[str, str]) -> tuple[float, dict[str, float], int, int]:
    """(seconds, summed stage seconds, stored frame bytes, files) of one import into a fresh data dir."""
    os.environ.update(env)
    settings, _ = load_settings(
        environ={
            "OPENHI_DATASTORE_TRANSITION_SECONDS": "0",
            "OPENHI_ACCESS_KEY_ID": "AKIABENCH",
            "OPENHI_IMPORT_WORKERS": str(WORKERS),
            **env,
        },
        flags={"data_dir": data_dir, "secret_access_key": "bench"},
    )
    services = build_services(settings)
    created = services.datastores.create(CreateDatastoreRequest(client_token="bench"))
    while services.datastores.get(created.datastore_id).status != DatastoreStatus.ACTIVE:
        services.lifecycle.sweep()
    job = services.imports.start(
        StartImportRequest(created.datastore_id, "bench", ROLE, input_uri, f"file://{data_dir}/out/")
    )
    stages: dict[str, float] = defaultdict(float)
    count = 0

    def collect(outcome: FileOutcome) -> None:
        nonlocal count
        count += 1
        for stage, seconds in outcome.timings.items():
            stages[stage] += seconds

    services.runner.warm_up()  # a server starts its workers at start-up; not part of the import's time
    started = time.perf_counter()
    finished = services.runner.run_now(created.datastore_id, job.job_id, collect)
    elapsed = time.perf_counter() - started
    services.runner.stop()
    assert finished.status.value == "COMPLETED", finished
    stored = sum(p.stat().st_size for p in (data_dir / "blobs").rglob("*") if "/frames/" in str(p))
    services.index.close()
    return elapsed, dict(stages), stored, count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--series", type=int, default=3)
    parser.add_argument("--slices", type=int, default=100)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--skip-s3", action="store_true")
    parser.add_argument("--workers", type=int, default=0, help="import worker processes (0: one per core)")
    args = parser.parse_args()
    global WORKERS
    WORKERS = args.workers
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        files, size = corpus(root / "corpus", args.series, args.slices, args.size)
        megabytes = size / 1e6
        shape = f"{args.size}x{args.size} int16"
        print(f"corpus: {files} files, {megabytes:.1f} MB, {shape}, {os.cpu_count()} cores")

        started = time.perf_counter()
        for path in (root / "corpus").rglob("*.dcm"):
            shutil.copyfile(path, root / "copy.dcm")
        copy_seconds = time.perf_counter() - started

        frames = [pydicom.dcmread(p).pixel_array for p in sorted((root / "corpus").rglob("*.dcm"))[:50]]
        started = time.perf_counter()
        for frame in frames:
            imagecodecs.htj2k_encode(frame, reversible=True, resolutions=5, tlm=True, tilepart=1)
        encode_per_frame = (time.perf_counter() - started) / len(frames)

        rows = []
        elapsed, stages, stored, count = import_once(root / "local", f"file://{root / 'corpus'}/", {})
        rows.append(("local folder", elapsed, stages, stored, count))
        if not args.skip_s3:
            s3 = S3Server()
            s3.start()
            try:
                bucket = s3.new_bucket()
                client = __import__("boto3").client("s3", endpoint_url=s3.endpoint, **_keys())
                for path in sorted((root / "corpus").rglob("*.dcm")):
                    client.upload_file(str(path), bucket, f"corpus/{path.relative_to(root / 'corpus')}")
                elapsed, stages, stored, count = import_once(root / "s3", f"s3://{bucket}/corpus/", s3.env())
                rows.append(("S3 (moto on loopback)", elapsed, stages, stored, count))
            finally:
                s3.stop()

    print(f"baseline copy of the corpus, file by file: {files / copy_seconds:8.0f} files/s")
    per_frame = f"({encode_per_frame * 1e3:.2f} ms)"
    print(f"baseline HTJ2K encode, 1 core, no I/O:     {1 / encode_per_frame:8.0f} frames/s {per_frame}")
    for label, elapsed, stages, stored, count in rows:
        rate = count / elapsed
        busy = sum(stages.values())
        split = ", ".join(f"{k} {100 * v / busy:.0f}%" for k, v in sorted(stages.items()))
        print(
            f"import from {label}: {rate:6.1f} instances/s, {megabytes / elapsed:6.1f} MB/s, "
            f"{elapsed:.1f} s; "
            f"compression {size / max(stored, 1):.2f}:1; worker time split: {split}"
        )
        print(f"  vs encode-only floor on 2 cores: {rate / (2 / encode_per_frame):.2f}x")
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    workers = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"peak RSS: this process {own:.0f} MiB (corpus generation included), largest worker {workers:.0f} MiB")
    _ = statistics


def _keys() -> dict[str, str]:
    return {"aws_access_key_id": "testing", "aws_secret_access_key": "testing", "region_name": "us-east-1"}


if __name__ == "__main__":
    main()
