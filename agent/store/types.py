"""Column types that behave the same on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine.interfaces import Dialect


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """An aware datetime, stored as UTC, always read back aware UTC.

    PostgreSQL has `timestamptz` and asyncpg returns aware values. SQLite has no
    time zones: SQLAlchemy stores the text without an offset and reads it back
    naive, so we store UTC there and re-attach UTC on the way out. Naive values
    are refused on the way in: guessing their zone would silently shift
    timestamps that decide what is "new since the last poll"."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value!r}: the store only takes aware datetimes")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            # One fixed text format (UTC, no offset) keeps SQLite's string
            # comparisons (ORDER BY, <, >) chronological.
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def json_type(*, nullable: bool = False) -> sa.types.TypeEngine[Any]:
    """Portable JSON. For nullable columns, Python None is stored as SQL NULL
    (not the JSON text 'null') so `IS NULL` means "absent" on both dialects."""
    return sa.JSON(none_as_null=nullable)


# SQLite only auto-increments an `INTEGER PRIMARY KEY` (the rowid alias); BIGINT
# would make the id column a plain nullable-by-default key. PostgreSQL gets a
# 64-bit identity for tables that grow without bound (scans, findings...).
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
