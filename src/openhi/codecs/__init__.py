"""The ``codecs`` room: pixel data in, verified lossless storage frames out.

It owns everything between the bytes of a DICOM Pixel Data element and the bytes the archive stores per
frame: which transfer syntaxes are kept in their original encoding and which are transcoded (guide lines
22563-22619), how frames are delimited (DICOM PS3.5 section 8.2 and Annex A.4), how each input syntax is
decoded, the conformant HTJ2K / JPEG 2000 lossless encoders (PS3.5 sections 8.2.4 and 8.2.14), and the
pixel data verification with resolution-level CRC32 checksums (guide lines 22817-22880).

The room is pure: bytes and ``pydicom.Dataset`` objects in, bytes and numpy arrays out, no I/O. Every
function is safe to call concurrently from threads and processes (encoding goes through imagecodecs, which
releases the GIL; pylibjpeg-openjpeg's encoder is never used). Import the submodules directly:
``openhi.codecs.store.prepare_frame`` is the entry point of the import pipeline.
"""
