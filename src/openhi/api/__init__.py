"""The HTTP edges: the AWS REST-JSON surface (``api/aws``) and, later, DICOMweb.

Only this room imports the web framework.
"""
