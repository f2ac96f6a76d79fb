"""Errors as RFC 9457 problem details (`application/problem+json`), and the edge middleware
that turns every refusal, the router's 404/405 included, into one.

A handler or a step before it raises `Problem`; services' `NotFound` and `Invalid` are mapped
here (404, 422). Anything else reaching the edge is a bug: it is logged (never the request's
headers, which carry the token) and answered as a bare 500 problem without internals."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus

import structlog
from aiohttp import web
from pydantic import BaseModel, ConfigDict

from agent.services.errors import Invalid, NotFound, ServiceError

PROBLEM_JSON = "application/problem+json"

log = structlog.get_logger(__name__)


class FieldError(BaseModel):
    """One bad field of a request: `gateways[0]`, `limit`, `body` (the body as a whole)."""

    model_config = ConfigDict(extra="forbid")

    field: str
    message: str


class ProblemDetail(BaseModel):
    """The body of every error answer (RFC 9457)."""

    model_config = ConfigDict(extra="forbid")

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    instance: str | None = None
    errors: list[FieldError] | None = None


@dataclass
class Problem(Exception):
    """A refusal to answer as a problem; `headers` go with it (WWW-Authenticate, Retry-After)."""

    status: int
    detail: str
    errors: Sequence[FieldError] = ()
    headers: Mapping[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.status} {self.detail}"


def problem_response(problem: Problem, instance: str | None = None) -> web.Response:
    body = ProblemDetail(
        title=HTTPStatus(problem.status).phrase,
        status=problem.status,
        detail=problem.detail,
        instance=instance,
        errors=list(problem.errors) or None,
    )
    return web.Response(
        status=problem.status,
        text=json.dumps(body.model_dump(mode="json", exclude_none=True)),
        content_type=PROBLEM_JSON,
        headers=dict(problem.headers),
    )


def from_service_error(exc: ServiceError) -> Problem:
    """A service's refusal: NotFound 404, Invalid (and any other) 422, with its one line."""
    if isinstance(exc, NotFound):
        return Problem(404, exc.message)
    if isinstance(exc, Invalid) and exc.field is not None:
        return Problem(422, exc.message, errors=[FieldError(field=exc.field, message=exc.message)])
    return Problem(422, exc.message)


def _from_http(exc: web.HTTPException) -> Problem:
    headers: dict[str, str] = {}
    if isinstance(exc, web.HTTPMethodNotAllowed):
        headers["Allow"] = ", ".join(sorted(exc.allowed_methods))
        return Problem(405, f"{exc.method} is not allowed here; allowed: {headers['Allow']}", headers=headers)
    if exc.status == 404:
        return Problem(404, "no such route")
    if exc.status == 413:
        return Problem(413, "the request body is too large")
    return Problem(exc.status, exc.reason or HTTPStatus(exc.status).phrase)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def problems_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The edge: whatever the app refuses goes out as a problem; a bug as a bare 500."""
    try:
        return await handler(request)
    except Problem as problem:
        return problem_response(problem, request.path)
    except ServiceError as exc:
        return problem_response(from_service_error(exc), request.path)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return problem_response(_from_http(exc), request.path)
    except Exception as exc:
        # The method and route only: the headers carry the caller's token.
        log.exception("api request failed", method=request.method, path=request.path, error=type(exc).__name__)
        return problem_response(Problem(500, "the agent could not answer this request"), request.path)
