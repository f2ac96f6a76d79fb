"""A reviewer's own settings: whether previews are veiled until revealed."""

from __future__ import annotations

from aiohttp import web

from agent.console.routing import READERS, Page, View
from agent.model.access import Preferences


async def settings_page(view: View) -> web.StreamResponse:
    prefs = await view.context.services.sessions.preferences(view.principal)
    return view.render("settings.html", {"prefs": prefs, "saved": view.query("saved") == "1"})


async def save_settings(view: View) -> web.StreamResponse:
    prefs = Preferences(blur_previews=view.form.get("blur_previews") == "1")
    await view.context.services.sessions.set_preferences(view.principal, prefs)
    raise view.redirect("/settings?saved=1")


PAGES = [
    Page("GET", "/settings", settings_page, READERS),
    Page("POST", "/settings", save_settings, READERS, resource="preferences"),
]
