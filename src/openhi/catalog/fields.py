"""Which attributes a QIDO-RS answer carries at each level: the defaults, and ``includefield=all``.

Defaults are PS3.18 Table 6.7.1-2 (study), 6.7.1-2a (series) and 6.7.1-2b (instance) — what a client gets
without ``includefield`` (guide 2296) — plus StudyDescription (viewers list it), and on series and instances
the UIDs of the levels above (so that a result names its parents). ``all`` (guide 2330-2540) is the guide's
list of study attributes at the study level, its series list plus the study list at the series level, and
every attribute of the instance's metadata at the instance level (guide 2536-2540).
"""

from __future__ import annotations

from openhi.catalog.query import Level

# Attributes the catalog computes rather than stores (PS3.18 Table 6.7.1-2).
MODALITIES_IN_STUDY = 0x00080061
INSTANCE_AVAILABILITY = 0x00080056
RETRIEVE_URL = 0x00081190
STUDY_RELATED_SERIES = 0x00201206
STUDY_RELATED_INSTANCES = 0x00201208
SERIES_RELATED_INSTANCES = 0x00201209

DEFAULTS: dict[Level, frozenset[int]] = {
    Level.STUDY: frozenset(
        {
            0x00080005,  # SpecificCharacterSet
            0x00080020,  # StudyDate
            0x00080030,  # StudyTime
            0x00080050,  # AccessionNumber
            INSTANCE_AVAILABILITY,
            MODALITIES_IN_STUDY,
            0x00080090,  # ReferringPhysicianName
            0x00080201,  # TimezoneOffsetFromUTC
            0x00081030,  # StudyDescription
            RETRIEVE_URL,
            0x00100010,  # PatientName
            0x00100020,  # PatientID
            0x00100030,  # PatientBirthDate
            0x00100040,  # PatientSex
            0x0020000D,  # StudyInstanceUID
            0x00200010,  # StudyID
            STUDY_RELATED_SERIES,
            STUDY_RELATED_INSTANCES,
        }
    ),
    Level.SERIES: frozenset(
        {
            0x00080005,  # SpecificCharacterSet
            0x00080060,  # Modality
            0x00080201,  # TimezoneOffsetFromUTC
            0x0008103E,  # SeriesDescription
            RETRIEVE_URL,
            0x0020000D,  # StudyInstanceUID
            0x0020000E,  # SeriesInstanceUID
            0x00200011,  # SeriesNumber
            SERIES_RELATED_INSTANCES,
            0x00400244,  # PerformedProcedureStepStartDate
            0x00400245,  # PerformedProcedureStepStartTime
            0x00400275,  # RequestAttributesSequence
        }
    ),
    Level.INSTANCE: frozenset(
        {
            0x00080005,  # SpecificCharacterSet
            0x00080016,  # SOPClassUID
            0x00080018,  # SOPInstanceUID
            INSTANCE_AVAILABILITY,
            0x00080201,  # TimezoneOffsetFromUTC
            RETRIEVE_URL,
            0x00081196,  # WarningReason (guide 2640: kept from the import, searchable)
            0x0020000D,  # StudyInstanceUID
            0x0020000E,  # SeriesInstanceUID
            0x00200013,  # InstanceNumber
            0x00280010,  # Rows
            0x00280011,  # Columns
            0x00280100,  # BitsAllocated
            0x00280008,  # NumberOfFrames
        }
    ),
}


def _tags(text: str) -> frozenset[int]:
    return frozenset(int(tag, 16) for tag in text.split())


# Guide 2347-2480: includefield=all at the study level (001022999 in the guide is 00102299).
STUDY_ALL = _tags(
    """
    00080005 00080020 00080030 00080050 00080051 00080056 00080061 00080062 00080090 0008009C 00080201 00081030
    00081048 00081060 00081080 00081190 00100010 00100020 00100021 00100022 00100026 00100027 00100028 00100030
    00100032 00100033 00100034 00100035 00100040 00100050 00100101 00100102 00100200 00100201 00100213 00100214
    00100215 00100217 00100219 00100223 00100229 00101001 00101005 00101010 00101020 00101021 00101022 00101023
    00101024 00101030 00101040 00101060 00101080 00101081 00102000 00102110 00102150 00102152 00102154 00102160
    00102180 001021A0 001021C0 001021D0 001021F0 00102201 00102202 00102203 00102210 00102292 00102293 00102295
    00102296 00102297 00102298 00102299 00109431 0020000D 00200010 00201206 00201208 00321032 00321033 00321060
    00321070 00380010 00380016 00380020 00380021 00380050 00380060 00380062 00380300 00380400 00380500 00400244
    00400245 00400250 00400251 00400253 00081032 00100024 00321034 00321064 00401012
    """
)

# Guide 2486-2530: includefield=all at the series level (plus every study attribute above, guide 2484).
SERIES_ALL = STUDY_ALL | _tags(
    """
    00080021 00080031 00080060 00080064 00080068 00080070 00080080 00080082 00081010 0008103E 0008103F 00081040
    00081041 00081050 00081070 00081090 00180010 00180015 00180050 00180088 00181000 00181016 00181018 00181019
    00181020 00181030 00181050 00181200 00181201 00185100 0020000D 0020000E 00200011 00200052 00200060 00201209
    00540081 00540101 00541000
    """
)

ALL: dict[Level, frozenset[int] | None] = {Level.STUDY: STUDY_ALL, Level.SERIES: SERIES_ALL, Level.INSTANCE: None}
"""None: every attribute the instance's metadata holds (guide 2536-2540)."""

PIXEL_DATA = frozenset({0x7FE00010, 0x7FE00008, 0x7FE00009})

COMPUTED = frozenset(
    {
        MODALITIES_IN_STUDY,
        INSTANCE_AVAILABILITY,
        RETRIEVE_URL,
        STUDY_RELATED_SERIES,
        STUDY_RELATED_INSTANCES,
        SERIES_RELATED_INSTANCES,
        0x00080062,  # SOPClassesInStudy
    }
)
"""Attributes a search answer computes; never taken from a document."""

# Study and series attributes of the guide's lists that the metadata document keeps at the instance level
# (guide 22357-22562 puts e.g. SpecificCharacterSet, BranchOfService, PerformedProcedureStepStartDate there):
# the catalog lifts them from the series' first instance into the study and series attributes.
STUDY_LIFTED = (STUDY_ALL | DEFAULTS[Level.STUDY]) - COMPUTED
SERIES_LIFTED = ((SERIES_ALL - STUDY_ALL) | DEFAULTS[Level.SERIES]) - COMPUTED - {0x0020000D}
