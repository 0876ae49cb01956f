"""The ``dicom`` room: read DICOM P10 files, normalize them into HealthImaging metadata (pure; pydicom only).

- :mod:`.reader` reads a P10 file (lazily for large values) and rejects what is not DICOM or is truncated.
- :mod:`.levels` places each element at the Patient, Study, Series or Instance level (guide 22357-22562).
- :mod:`.json_values` converts element values to and from the JSON of image set metadata (guide 4330-4395).
- :mod:`.normalize` turns one dataset into the Patient / Study / Series / Instance ``DICOM`` objects, the
  ``DICOMVRs``, the import warnings (guide 22881-22912) and the bulk values to store apart.

Nothing here touches storage: callers persist what these functions return.
"""
