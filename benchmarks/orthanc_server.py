"""Orthanc (Debian ``orthanc`` + ``orthanc-dicomweb``) on loopback, with a configuration generated here.

The configuration is written as JSON into a temporary folder: storage and index in that folder, HTTP on a free
loopback port, the DICOM listener off, no remote access, no authentication, no storage compression and no
ingest transcoding (files are kept as received), the DICOMweb plugin under ``/dicom-web/``, and
``"BuiltinDecoderTranscoderOrder": "Before"`` (DCMTK first).

Thread stacks: Debian links Orthanc against the system libcivetweb, built with a fixed 100 KiB stack for its HTTP
worker threads (``pthread_attr_setstacksize(102400)``; /proc/<pid>/maps shows 50 mappings of 100 KiB), which
DCMTK transcoding overflows. Neither Orthanc nor this civetweb build has an option for it and ``ulimit -s`` does
not apply to an explicit size, so Orthanc is started with a small ``LD_PRELOAD`` shim, compiled here from
``SHIM_SOURCE``, that raises any requested thread stack below ``MIN_STACK_BYTES`` to it (pages are committed
lazily, so peak RSS is unaffected). Without a C compiler Orthanc runs with the stock stacks and a warning.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
from tests.support.backends import free_port

BINARY = Path("/usr/sbin/Orthanc")
PLUGIN = Path("/usr/share/orthanc/plugins/libOrthancDicomWeb.so")
MIN_STACK_BYTES = 8 * 1024 * 1024
SHIM_SOURCE = """
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stddef.h>

typedef int (*setstacksize_fn)(pthread_attr_t *, size_t);

int pthread_attr_setstacksize(pthread_attr_t *attr, size_t size) {
    static setstacksize_fn next;
    if (next == NULL) {
        next = (setstacksize_fn) dlsym(RTLD_NEXT, "pthread_attr_setstacksize");
    }
    return next(attr, size < MIN_STACK_BYTES ? MIN_STACK_BYTES : size);
}
"""


def installed() -> str | None:
    """None when Orthanc and its DICOMweb plugin are installed; otherwise what is missing."""
    missing = [str(path) for path in (BINARY, PLUGIN) if not path.exists()]
    return ", ".join(missing) + " not found" if missing else None


def configuration(root: Path, http_port: int, threads: int) -> dict[str, Any]:
    """The Orthanc configuration of the benchmark (Orthanc Book, "Configuration of Orthanc")."""
    return {
        "Name": "openhi-benchmark",
        "StorageDirectory": str(root / "storage"),
        "IndexDirectory": str(root / "storage"),
        "StorageCompression": False,
        "MaximumStorageSize": 0,
        "MaximumPatientCount": 0,
        "HttpServerEnabled": True,
        "HttpPort": http_port,
        "HttpThreadsCount": threads,
        "KeepAlive": True,
        "TcpNoDelay": True,
        "HttpCompressionEnabled": False,
        "RemoteAccessAllowed": False,
        "AuthenticationEnabled": False,
        "DicomServerEnabled": False,
        "DicomPort": free_port(),
        "SaveJobs": False,
        "BuiltinDecoderTranscoderOrder": "Before",
        "Plugins": [str(PLUGIN)],
        "DicomWeb": {"Enable": True, "Root": "/dicom-web/", "EnableWado": False, "Host": "127.0.0.1"},
    }


def build_stack_shim(folder: Path) -> Path | None:
    """Compile ``SHIM_SOURCE`` into ``folder``; None (and a warning) when there is no C compiler."""
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        print("warning: no C compiler; Orthanc keeps its 100 KiB HTTP thread stacks and may crash on transcoding")
        return None
    source, library = folder / "stack_shim.c", folder / "stack_shim.so"
    source.write_text(SHIM_SOURCE)
    command = [compiler, "-O2", "-shared", "-fPIC", f"-DMIN_STACK_BYTES={MIN_STACK_BYTES}UL", "-o", str(library)]
    subprocess.run([*command, str(source), "-ldl"], check=True, capture_output=True)
    return library


def thread_stack_sizes(pid: int) -> dict[int, int]:
    """KiB -> count of the anonymous read-write mappings of a process (thread stacks among them)."""
    sizes: dict[int, int] = {}
    for line in Path(f"/proc/{pid}/maps").read_text().splitlines():
        fields = line.split()
        if len(fields) < 6 and fields[1].startswith("rw"):
            start, end = (int(x, 16) for x in fields[0].split("-"))
            sizes[(end - start) // 1024] = sizes.get((end - start) // 1024, 0) + 1
    return sizes


class OrthancServer:
    """One Orthanc process with its own storage under ``root``."""

    def __init__(self, root: Path, threads: int = 50) -> None:
        self.root = root
        self.port = free_port()
        self.threads = threads
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = root / "orthanc.log"

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def dicomweb_root(self) -> str:
        return f"{self.endpoint}/dicom-web"

    @property
    def storage(self) -> Path:
        return self.root / "storage"

    def start(self, timeout: float = 60.0) -> OrthancServer:
        self.root.mkdir(parents=True, exist_ok=True)
        config = self.root / "orthanc.json"
        config.write_text(json.dumps(configuration(self.root, self.port, self.threads), indent=2))
        environment = dict(os.environ)
        shim = build_stack_shim(self.root)
        if shim is not None:
            environment["LD_PRELOAD"] = str(shim)
        log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [str(BINARY), f"--logdir={self.root}", str(config)], stdout=log, stderr=subprocess.STDOUT, env=environment
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"Orthanc exited early:\n{self.output()}")
            try:
                if httpx.get(f"{self.endpoint}/system", timeout=1.0).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"Orthanc not answering in {timeout}s:\n{self.output()}")

    def output(self) -> str:
        parts = [self.log_path, *sorted(self.root.glob("Orthanc*.log*"))]
        return "\n".join(p.read_text(errors="replace")[-4000:] for p in parts if p.exists())

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM (Orthanc shuts down cleanly on it), SIGKILL after ``timeout``."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)
