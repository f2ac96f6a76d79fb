"""The webhooks pages (admins only, as the API's webhook routes but for platforms, which
cannot log in): the subscriptions, subscribing a URL, and one subscription's details with
its recent delivery attempts, a replay, a test event, a new secret, re-enabling, removal.

A signing secret is shown once, on the answer to the POST that made it (status 201 for a
new subscription), and never put in a URL, a redirect or a log: no other page has it."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

from agent.console.routing import ADMIN, Page, View
from agent.model.events import EVENT_TYPES
from agent.model.time import utcnow
from agent.services.errors import Invalid
from agent.services.webhooks import SubscriptionRequest

# The API's bounds on a subscription (agent.api.routes.webhooks.WebhookIn).
MAX_URL = 4096
MAX_NAMES = 100
MAX_DESCRIPTION = 1000
# Delivery attempts listed on a subscription's page, newest first.
ATTEMPTS_SHOWN = 50
# A replay's default start: a day back covers an endpoint that was down overnight.
REPLAY_DEFAULT = timedelta(hours=24)
_DATETIME_LOCAL = "%Y-%m-%dT%H:%M"
_SEPARATORS = re.compile(r"[,\n]")
_MAX_NAMES_FIELD = 16_384


def _names(view: View, name: str) -> tuple[str, ...]:
    """A field of names separated by commas or lines, blanks dropped, each kept once."""
    raw = view.field(name, required=False, max_len=_MAX_NAMES_FIELD)
    names = tuple(dict.fromkeys(part.strip() for part in _SEPARATORS.split(raw) if part.strip()))
    if len(names) > MAX_NAMES:
        raise Invalid(f"at most {MAX_NAMES} {name}, not {len(names)}", field=name)
    return names


def _since(view: View) -> datetime:
    """The replay form's start, a datetime-local read as UTC (as the page says)."""
    raw = view.field("since", max_len=40)
    try:
        since = datetime.fromisoformat(raw)
    except ValueError:
        raise Invalid(f"since is not a date and time: {raw}", field="since") from None
    return since.replace(tzinfo=UTC) if since.tzinfo is None else since.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class Typed:
    """What was typed in the subscribe form, shown again beside a refusal."""

    url: str = ""
    lists: str = ""
    labels: str = ""
    events: tuple[str, ...] = ()
    description: str = ""
    unknown: bool = False

    @classmethod
    def of(cls, view: View) -> Typed:
        form = view.form
        return cls(
            url=form.get("url", "").strip()[:MAX_URL],
            lists=form.get("lists", "")[:_MAX_NAMES_FIELD],
            labels=form.get("labels", "")[:_MAX_NAMES_FIELD],
            events=tuple(form.getall("events", [])[: len(EVENT_TYPES) + 1]),
            description=form.get("description", "")[:MAX_DESCRIPTION],
            unknown=form.get("allow_unknown_lists") == "1",
        )


async def _list_page(
    view: View, *, status: int = 200, error: Invalid | None = None, typed: Typed | None = None
) -> web.Response:
    removed = view.query("removed", max_len=20)
    return view.render(
        "webhooks.html",
        {
            "webhooks": await view.context.services.webhooks.all(),
            "event_types": [e.value for e in EVENT_TYPES],
            "known_lists": await view.context.services.lists.known_names(),
            "removed": int(removed) if removed is not None and removed.isdigit() else None,
            "error": error.message if error is not None else None,
            "error_field": error.field if error is not None else None,
            "typed": typed or Typed(),
        },
        status=status,
    )


async def _detail_page(view: View, subscription_id: int, *, status: int = 200, **shown: Any) -> web.Response:
    """One subscription's page; `shown`: what the POST it answers has to say (a secret, a test's result)."""
    services = view.context.services
    sub = await services.webhooks.get(subscription_id)
    attempts = await services.webhooks.attempts(subscription_id, limit=ATTEMPTS_SHOWN)
    notices = {
        "replayed": "{n} deliveries queued again (same webhook-id, so the receiver can de-duplicate).",
        "enabled": "Enabled again (same secret, failure streak cleared); {n} pending deliveries go out again.",
    }
    notice = None
    for key, sentence in notices.items():
        value = view.query(key, max_len=20)
        if value is not None and value.isdigit():
            notice = sentence.format(n=int(value))
    values: dict[str, Any] = {
        "sub": sub,
        "attempts": attempts,
        "attempts_shown": ATTEMPTS_SHOWN,
        "notice": notice,
        "since_default": (utcnow() - REPLAY_DEFAULT).strftime(_DATETIME_LOCAL),
        "secret": None,
        "secret_until": None,
        "created": False,
        "relabelled": (),
        "tested": None,
        "error": None,
        "error_field": None,
    }
    return view.render("webhook.html", {**values, **shown}, status=status)


async def webhooks_page(view: View) -> web.StreamResponse:
    return await _list_page(view)


async def add_webhook(view: View) -> web.StreamResponse:
    typed = Typed.of(view)
    try:
        request = SubscriptionRequest(
            view.field("url", max_len=MAX_URL),
            lists=_names(view, "lists"),
            labels=_names(view, "labels"),
            events=tuple(dict.fromkeys(typed.events)),
            description=view.field("description", required=False, max_len=MAX_DESCRIPTION) or None,
            allow_unknown_lists=typed.unknown,
            owner=view.principal.name,
        )
        added = await view.context.services.webhooks.add(request)
    except Invalid as exc:
        return await _list_page(view, status=422, error=exc, typed=typed)
    # The answer itself carries the secret: a redirect would have to put it in a URL.
    return await _detail_page(
        view, added.subscription.id, status=201, secret=added.secret, created=True, relabelled=added.relabelled
    )


async def webhook_page(view: View) -> web.StreamResponse:
    return await _detail_page(view, view.id())


async def replay(view: View) -> web.StreamResponse:
    subscription_id = view.id()
    try:
        since = _since(view)
    except Invalid as exc:
        return await _detail_page(view, subscription_id, status=422, error=exc.message, error_field=exc.field)
    queued = await view.context.services.webhooks.replay(since, subscription_id)
    raise view.redirect(f"/webhooks/{subscription_id}?replayed={queued}")


async def send_test(view: View) -> web.StreamResponse:
    subscription_id = view.id()
    try:
        result = await view.context.services.webhooks.test(subscription_id)
    except Invalid as exc:  # a disabled subscription is not tested
        return await _detail_page(view, subscription_id, status=422, error=exc.message, error_field="test")
    return await _detail_page(view, subscription_id, tested=result)


async def rotate(view: View) -> web.StreamResponse:
    subscription_id = view.id()
    rotation = await view.context.services.webhooks.rotate(subscription_id)
    return await _detail_page(view, subscription_id, secret=rotation.secret, secret_until=rotation.previous_until)


async def enable(view: View) -> web.StreamResponse:
    subscription_id = view.id()
    enabled = await view.context.services.webhooks.enable(subscription_id)
    raise view.redirect(f"/webhooks/{subscription_id}?enabled={enabled.pending}")


async def remove(view: View) -> web.StreamResponse:
    subscription_id = view.id()
    if view.form.get("confirm") != "yes":
        sentence = f"tick “yes, remove it” to remove subscription {subscription_id}; nothing was removed"
        return await _detail_page(view, subscription_id, status=422, error=sentence, error_field="confirm")
    await view.context.services.webhooks.remove(subscription_id)
    raise view.redirect(f"/webhooks?removed={subscription_id}")


_ONE = "/webhooks/{id}"
_RESOURCE = "webhook:{id}"

PAGES = [
    Page("GET", "/webhooks", webhooks_page, ADMIN),
    Page("POST", "/webhooks", add_webhook, ADMIN, resource="webhook"),
    Page("GET", _ONE, webhook_page, ADMIN),
    Page("POST", _ONE + "/replay", replay, ADMIN, resource=_RESOURCE),
    Page("POST", _ONE + "/test", send_test, ADMIN, resource=_RESOURCE),
    Page("POST", _ONE + "/rotate", rotate, ADMIN, resource=_RESOURCE),
    Page("POST", _ONE + "/enable", enable, ADMIN, resource=_RESOURCE),
    Page("POST", _ONE + "/remove", remove, ADMIN, resource=_RESOURCE),
]
