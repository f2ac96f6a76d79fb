"""Declaring console pages: one `Page` per method and path, behind one pipeline.

For every page, in order: the session cookie (none: a GET is sent to the login page, a POST
is refused), for a POST the origin (a browser's Origin / Sec-Fetch-Site must name this
site) and the form's CSRF token, then the page's roles (403), then the handler. Every POST
that reached a known principal is written to the audit trail, as the API's calls are, before
the answer leaves. Service errors become an HTML page with the service's own sentence."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import aiohttp_jinja2
import structlog
from aiohttp import web
from aiohttp.typedefs import Handler as RequestHandler
from aiohttp.typedefs import Middleware
from multidict import MultiDict, MultiDictProxy

from agent.api.context import ApiContext
from agent.console.security import same_origin
from agent.model.access import ConsoleSession, Principal, Role
from agent.services.errors import Invalid, NotFound, ServiceError

log = structlog.get_logger(__name__)

UI = "/ui"
SESSION_COOKIE = "dweb_session"
READERS = frozenset({Role.ADMIN, Role.INVESTIGATOR, Role.VIEWER})
WRITERS = frozenset({Role.ADMIN, Role.INVESTIGATOR})
ADMIN = frozenset({Role.ADMIN})
# The largest form a page reads (a note, a target URL, a few filters); a file is never posted.
MAX_FORM_BYTES = 64 * 1024
_MAX_ID = 2**53


class Refused(Exception):
    """A request the pipeline or a handler refuses, shown as an error page."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class View:
    """One request to a page, as its handler sees it."""

    request: web.Request
    context: ApiContext
    session: ConsoleSession
    form: MultiDictProxy[str]

    @property
    def principal(self) -> Principal:
        return self.session.principal

    def can(self, roles: frozenset[Role]) -> bool:
        return self.principal.role in roles

    def id(self, name: str = "id") -> int:
        value = int(self.request.match_info[name])  # the route admits digits only
        if value > _MAX_ID:
            raise Refused(404, f"no such {name} {value}")
        return value

    def field(self, name: str, *, required: bool = True, max_len: int = 4096) -> str:
        """A form field, stripped; a missing required one or an over-long one is Invalid."""
        value = self.form.get(name, "").strip()
        if required and not value:
            raise Invalid(f"{name} is required", field=name)
        if len(value) > max_len:
            raise Invalid(f"{name} is longer than {max_len} characters", field=name)
        return value

    def query(self, name: str, *, max_len: int = 512) -> str | None:
        value = self.request.query.get(name, "").strip()
        if len(value) > max_len:
            raise Invalid(f"{name} is longer than {max_len} characters", field=name)
        return value or None

    def render(self, template: str, values: Mapping[str, Any], *, status: int = 200) -> web.Response:
        context = {**page_globals(self.request, self.session), **values}
        return aiohttp_jinja2.render_template(template, self.request, context, status=status)

    @staticmethod
    def redirect(path: str) -> web.HTTPSeeOther:
        """See-other after a POST (so a reload does not post again); `path` is under /ui."""
        return web.HTTPSeeOther(UI + path)


def page_globals(request: web.Request, session: ConsoleSession | None) -> dict[str, Any]:
    """What the base template needs: who is logged in, the form token, the navigation."""
    role = session.principal.role if session is not None else None
    return {
        "me": session.principal if session is not None else None,
        "csrf": session.csrf if session is not None else "",
        "can_write": role in WRITERS,
        "is_admin": role in ADMIN,
        "path": request.path,
    }


Handler = Callable[[View], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class Page:
    """One console page. `path` is under /ui ("/findings/{id}"); `{param}` are integers.
    `resource` names the audit entry's resource from the path ("finding:{id}")."""

    method: str
    path: str
    handler: Handler
    roles: frozenset[Role]
    resource: str | None = None

    @property
    def aiohttp_path(self) -> str:
        return re.sub(r"\{(\w+)\}", lambda m: "{" + m.group(1) + r":\d{1,16}}", self.path)


def error_page(request: web.Request, session: ConsoleSession | None, status: int, message: str) -> web.Response:
    context = {**page_globals(request, session), "status": status, "message": message}
    return aiohttp_jinja2.render_template("error.html", request, context, status=status)


def login_redirect(request: web.Request) -> web.HTTPSeeOther:
    """To the login form, which comes back here (path and raw query) once logged in."""
    return web.HTTPSeeOther(f"{UI}/login?next={quote(request.path_qs, safe='/')}")


async def read_form(request: web.Request) -> MultiDict[str]:
    """A posted form's text fields, read to at most MAX_FORM_BYTES however it is sent (a
    chunked body declares no length): Refused 413 beyond that, 415 for anything but a form."""
    too_large = Refused(413, f"the form is larger than {MAX_FORM_BYTES} bytes")
    if request.content_length is not None and request.content_length > MAX_FORM_BYTES:
        raise too_large
    if request.content_type not in ("application/x-www-form-urlencoded", "multipart/form-data"):
        raise Refused(415, "send the page's form")
    try:
        raw = await request.clone(client_max_size=MAX_FORM_BYTES).post()
    except web.HTTPRequestEntityTooLarge:
        raise too_large from None
    return MultiDict((k, v) for k, v in raw.items() if isinstance(v, str))


_HTTP_MESSAGES = {
    404: "there is no such page in the console",
    405: "this page is not used that way (a form posts, a link gets)",
}


def console_errors(context: ApiContext) -> Middleware:
    """The console's own answer to what no page's pipeline answered: the router's 404 and
    405 (an unknown page, a wrong method), a static file not found, the login and logout
    handlers' refusals, a bug. Without it they would reach the API's edge and leave as JSON
    problems. Logged out, an unknown page goes to the login form, as every page does."""

    @web.middleware
    async def middleware(request: web.Request, handler: RequestHandler) -> web.StreamResponse:
        try:
            return await handler(request)
        except Refused as exc:
            status, message = exc.status, exc.message
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            status, message = exc.status, _HTTP_MESSAGES.get(exc.status, exc.reason)
        except Exception as exc:
            # The method and path only: the request's headers carry the session cookie.
            log.exception("console request failed", method=request.method, path=request.path, error=type(exc).__name__)
            status, message = 500, "the console could not answer this request (the agent's log says why)"
        session = await context.services.sessions.resolve(request.cookies.get(SESSION_COOKIE))
        static = request.path.startswith(f"{UI}/static/")
        if session is None and request.method == "GET" and status in (404, 405) and not static:
            raise login_redirect(request)
        return error_page(request, session, status, message)

    return middleware


class PageEndpoint:
    """One page's pipeline (see the module docstring)."""

    def __init__(self, page: Page, context: ApiContext) -> None:
        self.page = page
        self.context = context

    async def handle(self, request: web.Request) -> web.StreamResponse:
        page, ctx = self.page, self.context
        session = await ctx.services.sessions.resolve(request.cookies.get(SESSION_COOKIE))
        if session is None:
            if request.method == "GET":
                raise login_redirect(request)
            return error_page(request, None, 401, "your session has ended: log in again, then repeat this")
        form: MultiDictProxy[str] = MultiDictProxy(MultiDict())
        response: web.StreamResponse
        try:
            if request.method == "POST":
                form = await self._checked_form(request, session)
            if session.principal.role not in page.roles:
                allowed = ", ".join(sorted(r.value for r in page.roles))
                raise Refused(403, f"the {session.principal.role.value} role may not do this (allowed: {allowed})")
            response = await page.handler(View(request, ctx, session, form))
        except web.HTTPException as exc:
            response = error_page(request, session, exc.status, exc.reason) if exc.status >= 400 else exc
        except Refused as exc:
            response = error_page(request, session, exc.status, exc.message)
        except NotFound as exc:
            response = error_page(request, session, 404, exc.message)
        except Invalid as exc:
            response = error_page(request, session, 422, exc.message)
        except ServiceError as exc:
            response = error_page(request, session, 400, exc.message)
        if request.method == "POST":
            resource = page.resource.format_map(dict(request.match_info)) if page.resource else None
            await ctx.record_call(request, session.principal, f"POST {UI}{page.path}", response.status, resource)
        if isinstance(response, web.HTTPException):
            raise response
        return response

    async def _checked_form(self, request: web.Request, session: ConsoleSession) -> MultiDictProxy[str]:
        if not same_origin(request):
            raise Refused(403, "this form was sent from another site; it is refused")
        form = await read_form(request)
        if not self.context.services.sessions.csrf_ok(session, form.get("csrf")):
            raise Refused(403, "the form's security token is missing or out of date: reload the page and try again")
        return MultiDictProxy(form)
