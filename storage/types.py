"""Column types shared by the models: UTC timestamps and string-backed choices.

SQLite has no time zone type, so :class:`UtcDateTime` stores naive UTC there
and hands back aware UTC datetimes on every engine; naive datetimes are
refused on the way in, because a naive value is a time zone bug waiting.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum

from sqlalchemy import DateTime, Dialect, Enum
from sqlalchemy.types import TypeDecorator

__all__ = ["UtcDateTime", "choice", "utcnow"]


def utcnow() -> datetime:
    """The current time as an aware UTC datetime."""
    return datetime.now(UTC)


class UtcDateTime(TypeDecorator[datetime]):
    """An aware UTC ``datetime`` on every engine."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value.isoformat()} given; use an aware UTC datetime")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def choice(enum_class: type[StrEnum], name: str) -> Enum:
    """A string column limited to ``enum_class``'s values by a CHECK constraint (no native ENUM type).

    Args:
        enum_class: The allowed values; plain strings equal to a value are accepted too.
        name: Names the CHECK constraint (``ck_<table>_<name>``).
    """
    return Enum(
        enum_class,
        name=name,
        native_enum=False,
        create_constraint=True,
        validate_strings=True,
        length=32,
        values_callable=lambda members: [member.value for member in members],
    )
