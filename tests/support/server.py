"""``openhi serve`` as a real subprocess on a free loopback port, and the real clients that talk to it.

The server is started with the console script of the current venv, exactly as a user would, and
stopped with SIGTERM (its exit code is checked: graceful shutdown is part of the contract).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import httpx
from botocore.config import Config

from tests.support.backends import free_port

ACCESS_KEY_ID = "AKIAOPENHITESTROOT01"
SECRET_ACCESS_KEY = "openhi-test-secret-key-0123456789abcdefgh"
BIN = Path(sys.executable).parent
TEST_KEYRING = Path(__file__).resolve().parents[1] / "data" / "kms" / "test-keyring.json"


@dataclass
class ServerProcess:
    """A running ``openhi serve``."""

    data_dir: Path
    env: dict[str, str]
    args: list[str] = field(default_factory=list)
    port: int = 0
    process: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> ServerProcess:
        self.port = free_port()
        self.log_path = self.data_dir.parent / f"server-{self.port}.log"
        log = self.log_path.open("wb")
        command = [str(BIN / "openhi"), "serve", "--port", str(self.port), "--data-dir", str(self.data_dir)]
        self.process = subprocess.Popen([*command, *self.args], env=self.env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"openhi serve exited early:\n{self.output()}")
            try:
                if httpx.get(f"{self.endpoint}/health", timeout=1.0).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"openhi serve not healthy in {timeout}s:\n{self.output()}")

    def _arg(self, flag: str) -> str | None:
        return self.args[self.args.index(flag) + 1] if flag in self.args else None

    @property
    def index_url(self) -> str:
        """The index this server uses (the embedded default unless ``--index-url`` was given)."""
        return self._arg("--index-url") or f"sqlite:///{self.data_dir.resolve() / 'index.sqlite3'}"

    @property
    def blob_url(self) -> str:
        """The blob store this server uses."""
        return self._arg("--blob-url") or f"file://{self.data_dir.resolve() / 'blobs'}"

    def output(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path and self.log_path.exists() else ""

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM and wait; returns the exit code."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode

    def client(self, **overrides: Any) -> Any:
        """An unmodified boto3 ``medical-imaging`` client pointed at this server."""
        options: dict[str, Any] = {
            "endpoint_url": self.endpoint,
            "region_name": "us-east-1",
            "aws_access_key_id": ACCESS_KEY_ID,
            "aws_secret_access_key": SECRET_ACCESS_KEY,
            "config": Config(inject_host_prefix=False, retries={"max_attempts": 1, "mode": "standard"}),
        }
        options.update(overrides)
        return boto3.client("medical-imaging", **options)

    def aws(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run the AWS CLI (``aws medical-imaging ...``) against this server."""
        env = {
            "PATH": os.environ.get("PATH", ""),
            "HOME": str(self.data_dir.parent),
            "AWS_ACCESS_KEY_ID": ACCESS_KEY_ID,
            "AWS_SECRET_ACCESS_KEY": SECRET_ACCESS_KEY,
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_CONFIG_FILE": str(self.data_dir.parent / "aws-config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(self.data_dir.parent / "aws-credentials"),
            "AWS_DISABLE_HOST_PREFIX_INJECTION": "true",
        }
        result = subprocess.run(
            [str(BIN / "aws"), "medical-imaging", *args, "--endpoint-url", self.endpoint],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"aws {' '.join(args)} failed ({result.returncode}): {result.stderr}")
        return result

    def aws_json(self, *args: str) -> Any:
        out = self.aws(*args).stdout
        return json.loads(out) if out.strip() else {}


def server_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """Environment of a test server: fixed root key, fast lifecycle, none of the caller's AWS setup.

    Throttling is off (the guide's CreateDatastore allows 0.085 requests per second); tests of throttling turn
    it on with ``{"OPENHI_THROTTLING": "true"}``.
    """
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": os.environ.get("HOME", "/tmp"),
        "OPENHI_ACCESS_KEY_ID": ACCESS_KEY_ID,
        "OPENHI_SECRET_ACCESS_KEY": SECRET_ACCESS_KEY,
        "OPENHI_DATASTORE_TRANSITION_SECONDS": "0.5",
        "OPENHI_MAX_ACTIVE_DATASTORES": "1000",
        "OPENHI_THROTTLING": "false",
        "OPENHI_LOG_LEVEL": "warning",
        # Customer keys (kmsKeyArn) from a local keyring holding the tests' KMS key ARN (docs/encryption.md)
        "OPENHI_KMS_PROVIDER": "local",
        "OPENHI_LOCAL_KMS_PATH": str(TEST_KEYRING),
    }
    env.update(extra or {})
    return env


class ServerPool:
    """Servers started for one test module; ``stop_all`` SIGTERMs them and checks they exit cleanly."""

    def __init__(self, tmp_path_factory: Any, label: str) -> None:
        self._tmp = tmp_path_factory
        self._label = label
        self.started: list[ServerProcess] = []

    def start(self, env: Mapping[str, str] | None = None, args: list[str] | None = None) -> ServerProcess:
        """A new server with its own data dir; ``env`` extends ``server_env()``."""
        data_dir = Path(self._tmp.mktemp(f"openhi-{self._label}")) / "data"
        server = ServerProcess(data_dir, server_env(env), list(args or [])).start()
        self.started.append(server)
        return server

    def stop_all(self) -> None:
        """Stop every server; fail if one did not shut down gracefully (exit 0 after SIGTERM)."""
        exit_codes = [server.stop() for server in self.started]
        assert exit_codes == [0] * len(exit_codes), f"openhi serve exit codes after SIGTERM: {exit_codes}"
