"""The app factory each server process runs when ``openhi serve --workers N`` starts several (N > 1).

uvicorn's multiprocess supervisor binds the port once and spawns the workers; each imports this module and
calls :func:`create`. The parent resolved the settings (flags > environment > TOML > defaults), ran the index
migrations and made the root credentials before spawning, and hands the resolved values over in the
environment variable ``OPENHI_RESOLVED_SETTINGS`` (JSON), so every worker runs with exactly the parent's
settings. Background work (data store lifecycle, import jobs, write recovery, catalog backfill) runs in
every worker: each of those loops is safe across processes (leases and compare-and-set in the index), as it is
across several servers of a scaled-out deployment.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import fields

from starlette.applications import Starlette

from openhi.config import Settings, load_settings

ENV = "OPENHI_RESOLVED_SETTINGS"


def encode_settings(settings: Settings) -> str:
    """The settings as JSON (paths as text), for :func:`create` in the workers."""
    values: dict[str, object] = {}
    for field in fields(Settings):
        value = getattr(settings, field.name)
        values[field.name] = str(value) if not isinstance(value, int | float | str) else value
    return json.dumps(values)


def create() -> Starlette:
    """One worker's ASGI app over the parent's settings."""
    from openhi.bootstrap import build

    settings, _ = load_settings(flags=json.loads(os.environ[ENV]), environ={})
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return build(settings).app  # its lifespan stops the background work and closes the index
