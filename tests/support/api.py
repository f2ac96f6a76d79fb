"""The real API app on a real socket (127.0.0.1, a free port), tokens for it, and a client
whose every response is checked against the app's own /openapi.json.

    async with api_server(store, settings) as api:
        admin = await api.client(Role.ADMIN)
        resp = await admin.get("/v1/targets")        # validated against the document
        assert resp.status == 200

`check_response` is the validation: the status must be one the operation declares, the
content type the declared one, and the JSON body valid against its schema; an answer of a
route the document does not know (404, 405) must be a problem. Every API test calls it on
every response (ApiClient does it itself)."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import jsonschema
from aiohttp import web
from referencing import Registry
from referencing.jsonschema import DRAFT202012

from agent.api.app import build_app
from agent.api.context import ApiContext
from agent.api.routing import Route
from agent.config import Settings
from agent.lists.catalog import ListCatalog
from agent.media import MediaHasher
from agent.model.access import Role
from agent.services import Services
from agent.services.audit import AuditService
from agent.services.matching import MatchService
from agent.services.tokens import TokensService
from agent.store import Store

_DOC_URI = "urn:dweb-agent:openapi"
PROBLEM_JSON = "application/problem+json"


@dataclass(frozen=True)
class ApiResponse:
    status: int
    headers: Mapping[str, str]
    content_type: str
    text: str

    def json(self) -> Any:
        return json.loads(self.text)

    @property
    def problem(self) -> dict[str, Any]:
        assert self.content_type == PROBLEM_JSON, f"not a problem: {self.status} {self.content_type} {self.text[:200]}"
        loaded: dict[str, Any] = json.loads(self.text)
        return loaded

    def fields(self) -> list[str]:
        """The fields a problem's `errors` names."""
        return [e["field"] for e in self.problem.get("errors", [])]


@dataclass
class OpenApiChecker:
    document: dict[str, Any]
    _registry: Registry[Any] = field(init=False)
    _paths: list[tuple[re.Pattern[str], str]] = field(init=False)

    def __post_init__(self) -> None:
        self._registry = Registry().with_resource(_DOC_URI, DRAFT202012.create_resource(self.document))
        self._paths = [
            (re.compile("^" + re.sub(r"\\\{\w+\\\}", "[^/]+", re.escape(p)) + "$"), p) for p in self.document["paths"]
        ]

    def validate(self, instance: Any, schema: dict[str, Any]) -> None:
        if "$ref" in schema and schema["$ref"].startswith("#"):
            schema = {"$ref": _DOC_URI + schema["$ref"]}
        jsonschema.Draft202012Validator(schema, registry=self._registry).validate(instance)

    def template(self, path: str) -> str | None:
        return next((t for rx, t in self._paths if rx.match(path)), None)

    def check(self, method: str, path: str, resp: ApiResponse) -> None:
        """Fail unless `resp` is what the document says `method path` answers."""
        problem_schema = {"$ref": "#/components/schemas/ProblemDetail"}
        template = self.template(path)
        operation = self.document["paths"].get(template, {}).get(method.lower()) if template else None
        if operation is None:
            assert resp.status in (404, 405), f"{method} {path}: undocumented and answered {resp.status}"
            assert resp.content_type == PROBLEM_JSON, resp.content_type
            self.validate(resp.json(), problem_schema)
            return
        declared = operation["responses"].get(str(resp.status))
        assert declared is not None, f"{method} {template}: status {resp.status} not declared ({resp.text[:300]})"
        content = declared.get("content")
        if content is None:
            assert resp.text == "", f"{method} {template} {resp.status}: a body where none is declared"
            return
        assert resp.content_type in content, f"{method} {template} {resp.status}: {resp.content_type} not declared"
        self.validate(resp.json(), content[resp.content_type]["schema"])
        if resp.content_type == PROBLEM_JSON:
            assert resp.json()["status"] == resp.status


def check_response(checker: OpenApiChecker, method: str, path: str, resp: ApiResponse) -> None:
    checker.check(method, path, resp)


class ApiClient:
    """A real aiohttp client for one token (or none), checking every response."""

    def __init__(self, session: aiohttp.ClientSession, base: str, checker: OpenApiChecker, token: str | None) -> None:
        self._session = session
        self._base = base
        self._checker = checker
        self.token = token

    async def request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        data: bytes | str | AsyncIterator[bytes] | None = None,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
    ) -> ApiResponse:
        sent: dict[str, str] = {}
        if self.token is not None:
            sent["Authorization"] = f"Bearer {self.token}"
        if json_body is not None:
            data = json.dumps(json_body)
            sent["Content-Type"] = "application/json"
        sent.update(headers or {})
        async with self._session.request(method, self._base + path, data=data, headers=sent, params=params) as r:
            text = await r.text()
            resp = ApiResponse(r.status, dict(r.headers), r.content_type if text or r.status != 204 else "", text)
        check_response(self._checker, method, path, resp)
        return resp

    async def get(self, path: str, **params: str) -> ApiResponse:
        return await self.request("GET", path, params=params or None)

    async def post(self, path: str, body: Any) -> ApiResponse:
        return await self.request("POST", path, json_body=body)

    async def delete(self, path: str) -> ApiResponse:
        return await self.request("DELETE", path)


@dataclass
class ApiServer:
    url: str
    store: Store
    settings: Settings
    tokens: TokensService
    audit: AuditService
    services: Services
    checker: OpenApiChecker
    session: aiohttp.ClientSession

    async def token(self, role: Role, name: str | None = None) -> str:
        """A new token of `role` (made through TokensService, as `dweb-agent tokens add` does)."""
        return (await self.tokens.add(role, name)).token

    async def client(self, role: Role | None = None, *, name: str | None = None, token: str | None = None) -> ApiClient:
        """A client with a new token of `role`, or with `token` as given, or with none."""
        if role is not None:
            token = await self.token(role, name)
        return ApiClient(self.session, self.url, self.checker, token)


def api_settings(**api: Any) -> Settings:
    """Default settings with [api] overrides (a test's own limits)."""
    base = Settings()
    return base.model_copy(update={"api": base.api.model_copy(update=api)})


@asynccontextmanager
async def api_server(
    store: Store,
    settings: Settings | None = None,
    *,
    clock: Callable[[], float] | None = None,
    catalog: Callable[[], ListCatalog] | None = None,
    routes: Sequence[Route] | None = None,
    media: MediaHasher | None = None,
    wake_scans: Callable[[], None] | None = None,
    console: bool = False,
) -> AsyncIterator[ApiServer]:
    """The API over `store` on 127.0.0.1:<free port>, for the block's life (with the console
    under /ui/ when `console`). /v1/match and
    /v1/hash match against `catalog` (default: no lists) and hash with `media` (None: digests only)."""
    settings = settings or api_settings()
    services = Services(settings, store)
    # The services' own: a token revoked through the API stops working at once, as in the agent.
    tokens = services.tokens
    audit = services.audit
    extra: dict[str, Any] = {"clock": clock} if clock is not None else {}
    matcher = MatchService(catalog or ListCatalog.empty, media, settings)
    context = ApiContext(settings, services, tokens, audit, matcher=matcher, wake_scans=wake_scans, **extra)
    app = build_app(context, routes)
    if console:  # the investigators' console under /ui/, as `dweb-agent run` mounts it
        from agent.console import mount_console

        mount_console(app, context)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    url = f"http://{host}:{port}"
    try:
        async with aiohttp.ClientSession() as session:
            async with session.get(url + "/openapi.json") as r:
                assert r.status == 200
                document = await r.json()
            yield ApiServer(url, store, settings, tokens, audit, services, OpenApiChecker(document), session)
    finally:
        await tokens.flush()
        await runner.cleanup()
