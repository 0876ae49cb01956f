"""``openhi serve`` and ``openhi config`` as processes: credentials, settings sources, graceful shutdown."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import time
from pathlib import Path

import boto3
import httpx
from botocore.config import Config
from tests.support.backends import S3Server, free_port
from tests.support.server import BIN, ServerProcess, server_env


def _env_without_keys() -> dict[str, str]:
    env = server_env()
    del env["OPENHI_ACCESS_KEY_ID"], env["OPENHI_SECRET_ACCESS_KEY"]
    return env


def test_generated_credentials_are_printed_once_and_work(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    server = ServerProcess(data_dir, _env_without_keys()).start()
    try:
        output = server.output()
        key_id = output.split("AWS_ACCESS_KEY_ID=")[1].split()[0]
        secret = output.split("AWS_SECRET_ACCESS_KEY=")[1].split()[0]
        stored = data_dir / "credentials.json"
        assert stat.S_IMODE(stored.stat().st_mode) == 0o600
        assert json.loads(stored.read_text()) == {"access_key_id": key_id, "secret_access_key": secret}
        client = boto3.client(
            "medical-imaging",
            endpoint_url=server.endpoint,
            region_name="us-east-1",
            aws_access_key_id=key_id,
            aws_secret_access_key=secret,
            config=Config(inject_host_prefix=False),
        )
        assert client.list_datastores()["datastoreSummaries"] == []
    finally:
        assert server.stop() == 0
    again = ServerProcess(data_dir, _env_without_keys()).start()
    try:
        assert secret not in again.output()  # printed only on the first start
    finally:
        again.stop()


def test_sigterm_shuts_down_gracefully(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "data", server_env()).start()
    client = server.client()
    client.create_datastore(datastoreName="before-stop")
    assert server.process is not None
    started = time.monotonic()
    server.process.send_signal(signal.SIGTERM)
    assert server.process.wait(20) == 0
    assert time.monotonic() - started < 20
    assert "OpenHI stopped" in server.output()
    # Nothing stored before the stop is lost: a new process on the same data dir sees it.
    restarted = ServerProcess(tmp_path / "data", server_env()).start()
    try:
        names = [s["datastoreName"] for s in restarted.client().list_datastores()["datastoreSummaries"]]
        assert names == ["before-stop"]
    finally:
        restarted.stop()


def _worker_pids(parent: int) -> set[int]:
    """Spawned children of ``parent`` (uvicorn's server processes, not multiprocessing's resource tracker)."""
    children = Path(f"/proc/{parent}/task/{parent}/children")
    pids = {int(pid) for pid in children.read_text().split()} if children.exists() else set()
    return {pid for pid in pids if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()}


def test_several_server_processes_share_the_port_and_stop_together(tmp_path: Path) -> None:
    """``--workers 2``: one port, two processes answering, every process gone after SIGTERM, exit 0."""
    server = ServerProcess(tmp_path / "data", server_env(), ["--workers", "2"]).start()
    assert server.process is not None
    client = server.client()
    datastore_id = client.create_datastore(datastoreName="two-processes")["datastoreId"]
    deadline = time.monotonic() + 15
    while client.get_datastore(datastoreId=datastore_id)["datastoreProperties"]["datastoreStatus"] != "ACTIVE":
        assert time.monotonic() < deadline
        time.sleep(0.2)
    workers = _worker_pids(server.process.pid)
    assert len(workers) == 2
    for _ in range(20):  # every answer agrees whichever process serves it
        assert [s["datastoreId"] for s in client.list_datastores()["datastoreSummaries"]] == [datastore_id]
    server.process.send_signal(signal.SIGTERM)
    assert server.process.wait(30) == 0
    assert "2 processes" in server.output()
    for pid in workers:
        assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text()


def test_config_prints_effective_settings_with_sources(tmp_path: Path) -> None:
    config = tmp_path / "openhi.toml"
    config.write_text('[openhi]\nregion = "eu-central-1"\nport = 9000\n')
    env = {
        "PATH": os.environ["PATH"],
        "OPENHI_ACCOUNT_ID": "210987654321",
        "OPENHI_SECRET_ACCESS_KEY": "s3cr3t",
        "OPENHI_ACCESS_KEY_ID": "AKIACONFIG",
    }
    result = subprocess.run(
        [
            str(BIN / "openhi"),
            "config",
            "--config",
            str(config),
            "--port",
            "9100",
            "--data-dir",
            str(tmp_path),
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    lines = {line.split()[0]: line for line in result.stdout.splitlines()}
    assert lines["port"].split()[1:] == ["9100", "(flag)"]
    assert "eu-central-1" in lines["region"]
    assert f"(file {config})" in lines["region"]
    assert "(env OPENHI_ACCOUNT_ID)" in lines["account_id"]
    assert "210987654321" in lines["account_id"]
    assert "(default)" in lines["max_active_datastores"]
    assert f"sqlite:///{tmp_path.resolve()}/index.sqlite3" in lines["index_url"]
    assert "s3cr3t" not in result.stdout


def test_bad_settings_fail_with_one_clear_line(tmp_path: Path) -> None:
    env = server_env({"OPENHI_REGION": "Not A Region"})
    result = subprocess.run(
        [str(BIN / "openhi"), "serve", "--data-dir", str(tmp_path), "--port", str(free_port())],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.startswith("openhi: setting 'region'")
    assert "Traceback" not in result.stderr


def test_unreachable_postgres_is_a_clear_error(tmp_path: Path) -> None:
    url = f"postgresql://postgres@127.0.0.1:{free_port()}/nothing"
    result = subprocess.run(
        [
            str(BIN / "openhi"),
            "serve",
            "--data-dir",
            str(tmp_path),
            "--port",
            str(free_port()),
            "--index-url",
            url,
        ],
        env=server_env(),
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "127.0.0.1" in result.stderr


def test_health_reports_an_unavailable_backend_without_details(tmp_path: Path) -> None:
    blobs = tmp_path / "blobs"
    blobs.mkdir()
    server = ServerProcess(tmp_path / "data", server_env(), ["--blob-url", f"file://{blobs}"]).start()
    try:
        blobs.rename(tmp_path / "moved")
        response = httpx.get(f"{server.endpoint}/health")
        assert response.status_code == 503
        assert response.json() == {"status": "unavailable", "backend": "blobs"}
        (tmp_path / "moved").rename(blobs)
        assert httpx.get(f"{server.endpoint}/health").status_code == 200
    finally:
        assert server.stop() == 0


def test_wrong_backend_urls_fail_at_start_with_one_clear_line(tmp_path: Path, s3_server: S3Server) -> None:
    cases = [
        (["--index-url", "mysql://db/x"], "setting 'index_url'"),
        (["--blob-url", "ftp://host/x"], "setting 'blob_url'"),
        (["--blob-url", "s3://no-such-bucket-here/x"], "no-such-bucket-here"),
    ]
    for args, fragment in cases:
        result = subprocess.run(
            [str(BIN / "openhi"), "serve", "--data-dir", str(tmp_path), "--port", str(free_port()), *args],
            env=server_env(s3_server.env()),
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
        assert result.returncode == 2, result.stderr
        assert fragment in result.stderr.splitlines()[-1]
        assert "Traceback" not in result.stderr
