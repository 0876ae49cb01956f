"""The DICOMweb benchmark corpus: CT series of single-frame slices plus 40-frame multi-frame instances.

Everything is written in Explicit VR Little Endian (what a modality sends and what Orthanc stores as received).
CT slices come from tests/support/dicom_corpus.py (smooth phantoms with correlated noise, so they compress
like real CT). The multi-frame instances are Multi-frame Grayscale Word Secondary Capture (PS3.3 A.8.4), an
XA-like cine of the same phantom drifting through the volume, unsigned 16-bit with 12 bits stored, one study.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, UID, ExplicitVRLittleEndian
from tests.support.dicom_corpus import SeriesSpec, ct_phantom, uid, write_series

MULTIFRAME_SC = UID("1.2.840.10008.5.1.4.1.1.7.3")  # Multi-frame Grayscale Word Secondary Capture Image Storage


@dataclass(frozen=True)
class CorpusShape:
    """How big the corpus is."""

    ct_series: int = 2
    ct_slices: int = 100
    mf_instances: int = 5
    mf_frames: int = 40
    size: int = 512


@dataclass
class Instance:
    """One written file and its UIDs."""

    path: Path
    study: str
    series: str
    sop: str
    frames: int


@dataclass
class Corpus:
    """The files written, grouped the way the benchmark reads them."""

    ct: list[Instance] = field(default_factory=list)
    multiframe: list[Instance] = field(default_factory=list)

    @property
    def all(self) -> list[Instance]:
        return [*self.ct, *self.multiframe]

    def series(self, instances: list[Instance]) -> dict[tuple[str, str], list[Instance]]:
        """Instances grouped by (study, series), in file order."""
        grouped: dict[tuple[str, str], list[Instance]] = {}
        for item in instances:
            grouped.setdefault((item.study, item.series), []).append(item)
        return grouped

    def bytes(self, instances: list[Instance]) -> int:
        return sum(item.path.stat().st_size for item in instances)


def multiframe_dataset(index: int, frames: int, size: int) -> Dataset:
    """One multi-frame secondary capture instance: ``frames`` phantom frames, unsigned 16-bit, 12 bits stored."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = MULTIFRAME_SC
    ds.file_meta.MediaStorageSOPInstanceUID = UID(uid("mf-study", "mf-series", index))
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    ds.SOPClassUID = MULTIFRAME_SC
    ds.SOPInstanceUID = UID(uid("mf-study", "mf-series", index))
    ds.StudyInstanceUID = uid("mf-study")
    ds.SeriesInstanceUID = uid("mf-study", "mf-series")
    ds.PatientID = "PAT-MF"
    ds.PatientName = "ROE^RICHARD"
    ds.PatientBirthDate = "19650312"
    ds.PatientSex = "M"
    ds.StudyDate = "20240502"
    ds.StudyTime = "101500"
    ds.AccessionNumber = "ACC-MF"
    ds.StudyID = "2"
    ds.StudyDescription = "Synthetic multi-frame"
    ds.Modality = "OT"
    ds.ConversionType = "WSD"
    ds.SeriesNumber = 1
    ds.InstanceNumber = index + 1
    ds.NumberOfFrames = frames
    ds.FrameIncrementPointer = (0x0018, 0x2002)  # Frame Label Vector
    ds.FrameLabelVector = [f"F{n + 1}" for n in range(frames)]
    ds.Rows = ds.Columns = size
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 16
    ds.BitsStored = 12
    ds.HighBit = 11
    ds.PixelRepresentation = 0
    stack = np.stack([ct_phantom(size, index * frames + n) for n in range(frames)]).astype(np.int32) + 1024
    ds.PixelData = np.clip(stack, 0, 4095).astype(np.uint16).tobytes()
    return ds


def write_corpus(folder: Path, shape: CorpusShape) -> Corpus:
    """Write the CT series (one study) and the multi-frame instances (another study) under ``folder``."""
    corpus = Corpus()
    for n in range(shape.ct_series):
        spec = SeriesSpec(series=f"series-{n + 1}", slices=shape.ct_slices, size=shape.size, series_number=n + 1)
        for index, path in enumerate(write_series(folder / "ct", spec)):
            corpus.ct.append(
                Instance(path, uid(spec.study), uid(spec.study, spec.series), uid(spec.study, spec.series, index), 1)
            )
    target = folder / "multiframe"
    target.mkdir(parents=True, exist_ok=True)
    for index in range(shape.mf_instances):
        ds = multiframe_dataset(index, shape.mf_frames, shape.size)
        path = target / f"{index:04d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        corpus.multiframe.append(
            Instance(path, ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID, shape.mf_frames)
        )
    return corpus
