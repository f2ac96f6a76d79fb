"""Base models of the API's JSON and the models several route modules share.

`Body`: a request body, strict (no "1" for 1) and closed (`extra="forbid"`: an unknown
field is a 422 naming it). `Query`: a query string, closed, its strings converted by the
field types. `Out`: what a route answers; its JSON schema is the OpenAPI response schema."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field

# Ids are 32-bit in the store's tables: a larger one names nothing (404), never a store error.
MAX_ID = 2**31 - 1

_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})")


def _rfc3339(value: object) -> object:
    # pydantic alone also takes unix numbers ("0.5") and dates without a time; the
    # document promises RFC 3339 date-times, so only those are read.
    if isinstance(value, str) and not _RFC3339.fullmatch(value):
        raise ValueError("an RFC 3339 date-time with an offset, e.g. 2026-01-31T12:00:00Z")
    return value


# An RFC 3339 date-time with its offset ("2026-01-31T12:00:00Z"), as a query value or a body field.
Timestamp = Annotated[AwareDatetime, BeforeValidator(_rfc3339)]


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class Query(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NoQuery(Query):
    """A route that takes no query parameters (any one given is a 400)."""


class Page(Query):
    limit: int = Field(default=50, ge=1, le=500, description="at most this many items")
    cursor: str | None = Field(default=None, max_length=200, description="the next_cursor of the previous page")
