"""Import warning catalogue (guide 22881-22912) and the WarningReason helper."""

from __future__ import annotations

from typing import Any

from openhi.dicom.warnings import (
    BY_CODE,
    CATALOGUE,
    INVALID_DICOM_VALUE_LENGTH,
    INVALID_OFFSET_TABLE,
    INVALID_UID_FORMAT,
    ImportWarning,
    apply_warning_reasons,
)


def test_catalogue_codes_and_names() -> None:
    assert {(kind.code, kind.name) for kind in CATALOGUE} == {
        (45056, "COERCION_OF_DATA_ELEMENTS"),
        (45062, "ELEMENTS_DISCARDED"),
        (45063, "SOP_CLASS_DATA_MISMATCH"),
        (45312, "TRANSCODING_EXCEPTION"),
        (45328, "FRAMES_EXTRACTION_FAILURE"),
        (45329, "FRAME_NUMBER_MISMATCH"),
        (45330, "INVALID_OFFSET_TABLE"),
        (45344, "UNSUPPORTED_TRANSFER_SYNTAX"),
        (45570, "INVALID_UID_FORMAT"),
        (45571, "INVALID_DICOM_VALUE_LENGTH"),
        (47513, "OTHER"),
    }
    assert len(BY_CODE) == len(CATALOGUE)
    # the guide's hexadecimal labels; its decimals (the codes clients see) differ for three rows
    assert {kind.name: kind.hex_label for kind in CATALOGUE if kind.code != int(kind.hex_label, 16)} == {
        "INVALID_UID_FORMAT": "0xB201",
        "INVALID_DICOM_VALUE_LENGTH": "0xB202",
        "OTHER": "0xBFFF",
    }


def test_ndjson_shape_matches_the_guide_example() -> None:
    warning = ImportWarning.of(INVALID_OFFSET_TABLE, "The file was imported but contains an invalid offset table")
    assert warning == ImportWarning(45330, "INVALID_OFFSET_TABLE", warning.message)
    assert warning.to_ndjson() == {
        "warning_reason_code": 45330,
        "type": "InvalidOffsetTable",
        "message": "The file was imported but contains an invalid offset table",
    }


def test_apply_warning_reasons_merges_sorted_decimal_codes() -> None:
    instance: dict[str, Any] = {}
    apply_warning_reasons(instance, [])
    assert "WarningReason" not in instance
    apply_warning_reasons(
        instance,
        [ImportWarning.of(INVALID_DICOM_VALUE_LENGTH, "a"), ImportWarning.of(INVALID_UID_FORMAT, "b")],
    )
    assert instance["WarningReason"] == [45570, 45571]
    apply_warning_reasons(instance, [ImportWarning.of(INVALID_DICOM_VALUE_LENGTH, "again")])
    assert instance["WarningReason"] == [45570, 45571]
    single: dict[str, Any] = {"WarningReason": 45056}
    apply_warning_reasons(single, [ImportWarning.of(INVALID_UID_FORMAT, "c")])
    assert single["WarningReason"] == [45056, 45570]
