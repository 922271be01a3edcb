"""Storage errors.

    StorageError
     └── DatabaseUnavailable   the database cannot be reached or the URL is unusable
"""

__all__ = ["StorageError", "DatabaseUnavailable"]


class StorageError(Exception):
    """Base class; messages are one line and never contain a password."""


class DatabaseUnavailable(StorageError):
    """The database cannot be reached, or its URL or driver is unusable."""
