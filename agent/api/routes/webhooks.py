"""/v1/webhooks: platforms subscribe themselves (agent.services.webhooks does the work).

A platform token manages its own subscriptions only: another principal's is a 404 on every
route, as a missing one (its existence is not disclosed); admins see and manage all of them.
The signing secret is in the answer of POST /v1/webhooks and of rotate-secret only: no
other answer ever carries one."""

from __future__ import annotations

from datetime import datetime

from pydantic import AwareDatetime, Field

from agent.api.routing import Answer, Call, Route
from agent.api.schemas import Body, Out
from agent.model.access import Principal, Role
from agent.model.records import SubscriptionRow
from agent.model.status import DeliveryStatus
from agent.services.webhooks import SubscriptionRequest

WEBHOOK_ROLES = frozenset({Role.ADMIN, Role.PLATFORM})
# A month: longer than any rollout of a new secret needs, short enough to end one.
_MAX_GRACE_S = 30 * 24 * 3600


def visible_to(principal: Principal) -> str | None:
    """Whose subscriptions the caller acts on: a platform its own, an admin everyone's."""
    return principal.name if principal.role is Role.PLATFORM else None


class WebhookIn(Body):
    url: str = Field(min_length=1, max_length=4096, description="http(s) URL the signed events are POSTed to")
    lists: list[str] = Field(default_factory=list, max_length=100, description="only findings from these lists")
    labels: list[str] = Field(
        default_factory=list, max_length=100, description="only findings whose entry has one of these labels"
    )
    targets: list[int] = Field(default_factory=list, max_length=1000, description="only findings from these targets")
    events: list[str] = Field(default_factory=list, max_length=50, description="only these event types (default all)")
    description: str | None = Field(default=None, max_length=1000)
    max_in_flight: int = Field(default=4, ge=1, le=64, description="deliveries sent to it at once")
    allow_unknown_lists: bool = Field(default=False, description="accept list names not configured or synced yet")


class WebhookOut(Out):
    id: int
    url: str
    lists: list[str]
    labels: list[str]
    targets: list[int]
    events: list[str] = Field(description="the event types it receives (empty: all)")
    description: str | None
    max_in_flight: int
    enabled: bool
    disabled_reason: str | None
    failing_since: datetime | None = Field(description="since when its deliveries fail (null: they do not)")
    rotating: bool = Field(description="a previous secret still signs beside the current one")
    created_at: datetime
    owner: str | None = Field(description="the principal that subscribed it (null: made with the CLI)")

    @classmethod
    def fields_of(cls, row: SubscriptionRow) -> dict[str, object]:
        return {
            "id": row.id,
            "url": row.url,
            "lists": list(row.lists),
            "labels": list(row.labels),
            "targets": list(row.targets),
            "events": list(row.event_types),
            "description": row.description,
            "max_in_flight": row.max_in_flight,
            "enabled": row.enabled,
            "disabled_reason": row.disabled_reason,
            "failing_since": row.failing_since,
            "rotating": bool(row.previous_secret),
            "created_at": row.created_at,
            "owner": row.owner,
        }

    @classmethod
    def of(cls, row: SubscriptionRow) -> WebhookOut:
        return cls.model_validate(cls.fields_of(row))


class NewWebhookOut(WebhookOut):
    secret: str = Field(description="the signing secret (Standard Webhooks); shown this once, store it now")


class WebhookList(Out):
    webhooks: list[WebhookOut]


class RotateIn(Body):
    grace_s: int | None = Field(
        default=None, ge=0, le=_MAX_GRACE_S, description="seconds the old secret keeps signing (default from config)"
    )


class RotationOut(Out):
    secret: str = Field(description="the new signing secret; shown this once")
    previous_valid_until: datetime = Field(description="the previous secret signs beside it until then")


class TestOut(Out):
    delivered: bool = Field(description="the endpoint answered 2xx")
    status_code: int | None = Field(description="the HTTP status it answered (null: no answer)")
    attempts: int
    error: str | None = Field(description="why it was not delivered")
    delivery_status: DeliveryStatus
    next_attempt_at: datetime | None = Field(description="when it is tried again, if it is still pending")
    webhook_id: str = Field(description="the webhook-id header the test event was sent with")
    subscription_enabled: bool = Field(description="false if this failure disabled the subscription")


class ReplayIn(Body):
    since: AwareDatetime = Field(description="events created at or after this time (RFC 3339, with offset)")


class ReplayOut(Out):
    queued: int = Field(description="deliveries queued again (same webhook-id, so receivers can de-duplicate)")


async def add_webhook(call: Call) -> Answer:
    body = call.body(WebhookIn)
    request = SubscriptionRequest(
        body.url,
        lists=tuple(body.lists),
        labels=tuple(body.labels),
        targets=tuple(body.targets),
        events=tuple(body.events),
        max_in_flight=body.max_in_flight,
        description=body.description,
        allow_unknown_lists=body.allow_unknown_lists,
        owner=call.principal.name,
    )
    added = await call.context.services.webhooks.add(request)
    row = added.subscription
    out = NewWebhookOut.model_validate({**WebhookOut.fields_of(row), "secret": added.secret})
    return Answer(out, 201, {"Location": f"/v1/webhooks/{row.id}"}, resource=f"webhook:{row.id}")


async def list_webhooks(call: Call) -> WebhookList:
    rows = await call.context.services.webhooks.all(visible_to=visible_to(call.principal))
    return WebhookList(webhooks=[WebhookOut.of(r) for r in rows])


async def get_webhook(call: Call) -> WebhookOut:
    return WebhookOut.of(await call.context.services.webhooks.get(call.id(), visible_to=visible_to(call.principal)))


async def remove_webhook(call: Call) -> Answer:
    await call.context.services.webhooks.remove(call.id(), visible_to=visible_to(call.principal))
    return Answer(None, 204)


async def rotate_secret(call: Call) -> RotationOut:
    body = call.body(RotateIn)
    rotation = await call.context.services.webhooks.rotate(
        call.id(), body.grace_s, visible_to=visible_to(call.principal)
    )
    return RotationOut(secret=rotation.secret, previous_valid_until=rotation.previous_until)


async def test_webhook(call: Call) -> TestOut:
    result = await call.context.services.webhooks.test(call.id(), visible_to=visible_to(call.principal))
    d = result.delivery
    return TestOut(
        delivered=result.delivered,
        status_code=d.last_status,
        attempts=d.attempts,
        error=None if result.delivered else d.last_error or (f"HTTP {d.last_status}" if d.last_status else None),
        delivery_status=d.status,
        next_attempt_at=d.next_attempt_at if d.status is DeliveryStatus.PENDING else None,
        webhook_id=d.event_id,
        subscription_enabled=result.subscription.enabled if result.subscription is not None else False,
    )


async def replay_webhook(call: Call) -> Answer:
    body = call.body(ReplayIn)
    queued = await call.context.services.webhooks.replay(body.since, call.id(), visible_to=visible_to(call.principal))
    return Answer(ReplayOut(queued=queued), 202)


async def replay_webhooks(call: Call) -> Answer:
    body = call.body(ReplayIn)
    queued = await call.context.services.webhooks.replay(body.since, visible_to=visible_to(call.principal))
    return Answer(ReplayOut(queued=queued), 202)


_ONE = "/v1/webhooks/{id}"

ROUTES = [
    Route(
        "GET",
        "/v1/webhooks",
        list_webhooks,
        WEBHOOK_ROLES,
        "List webhook subscriptions (a platform's own; every one for admins)",
        "webhooks",
        responses={200: WebhookList},
    ),
    Route(
        "POST",
        "/v1/webhooks",
        add_webhook,
        WEBHOOK_ROLES,
        "Subscribe a URL to signed events; the secret is in this answer only",
        "webhooks",
        body=WebhookIn,
        responses={201: NewWebhookOut},
        description="The URL passes the SSRF guard: a private, loopback or link-local address (or a name "
        "resolving to one) is refused (422) unless [alerts] allow_hosts names its host.",
    ),
    # Before the {id} routes: a path matcher trying the document's paths in order finds it first.
    Route(
        "POST",
        "/v1/webhooks/replay",
        replay_webhooks,
        WEBHOOK_ROLES,
        "Queue again the deliveries of the events since a time (a platform's own subscriptions')",
        "webhooks",
        body=ReplayIn,
        responses={202: ReplayOut},
    ),
    Route("GET", _ONE, get_webhook, WEBHOOK_ROLES, "One webhook subscription", "webhooks", responses={200: WebhookOut}),
    Route(
        "DELETE",
        _ONE,
        remove_webhook,
        WEBHOOK_ROLES,
        "Remove a subscription and its pending deliveries",
        "webhooks",
        responses={204: None},
        resource="webhook:{id}",
    ),
    Route(
        "POST",
        _ONE + "/rotate-secret",
        rotate_secret,
        WEBHOOK_ROLES,
        "A new signing secret (the previous one signs beside it for grace_s)",
        "webhooks",
        body=RotateIn,
        responses={200: RotationOut},
        resource="webhook:{id}",
    ),
    Route(
        "POST",
        _ONE + "/test",
        test_webhook,
        WEBHOOK_ROLES,
        "Send a signed webhook.test event now and say what the endpoint answered",
        "webhooks",
        responses={200: TestOut},
        resource="webhook:{id}",
        description="A disabled subscription is not tested (422).",
    ),
    Route(
        "POST",
        _ONE + "/replay",
        replay_webhook,
        WEBHOOK_ROLES,
        "Queue again this subscription's deliveries of the events since a time",
        "webhooks",
        body=ReplayIn,
        responses={202: ReplayOut},
        resource="webhook:{id}",
    ),
]
