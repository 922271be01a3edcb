"""Storage errors.

    StorageError
     ├── DatabaseUnavailable   the database cannot be reached or the URL is unusable
     └── MigrationFailed       the schema could not be brought up to date
"""

__all__ = ["StorageError", "DatabaseUnavailable", "MigrationFailed"]


class StorageError(Exception):
    """Base class; messages are one line and never contain a password."""


class DatabaseUnavailable(StorageError):
    """The database cannot be reached, or its URL or driver is unusable."""


class MigrationFailed(StorageError):
    """The migrations could not be applied (e.g. the database is at a revision this version does not know)."""
