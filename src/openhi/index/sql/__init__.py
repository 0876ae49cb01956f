"""The SQL adapter of the index port: one implementation for SQLite and PostgreSQL.

``schema.py`` holds the tables (SQLAlchemy Core), ``repositories.py`` the repositories bound to one
connection, ``adapter.py`` the ``SqlIndex`` that runs units of work with retries (Orthanc's
``StatelessDatabaseOperations``, cosmicpython's ``unit_of_work.py``) and ``migrations/`` the Alembic
scripts that create and evolve the schema, run programmatically at start.
"""
