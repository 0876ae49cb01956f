"""The level table: transcribed from guide 22357-22562 (DICOM PS3.6 2022b keywords)."""

from __future__ import annotations

import pytest
from pydicom.datadict import keyword_for_tag

from openhi.dicom.levels import LEVEL_BY_TAG, LEVEL_TABLE, Level, level_of, level_of_keyword, tags_at


@pytest.mark.parametrize(
    ("tag", "keyword", "level"),
    [
        (0x00100010, "PatientName", Level.PATIENT),
        (0x00100020, "PatientID", Level.PATIENT),
        (0x00100030, "PatientBirthDate", Level.PATIENT),
        (0x00100040, "PatientSex", Level.PATIENT),
        (0x00081120, "ReferencedPatientSequence", Level.PATIENT),
        (0x00120064, "DeidentificationMethodCodeSequence", Level.PATIENT),
        (0x00120082, "ClinicalTrialProtocolEthicsCommitteeApprovalNumber", Level.PATIENT),
        (0x0020000D, "StudyInstanceUID", Level.STUDY),
        (0x00080020, "StudyDate", Level.STUDY),
        (0x00080030, "StudyTime", Level.STUDY),
        (0x00080050, "AccessionNumber", Level.STUDY),
        (0x00200010, "StudyID", Level.STUDY),
        (0x00081030, "StudyDescription", Level.STUDY),
        (
            0x00101030,
            "PatientWeight",
            Level.STUDY,
        ),  # Patient Study module; the guide's example has it in Study
        (0x00102203, "PatientSexNeutered", Level.STUDY),
        (0x00120083, "ConsentForClinicalTrialUseSequence", Level.STUDY),
        (0x0020000E, "SeriesInstanceUID", Level.SERIES),
        (0x00080060, "Modality", Level.SERIES),
        (0x00200011, "SeriesNumber", Level.SERIES),
        (0x00185100, "PatientPosition", Level.SERIES),
        (0x00080070, "Manufacturer", Level.SERIES),
        (0x00280120, "PixelPaddingValue", Level.SERIES),
        (0x300A0700, "TreatmentSessionUID", Level.SERIES),
        (0x00200052, "FrameOfReferenceUID", Level.SERIES),
        (0x00201040, "PositionReferenceIndicator", Level.SERIES),
        (0x00080018, "SOPInstanceUID", Level.INSTANCE),
        (0x00080016, "SOPClassUID", Level.INSTANCE),
        (0x00280102, "HighBit", Level.INSTANCE),
        (0x7FE00010, "PixelData", Level.INSTANCE),
        (0x00081196, "WarningReason", Level.INSTANCE),
    ],
)
def test_guide_elements_are_at_their_level(tag: int, keyword: str, level: Level) -> None:
    assert keyword_for_tag(tag) == keyword
    assert level_of(tag) is level
    assert level_of_keyword(keyword) is level


def test_private_and_unknown_elements_are_instance_level() -> None:
    assert level_of(0x001910F9) is Level.INSTANCE
    assert level_of(0x00090010) is Level.INSTANCE
    assert level_of_keyword("001910F9") is Level.INSTANCE
    assert level_of_keyword("NotAKeyword") is Level.INSTANCE


def test_table_counts_match_the_guide() -> None:
    counts = {level: sum(len(elements) for elements in modules.values()) for level, modules in LEVEL_TABLE.items()}
    # guide 22380-22447: 2 + 33 + 2 + 9; 22449-22509: 20 + 25 + 5; 22511-22562: 22 + 3 + 17 + 2
    assert counts == {Level.PATIENT: 46, Level.STUDY: 50, Level.SERIES: 44}
    assert len(LEVEL_BY_TAG) == 140
    assert list(LEVEL_TABLE[Level.SERIES]) == [
        "General Series Module",
        "Clinical Trial Series Module",
        "General Equipment Module",
        "Frame of Reference Module",
    ]


def test_every_keyword_is_the_dictionary_keyword_of_its_tag() -> None:
    for modules in LEVEL_TABLE.values():
        for elements in modules.values():
            for tag, keyword in elements:
                assert keyword_for_tag(tag) == keyword, f"{tag:08X}"


def test_tags_at() -> None:
    assert 0x00100010 in tags_at(Level.PATIENT)
    assert 0x00100010 not in tags_at(Level.STUDY)
    assert tags_at(Level.INSTANCE) == frozenset()
    assert len(tags_at(Level.PATIENT) | tags_at(Level.STUDY) | tags_at(Level.SERIES)) == 140
