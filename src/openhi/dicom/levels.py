"""At which level of the image set metadata each DICOM element belongs (metadata normalization).

The table below is transcribed from the guide's "metadata normalization" lists (guide 22357-22562), which
HealthImaging derives from the DICOM PS3.6 2022b data dictionary and the modules of PS3.3: Patient level
(Patient Module, Issuer of Patient ID Macro, Patient Group Macro, Clinical Trial Subject Module), Study level
(General Study, Patient Study, Clinical Trial Study), Series level (General Series, Clinical Trial Series,
General Equipment, Frame of Reference). Module names are the guide's headings; keywords are those of PS3.6.

Every element not listed (including every private element) belongs to the Instance level. The level of an
element nested in a sequence is the level of the top-level sequence that holds it.
"""

from __future__ import annotations

from enum import StrEnum
from types import MappingProxyType


class Level(StrEnum):
    """The four levels of the metadata document; values are the JSON object names (Instances for Instance)."""

    PATIENT = "Patient"
    STUDY = "Study"
    SERIES = "Series"
    INSTANCE = "Instance"


# level -> module (guide heading) -> elements as (tag, keyword), in the guide's order.
LEVEL_TABLE: dict[Level, dict[str, tuple[tuple[int, str], ...]]] = {
    Level.PATIENT: {
        "Patient Module Elements": (
            (0x0010_0010, "PatientName"),
            (0x0010_0020, "PatientID"),
        ),
        "Issuer of Patient ID Macro Elements": (
            (0x0010_0021, "IssuerOfPatientID"),
            (0x0010_0024, "IssuerOfPatientIDQualifiersSequence"),
            (0x0010_0022, "TypeOfPatientID"),
            (0x0010_0030, "PatientBirthDate"),
            (0x0010_0033, "PatientBirthDateInAlternativeCalendar"),
            (0x0010_0034, "PatientDeathDateInAlternativeCalendar"),
            (0x0010_0035, "PatientAlternativeCalendar"),
            (0x0010_0040, "PatientSex"),
            (0x0010_1100, "ReferencedPatientPhotoSequence"),
            (0x0010_0200, "QualityControlSubject"),
            (0x0008_1120, "ReferencedPatientSequence"),
            (0x0010_0032, "PatientBirthTime"),
            (0x0010_1002, "OtherPatientIDsSequence"),
            (0x0010_1001, "OtherPatientNames"),
            (0x0010_2160, "EthnicGroup"),
            (0x0010_4000, "PatientComments"),
            (0x0010_2201, "PatientSpeciesDescription"),
            (0x0010_2202, "PatientSpeciesCodeSequence"),
            (0x0010_2292, "PatientBreedDescription"),
            (0x0010_2293, "PatientBreedCodeSequence"),
            (0x0010_2294, "BreedRegistrationSequence"),
            (0x0010_0212, "StrainDescription"),
            (0x0010_0213, "StrainNomenclature"),
            (0x0010_0219, "StrainCodeSequence"),
            (0x0010_0218, "StrainAdditionalInformation"),
            (0x0010_0216, "StrainStockSequence"),
            (0x0010_0221, "GeneticModificationsSequence"),
            (0x0010_2297, "ResponsiblePerson"),
            (0x0010_2298, "ResponsiblePersonRole"),
            (0x0010_2299, "ResponsibleOrganization"),
            (0x0012_0062, "PatientIdentityRemoved"),
            (0x0012_0063, "DeidentificationMethod"),
            (0x0012_0064, "DeidentificationMethodCodeSequence"),
        ),
        "Patient Group Macro Elements": (
            (0x0010_0026, "SourcePatientGroupIdentificationSequence"),
            (0x0010_0027, "GroupOfPatientsIdentificationSequence"),
        ),
        "Clinical Trial Subject Module": (
            (0x0012_0010, "ClinicalTrialSponsorName"),
            (0x0012_0020, "ClinicalTrialProtocolID"),
            (0x0012_0021, "ClinicalTrialProtocolName"),
            (0x0012_0030, "ClinicalTrialSiteID"),
            (0x0012_0031, "ClinicalTrialSiteName"),
            (0x0012_0040, "ClinicalTrialSubjectID"),
            (0x0012_0042, "ClinicalTrialSubjectReadingID"),
            (0x0012_0081, "ClinicalTrialProtocolEthicsCommitteeName"),
            (0x0012_0082, "ClinicalTrialProtocolEthicsCommitteeApprovalNumber"),
        ),
    },
    Level.STUDY: {
        "General Study Module": (
            (0x0020_000D, "StudyInstanceUID"),
            (0x0008_0020, "StudyDate"),
            (0x0008_0030, "StudyTime"),
            (0x0008_0090, "ReferringPhysicianName"),
            (0x0008_0096, "ReferringPhysicianIdentificationSequence"),
            (0x0008_009C, "ConsultingPhysicianName"),
            (0x0008_009D, "ConsultingPhysicianIdentificationSequence"),
            (0x0020_0010, "StudyID"),
            (0x0008_0050, "AccessionNumber"),
            (0x0008_0051, "IssuerOfAccessionNumberSequence"),
            (0x0008_1030, "StudyDescription"),
            (0x0008_1048, "PhysiciansOfRecord"),
            (0x0008_1049, "PhysiciansOfRecordIdentificationSequence"),
            (0x0008_1060, "NameOfPhysiciansReadingStudy"),
            (0x0008_1062, "PhysiciansReadingStudyIdentificationSequence"),
            (0x0032_1033, "RequestingService"),
            (0x0032_1034, "RequestingServiceCodeSequence"),
            (0x0008_1110, "ReferencedStudySequence"),
            (0x0008_1032, "ProcedureCodeSequence"),
            (0x0040_1012, "ReasonForPerformedProcedureCodeSequence"),
        ),
        "Patient Study Module": (
            (0x0008_1080, "AdmittingDiagnosesDescription"),
            (0x0008_1084, "AdmittingDiagnosesCodeSequence"),
            (0x0010_1010, "PatientAge"),
            (0x0010_1020, "PatientSize"),
            (0x0010_1030, "PatientWeight"),
            (0x0010_1022, "PatientBodyMassIndex"),
            (0x0010_1023, "MeasuredAPDimension"),
            (0x0010_1024, "MeasuredLateralDimension"),
            (0x0010_1021, "PatientSizeCodeSequence"),
            (0x0010_2000, "MedicalAlerts"),
            (0x0010_2110, "Allergies"),
            (0x0010_21A0, "SmokingStatus"),
            (0x0010_21C0, "PregnancyStatus"),
            (0x0010_21D0, "LastMenstrualDate"),
            (0x0038_0500, "PatientState"),
            (0x0010_2180, "Occupation"),
            (0x0010_21B0, "AdditionalPatientHistory"),
            (0x0038_0010, "AdmissionID"),
            (0x0038_0014, "IssuerOfAdmissionIDSequence"),
            (0x0032_1066, "ReasonForVisit"),
            (0x0032_1067, "ReasonForVisitCodeSequence"),
            (0x0038_0060, "ServiceEpisodeID"),
            (0x0038_0064, "IssuerOfServiceEpisodeIDSequence"),
            (0x0038_0062, "ServiceEpisodeDescription"),
            (0x0010_2203, "PatientSexNeutered"),
        ),
        "Clinical Trial Study Module": (
            (0x0012_0050, "ClinicalTrialTimePointID"),
            (0x0012_0051, "ClinicalTrialTimePointDescription"),
            (0x0012_0052, "LongitudinalTemporalOffsetFromEvent"),
            (0x0012_0053, "LongitudinalTemporalEventType"),
            (0x0012_0083, "ConsentForClinicalTrialUseSequence"),
        ),
    },
    Level.SERIES: {
        "General Series Module": (
            (0x0008_0060, "Modality"),
            (0x0020_000E, "SeriesInstanceUID"),
            (0x0020_0011, "SeriesNumber"),
            (0x0020_0060, "Laterality"),
            (0x0008_0021, "SeriesDate"),
            (0x0008_0031, "SeriesTime"),
            (0x0008_1050, "PerformingPhysicianName"),
            (0x0008_1052, "PerformingPhysicianIdentificationSequence"),
            (0x0018_1030, "ProtocolName"),
            (0x0008_103E, "SeriesDescription"),
            (0x0008_103F, "SeriesDescriptionCodeSequence"),
            (0x0008_1070, "OperatorsName"),
            (0x0008_1072, "OperatorIdentificationSequence"),
            (0x0008_1111, "ReferencedPerformedProcedureStepSequence"),
            (0x0008_1250, "RelatedSeriesSequence"),
            (0x0018_0015, "BodyPartExamined"),
            (0x0018_5100, "PatientPosition"),
            (0x0028_0108, "SmallestPixelValueInSeries"),
            (0x0028_0109, "LargestPixelValueInSeries"),
            (0x0040_0275, "RequestAttributesSequence"),
            (0x0010_2210, "AnatomicalOrientationType"),
            (0x300A_0700, "TreatmentSessionUID"),
        ),
        "Clinical Trial Series Module": (
            (0x0012_0060, "ClinicalTrialCoordinatingCenterName"),
            (0x0012_0071, "ClinicalTrialSeriesID"),
            (0x0012_0072, "ClinicalTrialSeriesDescription"),
        ),
        "General Equipment Module": (
            (0x0008_0070, "Manufacturer"),
            (0x0008_0080, "InstitutionName"),
            (0x0008_0081, "InstitutionAddress"),
            (0x0008_1010, "StationName"),
            (0x0008_1040, "InstitutionalDepartmentName"),
            (0x0008_1041, "InstitutionalDepartmentTypeCodeSequence"),
            (0x0008_1090, "ManufacturerModelName"),
            (0x0018_100B, "ManufacturerDeviceClassUID"),
            (0x0018_1000, "DeviceSerialNumber"),
            (0x0018_1020, "SoftwareVersions"),
            (0x0018_1008, "GantryID"),
            (0x0018_100A, "UDISequence"),
            (0x0018_1002, "DeviceUID"),
            (0x0018_1050, "SpatialResolution"),
            (0x0018_1200, "DateOfLastCalibration"),
            (0x0018_1201, "TimeOfLastCalibration"),
            (0x0028_0120, "PixelPaddingValue"),
        ),
        "Frame of Reference Module": (
            (0x0020_0052, "FrameOfReferenceUID"),
            (0x0020_1040, "PositionReferenceIndicator"),
        ),
    },
}


def _derive() -> tuple[dict[int, Level], dict[str, int]]:
    levels: dict[int, Level] = {}
    tags: dict[str, int] = {}
    for level, modules in LEVEL_TABLE.items():
        for elements in modules.values():
            for tag, keyword in elements:
                if levels.setdefault(tag, level) is not level:
                    raise ValueError(f"({tag >> 16:04X},{tag & 0xFFFF:04X}) is listed at two levels")
                tags[keyword] = tag
    return levels, tags


_LEVELS, _TAGS = _derive()

LEVEL_BY_TAG: MappingProxyType[int, Level] = MappingProxyType(_LEVELS)
"""Tag -> level for every element of the table (Patient, Study or Series); absent tags are Instance level."""

TAG_BY_KEYWORD: MappingProxyType[str, int] = MappingProxyType(_TAGS)
"""Keyword -> tag for the elements of the table."""


def level_of(tag: int) -> Level:
    """The level of a top-level element: the table's, or Instance (private and unlisted elements)."""
    return LEVEL_BY_TAG.get(tag, Level.INSTANCE)


def level_of_keyword(keyword: str) -> Level:
    """The level of a metadata key: a keyword of the table, or Instance for any other key (incl. 8-hex)."""
    tag = TAG_BY_KEYWORD.get(keyword)
    return Level.INSTANCE if tag is None else LEVEL_BY_TAG[tag]


def tags_at(level: Level) -> frozenset[int]:
    """The tags the table puts at ``level`` (empty for Instance, which is everything else)."""
    return frozenset(tag for tag, at in LEVEL_BY_TAG.items() if at is level)
