"""Rows the public API cannot create yet, written straight into a SQL index (image sets come with import)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import cast

from sqlalchemy import insert

from openhi.index.sql.adapter import SqlIndex
from openhi.index.sql.repositories import SqlUnitOfWork
from openhi.index.sql.schema import image_sets

T0 = datetime(2024, 5, 1, 12, 30, 0, 1, tzinfo=UTC)


def insert_image_set(index: SqlIndex, datastore_id: str, image_set_id: str, state: str = "ACTIVE") -> None:
    """One ``image_sets`` row, version 1, primary."""
    row = {
        "datastore_id": datastore_id,
        "image_set_id": image_set_id,
        "version_id": 1,
        "state": state,
        "workflow_status": "CREATED",
        "is_primary": True,
        "created_at": T0,
        "updated_at": T0,
    }
    index.run(lambda uow: cast(SqlUnitOfWork, uow).image_sets.conn.execute(insert(image_sets).values(row)))
