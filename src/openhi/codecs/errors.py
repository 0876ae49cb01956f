"""Errors of the codecs room, each mapped to the HealthImaging import warning it causes.

The warning codes are the AWS HealthImaging warning reasons of guide lines 22890-22906: 0xB100 transcoding
exception, 0xB110 frame extraction failure, 0xB111 frame count mismatch, 0xB112 invalid offset table and
0xB120 unsupported transfer syntax. The import pipeline records ``warning_code`` in the job manifest and
stores the pixel data as a blob; these errors are never raised to an API client as-is.
"""

from __future__ import annotations

from openhi.errors import OpenHIError

TRANSCODING_EXCEPTION = 0xB100
FRAME_EXTRACTION_FAILURE = 0xB110
FRAME_COUNT_MISMATCH = 0xB111
INVALID_OFFSET_TABLE = 0xB112
UNSUPPORTED_TRANSFER_SYNTAX = 0xB120


class CodecError(OpenHIError):
    """Base of every codecs error: the pixel data cannot be handled as asked.

    ``warning_code`` is the HealthImaging warning reason the failure maps to (0xB100 by default: pixel
    data attributes wrong or transcoding impossible).
    """

    warning_code = TRANSCODING_EXCEPTION


class UnsupportedTransferSyntaxError(CodecError):
    """The transfer syntax is unknown or cannot be decoded (video, unknown UIDs); stored as a blob."""

    warning_code = UNSUPPORTED_TRANSFER_SYNTAX


class FrameExtractionError(CodecError):
    """The Pixel Data cannot be split into frames with the dataset's attributes."""

    warning_code = FRAME_EXTRACTION_FAILURE


class FrameCountMismatchError(CodecError):
    """Number of Frames (0028,0008) disagrees with the frames found in the encapsulated fragments."""

    warning_code = FRAME_COUNT_MISMATCH


class InvalidOffsetTableError(CodecError):
    """The Basic or Extended Offset Table does not point at the fragments actually present."""

    warning_code = INVALID_OFFSET_TABLE


class FrameDecodeError(CodecError):
    """A frame of a supported transfer syntax could not be decoded (corrupt or inconsistent codestream)."""


class FrameEncodeError(CodecError):
    """A decoded frame could not be encoded losslessly in the storage format."""


class FrameVerificationError(CodecError):
    """The stored codestream does not decode to the original frame (CRC32 mismatch); never ignored."""
