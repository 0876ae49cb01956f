"""The one DICOMweb client both servers are measured with: requests sessions, multipart bodies, timed loops.

A ``Target`` is a DICOMweb root (the part before ``/studies``) plus the requests auth it needs: botocore's SigV4
for OpenHI (tests/support/dicomweb.py), none for Orthanc. Everything else (headers, bodies, loops, checks) is
the same code for both. Responses are checked (status, part count, frame length, bit-exact pixels on the first
request of each kind), so a fast wrong answer is reported as an error, not as a figure.
"""

from __future__ import annotations

import random
import statistics
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

ELE = "1.2.840.10008.1.2.1"
JSON = "application/dicom+json"
FRAMES_STORED = 'multipart/related; type="application/octet-stream"; transfer-syntax=*'
FRAMES_ELE = f'multipart/related; type="application/octet-stream"; transfer-syntax={ELE}'


class UnavailableError(Exception):
    """A route answered with an error status (e.g. 501 while it is being built): the figure is not available."""

    def __init__(self, what: str, response: requests.Response) -> None:
        self.status = response.status_code
        self.answer = f"HTTP {response.status_code} {response.text[:200]}"
        super().__init__(f"{what}: {self.answer}")


@dataclass
class Target:
    """One server's DICOMweb root and how to authenticate to it."""

    name: str
    root: str
    auth: requests.auth.AuthBase | None = None
    cpu_seconds: Callable[[], float] = lambda: 0.0  # CPU time used so far by the server's processes
    curl_auth: tuple[str, ...] = ()  # curl's options for the same authentication (e.g. --aws-sigv4)
    _local: threading.local = field(default_factory=threading.local)

    def session(self) -> requests.Session:
        """This thread's keep-alive session (identity encoding: loopback measures the server, not gzip)."""
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            session.auth = self.auth
            session.headers["Accept-Encoding"] = "identity"
            self._local.session = session
        return session

    def get(self, path: str, accept: str) -> requests.Response:
        return self.session().get(self.root + path, headers={"Accept": accept}, timeout=300)

    def post(self, path: str, body: bytes, content_type: str) -> requests.Response:
        headers = {"Content-Type": content_type, "Accept": JSON}
        return self.session().post(self.root + path, data=body, headers=headers, timeout=600)


def multipart(payloads: Sequence[bytes], media_type: str = "application/dicom") -> tuple[bytes, str]:
    """A ``multipart/related`` body (PS3.18 §8.6.1.2) and its Content-Type."""
    boundary = uuid.uuid4().hex
    head = f"--{boundary}\r\nContent-Type: {media_type}\r\n\r\n".encode()
    body = b"".join(head + payload + b"\r\n" for payload in payloads) + f"--{boundary}--\r\n".encode()
    return body, f'multipart/related; type="{media_type}"; boundary={boundary}'


def parts(response: requests.Response) -> list[tuple[str, bytes]]:
    """(content type, payload) of each part of a multipart/related response."""
    content_type = response.headers.get("Content-Type", "")
    params = dict(p.strip().split("=", 1) for p in content_type.split(";")[1:] if "=" in p)  # boundary may be quoted
    boundary = params.get("boundary", "").strip('"')
    if not content_type.startswith("multipart/related") or not boundary:
        return [(content_type, response.content)]
    found = []
    delimiter = b"--" + boundary.encode()
    for chunk in response.content.split(delimiter)[1:]:
        if chunk.startswith(b"--"):
            break
        head, _, payload = chunk.partition(b"\r\n\r\n")
        media = ""
        for line in head.decode("latin-1").split("\r\n"):
            if line.lower().startswith("content-type:"):
                media = line.split(":", 1)[1].strip()
        found.append((media, payload.removesuffix(b"\r\n")))
    return found


@dataclass
class Rate:
    """A throughput measurement, with the server CPU time it took."""

    count: int
    seconds: float
    nbytes: int = 0
    cpu_seconds: float = 0.0

    @property
    def per_second(self) -> float:
        return self.count / self.seconds if self.seconds else 0.0


@dataclass
class Latency:
    """A latency measurement."""

    samples: list[float]

    @property
    def p50(self) -> float:
        return statistics.median(self.samples)

    @property
    def p95(self) -> float:
        if len(self.samples) < 2:
            return self.samples[0]
        return statistics.quantiles(self.samples, n=20, method="inclusive")[18]


def latency(call: Callable[[], Any], samples: int, max_seconds: float, warm_up: int = 3) -> Latency:
    """Sequential latencies of ``call`` (one client): ``samples`` of them, fewer (at least 5) past ``max_seconds``."""
    for _ in range(warm_up):
        call()
    taken: list[float] = []
    deadline = time.perf_counter() + max_seconds
    while len(taken) < samples and (len(taken) < 5 or time.perf_counter() < deadline):
        started = time.perf_counter()
        call()
        taken.append(time.perf_counter() - started)
    return Latency(taken)


def throughput(
    call: Callable[[random.Random], int],
    clients: int,
    seconds: float,
    cpu_seconds: Callable[[], float] = lambda: 0.0,
    warm_up: int = 2,
) -> Rate:
    """``clients`` threads calling ``call`` (returns bytes received) in a loop for ``seconds``; completed calls/s."""
    for n in range(warm_up):
        call(random.Random(n))  # noqa: S311 - reproducible load, not secrets
    stop = time.perf_counter() + seconds
    counts = [0] * clients
    nbytes = [0] * clients

    def loop(index: int) -> None:
        rng = random.Random(1000 + index)  # noqa: S311 - reproducible load, not secrets
        while time.perf_counter() < stop:
            nbytes[index] += call(rng)
            counts[index] += 1

    started, cpu_before = time.perf_counter(), cpu_seconds()
    with ThreadPoolExecutor(clients) as pool:
        for future in [pool.submit(loop, n) for n in range(clients)]:
            future.result()
    return Rate(sum(counts), time.perf_counter() - started, sum(nbytes), cpu_seconds() - cpu_before)


def curl_run(target: Target, paths: Sequence[str], accept: str, clients: int, folder: Path) -> Rate:
    """GET every path with one curl process, ``clients`` transfers in parallel over kept-alive connections.

    curl is a native client (0.2 ms of CPU per request against 1.2-1.9 ms for requests in Python threads), so on
    a small machine the figure is the server's, not the client's. Every answer must be 200.
    """
    config = folder / f"curl-{uuid.uuid4().hex}.cfg"
    config.write_text("".join(f'url = "{target.root}{path}"\noutput = "/dev/null"\n' for path in paths))
    command = ["curl", "--silent", "--parallel", "--parallel-max", str(clients), "--header", f"Accept: {accept}"]
    command += ["--header", "Accept-Encoding: identity", "--write-out", "%{http_code} %{size_download}\\n"]
    started, cpu_before = time.perf_counter(), target.cpu_seconds()
    try:
        done = subprocess.run([*command, *target.curl_auth, "--config", str(config)], capture_output=True, text=True)
    finally:
        config.unlink(missing_ok=True)
    seconds, cpu = time.perf_counter() - started, target.cpu_seconds() - cpu_before
    answers = [line.split() for line in done.stdout.splitlines() if line.strip()]
    failed = [code for code, _ in answers if code != "200"]
    if len(answers) != len(paths) or failed:
        raise RuntimeError(f"curl: {len(answers)} answers of {len(paths)}, not 200: {failed[:5]} {done.stderr[-300:]}")
    return Rate(len(paths), seconds, sum(int(size) for _, size in answers), cpu)


def curl_throughput(
    target: Target, make_path: Callable[[random.Random], str], accept: str, clients: int, seconds: float, folder: Path
) -> Rate:
    """About ``seconds`` of requests through curl: a short run sizes the real one."""
    rng = random.Random(7)  # noqa: S311 - reproducible load, not secrets
    probe = curl_run(target, [make_path(rng) for _ in range(max(20, clients * 5))], accept, clients, folder)
    count = max(clients * 10, int(probe.per_second * seconds))
    return curl_run(target, [make_path(rng) for _ in range(count)], accept, clients, folder)


def run_all(calls: Sequence[Callable[[], Any]], clients: int) -> float:
    """Run every call once on ``clients`` threads; seconds taken (errors propagate)."""
    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        for future in [pool.submit(call) for call in calls]:
            future.result()
    return time.perf_counter() - started
