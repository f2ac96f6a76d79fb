"""The watch targets page: every target with its polling state; investigators and admins
add one (through the SSRF guard, as an API caller's), admins pause, resume and remove them.

Pausing has no API route; the console gives it to admins, as removing: both stop the
agent from watching what someone asked it to watch."""

from __future__ import annotations

from aiohttp import web

from agent.console.routing import ADMIN, READERS, WRITERS, Page, View
from agent.services.errors import Invalid

# The API's bounds on a target (agent.api.routes.targets.TargetIn).
MAX_URL = 4096
MAX_INTERVAL_S = 31_536_000


def _interval(view: View) -> int | None:
    raw = view.field("interval_s", required=False, max_len=16)
    if not raw:
        return None
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_INTERVAL_S:
        raise Invalid(f"the interval is a whole number of seconds from 1 to {MAX_INTERVAL_S}", field="interval_s")
    return int(raw)


async def _page(
    view: View, *, status: int = 200, error: Invalid | None = None, url: str = "", interval: str = ""
) -> web.Response:
    targets = await view.context.services.targets.all()
    notice = None
    for key, sentence in (
        ("added", "Now watching target {id}."),
        ("watched", "Target {id} was watched already; it is left as it was."),
        ("paused", "Target {id} is paused: it is not polled until it is resumed."),
        ("resumed", "Target {id} is watched again."),
        ("removed", "Target {id} is no longer watched; its findings are kept."),
    ):
        value = view.query(key, max_len=20)
        if value is not None and value.isdigit():
            notice = sentence.format(id=int(value))
    return view.render(
        "targets.html",
        {
            "targets": targets,
            "notice": notice,
            "error": error.message if error is not None else None,
            "error_field": error.field if error is not None else None,
            "url": url,
            "interval": interval,
            "max_interval": MAX_INTERVAL_S,
        },
        status=status,
    )


async def targets_page(view: View) -> web.StreamResponse:
    return await _page(view)


async def add_target(view: View) -> web.StreamResponse:
    url = view.form.get("url", "").strip()[:MAX_URL]
    interval = view.form.get("interval_s", "").strip()[:16]
    try:
        interval_s = _interval(view)
        added = await view.context.services.targets.add(view.field("url", max_len=MAX_URL), interval_s, untrusted=True)
    except Invalid as exc:
        # The form again, with what was typed and the reason beside its field.
        return await _page(view, status=422, error=exc, url=url, interval=interval)
    raise view.redirect(f"/targets?{'added' if added.created else 'watched'}={added.target.id}")


async def set_enabled(view: View) -> web.StreamResponse:
    target_id = view.id()
    enabled = view.form.get("enabled") == "1"
    await view.context.services.targets.set_enabled(str(target_id), enabled)
    raise view.redirect(f"/targets?{'resumed' if enabled else 'paused'}={target_id}")


async def remove_target(view: View) -> web.StreamResponse:
    target_id = view.id()
    if view.form.get("confirm") != "yes":
        refusal = Invalid(f"tick “yes, remove it” to remove target {target_id}; nothing was removed", field="confirm")
        return await _page(view, status=422, error=refusal)
    await view.context.services.targets.remove(str(target_id))
    raise view.redirect(f"/targets?removed={target_id}")


PAGES = [
    Page("GET", "/targets", targets_page, READERS),
    Page("POST", "/targets", add_target, WRITERS, resource="target"),
    Page("POST", "/targets/{id}/enabled", set_enabled, ADMIN, resource="target:{id}"),
    Page("POST", "/targets/{id}/remove", remove_target, ADMIN, resource="target:{id}"),
]
