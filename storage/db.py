"""Engine and session factory for the configured database.

SQLite gets WAL mode, foreign keys and a busy timeout so Slack listener
threads and the scheduler can write at the same time; PostgreSQL is used as is.

On SQLite, SQLAlchemy (not the sqlite3 driver) emits the ``BEGIN``, and it is
``BEGIN IMMEDIATE``: every transaction takes the write lock up front, waiting
up to the busy timeout for it. The driver's own deferred BEGIN would let a
transaction that read first fail at once with "database is locked" when it
later writes (a WAL snapshot cannot be upgraded once another writer
committed), and it breaks SAVEPOINTs. The price is that transactions are
serialised, so keep each unit of work short: never hold a session open
across a model generation or a Slack API call.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from storage.dbfile import sqlite_path
from storage.errors import DatabaseUnavailable

__all__ = ["make_engine", "make_session_factory", "check_database", "probe_write", "describe_url"]

SQLITE_BUSY_TIMEOUT_MS = 10_000


def describe_url(url: str) -> str:
    """The URL with any password hidden, for messages and logs."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparseable database URL>"


def make_engine(url: str) -> Engine:
    """Create the SQLAlchemy engine; raise :class:`DatabaseUnavailable` for a malformed URL or missing driver."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise DatabaseUnavailable(f"{describe_url(url)} is not a valid database URL") from None
    try:
        if parsed.get_backend_name() == "sqlite":
            engine = create_engine(parsed, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})
            event.listen(engine, "connect", _sqlite_pragmas)
            event.listen(engine, "begin", _sqlite_begin)
            path = sqlite_path(parsed)
            if path is not None:
                _never_recreate(engine, path)
            return engine
        return create_engine(parsed, pool_pre_ping=True, pool_size=5, max_overflow=10)
    except (NoSuchModuleError, ImportError) as error:
        raise DatabaseUnavailable(f"no driver for {parsed.drivername} ({error.__class__.__name__})") from None


def _sqlite_pragmas(dbapi_connection, _record) -> None:  # noqa: ANN001 - DB-API connection
    dbapi_connection.isolation_level = None  # the driver no longer emits BEGIN; _sqlite_begin does
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    # Switching a new file to WAL needs an exclusive lock, and SQLite answers "database is locked"
    # at once (no busy handler) when another connection is switching it too: retry briefly.
    for attempt in range(50):
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            break
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or attempt == 49:
                raise
            time.sleep(0.02 * (attempt + 1))
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _sqlite_begin(connection) -> None:  # noqa: ANN001 - SQLAlchemy Connection
    connection.exec_driver_sql("BEGIN IMMEDIATE")


# SQLite files this process has opened; see _never_recreate
_USED_FILES: set[Path] = set()


def _never_recreate(engine: Engine, path: Path) -> None:
    """Refuse to connect to a SQLite file this process used and that has since been deleted.

    SQLite creates a missing file on connect: a running bot whose file was deleted would start an empty
    database with its next connection (any engine's), hiding the loss. The connections already open go on
    with the deleted file; ``storage.dbfile`` reports the loss and ``itbot run`` refuses the empty file.
    """
    def refuse_if_gone(*_args) -> None:  # noqa: ANN002 - do_connect's (dialect, record, cargs, cparams)
        if path in _USED_FILES and not path.exists():
            raise sqlite3.OperationalError(f"unable to open database file: {path} was deleted while in use")

    event.listen(engine, "do_connect", refuse_if_gone)
    event.listen(engine, "connect", lambda *_: _USED_FILES.add(path))


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions that keep loaded objects usable after commit."""
    return sessionmaker(engine, expire_on_commit=False)


def check_database(engine: Engine) -> None:
    """Open a connection and run ``SELECT 1``; raise :class:`DatabaseUnavailable` with the reason."""
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except SQLAlchemyError as error:
        reason = str(getattr(error, "orig", None) or error.__class__.__name__).splitlines()[0]
        where = engine.url.render_as_string(hide_password=True)
        raise DatabaseUnavailable(f"cannot reach the database at {where}: {reason}") from None


def probe_write(session: Session) -> None:
    """Rewrite one row as it is, proving the database still takes writes; the caller rolls back.

    ``SELECT 1`` passes on a read-only replica (PostgreSQL after a fail-over to a standby) or a connection
    that may not write, while every question needs a write. The row is Alembic's version row, there in
    every migrated database.
    """
    session.execute(text("UPDATE alembic_version SET version_num = version_num"))
