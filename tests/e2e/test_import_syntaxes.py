"""Every transfer syntax the tests can produce or find, imported through boto3 into ``openhi serve``.

Two imports per backend, each one job over a local folder (``file://`` input and output):

1. The generated matrix of ``tests.support.pixel_samples`` (every ``(syntax, kind)`` of ``cases()``: signed
   and unsigned 8/12/16-bit, RGB, multi-frame, big endian, deflated, RLE, JPEG, JPEG-LS, JPEG 2000, HTJ2K,
   JPEG XL) plus one H.264 video, all in one series. For every instance the stored transfer syntax follows
   the guide's table (lines 22563-22619: the ``*`` syntaxes and video keep their encoding, everything else
   becomes HTJ2K lossless RPCL .4.202), and every frame read back with GetImageFrame is checked as the
   guide's pixel data verification says (lines 22817-22880): kept-as-is frames are the original bytes with
   the CRC32 of those bytes and null Min/MaxPixelValue; transcoded frames decode to the CRC32 of every
   resolution level listed base to full, and lossless sources decode bit-exactly to the source frames.
2. pydicom's bundled test files (``get_testdata_files()`` only: it never downloads) that have Pixel Data and
   the attributes an import needs, copied unchanged into one folder and imported with one job: every file is
   accounted for in success.ndjson or failure.ndjson, every frame's checksum is verified, and frames of
   lossless sources (not YBR_FULL/YBR_FULL_422) equal pydicom's ``pixel_array``. pydicom reuses SOP Instance
   UIDs across files (MR_small.dcm in eight encodings): copies replaced within that job are imported again
   in small follow-up jobs, one copy per instance, so every imported file gets verified.
"""

from __future__ import annotations

import json
import shutil
import zlib
from collections import Counter, defaultdict
from dataclasses import dataclass
from functools import partial
from itertools import pairwise
from pathlib import Path
from typing import Any

import imagecodecs
import numpy as np
import numpy.typing as npt
import pydicom
import pydicom.data
import pytest
from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset, write_file_meta_info
from tests.e2e.conftest import ServerFactory
from tests.e2e.helpers import wait_for_status
from tests.e2e.import_helpers import instances, metadata, run_job
from tests.support import pixel_samples
from tests.support.server import ServerProcess

from openhi.codecs import syntaxes as ts
from openhi.codecs.decode import decode_frame
from openhi.codecs.frames import iter_frame_payloads
from openhi.codecs.pixels import PixelFormat
from openhi.codecs.store import decode_stored_frame

Array = npt.NDArray[Any]
STORED = ts.HTJ2K_LOSSLESS_RPCL  # the default storage format of a data store
VIDEO_SYNTAX = "1.2.840.10008.1.2.4.102"

#: Guide 22563-22619: syntaxes marked ``*`` keep their encoding (Explicit VR Little Endian only for binary
#: segmentations, see ``expected_stored_syntax``), with the GetImageFrame Content-Type of wire api 8b.
#: JPEG XL JPEG Recompression (.4.111) is OpenHI's extension, kept like .4.112 (``openhi.codecs.syntaxes``).
KEPT_CONTENT_TYPES = {
    ts.JPEG_BASELINE_8BIT: "image/jpeg",
    ts.JPEG_2000: "image/j2c",
    ts.JPEG_XL: "image/jxl",
    ts.JPEG_XL_JPEG_RECOMPRESSION: "image/jxl",
    ts.HTJ2K: "image/jphc",
    **{f"1.2.840.10008.1.2.4.{n}{suffix}": "video/mpeg" for n in (100, 101) for suffix in ("", ".1")},
    **{f"1.2.840.10008.1.2.4.{n}{suffix}": "video/mp4" for n in range(102, 107) for suffix in ("", ".1")},
    "1.2.840.10008.1.2.4.107": "video/H256",
    "1.2.840.10008.1.2.4.108": "video/H256",
}
#: Sources whose decoded pixels are the encoder's input exactly (the table's lossless-only syntaxes).
LOSSLESS = frozenset(
    {
        ts.IMPLICIT_VR_LITTLE_ENDIAN,
        ts.EXPLICIT_VR_LITTLE_ENDIAN,
        ts.DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN,
        ts.EXPLICIT_VR_BIG_ENDIAN,
        ts.RLE_LOSSLESS,
        ts.JPEG_LOSSLESS,
        ts.JPEG_LOSSLESS_SV1,
        ts.JPEG_LS_LOSSLESS,
        ts.JPEG_2000_LOSSLESS,
        ts.JPEG_2000_MC_LOSSLESS,
        ts.HTJ2K_LOSSLESS,
        ts.HTJ2K_LOSSLESS_RPCL,
        ts.JPEG_XL_LOSSLESS,
    }
)
#: Photometric interpretations whose decoded samples are not the stored samples one to one.
SUBSAMPLED = ("YBR_FULL_422", "YBR_FULL")
BASE_RESOLUTION_MAX = 64

STUDY = {
    "StudyInstanceUID": "2.25.311852039473016297417160425436580291",
    "SeriesInstanceUID": "2.25.311852039473016297417160425436580292",
    "PatientID": "SYNTAX-MATRIX",
    "PatientName": "SYNTAX^MATRIX",
    "StudyDate": "20240601",
    "StudyTime": "101500",
    "StudyID": "42",
    "AccessionNumber": "ACC-SYNTAX",
    "SeriesNumber": 7,
    "Modality": "OT",
}


def is_kept(source: str, bits_allocated: int) -> bool:
    """The guide's rule: ``*`` syntaxes keep their encoding, and Explicit VR LE binary segmentations."""
    return source in KEPT_CONTENT_TYPES or (source == ts.EXPLICIT_VR_LITTLE_ENDIAN and bits_allocated == 1)


def expected_stored_syntax(source: str, bits_allocated: int) -> str:
    """Kept syntaxes stay; everything else (.4.202 sources too: re-encoded) becomes HTJ2K .4.202."""
    return source if is_kept(source, bits_allocated) else STORED


# Writing P10 files ------------------------------------------------------------------------------------------


def write_p10(ds: Dataset, path: Path) -> None:
    """Write ``ds`` as a P10 file; UIDs pydicom 3.0 cannot write (JPEG XL) get explicit VR LE by hand."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if pydicom.uid.UID(ds.file_meta.TransferSyntaxUID).is_transfer_syntax:
        ds.save_as(path, enforce_file_format=True)
        return
    # pydicom refuses to encode a data set in a transfer syntax it does not know, even with explicit
    # ``implicit_vr``/``little_endian`` arguments; every encapsulated syntax is explicit VR little endian.
    fp = DicomBytesIO()
    fp.write(b"\x00" * 128 + b"DICM")
    write_file_meta_info(fp, ds.file_meta, enforce_standard=True)
    fp.is_implicit_VR, fp.is_little_endian = False, True
    write_dataset(fp, ds)
    path.write_bytes(fp.getvalue())


@dataclass
class Case:
    """One generated instance: where it came from and what its frames must give back."""

    syntax: str
    kind: str
    path: Path
    source: Array | None  # (frames, rows, columns[, samples]); None for video
    payloads: list[bytes]  # frame payloads of the written file, as the import extracts them
    fmt: PixelFormat

    @property
    def label(self) -> str:
        row = ts.lookup(self.syntax)
        return f"{row.name if row else self.syntax} ({self.syntax}) / {self.kind}"


def write_matrix(folder: Path) -> dict[str, Case]:
    """Every ``(syntax, kind)`` of ``pixel_samples.cases()`` and one video as P10 files of one series."""
    generated: list[tuple[str, str, Dataset, Array | None]] = [
        (syntax, kind, *pixel_samples.make_dataset(syntax, kind)) for syntax, kind in pixel_samples.cases()
    ]
    generated.append((VIDEO_SYNTAX, "video", pixel_samples.video_dataset(VIDEO_SYNTAX), None))
    cases: dict[str, Case] = {}
    for number, (syntax, kind, ds, source) in enumerate(generated, start=1):
        for keyword, value in STUDY.items():
            setattr(ds, keyword, value)
        ds.InstanceNumber = number
        path = folder / f"{number:03d}-{kind}-{syntax}.dcm"
        write_p10(ds, path)
        written = pydicom.dcmread(path)  # what the server reads: payloads come from the file, not memory
        assert str(written.file_meta.TransferSyntaxUID) == syntax, path
        sop = str(written.SOPInstanceUID)
        assert sop not in cases, f"{syntax}/{kind} reuses the SOP Instance UID of {cases[sop].label}"
        fmt = PixelFormat.from_dataset(written)
        cases[sop] = Case(syntax, kind, path, source, list(iter_frame_payloads(written)), fmt)
    return cases


# Reading the job's outputs ----------------------------------------------------------------------------------


def read_local_outputs(output: Path, job: dict[str, Any]) -> dict[str, Any]:
    """The manifest and the three ndjson files of a job written under a ``file://`` output URI."""
    folder = output / f"{job['datastoreId']}-DicomImport-{job['jobId']}"

    def lines(name: str) -> list[dict[str, Any]]:
        text = (folder / name).read_text()
        return [json.loads(line) for line in text.splitlines() if line.strip()]

    return {
        "manifest": json.loads((folder / "job-output-manifest.json").read_text()),
        "success": lines("SUCCESS/success.ndjson"),
        "failure": lines("FAILURE/failure.ndjson"),
        "warning": lines("WARNING/warning.ndjson"),
    }


def get_frame(client: Any, datastore_id: str, image_set_id: str, frame_id: str) -> tuple[str, bytes]:
    response = client.get_image_frame(
        datastoreId=datastore_id,
        imageSetId=image_set_id,
        imageFrameInformation={"imageFrameId": frame_id},
    )
    return response["contentType"], response["imageFrameBlob"].read()


# Frame checks -----------------------------------------------------------------------------------------------


def check_kept_frame(
    entry: dict[str, Any], content_type: str, data: bytes, payload: bytes, fmt: PixelFormat, syntax: str
) -> None:
    """A frame stored in its original encoding: the original bytes, one checksum over them, no min/max."""
    assert content_type == KEPT_CONTENT_TYPES.get(syntax, "application/octet-stream")  # or binary EVRLE
    assert data == payload
    assert entry["PixelDataChecksumFromBaseToFullResolution"] == [
        {"Width": fmt.columns, "Height": fmt.rows, "Checksum": zlib.crc32(payload)}
    ]
    assert entry["MinPixelValue"] is None
    assert entry["MaxPixelValue"] is None
    assert entry["FrameSizeInBytes"] == len(payload)


def check_transcoded_frame(entry: dict[str, Any], content_type: str, data: bytes, fmt: PixelFormat) -> Array:
    """An HTJ2K .4.202 frame: every listed resolution level decodes to its checksum; return the full frame."""
    assert content_type == "image/jph"
    levels = entry["PixelDataChecksumFromBaseToFullResolution"]
    base, full = levels[0], levels[-1]
    assert (full["Width"], full["Height"]) == (fmt.columns, fmt.rows)
    assert base["Width"] <= BASE_RESOLUTION_MAX, levels  # PS3.5 8.2.14: base resolution <= 64 pixels
    assert base["Height"] <= BASE_RESOLUTION_MAX, levels
    sizes = [(level["Width"], level["Height"]) for level in levels]
    # Base to full; a tiny image repeats its 1x1 base (a decomposition of one sample leaves it as it is).
    assert all(a[0] <= b[0] and a[1] <= b[1] for a, b in pairwise(sizes)), sizes
    for skip, level in enumerate(reversed(levels)):
        raw = np.asarray(imagecodecs.htj2k_decode(data, planar=False, skipres=skip))
        if raw.ndim == 3 and raw.shape[2] == 1:
            raw = raw[:, :, 0]
        assert raw.shape[:2] == (level["Height"], level["Width"]), (skip, levels)
        samples = raw.astype(fmt.dtype)
        assert np.array_equal(samples, raw), "the stored samples do not fit the instance's pixel format"
        assert zlib.crc32(np.ascontiguousarray(samples).tobytes()) == level["Checksum"], (skip, levels)
    decoded = decode_stored_frame(data, STORED, fmt)
    assert decoded.shape == fmt.shape
    assert decoded.dtype == fmt.dtype
    assert zlib.crc32(decoded.tobytes()) == full["Checksum"]
    assert entry["MinPixelValue"] == int(decoded.min())
    assert entry["MaxPixelValue"] == int(decoded.max())
    assert entry["FrameSizeInBytes"] == decoded.nbytes
    return decoded


# Fixtures ---------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(make_server: ServerFactory) -> ServerProcess:
    return make_server(env={"OPENHI_IMPORT_WORKERS": "2"})


@pytest.fixture(scope="module")
def client(server: ServerProcess) -> Any:
    return server.client()


@pytest.fixture
def datastore(client: Any) -> str:
    datastore_id: str = client.create_datastore(datastoreName="syntaxes")["datastoreId"]
    wait_for_status(client, datastore_id, "ACTIVE")
    return datastore_id


def import_folder(client: Any, datastore_id: str, folder: Path, output: Path) -> dict[str, Any]:
    job = run_job(client, datastore_id, f"file://{folder}/", f"file://{output}/", timeout=300)
    assert job["jobStatus"] == "COMPLETED", job
    return read_local_outputs(output, job)


# 1. The generated matrix ------------------------------------------------------------------------------------


def test_every_generated_syntax_round_trips(client: Any, datastore: str, tmp_path: Path) -> None:
    cases = write_matrix(tmp_path / "in")
    outputs = import_folder(client, datastore, tmp_path / "in", tmp_path / "out")
    summary = outputs["manifest"]["jobSummary"]
    assert outputs["failure"] == []
    assert outputs["warning"] == []
    assert summary["numberOfScannedFiles"] == len(cases)
    assert summary["numberOfImportedFiles"] == len(cases)
    assert summary["numberOfFilesWithCustomerError"] == summary["numberOfFilesWithServerError"] == 0
    [image_set] = summary["imageSetsSummary"]
    assert image_set["numberOfMatchedSOPInstances"] == len(cases)
    image_set_id = image_set["imageSetId"]
    entries = instances(metadata(client, datastore, image_set_id))
    assert set(entries) == set(cases)

    frames_checked: Counter[str] = Counter()
    for sop, entry in entries.items():
        case = cases[sop]
        label = case.label
        kept = is_kept(case.syntax, case.fmt.bits_allocated)
        assert kept == ts.kept_as_is(case.syntax, case.fmt.bits_allocated), label
        stored = entry["StoredTransferSyntaxUID"]
        assert stored == expected_stored_syntax(case.syntax, case.fmt.bits_allocated), label
        assert len(entry["ImageFrames"]) == len(case.payloads), label
        for index, (frame, payload) in enumerate(zip(entry["ImageFrames"], case.payloads, strict=True)):
            content_type, data = get_frame(client, datastore, image_set_id, frame["ID"])
            where = f"{label}, frame {index}"
            if kept:
                check_kept_frame(frame, content_type, data, payload, case.fmt, case.syntax)
                frames_checked[case.syntax] += 1
                continue
            try:
                decoded = check_transcoded_frame(frame, content_type, data, case.fmt)
            except AssertionError as exc:
                raise AssertionError(f"{where}: {exc}") from exc
            # The stored frame is a lossless transcoding of what the original payload decodes to.
            assert np.array_equal(decoded, decode_frame(payload, case.syntax, case.fmt)), where
            assert case.source is not None
            source = case.source[index]
            if case.syntax in LOSSLESS:
                # Colour: RGB and YBR_RCT sources both decode to RGB, the samples the encoder was given.
                assert case.fmt.photometric_interpretation not in SUBSAMPLED, where
                assert np.array_equal(decoded, source), where
                assert (frame["MinPixelValue"], frame["MaxPixelValue"]) == (source.min(), source.max()), where
            elif case.syntax == ts.JPEG_LS_NEAR_LOSSLESS:  # NEAR=2: every sample within 2 of the source
                difference = np.abs(decoded.astype(np.int64) - source.astype(np.int64))
                assert int(difference.max()) <= 2, where
            frames_checked[case.syntax] += 1

    per_syntax = Counter(case.syntax for case in cases.values())
    assert sum(frames_checked.values()) == sum(len(case.payloads) for case in cases.values())
    assert set(frames_checked) == set(per_syntax)
    assert len(per_syntax) == len(pixel_samples.MATRIX) + 1  # every syntax of the matrix, and the video


# 2. pydicom's bundled test files ----------------------------------------------------------------------------

REQUIRED = ("SOPInstanceUID", "SOPClassUID", "StudyInstanceUID", "SeriesInstanceUID")

#: Files of pydicom's test data the import refuses, with the reason (a substring of the failure message).
EXPECTED_FAILURES: dict[str, str] = {
    # Pixel Data declares 8192 bytes, the file ends before them.
    "MR_truncated.dcm": "truncated DICOM file",
    # Number of Frames (IS) is "1A" on purpose: the frames cannot be delimited.
    "badVR.dcm": "NumberOfFrames is not a valid number",
}

#: Imported files with a pixel data warning (guide 22881-22912: 0xB100 transcoding exception, 0xB110-0xB112
#: frames not delimited, 0xB120 unsupported syntax), with the reason. None today.
EXPECTED_PIXEL_WARNINGS: dict[str, str] = {}
PIXEL_WARNING_CODES = range(0xB100, 0xB200)

#: Lossless files whose pixels pydicom itself cannot decode (no pixel comparison; CRCs still checked).
EXPECTED_PYDICOM_UNDECODABLE: dict[str, str] = {}

#: At least this many imported files have every frame compared with pydicom's pixel_array (65 with
#: pydicom 3.0.2: every lossless, non-YBR file whose frames are transcoded).
MIN_COMPARED = 60


def pydicom_test_files() -> list[Path]:
    """pydicom's bundled files that have Pixel Data and everything an import needs (never downloads)."""
    selected = []
    for name in sorted(pydicom.data.get_testdata_files()):
        path = Path(name)
        if not path.is_file():
            continue
        try:
            ds = pydicom.dcmread(path, force=True, stop_before_pixels=False)
        except Exception:  # noqa: S112 - files pydicom cannot read at all are not import candidates
            continue
        meta = getattr(ds, "file_meta", None)
        if "PixelData" not in ds or meta is None or not meta.get("TransferSyntaxUID"):
            continue
        if all(str(ds.get(keyword) or "").strip() for keyword in REQUIRED):
            selected.append(path)
    return selected


def pixel_frames(ds: Dataset) -> list[Array]:
    """pydicom's ``pixel_array`` as a list of frames."""
    pixels = ds.pixel_array
    if int(ds.get("NumberOfFrames") or 1) > 1:
        return list(pixels)
    return [pixels]


@dataclass(frozen=True)
class Verdict:
    """One stored instance checked against one original file."""

    problem: str | None = None  # None: every frame's bytes / checksums / pixels agree
    compared: bool = False  # the decoded frames were compared with pydicom's pixel_array
    skipped: str | None = None  # why the pixel comparison could not run (pydicom cannot decode)


def verify_instance(client: Any, datastore: str, set_id: str, entry: dict[str, Any], path: Path) -> Verdict:
    """Check one stored instance against one original file, frame by frame."""
    original = pydicom.dcmread(path, force=True)
    syntax = str(original.file_meta.TransferSyntaxUID)
    fmt = PixelFormat.from_dataset(original)
    payloads = list(iter_frame_payloads(original))
    if len(entry["ImageFrames"]) != len(payloads):
        return Verdict(f"{len(entry['ImageFrames'])} stored frames, {len(payloads)} in the file")
    kept = is_kept(syntax, fmt.bits_allocated)
    expected = expected_stored_syntax(syntax, fmt.bits_allocated)
    if entry["StoredTransferSyntaxUID"] != expected:
        return Verdict(f"stored as {entry['StoredTransferSyntaxUID']}, expected {expected}")
    compare = not kept and syntax in LOSSLESS and fmt.photometric_interpretation not in SUBSAMPLED
    reference: list[Array] | None = None
    skipped: str | None = None
    if compare:
        try:
            reference = pixel_frames(original)
        except Exception as exc:  # pydicom has no plugin or fails: the checksum checks still run
            skipped = f"{type(exc).__name__}: {exc}"
    for index, (frame, payload) in enumerate(zip(entry["ImageFrames"], payloads, strict=True)):
        content_type, data = get_frame(client, datastore, set_id, frame["ID"])
        try:
            if kept:
                check_kept_frame(frame, content_type, data, payload, fmt, syntax)
                continue
            decoded = check_transcoded_frame(frame, content_type, data, fmt)
            assert np.array_equal(decoded, decode_frame(payload, syntax, fmt)), "differs from the original"
            if reference is not None:
                assert decoded.shape == reference[index].shape, (decoded.shape, reference[index].shape)
                assert np.array_equal(decoded, reference[index]), "differs from pydicom's pixel_array"
        except AssertionError as exc:
            return Verdict(f"frame {index}: {exc}")
    return Verdict(None, reference is not None, skipped)


@pytest.mark.filterwarnings("ignore:Expected explicit VR, but found implicit VR")
@pytest.mark.filterwarnings("ignore:The pixel data is .* excess padding")
def test_pydicom_test_files_import_and_verify(client: Any, datastore: str, tmp_path: Path) -> None:
    files = pydicom_test_files()
    originals: dict[str, Path] = {}  # unique copy name -> pydicom's file
    folder = tmp_path / "all"
    folder.mkdir()
    for number, path in enumerate(files):
        originals[f"{number:03d}-{path.name}"] = path
        shutil.copyfile(path, folder / f"{number:03d}-{path.name}")
    outputs = import_folder(client, datastore, folder, tmp_path / "out")
    summary = outputs["manifest"]["jobSummary"]
    succeeded = imported(outputs, folder)
    failed = {copy_name(line, folder): line["exception"] for line in outputs["failure"]}
    assert summary["numberOfScannedFiles"] == len(files)
    assert len(succeeded) + len(failed) == len(files), (sorted(succeeded), sorted(failed))
    assert not set(succeeded) & set(failed)
    assert summary["numberOfImportedFiles"] == len(succeeded)
    failures = {originals[name].name: exception for name, exception in failed.items()}
    unexpected = {
        name: exception
        for name, exception in failures.items()
        if name not in EXPECTED_FAILURES or EXPECTED_FAILURES[name] not in exception["message"]
    }
    assert not unexpected, "unexpected import failures:\n" + "\n".join(
        f"  {name}: {e['exceptionType']}: {e['message']}" for name, e in sorted(unexpected.items())
    )
    assert set(failures) == set(EXPECTED_FAILURES), "files expected to fail were imported"
    assert all(e["exceptionType"] == "ValidationException" for e in failures.values()), failures
    pixel_warnings = {
        originals[copy_name(line, folder)].name: warning
        for line in outputs["warning"]
        for warning in line["importResponse"]["warnings"]
        if warning["warning_reason_code"] in PIXEL_WARNING_CODES
    }
    assert set(pixel_warnings) == set(EXPECTED_PIXEL_WARNINGS), pixel_warnings

    # pydicom reuses SOP Instance UIDs (MR_small.dcm in nine encodings, ...): in one job the copies replace
    # each other in one image set. Every stored instance must match one of its copies; the copies that were
    # replaced are then imported again, one per instance and job, and checked against their own instance.
    copies: dict[tuple[str, str], list[str]] = defaultdict(list)
    for name, image_set_id in sorted(succeeded.items()):
        sop = sop_of(folder / name)
        copies[image_set_id, sop].append(name)
    verdicts: dict[str, Verdict] = {}
    for image_set_id in sorted(set(succeeded.values())):
        entries = instances(metadata(client, datastore, image_set_id))
        assert set(entries) == {sop for set_id, sop in copies if set_id == image_set_id}, image_set_id
        for sop, entry in entries.items():
            names = copies[image_set_id, sop]
            check = partial(verify_instance, client, datastore, image_set_id, entry)
            found = {name: check(folder / name) for name in names}
            assert any(v.problem is None for v in found.values()), f"{sop}: no copy matches: {found}"
            if len(names) == 1:
                verdicts[names[0]] = found[names[0]]
    duplicates = [names for names in copies.values() if len(names) > 1]
    for round_number in range(max(map(len, duplicates), default=0)):
        batch = [names[round_number] for names in duplicates if len(names) > round_number]
        round_folder = tmp_path / f"round-{round_number}"
        round_folder.mkdir()
        for name in batch:
            shutil.copyfile(folder / name, round_folder / name)
        round_outputs = import_folder(client, datastore, round_folder, tmp_path / "out")
        assert round_outputs["failure"] == []
        placed = imported(round_outputs, round_folder)
        assert sorted(placed) == sorted(batch)
        documents = {key: instances(metadata(client, datastore, key)) for key in set(placed.values())}
        for name, image_set_id in placed.items():
            sop = sop_of(round_folder / name)
            entry = documents[image_set_id][sop]
            verdicts[name] = verify_instance(client, datastore, image_set_id, entry, round_folder / name)

    assert set(verdicts) == set(succeeded)
    problems = {originals[name].name: v.problem for name, v in verdicts.items() if v.problem is not None}
    assert not problems, "imported files whose stored frames do not verify:\n" + "\n".join(
        f"  {name}: {problem}" for name, problem in sorted(problems.items())
    )
    skipped = {originals[name].name: v.skipped for name, v in verdicts.items() if v.skipped is not None}
    assert set(skipped) == set(EXPECTED_PYDICOM_UNDECODABLE), skipped
    compared = [name for name, v in verdicts.items() if v.compared]
    assert len(compared) >= MIN_COMPARED, sorted(originals[name].name for name in compared)


def copy_name(line: dict[str, Any], folder: Path) -> str:
    """The file name of an output line's ``inputFile`` (the folder's path without its leading slash)."""
    prefix = f"{folder}/".lstrip("/")
    assert line["inputFile"].startswith(prefix), line
    return str(line["inputFile"][len(prefix) :])


def sop_of(path: Path) -> str:
    return str(pydicom.dcmread(path, stop_before_pixels=True, force=True).SOPInstanceUID)


def imported(outputs: dict[str, Any], folder: Path) -> dict[str, str]:
    """File name -> image set id, from success.ndjson."""
    return {copy_name(line, folder): line["importResponse"]["imageSetId"] for line in outputs["success"]}
