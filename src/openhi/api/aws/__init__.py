"""The AWS HealthImaging REST-JSON surface, driven by the installed botocore ``medical-imaging`` model."""
