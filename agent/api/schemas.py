"""Base models of the API's JSON and the models several route modules share.

`Body`: a request body, strict (no "1" for 1) and closed (`extra="forbid"`: an unknown
field is a 422 naming it). `Query`: a query string, closed, its strings converted by the
field types. `Out`: what a route answers; its JSON schema is the OpenAPI response schema."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

# Ids are 32-bit in the store's tables: a larger one names nothing (404), never a store error.
MAX_ID = 2**31 - 1


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
