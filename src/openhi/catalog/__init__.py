"""The DICOM catalog behind QIDO-RS: rows derived from image set documents, and the matching rules (pure)."""
