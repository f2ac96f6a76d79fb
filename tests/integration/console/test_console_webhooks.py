"""The console's webhooks pages over the real app, with a real receiver on 127.0.0.1: admins
only (investigators and viewers get 403, and no link); subscribing shows the secret once,
on the answer (201), never on another page; a subscription's page lists its delivery
attempts as recorded, replays them, sends a signed test event, rotates the secret, enables
a disabled one and removes one only with its checkbox; outside strings are shown as text."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import aiohttp

from agent.alerts.events import new_event_id
from agent.config import AlertSettings, Settings
from agent.model.access import Role
from agent.model.records import NewEvent
from agent.model.status import DeliveryStatus
from agent.model.time import utcnow
from agent.services.webhooks import SubscriptionRequest
from agent.store import Store
from tests.support.api import api_server, api_settings
from tests.support.console import ConsoleUser, Page
from tests.support.webhook_receiver import WebhookReceiver

HOSTILE = "<script>alert(1)</script>"
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"


def allowing_loopback() -> Settings:
    """[alerts] allow_hosts names 127.0.0.1, where the receiver listens (as the API's webhook tests do)."""
    return api_settings().model_copy(update={"alerts": AlertSettings(allow_hosts=["127.0.0.1"])})


async def post_pairs(user: ConsoleUser, path: str, pairs: Sequence[tuple[str, str]]) -> Page:
    """POST a form whose fields repeat (ticked checkboxes), with the session's CSRF token."""
    data = aiohttp.FormData([*pairs, ("csrf", user.csrf)])
    async with user.session.post(user.base + path, data=data, headers={"Origin": user.base}) as r:
        return Page(r.status, str(r.url), await r.text(), dict(r.headers))


def datetime_local(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M")


async def queue_event(store: Store, subscription_id: int, event_type: str = "finding.created") -> str:
    event = NewEvent(new_event_id(), event_type, {"finding": {"id": 0}}, (subscription_id,))
    await store.outbox.emit([event])
    return event.id


async def test_only_admins_reach_the_webhooks_pages(store: Store) -> None:
    """An investigator and a viewer get 403 on the list, a subscription's page and its
    forms (nothing changes), and their navigation has no Webhooks link; an admin's has."""
    async with api_server(store, allowing_loopback(), console=True) as api:
        sub = (await api.services.webhooks.add(SubscriptionRequest("http://127.0.0.1:9/h"))).subscription
        for role in (Role.INVESTIGATOR, Role.VIEWER):
            async with ConsoleUser.login(api.url, await api.token(role)) as user:
                targets = await user.get("/ui/targets")
                assert 'href="/ui/webhooks"' not in targets.text
                answers = [
                    await user.get("/ui/webhooks"),
                    await user.get(f"/ui/webhooks/{sub.id}"),
                    await user.post("/ui/webhooks", {"url": "http://127.0.0.1:9/other"}),
                    await user.post(f"/ui/webhooks/{sub.id}/rotate", {}),
                    await user.post(f"/ui/webhooks/{sub.id}/remove", {"confirm": "yes"}),
                ]
                assert [a.status for a in answers] == [403] * 5, role
                assert all(sub.secret not in a.text and "http://127.0.0.1:9/h" not in a.text for a in answers)
        assert [(s.id, s.url, s.secret) for s in await api.services.webhooks.all()] == [(sub.id, sub.url, sub.secret)]
        async with ConsoleUser.login(api.url, await api.token(Role.ADMIN)) as admin:
            assert 'href="/ui/webhooks"' in (await admin.get("/ui/targets")).text


async def test_an_admin_subscribes_a_receiver_and_sees_the_secret_once(store: Store) -> None:
    """The subscribe form makes the subscription with its filters and the admin as owner;
    its answer (201, at the form's own URL) shows the secret with "copy it now", and neither
    the list nor the subscription's page shows it again; the secret signs a test event the
    receiver verifies, and the attempt appears on the subscription's page."""
    async with (
        WebhookReceiver([]) as receiver,
        api_server(store, allowing_loopback(), console=True) as api,
        ConsoleUser.login(api.url, await api.token(Role.ADMIN, "ops")) as admin,
    ):
        await admin.get("/ui/webhooks")
        fields = [
            ("url", receiver.url("/hook")),
            ("lists", ""),
            ("labels", "terrorism, manifesto\nterrorism"),
            ("events", "finding.created"),
            ("events", "webhook.test"),
            ("description", f"acme {HOSTILE}"),
        ]
        made = await post_pairs(admin, "/ui/webhooks", fields)

        [sub] = await api.services.webhooks.all()
        assert made.status == 201 and made.url == api.url + "/ui/webhooks"
        assert sub.labels == ("terrorism", "manifesto") and sub.event_types == ("finding.created", "webhook.test")
        assert sub.owner == "ops" and sub.description == f"acme {HOSTILE}"
        assert made.text.count(sub.secret) == 1 and "Copy it now: it is not shown again." in made.text
        assert sub.secret not in made.url
        listed = await admin.get("/ui/webhooks")
        detail = await admin.get(f"/ui/webhooks/{sub.id}")
        for page in (listed, detail):
            assert page.status == 200 and sub.secret not in page.text and "not shown again" not in page.text
            assert f"acme {ESCAPED}" in page.text and HOSTILE not in page.text
        assert receiver.url("/hook") in listed.text and "terrorism, manifesto" in listed.text
        assert "Nothing was sent to it yet." in detail.text

        receiver.secrets = [sub.secret]
        tested = await admin.post(f"/ui/webhooks/{sub.id}/test", {})
        assert tested.status == 200 and "Delivered: the endpoint answered HTTP 204" in tested.text
        [got] = await receiver.wait_for(1, "/hook")
        assert got.verified and got.webhook_id is not None and got.webhook_id in tested.text
        assert sub.secret not in tested.text
        rows = attempt_rows((await admin.get(f"/ui/webhooks/{sub.id}")).text)
        assert [(r[1], r[2], r[4]) for r in rows] == [("1", "webhook.test", "204")]


def attempt_rows(html: str) -> list[list[str]]:
    """The attempts table's cells, as text (tags dropped), row by row."""
    table = html.split("<h2>Recent delivery attempts</h2>", 1)[1].split("</table>", 1)[0]
    body = table.split("<tbody>", 1)[1]
    rows = re.findall(r"<tr>(.*?)</tr>", body, re.S)
    return [[re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)] for row in rows]


async def test_a_subscribe_refused_by_the_guard_or_the_rules_says_why_and_adds_nothing(store: Store) -> None:
    """A URL on the private network is refused with the SSRF guard's reason (422, the typed
    values kept), as are an unknown list and an unknown event type; nothing is subscribed."""
    async with (
        api_server(store, allowing_loopback(), console=True) as api,
        ConsoleUser.login(api.url, await api.token(Role.ADMIN)) as admin,
    ):
        await admin.get("/ui/webhooks")
        private = await post_pairs(admin, "/ui/webhooks", [("url", "http://10.0.0.1/h"), ("labels", HOSTILE)])
        assert private.status == 422 and "http://10.0.0.1/h" in private.text
        assert "[alerts] allow_hosts" in private.text and 'role="alert" id="webhook-error"' in private.text
        assert f'value="{ESCAPED}"' in private.text and HOSTILE not in private.text
        unknown_list = await post_pairs(admin, "/ui/webhooks", [("url", "http://127.0.0.1:9/h"), ("lists", "gifct")])
        assert unknown_list.status == 422 and "unknown list gifct" in unknown_list.text
        unknown_event = await post_pairs(admin, "/ui/webhooks", [("url", "http://127.0.0.1:9/h"), ("events", "x.y")])
        assert unknown_event.status == 422 and "unknown event types" in unknown_event.text
        assert await api.services.webhooks.all() == []
        allowed = await post_pairs(
            admin,
            "/ui/webhooks",
            [("url", "http://127.0.0.1:9/h"), ("lists", "gifct"), ("allow_unknown_lists", "1")],
        )
        assert allowed.status == 201
        assert [s.lists for s in await api.services.webhooks.all()] == [("gifct",)]


async def test_the_attempts_table_shows_what_the_outbox_recorded(store: Store) -> None:
    """Attempts recorded through the outbox are listed newest first with their attempt
    number, event type, status code (or "no answer"), latency and error (as text)."""
    async with api_server(store, allowing_loopback(), console=True) as api:
        sub = (await api.services.webhooks.add(SubscriptionRequest("https://hooks.example/h"))).subscription
        first = await queue_event(store, sub.id)
        second = await queue_event(store, sub.id, "content.unavailable")
        [d1] = await store.outbox.deliveries_of(event_id=first)
        [d2] = await store.outbox.deliveries_of(event_id=second)
        out, later = store.outbox, utcnow() + timedelta(minutes=5)
        await out.record_attempt(
            d1.id, outcome="retry", http_status=503, error=f"busy {HOSTILE}", duration_ms=120, next_attempt_at=later
        )
        await out.record_attempt(
            d2.id, outcome="retry", http_status=None, error="connection refused", duration_ms=4, next_attempt_at=later
        )
        await out.record_attempt(d1.id, outcome="succeeded", http_status=204, error=None, duration_ms=31)
        async with ConsoleUser.login(api.url, await api.token(Role.ADMIN)) as admin:
            page = await admin.get(f"/ui/webhooks/{sub.id}")
        assert page.status == 200 and HOSTILE not in page.text
        rows = attempt_rows(page.text)
        assert [r[1:] for r in rows] == [
            ["2", "finding.created", first, "204", "31", "-", "succeeded"],
            ["1", "content.unavailable", second, "no answer", "4", "connection refused", "pending"],
            ["1", "finding.created", first, "503", "120", f"busy {ESCAPED}", "succeeded"],
        ]
        assert all(re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", r[0]) for r in rows)


async def test_replay_queues_the_deliveries_since_the_time_again(store: Store) -> None:
    """The replay form (since: a day ago by default) sets the subscription's failed and
    delivered deliveries pending again and says how many; another subscription's are left;
    a time in the future queues none, and a malformed one is refused beside the form."""
    async with api_server(store, allowing_loopback(), console=True) as api:
        sub = (await api.services.webhooks.add(SubscriptionRequest("https://hooks.example/h"))).subscription
        other = (await api.services.webhooks.add(SubscriptionRequest("https://other.example/h"))).subscription
        for subscription_id in (sub.id, other.id):
            [delivery] = await store.outbox.deliveries_of(event_id=await queue_event(store, subscription_id))
            await store.outbox.record_attempt(
                delivery.id, outcome="failed", http_status=410, error="gone", duration_ms=3
            )
        async with ConsoleUser.login(api.url, await api.token(Role.ADMIN)) as admin:
            page = await admin.get(f"/ui/webhooks/{sub.id}")
            default = re.search(r'id="since" name="since" type="datetime-local" required value="([^"]+)"', page.text)
            assert default is not None
            shown = datetime.fromisoformat(default.group(1)).replace(tzinfo=UTC)
            assert timedelta(hours=23, minutes=58) <= utcnow() - shown <= timedelta(hours=24, minutes=2)

            future = await admin.post(
                f"/ui/webhooks/{sub.id}/replay", {"since": datetime_local(utcnow() + timedelta(days=1))}
            )
            assert "0 deliveries queued again" in future.text
            assert [d.status for d in await store.outbox.deliveries_of(subscription_id=sub.id)] == [
                DeliveryStatus.FAILED
            ]

            replayed = await admin.post(f"/ui/webhooks/{sub.id}/replay", {"since": default.group(1)})
            assert replayed.status == 200 and replayed.url.endswith(f"/ui/webhooks/{sub.id}?replayed=1")
            assert "1 deliveries queued again" in replayed.text
            bad = await admin.post(f"/ui/webhooks/{sub.id}/replay", {"since": "yesterday"})
            assert bad.status == 422 and "since is not a date and time: yesterday" in bad.text
        assert [d.status for d in await store.outbox.deliveries_of(subscription_id=sub.id)] == [DeliveryStatus.PENDING]
        assert [d.status for d in await store.outbox.deliveries_of(subscription_id=other.id)] == [DeliveryStatus.FAILED]


async def test_rotating_shows_the_new_secret_once_and_it_signs_from_then_on(store: Store) -> None:
    """Rotate answers with the new secret (stored as current, the old one signing beside it
    until the time shown); the subscription's page after it shows neither secret."""
    async with api_server(store, allowing_loopback(), console=True) as api:
        made = await api.services.webhooks.add(SubscriptionRequest("https://hooks.example/h"))
        async with ConsoleUser.login(api.url, await api.token(Role.ADMIN)) as admin:
            await admin.get(f"/ui/webhooks/{made.subscription.id}")
            rotated = await admin.post(f"/ui/webhooks/{made.subscription.id}/rotate", {})
            after = await admin.get(f"/ui/webhooks/{made.subscription.id}")
        now = await store.subscriptions.get(made.subscription.id)
        assert now is not None and now.secret != made.secret and now.previous_secret == made.secret
        assert rotated.status == 200 and rotated.text.count(now.secret) == 1 and made.secret not in rotated.text
        assert "New signing secret" in rotated.text and "Copy it now: it is not shown again." in rotated.text
        assert now.previous_secret_until is not None
        assert now.previous_secret_until.strftime("%Y-%m-%d %H:%M:%S UTC") in rotated.text
        assert now.secret not in after.text and made.secret not in after.text


async def test_a_disabled_subscription_is_enabled_again_and_removed_only_when_ticked(store: Store) -> None:
    """A disabled subscription's page says why and offers enable instead of a test (a forged
    test is refused, 422); enable clears it; remove without its checkbox is 422 and keeps
    it, ticked it is gone with a notice on the list."""
    async with api_server(store, allowing_loopback(), console=True) as api:
        sub = (await api.services.webhooks.add(SubscriptionRequest("https://hooks.example/h"))).subscription
        await store.subscriptions.set_enabled(sub.id, False, reason=f"HTTP 410 {HOSTILE}")
        async with ConsoleUser.login(api.url, await api.token(Role.ADMIN)) as admin:
            page = await admin.get(f"/ui/webhooks/{sub.id}")
            assert f"no: HTTP 410 {ESCAPED}" in page.text and HOSTILE not in page.text
            assert f'action="/ui/webhooks/{sub.id}/enable"' in page.text
            assert f'action="/ui/webhooks/{sub.id}/test"' not in page.text
            forged = await admin.post(f"/ui/webhooks/{sub.id}/test", {})
            assert forged.status == 422 and "is disabled" in forged.text

            enabled = await admin.post(f"/ui/webhooks/{sub.id}/enable", {})
            assert enabled.status == 200 and "Enabled again" in enabled.text
            assert (await api.services.webhooks.get(sub.id)).enabled
            assert f'action="/ui/webhooks/{sub.id}/test"' in enabled.text

            unticked = await admin.post(f"/ui/webhooks/{sub.id}/remove", {})
            assert unticked.status == 422 and "nothing was removed" in unticked.text
            assert [s.id for s in await api.services.webhooks.all()] == [sub.id]
            removed = await admin.post(f"/ui/webhooks/{sub.id}/remove", {"confirm": "yes"})
            assert removed.status == 200 and removed.url.endswith(f"/ui/webhooks?removed={sub.id}")
            assert f"Subscription {sub.id} is removed" in removed.text
            assert (await admin.get(f"/ui/webhooks/{sub.id}")).status == 404
        assert await api.services.webhooks.all() == []
