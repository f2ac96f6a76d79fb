"""The console's aiohttp sub-application, mounted under /ui/ beside the API (same server,
same services, same tokens): its templates, its static files, its pages."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import aiohttp_jinja2
import jinja2
from aiohttp import web

from agent.api.context import ApiContext
from agent.console.routing import PageEndpoint, console_errors
from agent.console.security import secure_headers

_HERE = Path(__file__).resolve().parent


def when(value: datetime | None) -> str:
    """A time as a reviewer reads it: UTC to the second ("-" when not yet)."""
    if value is None:
        return "-"
    return value.strftime("%Y-%m-%d %H:%M:%S UTC")


def duration(seconds: float | None) -> str:
    """Seconds as "3 d 4 h", "2 h 5 min", "4 min 10 s", "12 s" ("-" when unknown)."""
    if seconds is None:
        return "-"
    s = round(seconds)
    days, rest = divmod(s, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes} min"
    if minutes:
        return f"{minutes} min {secs} s"
    return f"{secs} s"


def build_console(context: ApiContext) -> web.Application:
    """The console over the API's context; mount it with `app.add_subapp("/ui", ...)`."""
    from agent.console.pages import PAGES
    from agent.console.pages.login import LoginPages

    app = web.Application(middlewares=[console_errors(context)])
    filters: dict[str, Callable[..., str]] = {"when": when, "duration": duration}
    aiohttp_jinja2.setup(
        app,
        loader=jinja2.FileSystemLoader(str(_HERE / "templates")),
        # Every template escapes every value: a DAG name or a list label is text, never markup.
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        filters=filters,
        default_helpers=False,
    )
    app.on_response_prepare.append(secure_headers)
    login = LoginPages(context)
    app.router.add_get("/login", login.form, allow_head=False)
    app.router.add_post("/login", login.submit)
    app.router.add_post("/logout", login.logout)
    app.router.add_get("/", login.home, allow_head=False)
    app.router.add_static("/static/", _HERE / "static", append_version=False)
    for page in PAGES:
        app.router.add_route(page.method, page.aiohttp_path, PageEndpoint(page, context).handle)
    return app


def mount_console(app: web.Application, context: ApiContext) -> None:
    """The console under /ui/ of `app` (the API's), and /ui itself sent there."""

    async def to_console(_request: web.Request) -> web.StreamResponse:
        raise web.HTTPPermanentRedirect("/ui/")

    app.router.add_get("/ui", to_console, allow_head=False)
    app.add_subapp("/ui", build_console(context))
