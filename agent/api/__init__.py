"""The HTTP API (`dweb-agent run` serves it on [api] host:port): aiohttp, bearer tokens,
roles, RFC 9457 problems, per-token rate limits, an audit trail and /openapi.json.

A route module (agent/api/routes/<name>.py) declares its routes in one list and
agent/api/routes/__init__.py adds it to `ROUTES`; the app and the OpenAPI document are
both built from that list:

    from agent.api.routing import ADMIN, READERS, Answer, Call, Route
    from agent.api.schemas import Body, Out

    class TargetIn(Body):            # strict, unknown fields refused (422 naming them)
        url: str

    class TargetOut(Out):
        id: int
        url: str

    async def add_target(call: Call) -> Answer:
        body = call.body(TargetIn)                           # parsed and validated already
        added = await call.context.services.targets.add(body.url)   # a service does the work
        out = TargetOut(id=added.target.id, url=added.target.url)
        return Answer(out, 201, resource=f"target:{out.id}")

    ROUTES = [
        Route("POST", "/v1/targets", add_target, roles=ADMIN, summary="Watch a target",
              tag="targets", body=TargetIn, responses={201: TargetOut, 200: TargetOut}),
    ]

Before a handler runs, agent.api.app has checked the token (401), its rate limit (429),
the role (403), the query (`query=` a `schemas.Query` model; 400/422) and the body (415,
413, 400, 422). A handler raises `problems.Problem(status, detail)` for a refusal of its
own, or lets a service's NotFound (404) / Invalid (422) pass; `call.id("id")` reads an
integer path parameter (every `{param}` is one). Mutating routes (any method but GET,
unless `mutating=False`) are audited before the answer leaves, with `Route.resource` ("target:{id}")
or the `Answer.resource` the handler gave.

Serving: `agent.api.app.build_app(ApiContext(...))`; agent.runtime.process builds it over
the agent's store and catalog. The API imports services, never the store or the core."""
