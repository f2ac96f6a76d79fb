"""/v1/webhooks through the real app: a platform manages its own subscriptions only (another's
is 404, as a missing one), admins manage all, investigators and viewers none (403); URLs
pass the SSRF guard before anything is stored or connected to; rotate-secret's new secret
signs the next delivery; test sends a signed webhook.test now and says what was answered."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from agent.config import AlertSettings, Settings
from agent.model.access import Role
from agent.services.webhooks import SubscriptionRequest, WebhooksService
from agent.store import Store
from tests.support.api import ApiClient, api_server, api_settings
from tests.support.resolver import FakeResolver
from tests.support.webhook_receiver import WebhookReceiver


def allowing(*hosts: str) -> Settings:
    """Default settings whose [alerts] allow_hosts names `hosts` (the receiver is on 127.0.0.1)."""
    return api_settings().model_copy(update={"alerts": AlertSettings(allow_hosts=list(hosts))})


async def subscribe(client: ApiClient, url: str, **fields: Any) -> dict[str, Any]:
    made = await client.post("/v1/webhooks", {"url": url, **fields})
    assert made.status == 201, made.text
    body: dict[str, Any] = made.json()
    assert made.headers["Location"] == f"/v1/webhooks/{body['id']}"
    return body


def since() -> str:
    return (datetime.now(UTC) - timedelta(hours=1)).isoformat()


async def test_a_platform_sees_and_manages_only_its_own_subscriptions(store: Store) -> None:
    """Platform A gets 404 (worded as for a missing id) on B's subscription for get, test,
    replay, rotate and delete, lists only its own and replays only its own deliveries; B's
    subscription is unchanged after; an admin sees, replays and removes both."""
    async with WebhookReceiver([]) as receiver, api_server(store, allowing("127.0.0.1")) as api:
        a = await api.client(Role.PLATFORM, name="platform-a")
        b = await api.client(Role.PLATFORM, name="platform-b")
        admin = await api.client(Role.ADMIN)
        mine = await subscribe(a, receiver.url("/a"), description="A's")
        theirs = await subscribe(b, receiver.url("/b"), events=["finding.created", "webhook.test"])
        receiver.secrets = [mine["secret"], theirs["secret"]]
        assert mine["owner"] == "platform-a" and theirs["owner"] == "platform-b"
        assert (await a.request("POST", f"/v1/webhooks/{mine['id']}/test")).json()["delivered"]
        assert (await b.request("POST", f"/v1/webhooks/{theirs['id']}/test")).json()["delivered"]
        before = await store.subscriptions.get(theirs["id"])
        b_deliveries = await store.outbox.deliveries_of(subscription_id=theirs["id"])

        listed = await a.get("/v1/webhooks")
        assert [w["id"] for w in listed.json()["webhooks"]] == [mine["id"]]
        missing = (await a.get("/v1/webhooks/999999")).problem["detail"]
        assert missing == "no subscription 999999"
        other = f"/v1/webhooks/{theirs['id']}"
        answers = [
            await a.get(other),
            await a.request("POST", f"{other}/test"),
            await a.post(f"{other}/replay", {"since": since()}),
            await a.post(f"{other}/rotate-secret", {"grace_s": 0}),
            await a.delete(other),
        ]
        assert [r.status for r in answers] == [404] * 5
        assert {r.problem["detail"] for r in answers} == {f"no subscription {theirs['id']}"}
        assert all(theirs["url"] not in r.text for r in answers)

        replayed = await a.post("/v1/webhooks/replay", {"since": since()})
        assert replayed.status == 202 and replayed.json() == {"queued": 1}, "A's one test delivery only"
        assert await store.subscriptions.get(theirs["id"]) == before, "B's subscription (secret too) unchanged"
        assert await store.outbox.deliveries_of(subscription_id=theirs["id"]) == b_deliveries
        assert len(receiver.at("/b")) == 1, "nothing more was sent to B"
        assert (await b.get(other)).json()["events"] == ["finding.created", "webhook.test"]

        everyone = await admin.get("/v1/webhooks")
        assert [(w["id"], w["owner"]) for w in everyone.json()["webhooks"]] == [
            (mine["id"], "platform-a"),
            (theirs["id"], "platform-b"),
        ]
        assert (await admin.get(other)).json()["owner"] == "platform-b"
        assert (await admin.post("/v1/webhooks/replay", {"since": since()})).json() == {"queued": 2}
        assert (await admin.delete(other)).status == 204
        assert (await b.get(other)).status == 404
        assert [w["id"] for w in (await a.get("/v1/webhooks")).json()["webhooks"]] == [mine["id"]]


async def test_no_answer_but_the_subscribing_one_and_a_rotation_carries_a_secret(store: Store) -> None:
    """The secret is in POST /v1/webhooks' answer once; list and get never show it, nor the
    rotated one (only `rotating`); a CLI-made subscription is listed to admins with no owner."""
    async with api_server(store, allowing("127.0.0.1")) as api:
        platform = await api.client(Role.PLATFORM, name="platform-a")
        admin = await api.client(Role.ADMIN)
        made = await subscribe(platform, "http://127.0.0.1:9/hook", lists=["x"], allow_unknown_lists=True)
        secret = made["secret"]
        assert secret.startswith("whsec_") and made["rotating"] is False and made["lists"] == ["x"]
        cli = await api.services.webhooks.add(SubscriptionRequest("http://127.0.0.1:9/cli"))  # as the CLI does
        rotated = await platform.post(f"/v1/webhooks/{made['id']}/rotate-secret", {})
        assert rotated.status == 200 and rotated.json()["secret"] != secret
        for resp in [
            await platform.get("/v1/webhooks"),
            await platform.get(f"/v1/webhooks/{made['id']}"),
            await admin.get("/v1/webhooks"),
        ]:
            assert secret not in resp.text and rotated.json()["secret"] not in resp.text
            assert "secret" not in resp.text.replace('"rotating"', "")
        shown = (await platform.get(f"/v1/webhooks/{made['id']}")).json()
        assert shown["rotating"] is True
        owners = {w["id"]: w["owner"] for w in (await admin.get("/v1/webhooks")).json()["webhooks"]}
        assert owners == {made["id"]: "platform-a", cli.subscription.id: None}
        assert [w["id"] for w in (await platform.get("/v1/webhooks")).json()["webhooks"]] == [made["id"]]


WEBHOOK_CALLS: list[tuple[str, str, object]] = [
    ("GET", "/v1/webhooks", None),
    ("POST", "/v1/webhooks", {"url": "http://127.0.0.1:9/hook"}),
    ("POST", "/v1/webhooks/replay", {"since": "2026-01-01T00:00:00Z"}),
    ("GET", "/v1/webhooks/{id}", None),
    ("DELETE", "/v1/webhooks/{id}", None),
    ("POST", "/v1/webhooks/{id}/rotate-secret", {}),
    ("POST", "/v1/webhooks/{id}/test", None),
    ("POST", "/v1/webhooks/{id}/replay", {"since": "2026-01-01T00:00:00Z"}),
]


@pytest.mark.parametrize("role", [Role.INVESTIGATOR, Role.VIEWER])
async def test_investigators_and_viewers_get_403_on_every_webhook_route(store: Store, role: Role) -> None:
    """Neither role reaches any webhook route, for an existing subscription too; nothing
    is added, removed or rotated by their calls."""
    async with api_server(store, allowing("127.0.0.1")) as api:
        admin = await api.client(Role.ADMIN)
        sub = await subscribe(admin, "http://127.0.0.1:9/hook")
        before = await store.subscriptions.all()
        client = await api.client(role)
        for method, path, body in WEBHOOK_CALLS:
            resp = await client.request(method, path.format(id=sub["id"]), json_body=body)
            assert resp.status == 403, f"{role} {method} {path}: {resp.status}"
            assert "127.0.0.1:9" not in resp.text
        assert await store.subscriptions.all() == before


def test_every_webhook_route_is_in_the_table_above(api_document: dict[str, Any]) -> None:
    """The 403 test covers every webhook operation the API documents (a new one is not missed)."""
    documented = {
        (method.upper(), path)
        for path, ops in api_document["paths"].items()
        if path.startswith("/v1/webhooks")
        for method in ops
    }
    assert documented == {(m, p) for m, p, _ in WEBHOOK_CALLS}


@pytest.fixture
def api_document() -> dict[str, Any]:
    from agent.api.openapi import openapi_document
    from agent.api.routes import ROUTES

    return openapi_document(ROUTES)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://127.0.0.1:{port}/hook", "loopback address 127.0.0.1"),
        ("http://10.0.0.1/hook", "10.0.0.1"),
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254"),
        ("http://localhost:{port}/hook", "localhost"),
        ("http://[::1]:{port}/hook", "loopback"),
    ],
)
async def test_a_private_or_local_webhook_url_is_refused_before_anything_is_stored_or_sent(
    store: Store, url: str, reason: str
) -> None:
    """Loopback, private, link-local (cloud metadata) and localhost URLs are 422 naming the
    refusal; nothing is stored and the receiver on 127.0.0.1 never hears from the agent."""
    async with WebhookReceiver([]) as receiver, api_server(store) as api:
        platform = await api.client(Role.PLATFORM, name="platform-a")
        port = receiver.base.rsplit(":", 1)[1]
        resp = await platform.post("/v1/webhooks", {"url": url.format(port=port)})
        assert resp.status == 422, resp.text
        detail = resp.problem["detail"]
        assert reason in detail and "[alerts] allow_hosts" in detail, detail
        assert resp.fields() == ["url"]
        assert await store.subscriptions.all() == []
        assert receiver.received == []


@pytest.mark.parametrize("host", ["127.0.0.1", "10.0.0.1", "localhost"])
async def test_a_host_in_alerts_allow_hosts_may_be_subscribed(store: Store, host: str) -> None:
    """An operator's [alerts] allow_hosts admits that host's URLs (201); nothing is sent at
    subscribe time (10.0.0.1 is never connected to)."""
    async with api_server(store, allowing(host)) as api:
        platform = await api.client(Role.PLATFORM, name="platform-a")
        made = await subscribe(platform, f"http://{host}:8080/hook")
        assert made["url"] == f"http://{host}:8080/hook"
        assert await store.outbox.deliveries_of(subscription_id=made["id"]) == []


async def test_a_name_resolving_to_a_private_address_is_refused(store: Store) -> None:
    """An API caller's host name is resolved at subscribe time: one answering 10.1.2.3 or
    169.254.169.254 is 422; one answering a public address is subscribed."""
    async with api_server(store) as api:
        resolver = FakeResolver(
            {"intranet.platform.test": ["10.1.2.3"], "meta.test": ["169.254.169.254"], "hooks.test": ["93.184.215.14"]}
        )
        api.services.webhooks = WebhooksService(store, api.settings, api.services.lists, resolver=resolver)
        platform = await api.client(Role.PLATFORM, name="platform-a")
        for name in ("intranet.platform.test", "meta.test"):
            resp = await platform.post("/v1/webhooks", {"url": f"https://{name}/hook"})
            assert resp.status == 422 and name in resp.problem["detail"], resp.text
        assert await store.subscriptions.all() == []
        await subscribe(platform, "https://hooks.test/hook")
        assert resolver.calls == ["intranet.platform.test", "meta.test", "hooks.test"]


async def test_bad_fields_are_422_naming_them(store: Store) -> None:
    """An unknown event type or list is refused by the service (422); a wrong type, an
    unknown field or a max_in_flight out of range is 422 naming each field."""
    async with api_server(store, allowing("127.0.0.1")) as api:
        platform = await api.client(Role.PLATFORM, name="platform-a")
        url = "http://127.0.0.1:9/hook"
        event = await platform.post("/v1/webhooks", {"url": url, "events": ["finding.made"]})
        assert event.status == 422 and "unknown event types" in event.problem["detail"]
        assert event.fields() == ["events"]
        listed = await platform.post("/v1/webhooks", {"url": url, "lists": ["tcpa"]})
        assert listed.status == 422 and "unknown list tcpa" in listed.problem["detail"]
        assert listed.fields() == ["lists"]
        bad = await platform.post("/v1/webhooks", {"url": url, "max_in_flight": 0, "targets": ["1"], "colour": 1})
        assert bad.status == 422 and sorted(bad.fields()) == ["colour", "max_in_flight", "targets[0]"]
        naive = await platform.post("/v1/webhooks/replay", {"since": "2026-01-01T00:00:00"})
        assert naive.status == 422 and naive.fields() == ["since"]
        assert await store.subscriptions.all() == []


async def test_a_rotated_secret_signs_the_next_delivery(store: Store) -> None:
    """After rotate-secret (no grace), the test delivery verifies with the new secret alone
    and no longer with the one POST returned."""
    async with WebhookReceiver([]) as receiver, api_server(store, allowing("127.0.0.1")) as api:
        platform = await api.client(Role.PLATFORM, name="platform-a")
        made = await subscribe(platform, receiver.url("/hook"))
        rotated = await platform.post(f"/v1/webhooks/{made['id']}/rotate-secret", {"grace_s": 0})
        assert rotated.status == 200
        new = rotated.json()["secret"]
        assert new != made["secret"]
        receiver.secrets = [new]
        tested = await platform.request("POST", f"/v1/webhooks/{made['id']}/test")
        assert tested.status == 200 and tested.json()["delivered"] is True
        (got,) = receiver.at("/hook")
        assert got.verified
        Webhook(new).verify(got.body, got.headers)
        with pytest.raises(WebhookVerificationError):
            Webhook(made["secret"]).verify(got.body, got.headers)


async def test_a_rotation_with_grace_signs_with_both_secrets(store: Store) -> None:
    """During the grace period a delivery verifies with the old secret and with the new."""
    async with WebhookReceiver([]) as receiver, api_server(store, allowing("127.0.0.1")) as api:
        platform = await api.client(Role.PLATFORM, name="platform-a")
        made = await subscribe(platform, receiver.url("/hook"))
        rotated = (await platform.post(f"/v1/webhooks/{made['id']}/rotate-secret", {"grace_s": 3600})).json()
        until = datetime.fromisoformat(rotated["previous_valid_until"])
        assert timedelta(minutes=59) < until - datetime.now(UTC) <= timedelta(hours=1)
        receiver.secrets = [made["secret"]]
        assert (await platform.request("POST", f"/v1/webhooks/{made['id']}/test")).json()["delivered"]
        (got,) = receiver.at("/hook")
        Webhook(made["secret"]).verify(got.body, got.headers)
        Webhook(rotated["secret"]).verify(got.body, got.headers)


async def test_test_says_delivered_for_200_and_not_for_500_with_the_status(store: Store) -> None:
    """Against a receiver answering 200, test is delivered with status 200; against one
    answering 500 it is not delivered, says 500, and the delivery stays pending for a retry."""
    async with WebhookReceiver([]) as receiver, api_server(store, allowing("127.0.0.1")) as api:
        receiver.script("/ok", status=200)
        receiver.script("/broken", status=500)
        platform = await api.client(Role.PLATFORM, name="platform-a")
        ok = await subscribe(platform, receiver.url("/ok"))
        broken = await subscribe(platform, receiver.url("/broken"))
        receiver.secrets = [ok["secret"], broken["secret"]]

        good = (await platform.request("POST", f"/v1/webhooks/{ok['id']}/test")).json()
        assert good["delivered"] is True and good["status_code"] == 200 and good["attempts"] == 1
        assert good["error"] is None and good["delivery_status"] == "succeeded"
        (got,) = receiver.at("/ok")
        assert got.verified and got.webhook_id == good["webhook_id"]
        assert '"type":"webhook.test"' in got.body.replace(" ", "")

        bad = (await platform.request("POST", f"/v1/webhooks/{broken['id']}/test")).json()
        assert bad["delivered"] is False and bad["status_code"] == 500 and bad["attempts"] == 1
        assert bad["error"] and "500" in bad["error"]
        assert bad["delivery_status"] == "pending" and bad["next_attempt_at"] is not None
        assert bad["subscription_enabled"] is True
        assert len(receiver.at("/broken")) == 1


async def test_replay_of_one_subscription_queues_its_deliveries_again(store: Store) -> None:
    """POST /v1/webhooks/{id}/replay counts the deliveries of the events since `since` put
    back in the queue (202); a time after them queues none."""
    async with WebhookReceiver([]) as receiver, api_server(store, allowing("127.0.0.1")) as api:
        platform = await api.client(Role.PLATFORM, name="platform-a")
        made = await subscribe(platform, receiver.url("/hook"))
        receiver.secrets = [made["secret"]]
        await platform.request("POST", f"/v1/webhooks/{made['id']}/test")
        await platform.request("POST", f"/v1/webhooks/{made['id']}/test")
        again = await platform.post(f"/v1/webhooks/{made['id']}/replay", {"since": since()})
        assert again.status == 202 and again.json() == {"queued": 2}
        assert {d.status.value for d in await store.outbox.deliveries_of(subscription_id=made["id"])} == {"pending"}
        later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
        assert (await platform.post(f"/v1/webhooks/{made['id']}/replay", {"since": later})).json() == {"queued": 0}
