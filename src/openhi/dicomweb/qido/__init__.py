"""QIDO-RS (guide 2210-2664, PS3.18 §10.6): query parsing, the catalog search and its DICOM JSON answers."""
