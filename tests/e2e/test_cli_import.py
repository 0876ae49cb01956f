"""``openhi datastore create`` and ``openhi import`` on a data dir, then the server sees what they stored."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.e2e.import_helpers import instances, metadata
from tests.support.dicom_corpus import SeriesSpec, write_series
from tests.support.server import BIN, ServerProcess, server_env


def openhi(*args: str, data_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "openhi"), *args, "--data-dir", str(data_dir)],
        env=server_env({"COLUMNS": "160"}),
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )


def test_create_and_import_locally_then_serve(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    created = openhi("datastore", "create", "local-store", data_dir=data_dir)
    assert created.returncode == 0, created.stderr
    datastore_id = created.stdout.strip().splitlines()[-1]
    assert len(datastore_id) == 32
    write_series(tmp_path / "in", SeriesSpec(study="cli", slices=3, size=32))
    (tmp_path / "in" / "readme.txt").write_text("not DICOM")
    imported = openhi("import", str(tmp_path / "in"), "--datastore-id", datastore_id, data_dir=data_dir)
    assert imported.returncode == 0, imported.stdout + imported.stderr
    assert "COMPLETED" in imported.stdout
    rows = [[cell.strip() for cell in line.split("│")[1:-1]] for line in imported.stdout.splitlines()]
    assert ["4", "3", "1"] in [row[:3] for row in rows]  # files, imported, failed
    server = ServerProcess(data_dir, server_env()).start()
    try:
        client = server.client()
        [job] = client.list_dicom_import_jobs(datastoreId=datastore_id)["jobSummaries"]
        assert job["jobStatus"] == "COMPLETED"
        outputs = data_dir / "import-outputs" / f"{datastore_id}-DicomImport-{job['jobId']}"
        assert (outputs / "job-output-manifest.json").exists()
        success = (outputs / "SUCCESS" / "success.ndjson").read_text().splitlines()
        assert len(success) == 3
        image_set_id = success[0].split('"imageSetId":"')[1].split('"')[0]
        assert len(instances(metadata(client, datastore_id, image_set_id))) == 3
    finally:
        assert server.stop() == 0


def test_import_into_a_missing_datastore_is_one_clear_line(tmp_path: Path) -> None:
    result = openhi("import", str(tmp_path), "--datastore-id", "f" * 32, data_dir=tmp_path / "data")
    assert result.returncode == 2
    assert "does not exist" in result.stderr
    assert "Traceback" not in result.stderr
