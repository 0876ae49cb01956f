"""The DICOMweb measurements, run the same way against any ``Target``: STOW, QIDO, metadata, frames, instances.

Each step records a figure or, when the server answers with an error status, why it is missing. Throughput
figures use ``clients`` concurrent connections (curl transfers, or requests threads; the same number for every
server) and come with the server's CPU time per request; latencies use one client, one request at a time.
"""

from __future__ import annotations

import io
import random
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import imagecodecs
import numpy as np
import pydicom
from benchmarks.dicomweb_corpus import Corpus, Instance
from benchmarks.dicomweb_http import (
    ELE,
    FRAMES_ELE,
    FRAMES_STORED,
    JSON,
    Latency,
    Rate,
    Target,
    UnavailableError,
    curl_throughput,
    latency,
    multipart,
    parts,
    run_all,
    throughput,
)

SOP_SEQUENCE = "00081199"  # ReferencedSOPSequence
FAILED_SEQUENCE = "00081198"  # FailedSOPSequence
MAX_STOW_BYTES = 64 * 1024 * 1024


@dataclass
class Settings:
    """How hard to push."""

    clients: int = 4
    batch: int = 20
    seconds: float = 10.0
    samples: int = 100
    max_latency_seconds: float = 30.0
    client: str = "curl"  # throughput client: "curl" (native, light) or "requests" (Python threads)
    scratch: Path = field(default_factory=lambda: Path(tempfile.gettempdir()))  # where curl's URL lists go


@dataclass
class Results:
    """Figures by key (see dicomweb.py ROWS), missing figures with their reason, free-form notes."""

    figures: dict[str, float] = field(default_factory=dict)
    missing: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    unavailable: dict[str, list[str]] = field(default_factory=dict)  # error answer -> the figures it stopped

    def record(self, keys: tuple[str, ...], measure: Callable[[], tuple[float, ...]]) -> None:
        try:
            values = measure()
        except UnavailableError as error:
            for key in keys:
                self.missing[key] = f"HTTP {error.status}"
            self.unavailable.setdefault(error.answer, []).append(keys[0])
            return
        except Exception as error:
            for key in keys:
                self.missing[key] = type(error).__name__
            self.notes.append(f"{keys[0]}: {type(error).__name__}: {str(error)[:300]}")
            return
        self.figures.update(zip(keys, values, strict=True))


def _ok(what: str, response: Any) -> Any:
    if response.status_code != 200:
        raise UnavailableError(what, response)
    return response


def _batches(instances: list[Instance], size: int) -> list[list[Instance]]:
    """Groups of at most ``size`` instances and ``MAX_STOW_BYTES`` (a large multi-frame instance goes alone)."""
    groups: list[list[Instance]] = []
    current: list[Instance] = []
    total = 0
    for item in instances:
        nbytes = item.path.stat().st_size
        if current and (len(current) >= size or total + nbytes > MAX_STOW_BYTES):
            groups.append(current)
            current, total = [], 0
        current.append(item)
        total += nbytes
    if current:
        groups.append(current)
    return groups


def stow(target: Target, instances: list[Instance], settings: Settings) -> tuple[float, float]:
    """STOW-RS ``instances`` in multipart batches on ``clients`` threads: instances/s, server CPU ms per instance."""
    bodies = [multipart([item.path.read_bytes() for item in group]) for group in _batches(instances, settings.batch)]
    expected = [len(group) for group in _batches(instances, settings.batch)]

    def send(index: int) -> None:
        body, content_type = bodies[index]
        response = target.post("/studies", body, content_type)
        if response.status_code not in (200, 202):
            raise UnavailableError("STOW-RS", response)
        answer = response.json()
        stored = len(answer.get(SOP_SEQUENCE, {}).get("Value", []))
        failed = answer.get(FAILED_SEQUENCE, {}).get("Value", [])
        if stored != expected[index] or failed:
            raise RuntimeError(f"STOW-RS stored {stored} of {expected[index]}, failed {failed[:2]}")

    # the first batch alone: a 501 stops here rather than after the whole corpus was sent
    started, cpu_before = time.perf_counter(), target.cpu_seconds()
    send(0)
    seconds = time.perf_counter() - started
    seconds += run_all([partial(send, n) for n in range(1, len(bodies))], settings.clients)
    return len(instances) / seconds, (target.cpu_seconds() - cpu_before) / len(instances) * 1e3


def wait_searchable(target: Target, corpus: Corpus, timeout: float = 300.0) -> float:
    """Seconds until QIDO-RS lists every stored instance (STOW may commit asynchronously)."""
    started = time.perf_counter()
    for (study, series), members in corpus.series(corpus.all).items():
        while True:
            response = _ok("QIDO-RS", target.get(f"/studies/{study}/series/{series}/instances", JSON))
            if len(response.json()) >= len(members):
                break
            if time.perf_counter() - started > timeout:
                raise RuntimeError(f"series {series}: {len(response.json())} of {len(members)} after {timeout}s")
            time.sleep(0.2)
    return time.perf_counter() - started


def _latency_of(target: Target, path: str, expected: int, settings: Settings, samples: int | None = None) -> Latency:
    what = f"GET {path.split('?')[0][-60:]}"
    first = _ok(what, target.get(path, JSON)).json()
    if len(first) != expected:
        raise RuntimeError(f"{what}: {len(first)} results, expected {expected}")
    return latency(
        lambda: _ok(what, target.get(path, JSON)).content,
        samples or settings.samples,
        settings.max_latency_seconds,
    )


def qido(level: str, target: Target, corpus: Corpus, settings: Settings) -> tuple[float, float]:
    """QIDO-RS p50/p95 in ms at one level, on the CT study: by PatientID, its series, one series' instances."""
    groups = corpus.series(corpus.ct)
    study, series = next(iter(groups))
    path, expected = {
        "studies": ("/studies?PatientID=PAT-1", 1),
        "series": (f"/studies/{study}/series", len(groups)),
        "instances": (f"/studies/{study}/series/{series}/instances", len(groups[(study, series)])),
    }[level]
    taken = _latency_of(target, path, expected, settings)
    return taken.p50 * 1e3, taken.p95 * 1e3


def series_metadata(target: Target, corpus: Corpus, settings: Settings) -> tuple[float, float]:
    """GetDICOMSeriesMetadata of the first CT series: p50/p95 in ms."""
    groups = corpus.series(corpus.ct)
    (study, series), members = next(iter(groups.items()))
    taken = _latency_of(target, f"/studies/{study}/series/{series}/metadata", len(members), settings, samples=50)
    return taken.p50 * 1e3, taken.p95 * 1e3


def _original_frame(item: Instance, number: int) -> np.ndarray:
    ds = pydicom.dcmread(item.path)
    pixels = ds.pixel_array
    return pixels if item.frames == 1 else pixels[number - 1]


def _check_frame(media: str, payload: bytes, original: np.ndarray) -> None:
    """Bit-exact: the payload (raw little-endian or a compressed codestream) decodes to the original frame."""
    if "octet-stream" in media or not media:
        decoded = np.frombuffer(payload, dtype=original.dtype).reshape(original.shape)
    else:
        decoded = np.asarray(imagecodecs.imread(payload)).astype(original.dtype).reshape(original.shape)
    if not np.array_equal(decoded, original):
        raise RuntimeError(f"frame payload ({media}) differs from the original pixels")


def frames(target: Target, instances: list[Instance], accept: str, settings: Settings) -> tuple[float, ...]:
    """Random single frames of ``instances`` on ``clients`` threads: frames/s, MB/s, server CPU ms per frame."""

    def path(item: Instance, number: int) -> str:
        return f"/studies/{item.study}/series/{item.series}/instances/{item.sop}/frames/{number}"

    probe, number = instances[0], instances[0].frames // 2 + 1
    found = parts(_ok("frames", target.get(path(probe, number), accept)))
    if len(found) != 1:
        raise RuntimeError(f"frames: {len(found)} parts for one frame")
    _check_frame(found[0][0], found[0][1], _original_frame(probe, number))

    def random_path(rng: random.Random) -> str:
        item = rng.choice(instances)
        return path(item, rng.randint(1, item.frames))

    def one(rng: random.Random) -> int:
        return len(_ok("frames", target.get(random_path(rng), accept)).content)

    rate = _throughput(target, random_path, one, accept, settings)
    return rate.per_second, rate.nbytes / rate.seconds / 1e6, rate.cpu_seconds / rate.count * 1e3


def _throughput(
    target: Target,
    random_path: Callable[[random.Random], str],
    one: Callable[[random.Random], int],
    accept: str,
    settings: Settings,
) -> Rate:
    """Random GETs on ``clients`` concurrent connections: through curl when asked (and installed), else requests."""
    if settings.client == "curl":
        return curl_throughput(target, random_path, accept, settings.clients, settings.seconds, settings.scratch)
    return throughput(one, settings.clients, settings.seconds, target.cpu_seconds)


def instance_forms(syntax: str) -> list[str]:
    """Accept values for a whole instance: single part (guide 1970) first, then multipart (PS3.18 §8.7.3.5)."""
    return [
        f"application/dicom; transfer-syntax={syntax}",
        f'multipart/related; type="application/dicom"; transfer-syntax={syntax}',
    ]


def whole_instances(target: Target, instances: list[Instance], syntax: str, settings: Settings) -> tuple[float, ...]:
    """GET whole instances (P10) in ``syntax`` on ``clients`` threads: instances/s, MB/s, server CPU ms each."""
    probe = instances[0]
    path = f"/studies/{probe.study}/series/{probe.series}/instances/{probe.sop}"
    accept, response = "", None
    for form in instance_forms(syntax):
        response = target.get(path, form)
        if response.status_code == 200:
            accept = form
            break
    if not accept:
        assert response is not None
        raise UnavailableError("GetDICOMInstance", response)
    assert response is not None
    media, payload = parts(response)[0]
    received = pydicom.dcmread(io.BytesIO(payload))
    if not np.array_equal(received.pixel_array, _original_frame(probe, 1)):
        raise RuntimeError(f"GetDICOMInstance ({media}): pixels differ from the original")

    def random_path(rng: random.Random) -> str:
        item = rng.choice(instances)
        return f"/studies/{item.study}/series/{item.series}/instances/{item.sop}"

    def one(rng: random.Random) -> int:
        return len(_ok("GetDICOMInstance", target.get(random_path(rng), accept)).content)

    rate = _throughput(target, random_path, one, accept, settings)
    return rate.per_second, rate.nbytes / rate.seconds / 1e6, rate.cpu_seconds / rate.count * 1e3


def disk_bytes(folder: Path) -> int:
    """Bytes of every file under ``folder`` (apparent sizes: what the store wrote)."""
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


Measure = Callable[[Target], tuple[float, ...]]


def retrieval_steps(corpus: Corpus, settings: Settings) -> list[tuple[tuple[str, ...], Measure]]:
    """Every measurement after the corpus is stored, as (figure keys, measure of one target)."""
    steps: list[tuple[tuple[str, ...], Measure]] = []
    for level in ("studies", "series", "instances"):
        keys: tuple[str, ...] = (f"qido_{level}_p50", f"qido_{level}_p95")
        steps.append((keys, partial(_qido_of, level=level, corpus=corpus, settings=settings)))
    steps.append((("metadata_p50", "metadata_p95"), partial(_metadata_of, corpus=corpus, settings=settings)))
    for kind, instances in (("ct", corpus.ct), ("mf", corpus.multiframe)):
        for syntax, accept in (("stored", FRAMES_STORED), ("ele", FRAMES_ELE)):
            keys = (f"frames_{kind}_{syntax}", f"frames_{kind}_{syntax}_mbs", f"frames_{kind}_{syntax}_cpu")
            steps.append((keys, partial(_frames_of, instances=instances, accept=accept, settings=settings)))
    for syntax, uid in (("ele", ELE), ("stored", "*")):
        keys = (f"instances_ct_{syntax}", f"instances_ct_{syntax}_mbs", f"instances_ct_{syntax}_cpu")
        steps.append((keys, partial(_instances_of, instances=corpus.ct, syntax=uid, settings=settings)))
    return steps


def _qido_of(target: Target, *, level: str, corpus: Corpus, settings: Settings) -> tuple[float, float]:
    return qido(level, target, corpus, settings)


def _metadata_of(target: Target, *, corpus: Corpus, settings: Settings) -> tuple[float, float]:
    return series_metadata(target, corpus, settings)


def _frames_of(target: Target, *, instances: list[Instance], accept: str, settings: Settings) -> tuple[float, ...]:
    return frames(target, instances, accept, settings)


def _instances_of(target: Target, *, instances: list[Instance], syntax: str, settings: Settings) -> tuple[float, ...]:
    return whole_instances(target, instances, syntax, settings)
