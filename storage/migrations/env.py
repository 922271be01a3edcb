"""Alembic environment: runs on the connection :mod:`storage.migrate` hands over.

There is no ``alembic.ini``; :func:`storage.migrate.upgrade` builds the
configuration in code and passes an open connection in
``config.attributes["connection"]``, inside the caller's transaction.
"""

from __future__ import annotations

from alembic import context

from storage.models import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through storage.migrate (itbot db upgrade), not the alembic command line")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",  # SQLite cannot ALTER most things in place
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
