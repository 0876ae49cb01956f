"""Helpers of the encryption-at-rest tests: ``openhi keys`` on a test server, every stored object of its blob store,
every frame of a data store, and a scan of stored bytes for plaintext."""

from __future__ import annotations

import contextlib
import gzip
import json
import subprocess
import zlib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from tests.e2e.import_helpers import s3_client
from tests.support.backends import S3Server
from tests.support.server import BIN, ServerProcess


def keys_cli(server: ServerProcess, *args: str) -> subprocess.CompletedProcess[str]:
    """``openhi keys ARGS`` on the server's index and data dir, as the operator would run it."""
    command = [str(BIN / "openhi"), "keys", *args, "--data-dir", str(server.data_dir), "--index-url", server.index_url]
    return subprocess.run(command, env=server.env, capture_output=True, text=True, timeout=120, check=False)


def keys_json(server: ServerProcess, *args: str) -> Any:
    """The JSON a successful ``openhi keys`` command prints."""
    result = keys_cli(server, *args)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def stored_objects(server: ServerProcess, s3: S3Server | None) -> dict[str, bytes]:
    """Every object the server's blob stores hold, by key: the hot store and the archive tier (local: the blobs and
    archive folders of the data dir; S3: the whole bucket of ``--blob-url``)."""
    url = server.blob_url
    if url.startswith("file://"):
        roots = [Path(url.removeprefix("file://")), server.data_dir / "archive"]
        return {
            f"{root.name}/{path.relative_to(root)}": path.read_bytes()
            for root in roots
            if root.is_dir()
            for path in sorted(root.rglob("*"))
            if path.is_file()
        }
    assert s3 is not None
    assert url.startswith("s3://")
    bucket = url.removeprefix("s3://").split("/", 1)[0]
    client = s3_client(s3)
    found: dict[str, bytes] = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for item in page.get("Contents", []):
            found[item["Key"]] = client.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
    return found


def raw_object(server: ServerProcess, s3: S3Server | None, key: str) -> bytes:
    """The stored bytes of one blob key (``datastores/...``) of the hot store."""
    url = server.blob_url
    if url.startswith("file://"):
        return Path(url.removeprefix("file://"), *key.split("/")).read_bytes()
    assert s3 is not None
    bucket, _, prefix = url.removeprefix("s3://").partition("/")
    full = f"{prefix.strip('/')}/{key}" if prefix.strip("/") else key
    body: bytes = s3_client(s3).get_object(Bucket=bucket, Key=full)["Body"].read()
    return body


def readable_forms(data: bytes) -> list[bytes]:
    """The bytes and, for a gzip member, what it decompresses to (metadata documents are gzip JSON)."""
    forms = [data]
    if data[:2] == b"\x1f\x8b":
        with contextlib.suppress(OSError, EOFError, zlib.error):
            forms.append(gzip.decompress(data))
    return forms


def plaintext_found(objects: Mapping[str, bytes], needles: Iterable[bytes]) -> dict[bytes, list[str]]:
    """Which needles occur in which stored objects (in their bytes or gunzipped)."""
    found: dict[bytes, list[str]] = {}
    for needle in needles:
        holders = [key for key, data in objects.items() if any(needle in form for form in readable_forms(data))]
        if holders:
            found[needle] = holders
    return found


def frame_windows(frame: bytes, count: int = 3, width: int = 48) -> list[bytes]:
    """A few distinctive slices of a stored frame (enough to recognise it in a stored object)."""
    step = max(1, (len(frame) - width) // (count + 1))
    return [frame[step * (n + 1) : step * (n + 1) + width] for n in range(count) if len(frame) >= width]


def all_frames(client: Any, datastore_id: str) -> dict[str, bytes]:
    """Every frame of every image set of the data store, by frame id, through GetImageFrame (the stored bytes)."""
    frames: dict[str, bytes] = {}
    image_sets = client.search_image_sets(datastoreId=datastore_id, searchCriteria={})["imageSetsMetadataSummaries"]
    for summary in image_sets:
        image_set_id = summary["imageSetId"]
        blob = client.get_image_set_metadata(datastoreId=datastore_id, imageSetId=image_set_id)
        document = json.loads(gzip.decompress(blob["imageSetMetadataBlob"].read()))
        for series in document["Study"]["Series"].values():
            for instance in series["Instances"].values():
                for entry in instance.get("ImageFrames", []):
                    frames[entry["ID"]] = client.get_image_frame(
                        datastoreId=datastore_id,
                        imageSetId=image_set_id,
                        imageFrameInformation={"imageFrameId": entry["ID"]},
                    )["imageFrameBlob"].read()
    return frames
