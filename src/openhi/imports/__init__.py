"""DICOM import jobs: the service, the pipeline, worker processes, commits and job outputs."""
