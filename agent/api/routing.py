"""Declaring routes: one `Route` per method and path, in one table the app registers and
the OpenAPI document is built from (agent/api/__init__.py shows how a route module reads).

A handler takes a `Call` (the request, the authenticated principal, the parsed body and
query, the context) and returns an `Out` model (200), an `Answer` (another status,
headers) or an aiohttp response it built itself. It maps: the rules are the services'."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel

from agent.api.context import ApiContext
from agent.api.problems import Problem
from agent.api.schemas import MAX_ID, NoQuery, Query
from agent.model.access import Principal, Role

M = TypeVar("M", bound=BaseModel)

ALL_ROLES = frozenset(Role)
READERS = frozenset({Role.ADMIN, Role.INVESTIGATOR, Role.VIEWER})
ADMIN = frozenset({Role.ADMIN})
_PARAM = re.compile(r"\{(\w+)\}")


@dataclass(frozen=True)
class Answer:
    """A model answered with another status than 200, or with headers (Location, Link).
    `resource` names what the call made or touched for the audit trail ("target:3")."""

    model: BaseModel | None
    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)
    resource: str | None = None


Reply = BaseModel | Answer | web.StreamResponse


@dataclass
class Call:
    """One request as a handler sees it."""

    request: web.Request
    principal: Principal
    context: ApiContext
    body_model: BaseModel | None
    query_model: BaseModel

    def body(self, model: type[M]) -> M:
        """The parsed body, as the route's declared `body` model."""
        if not isinstance(self.body_model, model):
            raise TypeError(f"this route's body is not a {model.__name__}")
        return self.body_model

    def query(self, model: type[M]) -> M:
        """The parsed query string, as the route's declared `query` model."""
        if not isinstance(self.query_model, model):
            raise TypeError(f"this route's query is not a {model.__name__}")
        return self.query_model

    def id(self, name: str = "id") -> int:
        """An integer path parameter; one too large to be stored names nothing (404)."""
        value = int(self.request.match_info[name])  # the route's pattern admits digits only
        if value > MAX_ID:
            raise Problem(404, f"no such {name} {value}")
        return value


Handler = Callable[[Call], Awaitable[Reply]]


@dataclass(frozen=True)
class Route:
    """One operation. `path` is as OpenAPI spells it ("/v1/targets/{id}"); every `{param}`
    is a positive integer. `responses` maps the success statuses to their models (None: no
    body); the problems every route may answer are added by the OpenAPI builder.
    `mutating`: recorded in the audit trail (default: any method but GET).
    `resource`: the audit entry's resource, from the path parameters ("target:{id}")."""

    method: str
    path: str
    handler: Handler
    roles: frozenset[Role]
    summary: str
    tag: str
    body: type[BaseModel] | None = None
    query: type[Query] = NoQuery
    responses: Mapping[int, type[BaseModel] | None] = field(default_factory=lambda: {200: None})
    mutating: bool | None = None
    resource: str | None = None
    description: str = ""
    # A body the handler reads itself (POST /v1/hash: multipart/form-data, streamed): its
    # OpenAPI request body, declared beside the 413/415 problems a body may answer.
    upload: Mapping[str, Any] | None = None

    @property
    def audited(self) -> bool:
        return self.mutating if self.mutating is not None else self.method != "GET"

    @property
    def params(self) -> list[str]:
        return _PARAM.findall(self.path)

    @property
    def aiohttp_path(self) -> str:
        """The path for aiohttp's router: integer parameters match digits only (1 to 10), so
        `/v1/targets/abc` is an unknown route (404), never a handler's parse error."""
        return _PARAM.sub(lambda m: "{" + m.group(1) + r":\d{1,10}}", self.path)

    @property
    def operation_id(self) -> str:
        return self.handler.__name__

    def audit_resource(self, request: web.Request) -> str | None:
        if self.resource is None:
            return None
        return self.resource.format_map(dict(request.match_info))
