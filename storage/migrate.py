"""Bring a database's schema up to date with the Alembic migrations in ``storage/migrations``.

``itbot db upgrade`` calls :func:`upgrade`, and ``itbot run`` calls it at
start so a new release migrates its database itself. There is no
``alembic.ini``: the configuration is built here. On PostgreSQL the upgrade
holds an advisory lock, so several bot instances starting at once migrate
one after the other instead of racing to create the same tables.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Connection, text
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from storage.db import describe_url, make_engine
from storage.errors import DatabaseUnavailable, MigrationFailed

__all__ = ["upgrade", "current_revision", "head_revision"]

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
_ADVISORY_LOCK = 0x6974626F74  # "itbot": one key shared by every instance


def _config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("path_separator", "os")
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """The newest revision this version of the code knows."""
    head = ScriptDirectory.from_config(_config()).get_current_head()
    assert head is not None, "storage/migrations/versions has revisions"
    return head


def current_revision(url: str) -> str | None:
    """The revision the database at ``url`` is at; None for an empty (never migrated) database.

    Raises:
        DatabaseUnavailable: The database cannot be reached.
    """
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    except SQLAlchemyError as error:
        raise DatabaseUnavailable(f"cannot read the schema revision of {describe_url(url)}: {_reason(error)}") from None
    finally:
        engine.dispose()


def upgrade(url: str, revision: str = "head") -> str:
    """Apply pending migrations to the database at ``url``, in one transaction where the engine allows.

    Args:
        url: SQLAlchemy URL, e.g. ``settings.database_url``.
        revision: Target revision; the newest by default.

    Returns:
        The revision the database is at afterwards.

    Raises:
        DatabaseUnavailable: The database cannot be reached.
        MigrationFailed: The database is at a revision this code does not know (a newer release
            migrated it), or a migration failed.
    """
    engine = make_engine(url)
    try:
        with engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _ADVISORY_LOCK})
            command.upgrade(_config(connection), revision)
            reached = MigrationContext.configure(connection).get_current_revision()
    except CommandError as error:
        raise MigrationFailed(f"cannot migrate {describe_url(url)}: {_reason(error)}") from None
    except OperationalError as error:
        raise DatabaseUnavailable(f"cannot reach the database at {describe_url(url)}: {_reason(error)}") from None
    except SQLAlchemyError as error:
        raise MigrationFailed(f"migrating {describe_url(url)} failed: {_reason(error)}") from None
    finally:
        engine.dispose()
    assert reached is not None
    return reached


def _reason(error: Exception) -> str:
    """The first line of the driver's message: one line, no SQL, no parameters."""
    return (str(getattr(error, "orig", None) or error).strip().splitlines() or [error.__class__.__name__])[0]
