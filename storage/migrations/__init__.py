"""Alembic migrations of the storage schema; applied by :func:`storage.migrate.upgrade`."""
