"""One input file -> one staged instance: read, parse, transcode and verify frames, write frame blobs.

Runs in worker processes (parsing and HTJ2K coding are CPU-bound; imagecodecs releases the GIL, and
processes also spread pydicom's pure-Python parsing over every core). The file is copied to a local
temporary file in chunks and parsed lazily (pydicom ``defer_size``), frames are handled one at a time, so
memory stays bounded by one frame whatever the file's size. Per-file failures are data, not exceptions
(guide 3270-3335): a non-DICOM, truncated or incomplete file yields a FAILED outcome with a clear message
and never stops the job. Frames that cannot be decoded are stored as they are with warning 0xB120, as the
guide prescribes (22881-22912); a transcoded frame whose decoded CRC32 differs from the original's is a
failure, never silent (22817-22880).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from openhi.blobs import keys
from openhi.blobs.port import BlobStore
from openhi.codecs.errors import (
    CodecError,
    FrameCountMismatchError,
    FrameExtractionError,
    InvalidOffsetTableError,
)
from openhi.codecs.frames import iter_frame_payloads
from openhi.codecs.pixels import PixelFormat
from openhi.codecs.store import PreparedFrame, prepare_frame
from openhi.crypto.blob_store import SealedBlobStore, SingleKey
from openhi.crypto.model import DataKey
from openhi.datastores.model import LosslessStorageFormat
from openhi.dicom.errors import DicomInputError
from openhi.dicom.normalize import NormalizedInstance, normalize
from openhi.dicom.reader import read_p10
from openhi.dicom.warnings import BY_CODE, OTHER, ImportWarning, apply_warning_reasons
from openhi.errors import OpenHIError
from openhi.ids import new_id
from openhi.imagesets.staged import StagedInstance
from openhi.imports.mappings import MetadataMapping, apply_overrides, parse_overrides

COPY_CHUNK = 8 * 1024 * 1024
PIXEL_DATA = 0x7FE00010


@dataclass(frozen=True)
class FileTask:
    """What a worker needs to import one file (picklable: crosses the process boundary)."""

    job_id: str
    datastore_id: str
    seq: int
    input_key: str
    source_url: str
    blob_url: str
    target: LosslessStorageFormat
    bulk_threshold: int = 1_048_576
    mappings: tuple[MetadataMapping, ...] = ()
    # Encryption at rest: the unwrapped key of the data store, for this task only (None: stored in the clear). The
    # worker seals what it writes with it and never needs the master key or the customer key provider.
    data_key: DataKey | None = None


@dataclass
class FileOutcome:
    """The result of one file: staged (with its instance) or failed (with the reason)."""

    seq: int
    input_key: str
    size: int = 0
    staged: bytes | None = None
    group_key: str | None = None
    error_type: str | None = None
    error_message: str | None = None
    timings: dict[str, float] = field(default_factory=dict)


class _Clock:
    def __init__(self) -> None:
        self.spent: dict[str, float] = {}

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.spent[name] = self.spent.get(name, 0.0) + time.perf_counter() - started


def _fetch(store: BlobStore, key: str, clock: _Clock) -> tuple[Path, int]:
    """Copy the object to a local temporary file in chunks; return its path and size."""
    info = store.head(key)
    if info is None:
        raise DicomInputError(f"input file {key} disappeared before it could be read")
    handle, name = tempfile.mkstemp(prefix="openhi-import-", suffix=".dcm")
    with clock.stage("read"), os.fdopen(handle, "wb") as out:
        offset = 0
        while offset < info.size:
            chunk = store.get_range(key, offset, COPY_CHUNK)
            if not chunk:
                break
            out.write(chunk)
            offset += len(chunk)
    return Path(name), info.size


def _frame_entry(frame_id: str, prepared: PreparedFrame) -> dict[str, Any]:
    return {
        "ID": frame_id,
        "PixelDataChecksumFromBaseToFullResolution": [
            {"Width": level.width, "Height": level.height, "Checksum": level.checksum} for level in prepared.checksums
        ],
        "MinPixelValue": prepared.min_pixel_value,
        "MaxPixelValue": prepared.max_pixel_value,
        "FrameSizeInBytes": prepared.frame_size_in_bytes,
    }


def _store_frames(
    task: FileTask, ds: Any, normalized: NormalizedInstance, blobs: BlobStore, clock: _Clock
) -> tuple[str, list[dict[str, Any]], list[int], list[ImportWarning]]:
    """Prepare and store every frame; return (stored syntax, ImageFrames entries, blob sizes, warnings)."""
    syntax = normalized.transfer_syntax_uid
    if PIXEL_DATA not in ds:
        return syntax, [], [], []
    frames: list[dict[str, Any]] = []
    sizes: list[int] = []
    warnings: list[ImportWarning] = []
    stored_syntax = syntax
    try:
        fmt = PixelFormat.from_dataset(ds)
        payloads = iter_frame_payloads(ds)
        while True:
            with clock.stage("parse"):
                payload = next(payloads, None)
            if payload is None:
                break
            with clock.stage("encode"):
                prepared = prepare_frame(payload, syntax, fmt, task.target)
            frame_id = new_id()
            with clock.stage("write"):
                blobs.put(keys.frame(task.datastore_id, frame_id), prepared.data)
            stored_syntax = prepared.stored_transfer_syntax
            if prepared.warning is not None and not warnings:
                kind = BY_CODE.get(prepared.warning, OTHER)
                warnings.append(ImportWarning.of(kind, _STORED_AS_IS))
            frames.append(_frame_entry(frame_id, prepared))
            sizes.append(len(prepared.data))
    except (FrameExtractionError, FrameCountMismatchError, InvalidOffsetTableError) as exc:
        # Frames cannot be delimited (guide 22881-22912: 0xB110-0xB112): the instance is kept, its pixel data
        # is not retrievable frame by frame, so no partial frame list is kept either (the frames stored before
        # the failure are removed: nothing references them).
        for entry in frames:
            blobs.delete(keys.frame(task.datastore_id, entry["ID"]))
        frames, sizes, stored_syntax = [], [], syntax
        warnings.append(ImportWarning.of(BY_CODE.get(exc.warning_code, OTHER), exc.message))
    return stored_syntax, frames, sizes, warnings


COERCED = 0xB000
_COERCED = "Elements were replaced by the job's JSON metadata (importConfiguration)."


def _augment(ds: Any, task: FileTask, source: BlobStore) -> bool:
    """Apply the job's DicomMetadataMappings that match this instance; True when something changed."""
    study, series = str(ds.get("StudyInstanceUID", "")), str(ds.get("SeriesInstanceUID", ""))
    matching = [m for m in task.mappings if m.applies_to(study, series)]
    documents = [parse_overrides(m.metadata_file_path, source.get(m.metadata_file_path)) for m in matching]
    return apply_overrides(ds, documents)


_STORED_AS_IS = "The pixel data could not be transcoded and is stored as it was received."


def import_file(task: FileTask, open_store: Callable[[str], BlobStore]) -> FileOutcome:
    """Process one file end to end; every failure is reported in the outcome, never raised."""
    clock = _Clock()
    outcome = FileOutcome(task.seq, task.input_key)
    source, blobs = open_store(task.source_url), open_store(task.blob_url)
    if task.data_key is not None:
        blobs = SealedBlobStore(blobs, SingleKey(task.data_key))
    path: Path | None = None
    try:
        path, outcome.size = _fetch(source, task.input_key, clock)
        with clock.stage("parse"):
            ds = read_p10(path)
            coerced = _augment(ds, task, source)
            normalized = normalize(ds, bulk_threshold=task.bulk_threshold)
        for bulk in normalized.bulk_values:
            with clock.stage("write"):
                blobs.put(keys.bulk_value(task.datastore_id, bulk.reference_id), bulk.data)
        stored_syntax, frames, sizes, frame_warnings = _store_frames(task, ds, normalized, blobs, clock)
        warnings = [*normalized.warnings, *frame_warnings]
        if coerced:
            warnings.append(ImportWarning.of(BY_CODE[COERCED], _COERCED))
        instance = dict(normalized.instance)
        apply_warning_reasons(instance, warnings)
        staged = StagedInstance(
            input_key=task.input_key,
            sop_instance_uid=normalized.sop_instance_uid,
            grouping=normalized.grouping,
            patient=normalized.patient,
            study=normalized.study,
            series=normalized.series,
            instance=instance,
            instance_vrs=normalized.instance_vrs,
            stored_transfer_syntax=stored_syntax,
            image_frames=frames,
            stored_frame_sizes=sizes,
            warnings=[warning.to_ndjson() for warning in warnings],
        )
        outcome.staged = staged.to_bytes()
        outcome.group_key = staged.group_key
    except DicomInputError as exc:
        message = exc.message.replace(str(path), task.input_key) if path is not None else exc.message
        outcome.error_type, outcome.error_message = "ValidationException", message
    except CodecError as exc:
        outcome.error_type, outcome.error_message = "ValidationException", f"pixel data: {exc.message}"
    except OpenHIError as exc:
        outcome.error_type, outcome.error_message = "InternalServerException", exc.message
    except Exception as exc:  # a bug or a library failure on odd input: this file fails, the job goes on
        outcome.error_type = "InternalServerException"
        outcome.error_message = f"unexpected {type(exc).__name__} while importing: {exc}"
    finally:
        if path is not None:
            path.unlink(missing_ok=True)
    outcome.timings = clock.spent
    return outcome
