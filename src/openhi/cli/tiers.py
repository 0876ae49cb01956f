"""``openhi tiers sweep``: run the storage tier sweep once, now, against the server's index and blob stores.

The server sweeps by itself every ``tier_sweep_seconds``; this command is for operators (move idle image sets at
once after lowering ``archive_after_days``) and for tests. ``--as-of TIME`` judges idleness at another moment than
now (ISO 8601 with a time zone, e.g. ``2030-01-01T00:00:00Z``): image sets not accessed since before
``TIME - archive_after_days`` move to the archive tier. Takes the settings flags of ``openhi serve`` so it reaches
the same index and blob stores, and prints JSON: the image sets archived and restored, and how many moves failed.
"""

from __future__ import annotations

import argparse
import json
from datetime import datetime

from openhi.config import Settings
from openhi.errors import ValidationError


def add_tiers_commands(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    """The ``tiers`` command group."""
    tiers = commands.add_parser("tiers", help="storage tiers (docs/storage-tiers.md)").add_subparsers(
        dest="tiers_command", required=True
    )
    sweep = tiers.add_parser("sweep", parents=[common], help="move idle image sets to the archive tier now")
    sweep.add_argument(
        "--as-of", help="judge idleness at this ISO 8601 time instead of now (e.g. 2030-01-01T00:00:00Z)"
    )


def _as_of(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as exc:
        raise ValidationError(f"--as-of: {value!r} is not an ISO 8601 time") from exc
    if moment.tzinfo is None:
        raise ValidationError(f"--as-of: {value!r} needs a time zone (e.g. Z or +00:00)")
    return moment


def run_tiers(args: argparse.Namespace, settings: Settings) -> int:
    """Run the sweep once and print what moved."""
    from openhi.bootstrap import open_storage_tiers

    as_of = _as_of(args.as_of)
    tiers, index = open_storage_tiers(settings)
    try:
        result = tiers.sweep.run(now=as_of)
    finally:
        index.close()
    print(
        json.dumps(
            {
                "archived": [{"datastoreId": ds, "imageSetId": image_set} for ds, image_set in result.archived],
                "restored": [{"datastoreId": ds, "imageSetId": image_set} for ds, image_set in result.restored],
                "failed": result.failed,
            },
            indent=2,
        )
    )
    return 1 if result.failed else 0
