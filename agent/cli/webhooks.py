"""`dweb-agent webhooks`: subscriptions, tests, secret rotation and replay."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import click
from rich.table import Table

from agent.cli.common import csv_list, emit, load, when, with_store
from agent.cli.main import main
from agent.config import Settings
from agent.report import EXIT_ERROR

def _subscription_dict(sub: Any) -> dict[str, Any]:
    return {"id": sub.id, "url": sub.url, "lists": list(sub.lists), "labels": list(sub.labels),
            "targets": list(sub.targets), "events": list(sub.event_types), "enabled": sub.enabled,
            "disabled_reason": sub.disabled_reason, "failing_since": sub.failing_since,
            "max_in_flight": sub.max_in_flight, "rotating": bool(sub.previous_secret), "created_at": sub.created_at}


@main.group()
def webhooks() -> None:
    """Webhook subscriptions: platforms receive signed alerts (Standard Webhooks)."""


@webhooks.command("add")
@click.argument("url")
@click.option("--lists", help="Only findings from these lists (comma-separated names).")
@click.option("--labels", help="Only findings whose entry has one of these labels.")
@click.option("--targets", help="Only findings from these target ids.")
@click.option("--events", help="Only these event types (default all).")
@click.option("--max-in-flight", type=click.IntRange(1, 64), default=4, show_default=True)
@click.option("--description")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
@click.option("--config", type=click.Path(dir_okay=False, path_type=Path), help="Configuration file.")
def webhooks_add(url: str, lists: str | None, labels: str | None, targets: str | None, events: str | None,
                 max_in_flight: int, description: str | None, fmt: str, config: Path | None) -> None:
    """Subscribe URL. Its signing secret is printed once: store it now."""
    from agent.alerts.events import EVENT_TYPES
    from agent.alerts.netguard import BlockedDestination, NetGuard
    from agent.alerts.signing import new_secret

    settings = load(config)
    guard = NetGuard(allow_hosts=frozenset(h.lower() for h in settings.alerts.allow_hosts))
    try:
        guard.check_url(url)
    except BlockedDestination as exc:
        click.echo(f"error: {url}: {exc.reason}", err=True)
        sys.exit(EXIT_ERROR)
    kinds = csv_list(events)
    unknown = [k for k in kinds if k not in EVENT_TYPES]
    if unknown:
        click.echo(f"error: unknown event types {unknown}; known: {', '.join(EVENT_TYPES)}", err=True)
        sys.exit(EXIT_ERROR)
    try:
        target_ids = [int(t) for t in csv_list(targets)]
    except ValueError:
        click.echo("error: --targets takes target ids (see `dweb-agent targets list`)", err=True)
        sys.exit(EXIT_ERROR)
    secret = new_secret()
    row = asyncio.run(with_store(settings, lambda store: store.add_subscription(
        url, secret, lists=csv_list(lists), labels=csv_list(labels), targets=target_ids, event_types=kinds,
        max_in_flight=max_in_flight, description=description)))
    if fmt == "json":
        emit({**_subscription_dict(row), "secret": secret}, fmt, None)
    else:
        click.echo(f"subscription {row.id}: {row.url}")
        click.echo(f"secret (shown once, store it now): {secret}")


@webhooks.command("list")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default=None)
@click.option("--config", type=click.Path(dir_okay=False, path_type=Path), help="Configuration file.")
def webhooks_list(fmt: str | None, config: Path | None) -> None:
    """List subscriptions (secrets are never shown again)."""
    settings = load(config)
    rows = asyncio.run(with_store(settings, lambda store: store.list_subscriptions()))
    fmt = fmt or ("table" if sys.stdout.isatty() else "json")
    table = Table()
    for col in ("id", "url", "filters", "enabled", "failing since"):
        table.add_column(col, overflow="fold")
    for r in rows:
        filters = "; ".join(f"{k}={','.join(map(str, v))}" for k, v in
                            (("lists", r.lists), ("labels", r.labels), ("targets", r.targets),
                             ("events", r.event_types)) if v) or "all"
        table.add_row(str(r.id), r.url, filters, "yes" if r.enabled else f"no ({r.disabled_reason})",
                      when(r.failing_since))
    emit([_subscription_dict(r) for r in rows], fmt, table)


@webhooks.command("remove")
@click.argument("subscription_id", type=int)
@click.option("--config", type=click.Path(dir_okay=False, path_type=Path), help="Configuration file.")
def webhooks_remove(subscription_id: int, config: Path | None) -> None:
    """Remove a subscription and its pending deliveries."""
    settings = load(config)
    if not asyncio.run(with_store(settings, lambda store: store.remove_subscription(subscription_id))):
        click.echo(f"error: no subscription {subscription_id}", err=True)
        sys.exit(EXIT_ERROR)
    click.echo(f"removed subscription {subscription_id}")


@webhooks.command("rotate-secret")
@click.argument("subscription_id", type=int)
@click.option("--grace", "grace_s", type=click.IntRange(0), default=None,
              help="Seconds the old secret keeps signing beside the new one (default from config).")
@click.option("--config", type=click.Path(dir_okay=False, path_type=Path), help="Configuration file.")
def webhooks_rotate(subscription_id: int, grace_s: int | None, config: Path | None) -> None:
    """Give a subscription a new secret (printed once); both sign during the grace period."""
    from datetime import datetime, timedelta, timezone

    from agent.alerts.signing import new_secret

    settings = load(config)
    secret = new_secret()
    grace = settings.alerts.rotation_grace_s if grace_s is None else grace_s
    until = datetime.now(timezone.utc) + timedelta(seconds=grace)
    row = asyncio.run(with_store(settings, lambda store: store.rotate_secret(subscription_id, secret, until)))
    if row is None:
        click.echo(f"error: no subscription {subscription_id}", err=True)
        sys.exit(EXIT_ERROR)
    click.echo(f"new secret (shown once, store it now): {secret}")
    click.echo(f"the previous secret also signs until {until.isoformat()}")


async def _deliver_now(settings: Settings, store: Any) -> int:
    from agent.alerts.delivery import WebhookDelivery
    from agent.alerts.netguard import NetGuard

    guard = NetGuard(allow_hosts=frozenset(h.lower() for h in settings.alerts.allow_hosts))
    async with WebhookDelivery(store, guard, f"cli-{settings.agent.node_name or 'local'}",
                               timeout_s=settings.alerts.delivery_timeout_s) as worker:
        return await worker.run_once()


@webhooks.command("test")
@click.argument("subscription_id", type=int)
@click.option("--config", type=click.Path(dir_okay=False, path_type=Path), help="Configuration file.")
def webhooks_test(subscription_id: int, config: Path | None) -> None:
    """Send a signed webhook.test event now and report what the endpoint answered."""
    from agent.alerts.events import test_event

    settings = load(config)

    async def body(store: Any) -> Any:
        sub = await store.get_subscription(subscription_id)
        if sub is None:
            return None
        event = test_event(sub)
        await store.emit_events([event])
        await _deliver_now(settings, store)
        return (await store.deliveries_of(event_id=event.id))[0]

    delivery = asyncio.run(with_store(settings, body))
    if delivery is None:
        click.echo(f"error: no subscription {subscription_id}", err=True)
        sys.exit(EXIT_ERROR)
    ok = delivery.status == "succeeded"
    click.echo(f"{'delivered' if ok else 'not delivered'}: HTTP {delivery.last_status or '-'}"
               + (f" ({delivery.last_error})" if delivery.last_error else ""))
    sys.exit(0 if ok else EXIT_ERROR)


@webhooks.command("replay")
@click.option("--since", required=True, help="ISO 8601 time: events created since then are sent again.")
@click.option("--subscription", "subscription_id", type=int, help="Only this subscription.")
@click.option("--now", "deliver_now", is_flag=True, help="Deliver at once instead of leaving it to the agent.")
@click.option("--config", type=click.Path(dir_okay=False, path_type=Path), help="Configuration file.")
def webhooks_replay(since: str, subscription_id: int | None, deliver_now: bool, config: Path | None) -> None:
    """Send events again (same webhook-id, so receivers can de-duplicate)."""
    from datetime import datetime, timezone

    settings = load(config)
    try:
        when = datetime.fromisoformat(since.replace("Z", "+00:00"))
    except ValueError:
        click.echo(f"error: --since {since!r} is not an ISO 8601 time", err=True)
        sys.exit(EXIT_ERROR)
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)

    async def body(store: Any) -> int:
        count = int(await store.replay(when, subscription_id))
        if deliver_now:
            await _deliver_now(settings, store)
        return count

    count = asyncio.run(with_store(settings, body))
    click.echo(f"{count} deliveries queued again" + (" and sent" if deliver_now else ""))
