"""OpenHI: an open, self-hostable medical imaging archive implementing the AWS HealthImaging API."""

__version__ = "0.1.0"
