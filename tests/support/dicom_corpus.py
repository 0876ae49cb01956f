"""Deterministic synthetic DICOM studies for import tests and benchmarks (pydicom + numpy, no downloads).

Frames are smooth phantoms with correlated noise (a body ellipse, lungs, a spine, a table), so they compress
like real CT rather than like random noise. UIDs derive from a seed, so the same call gives the same files.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, ExplicitVRLittleEndian

CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"


def uid(*parts: object) -> str:
    """A valid, deterministic UID under a private root."""
    digest = int(hashlib.sha256("/".join(map(str, parts)).encode()).hexdigest()[:24], 16)
    return f"1.2.826.0.1.3680043.10.1337.{digest}"


def ct_phantom(size: int, slice_index: int) -> np.ndarray:
    """A signed 16-bit CT slice in HU, -1024..~1500, smooth with mild noise."""
    y, x = np.mgrid[0:size, 0:size].astype(np.float32) / size - 0.5
    image = np.full((size, size), -1024.0, dtype=np.float32)
    body = (x / 0.42) ** 2 + (y / 0.32) ** 2 < 1
    image[body] = 40.0
    for side in (-0.17, 0.17):
        lung = ((x - side) / 0.13) ** 2 + (y / 0.2) ** 2 < 1
        image[lung] = -820.0 + 30 * np.sin(slice_index / 7)
    spine = (x / 0.05) ** 2 + ((y - 0.22) / 0.05) ** 2 < 1
    image[spine] = 900.0
    rng = np.random.default_rng(slice_index)
    noise = rng.normal(0, 12, (size, size)).astype(np.float32)
    noise = (noise + np.roll(noise, 1, 0) + np.roll(noise, 1, 1)) / 3
    return np.clip(image + noise * body, -1024, 3000).astype(np.int16)


@dataclass(frozen=True)
class SeriesSpec:
    """One synthetic CT series."""

    study: str = "study-1"
    series: str = "series-1"
    patient_id: str = "PAT-1"
    patient_name: str = "DOE^JANE"
    slices: int = 3
    size: int = 64
    series_number: int = 1
    first_instance: int = 0  # offset of the instance numbers (and so of the SOP Instance UIDs)


def ct_dataset(spec: SeriesSpec, index: int) -> Dataset:
    """One CT instance of the series, Explicit VR Little Endian, with file meta."""
    index += spec.first_instance
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = CT_IMAGE_STORAGE
    ds.file_meta.MediaStorageSOPInstanceUID = uid(spec.study, spec.series, index)
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    ds.SOPClassUID = CT_IMAGE_STORAGE
    ds.SOPInstanceUID = uid(spec.study, spec.series, index)
    ds.StudyInstanceUID = uid(spec.study)
    ds.SeriesInstanceUID = uid(spec.study, spec.series)
    ds.PatientID = spec.patient_id
    ds.PatientName = spec.patient_name
    ds.PatientBirthDate = "19700101"
    ds.PatientSex = "F"
    ds.StudyDate = "20240501"
    ds.StudyTime = "083501"
    ds.AccessionNumber = f"ACC-{spec.study}"
    ds.StudyID = "1"
    ds.StudyDescription = "Synthetic chest CT"
    ds.Modality = "CT"
    ds.BodyPartExamined = "CHEST"
    ds.SeriesNumber = spec.series_number
    ds.InstanceNumber = index + 1
    ds.ImagePositionPatient = [-125, -125, float(index * 2.5)]
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.PixelSpacing = [0.7, 0.7]
    ds.SliceThickness = 2.5
    ds.RescaleIntercept = 0
    ds.RescaleSlope = 1
    ds.Rows = ds.Columns = spec.size
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 1
    ds.PixelData = ct_phantom(spec.size, index).tobytes()
    return ds


def write_series(folder: Path, spec: SeriesSpec) -> list[Path]:
    """Write the series as ``folder/{series}/{index}.dcm``; return the paths."""
    target = folder / spec.series
    target.mkdir(parents=True, exist_ok=True)
    paths = []
    for index in range(spec.slices):
        path = target / f"{index:04d}.dcm"
        ct_dataset(spec, index).save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


def iter_corpus(series: int, slices: int, size: int) -> Iterator[SeriesSpec]:
    """``series`` series of ``slices`` slices each, in one study (the benchmark corpus)."""
    for n in range(series):
        yield SeriesSpec(series=f"series-{n + 1}", slices=slices, size=size, series_number=n + 1)
