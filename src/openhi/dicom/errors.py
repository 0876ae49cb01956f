"""Errors of the ``dicom`` room.

A file that cannot become an instance (not DICOM P10, truncated, or missing an attribute the import needs)
fails with :class:`DicomInputError`. Its ``code`` is ``ValidationException``, which is what the import job
writes into ``FAILURE/failure.ndjson`` as ``exceptionType``, e.g. ``{"exceptionType": "ValidationException",
"message": "DICOM attribute TransferSyntaxUID does not exist"}`` (guide 3316-3324).
"""

from __future__ import annotations

from openhi.errors import OpenHIError


class DicomInputError(OpenHIError):
    """The input is not an importable DICOM P10 instance; the message says why, in plain words."""

    code = "ValidationException"
