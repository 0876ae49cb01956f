"""The ``openhi`` command: ``serve`` and ``config``."""
