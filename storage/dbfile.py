"""The SQLite file under a running bot: still the one it opened? writable, with enough disk around it? and
was a database used at that path before, so that an empty one in its place is a loss, not a fresh install?

A deleted SQLite file does not stop SQLite: open connections go on reading and writing the unlinked file,
everything stored from then on vanishes at the next restart, and that restart would start an empty
database. :class:`DatabaseFile` notices (same device and inode as when opened) and says so once;
``storage.db`` keeps the running process from creating a new file in its place; a note beside the file
(:func:`record_database`) lets ``itbot run`` refuse an empty one at start.

PostgreSQL has no file: :func:`sqlite_path` is None there and none of this applies.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, NamedTuple

from sqlalchemy import Engine, event
from sqlalchemy.engine import URL, make_url

__all__ = ["DatabaseFile", "FileIdentity", "sqlite_path", "watch_database_file", "is_empty_database",
           "record_database", "recorded_database"]


class FileIdentity(NamedTuple):
    """What makes a file the same file: its device and inode (a name can point at another one)."""

    device: int
    inode: int


def sqlite_path(url: "str | URL") -> Path | None:
    """The database file of a SQLite URL, absolute; None for other databases, in-memory SQLite and URI filenames."""
    parsed = make_url(url)
    database = parsed.database or ""
    if parsed.get_backend_name() != "sqlite" or database in ("", ":memory:") or database.startswith("file:"):
        return None
    return Path(database).expanduser().resolve()


def file_identity(path: Path) -> FileIdentity | None:
    """The file's identity now; None when nothing is at ``path``."""
    try:
        found = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None
    return FileIdentity(found.st_dev, found.st_ino)


class DatabaseFile:
    """The SQLite file a bot opened, watched for deletion or replacement.

    Args:
        path: The file; it must exist (the engine has opened it).
        on_lost: Called once, with ``"deleted"`` or ``"replaced"``, the first time :meth:`problem` sees it.
    """

    def __init__(self, path: Path, *, on_lost: Callable[[str], None] | None = None) -> None:
        identity = file_identity(path)
        if identity is None:
            raise FileNotFoundError(path)
        self.path = path
        self.opened = identity
        self._on_lost = on_lost
        self._reported = False
        self._lock = threading.Lock()

    def problem(self) -> str | None:
        """``"deleted"`` or ``"replaced"`` when ``path`` is no longer the file opened; None while it is."""
        now = file_identity(self.path)
        problem = None if now == self.opened else "deleted" if now is None else "replaced"
        if problem and self._on_lost is not None:
            with self._lock:
                first, self._reported = not self._reported, True
            if first:
                self._on_lost(problem)
        return problem

    def check_quietly(self) -> None:
        """:meth:`problem` for the connection pool: a file that cannot even be looked at is for /readyz to
        report (:meth:`problem` raises there); the unit of work taking the connection must not fail on it."""
        try:
            self.problem()
        except OSError:
            pass

    def writable(self) -> bool:
        """False when the file system is mounted read-only (ext4 remounts itself so after a disk error) or the
        process may no longer write the file, or create its ``-wal`` beside it.

        Connections opened before go on reading, and SQLite finds out only when a transaction commits: by then
        the question is lost. A rolled-back write does not reach the disk, so it cannot tell.
        """
        if os.statvfs(self.path.parent).f_flag & os.ST_RDONLY:
            return False
        return os.access(self.path.parent, os.W_OK) and (os.access(self.path, os.W_OK) or not self.path.exists())

    def free_bytes(self) -> int:
        """Free space on the file system that holds the database (and its WAL, which grows first)."""
        return shutil.disk_usage(self.path.parent).free


def watch_database_file(engine: Engine, *, on_lost: Callable[[str], None] | None = None) -> DatabaseFile | None:
    """Watch the SQLite file of ``engine``, checked each time a unit of work takes a connection.

    Opens a connection first, so the file watched is the one the engine uses. None for PostgreSQL and
    in-memory SQLite. A check is one ``stat``, microseconds against a transaction's milliseconds.
    """
    path = sqlite_path(engine.url)
    if path is None:
        return None
    with engine.connect():
        pass
    watched = DatabaseFile(path, on_lost=on_lost)
    event.listen(engine, "checkout", lambda *_: watched.check_quietly())
    return watched


# -- databases used before -------------------------------------------------------------------------------------


def is_empty_database(path: Path) -> bool:
    """True when ``path`` holds no database: missing, empty, or a SQLite file without any table."""
    if not path.is_file() or path.stat().st_size == 0:
        return True
    connection = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)
    try:
        return connection.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table'").fetchone()[0] == 0
    except sqlite3.DatabaseError:  # not a database, or locked: not empty; the migration says what is wrong
        return False
    finally:
        connection.close()


def _marker(path: Path) -> Path:
    """``.itbot.db.expected`` beside ``itbot.db``: hidden, and out of reach of ``rm itbot.db*``."""
    return path.with_name(f".{path.name}.expected")


def record_database(path: Path) -> None:
    """Note beside ``path`` that a database is in use there; an existing note is kept."""
    marker = _marker(path)
    if not marker.exists():
        marker.write_text(datetime.now(timezone.utc).date().isoformat() + "\n", encoding="utf-8")


def recorded_database(path: Path) -> str | None:
    """The date since which a database at ``path`` has been in use, if a note says so."""
    try:
        return _marker(path).read_text(encoding="utf-8").strip() or "an earlier run"
    except FileNotFoundError:
        return None
