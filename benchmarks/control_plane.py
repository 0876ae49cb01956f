"""Native API latency through ``openhi serve`` on loopback, against the server's own ``/health`` as baseline.

Each operation is timed over one keep-alive connection with requests signed by botocore, so the figures are
what a boto3 user sees minus boto3's own client overhead (printed too, as ``boto3 GetDatastore``).
``--scaleout`` runs the same on a fresh PostgreSQL database and an S3 bucket on moto (loopback).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.support.backends import S3Server, fresh_postgres_database
from tests.support.server import ServerProcess, server_env
from tests.support.signing import signed


def rss_kib(pid: int) -> int:
    """Resident set size of a process, from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def timed(label: str, count: int, call: Callable[[], object]) -> tuple[str, list[float]]:
    """``count`` latencies of ``call`` after a short warm-up."""
    for _ in range(min(20, count)):
        call()
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        call()
        samples.append(time.perf_counter() - started)
    return label, samples


def run(count: int, extra: list[str], env: dict[str, str]) -> None:
    """Start a server with ``extra`` flags, time every operation ``count`` times, print the table."""
    with tempfile.TemporaryDirectory() as tmp:
        server = ServerProcess(Path(tmp) / "data", server_env({"OPENHI_LOG_LEVEL": "error", **env}), extra).start()
        try:
            assert server.process is not None
            rss_start = rss_kib(server.process.pid)
            client = server.client()
            ids = [client.create_datastore(datastoreName=f"bench-{n}")["datastoreId"] for n in range(50)]
            http = httpx.Client(timeout=30)
            base = server.endpoint

            def send(method: str, path: str, body: bytes = b"") -> None:
                headers = {"Content-Type": "application/json"} if body else {}
                response = http.send(signed(method, base + path, body, headers))
                assert response.status_code == 200, response.text

            tokens = iter(range(10**9))
            results = [
                timed("baseline GET /health (no auth)", count, lambda: http.get(base + "/health")),
                timed("GetDatastore", count, lambda: send("GET", f"/datastore/{ids[0]}")),
                timed("ListDatastores (50 per page)", count, lambda: send("GET", "/datastore?maxResults=50")),
                timed(
                    "CreateDatastore",
                    count,
                    lambda: send("POST", "/datastore", b'{"clientToken": "bench-%d"}' % next(tokens)),
                ),
                timed(
                    "boto3 GetDatastore (client overhead incl.)",
                    count,
                    lambda: client.get_datastore(datastoreId=ids[0]),
                ),
            ]
            rss_end = rss_kib(server.process.pid)
        finally:
            server.stop()
    baseline = statistics.median(results[0][1])
    print(f"backend: {' '.join(extra) or 'embedded: sqlite + local files'}; {count} requests each")
    print(f"{'operation':<46}{'p50 ms':>9}{'p95 ms':>9}{'req/s':>9}{'x baseline':>12}")
    for label, samples in results:
        p50 = statistics.median(samples)
        p95 = statistics.quantiles(samples, n=20)[18]
        rate = 1 / statistics.mean(samples)
        print(f"{label:<46}{p50 * 1000:>9.2f}{p95 * 1000:>9.2f}{rate:>9.0f}{p50 / baseline:>12.2f}")
    print(f"server RSS: {rss_start / 1024:.1f} MiB at start, {rss_end / 1024:.1f} MiB after the run")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--index-url")
    parser.add_argument("--blob-url")
    parser.add_argument("--scaleout", action="store_true", help="fresh PostgreSQL database + moto S3 on loopback")
    args = parser.parse_args()
    if not args.scaleout:
        chosen = (("--index-url", args.index_url), ("--blob-url", args.blob_url))
        run(args.requests, [part for flag, value in chosen if value for part in (flag, value)], {})
        return
    with fresh_postgres_database() as url:
        s3 = S3Server()
        s3.start()
        try:
            run(args.requests, ["--index-url", url, "--blob-url", f"s3://{s3.new_bucket()}/bench"], s3.env())
        finally:
            s3.stop()


if __name__ == "__main__":
    main()
