"""The aiohttp application: every route of the table behind one pipeline, and /openapi.json.

For a /v1 call, in order: the bearer token (401), the token's rate limit (429), the
route's roles (403), the query (400/422), the body (415/413/400/422), the handler. A
mutating call is written to the audit trail before it is answered, refused or not, unless
no principal is known (401) or it was throttled (429: a flood must not fill the trail)."""

from __future__ import annotations

import json
from collections.abc import Sequence

import structlog
from aiohttp import web
from pydantic import BaseModel

from agent.api.auth import authenticate, authorize
from agent.api.body import parse_body, parse_query
from agent.api.context import API_CONTEXT, ApiContext
from agent.api.openapi import openapi_document
from agent.api.problems import Problem, from_service_error, problem_response, problems_middleware
from agent.api.ratelimit import RateLimiter
from agent.api.routing import Answer, Call, Reply, Route
from agent.model.access import Principal
from agent.services.errors import ServiceError

log = structlog.get_logger(__name__)

_UNAUDITED = frozenset({401, 429})


def json_answer(model: BaseModel | None, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    if model is None:
        return web.Response(status=status, headers=headers)
    text = json.dumps(model.model_dump(mode="json", by_alias=True))
    return web.Response(status=status, text=text, content_type="application/json", headers=headers)


def _response(reply: Reply) -> tuple[web.StreamResponse, str | None]:
    if isinstance(reply, web.StreamResponse):
        return reply, None
    if isinstance(reply, Answer):
        return json_answer(reply.model, reply.status, dict(reply.headers)), reply.resource
    return json_answer(reply), None


class _Endpoint:
    """One route's request pipeline (see the module docstring)."""

    def __init__(self, route: Route, context: ApiContext, limiter: RateLimiter) -> None:
        self.route = route
        self.context = context
        self.limiter = limiter

    async def handle(self, request: web.Request) -> web.StreamResponse:
        route, ctx = self.route, self.context
        principal: Principal | None = None
        resource: str | None = None
        try:
            principal = await authenticate(request, ctx.auth)
            self.limiter.check(principal.token_id)
            authorize(principal, route.roles)
            query = parse_query(request, route.query)
            body = await parse_body(request, route.body, ctx.settings.api.max_body_bytes) if route.body else None
            call = Call(request, principal, ctx, body, query)
            response, resource = _response(await route.handler(call))
        except Problem as problem:
            response = problem_response(problem, request.path)
        except ServiceError as exc:
            response = problem_response(from_service_error(exc), request.path)
        if principal is None or not route.audited or response.status in _UNAUDITED:
            return response
        # Recorded before the answer leaves: a caller that was told its change happened can
        # count on the trail holding it (a mutating call is rare beside reads; the wait is one insert).
        action = f"{route.method} {route.path}"
        await ctx.record_call(request, principal, action, response.status, resource or route.audit_resource(request))
        return response


def build_app(context: ApiContext, routes: Sequence[Route] | None = None) -> web.Application:
    """The API app over `context`: the given routes (default: every route module's)."""
    if routes is None:
        from agent.api.routes import ROUTES

        routes = ROUTES
    limiter = RateLimiter(context.settings.api.rate_limit_per_s, context.settings.api.rate_limit_burst, context.clock)
    # aiohttp's own cap well above ours: our check answers the 413 as a problem, naming the limit.
    app = web.Application(middlewares=[problems_middleware], client_max_size=context.settings.api.max_body_bytes * 2)
    app[API_CONTEXT] = context
    document = json.dumps(openapi_document(routes))

    async def openapi(_request: web.Request) -> web.Response:
        return web.Response(text=document, content_type="application/json")

    app.router.add_get("/openapi.json", openapi, allow_head=False)
    for route in routes:
        app.router.add_route(route.method, route.aiohttp_path, _Endpoint(route, context, limiter).handle)
    return app
