"""The lists page: every hash list and denylist the agent has loaded, with its version,
counts, thresholds and problems, as GET /v1/lists says them (agent.services.lists.overview)."""

from __future__ import annotations

from aiohttp import web

from agent.console.routing import READERS, Page, View
from agent.services.lists import MAX_PROBLEM_LINES


async def lists_page(view: View) -> web.StreamResponse:
    overviews = await view.context.services.lists.overview(view.context.matcher.catalog())
    return view.render("lists.html", {"lists": overviews, "max_problems": MAX_PROBLEM_LINES})


PAGES = [
    Page("GET", "/lists", lists_page, READERS),
]
