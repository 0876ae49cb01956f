"""The DICOMweb surface (guide 1780-2664): STOW-RS, WADO-RS and QIDO-RS under ``/datastore/{id}/studies``."""
