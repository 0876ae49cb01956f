"""DICOMweb use cases (guide 1780-2664): store, retrieve and search over image sets, framework-free."""
