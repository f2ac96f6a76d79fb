"""`dweb-agent webhooks`: subscriptions, tests, secret rotation and replay."""

from __future__ import annotations

import asyncio
import sys
import time
from datetime import UTC
from pathlib import Path
from typing import Any

import click
from rich.table import Table

from agent.cli.common import csv_list, emit, load, when, with_store
from agent.cli.main import main
from agent.config import Settings
from agent.model.report import EXIT_ERROR


def _subscription_dict(sub: Any) -> dict[str, Any]:
    from agent.alerts.events import iso_seconds

    return {
        "id": sub.id,
        "url": sub.url,
        "lists": list(sub.lists),
        "labels": list(sub.labels),
        "targets": list(sub.targets),
        "events": list(sub.event_types),
        "enabled": sub.enabled,
        "disabled_reason": sub.disabled_reason,
        "failing_since": iso_seconds(sub.failing_since),
        "max_in_flight": sub.max_in_flight,
        "rotating": bool(sub.previous_secret),
        "created_at": iso_seconds(sub.created_at),
    }


def configured_list_names(settings: Settings) -> list[str]:
    """The names the list syncer gives the configured [lists] sources and TCAP lists."""
    # The syncer's own naming functions, so a name accepted here is the name
    # findings will carry (a file's stem, a URL's last segment, `-2` suffixes).
    from agent.lists.sync import _source_name, _unique_names

    specs = [(_source_name(source), source, "", None) for source in settings.lists.sources]
    specs += [(tcap.name, tcap.url, "tcap", None) for tcap in settings.lists.tcap]
    return [src.name for src in _unique_names(specs)]


async def known_list_names(settings: Settings, store: Any) -> list[str]:
    """Lists a subscription can name: the configured ones, and every list the store has a version of
    (loaded by an agent, possibly with another configuration)."""
    names = set(configured_list_names(settings))
    names.update(v.name for v in await store.latest_list_versions())
    return sorted(names)


@main.group()
def webhooks() -> None:
    """Webhook subscriptions: platforms receive signed alerts (Standard Webhooks)."""


@webhooks.command("add")
@click.argument("url")
@click.option(
    "--lists",
    help="Only findings from these lists (comma-separated names, as `lists` in "
    "the report and `dweb-agent status` show them).",
)
@click.option(
    "--allow-unknown-lists",
    is_flag=True,
    help="Accept --lists names neither configured nor synced yet (a list you are about to add).",
)
@click.option(
    "--labels",
    help="Only findings whose entry has one of these labels (comma-separated, "
    "e.g. ideology:far-right; key=value is the same as key:value, case is ignored).",
)
@click.option("--targets", help="Only findings from these target ids.")
@click.option("--events", help="Only these event types (default all).")
@click.option("--max-in-flight", type=click.IntRange(1, 64), default=4, show_default=True)
@click.option("--description")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
@click.option("--config", type=click.Path(dir_okay=False, path_type=Path), help="Configuration file.")
def webhooks_add(
    url: str,
    lists: str | None,
    allow_unknown_lists: bool,
    labels: str | None,
    targets: str | None,
    events: str | None,
    max_in_flight: int,
    description: str | None,
    fmt: str,
    config: Path | None,
) -> None:
    """Subscribe URL. Its signing secret is printed once: store it now."""
    from agent.alerts.events import EVENT_TYPES, normalise_label
    from agent.alerts.signing import new_secret
    from agent.net.guard import BlockedDestination, NetGuard

    settings = load(config)
    guard = NetGuard.from_settings(settings.alerts)
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
    list_names = csv_list(lists)
    label_filter = list(dict.fromkeys(normalise_label(label) for label in csv_list(labels)))
    secret = new_secret()

    async def body(store: Any) -> Any:
        if list_names and not allow_unknown_lists:
            known = await known_list_names(settings, store)
            unknown_lists = [name for name in list_names if name not in known]
            if unknown_lists:
                # A misspelt list would make a subscription that never fires, silently.
                raise click.UsageError(
                    f"unknown list{'s' if len(unknown_lists) > 1 else ''} {', '.join(unknown_lists)}; known: "
                    f"{', '.join(known) if known else 'none (no [lists] source configured and none synced yet)'}. "
                    "Use --allow-unknown-lists for a list not synced yet."
                )
        return await store.add_subscription(
            url,
            secret,
            lists=list_names,
            labels=label_filter,
            targets=target_ids,
            event_types=kinds,
            max_in_flight=max_in_flight,
            description=description,
        )

    try:
        row = asyncio.run(with_store(settings, body))
    except click.UsageError as exc:
        click.echo(f"error: {exc.message}", err=True)
        sys.exit(EXIT_ERROR)
    if fmt == "json":
        emit({**_subscription_dict(row), "secret": secret}, fmt, None)
    else:
        click.echo(f"subscription {row.id}: {row.url}")
        rewritten = [f"{given} as {stored}" for given, stored in zip(csv_list(labels), label_filter) if given != stored]
        if rewritten:
            click.echo(f"labels stored as the lists spell them: {', '.join(rewritten)}")
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
        filters = (
            "; ".join(
                f"{k}={','.join(map(str, v))}"
                for k, v in (
                    ("lists", r.lists),
                    ("labels", r.labels),
                    ("targets", r.targets),
                    ("events", r.event_types),
                )
                if v
            )
            or "all"
        )
        table.add_row(
            str(r.id), r.url, filters, "yes" if r.enabled else f"no ({r.disabled_reason})", when(r.failing_since)
        )
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
@click.option(
    "--grace",
    "grace_s",
    type=click.IntRange(0),
    default=None,
    help="Seconds the old secret keeps signing beside the new one (default from config).",
)
@click.option("--config", type=click.Path(dir_okay=False, path_type=Path), help="Configuration file.")
def webhooks_rotate(subscription_id: int, grace_s: int | None, config: Path | None) -> None:
    """Give a subscription a new secret (printed once); both sign during the grace period."""
    from datetime import datetime, timedelta

    from agent.alerts.signing import new_secret

    settings = load(config)
    secret = new_secret()
    grace = settings.alerts.rotation_grace_s if grace_s is None else grace_s
    until = datetime.now(UTC) + timedelta(seconds=grace)
    row = asyncio.run(with_store(settings, lambda store: store.rotate_secret(subscription_id, secret, until)))
    if row is None:
        click.echo(f"error: no subscription {subscription_id}", err=True)
        sys.exit(EXIT_ERROR)
    click.echo(f"new secret (shown once, store it now): {secret}")
    click.echo(f"the previous secret also signs until {until.isoformat()}")


async def _deliver_now(settings: Settings, store: Any) -> int:
    from agent.alerts.delivery import WebhookDelivery
    from agent.net.guard import NetGuard

    guard = NetGuard.from_settings(settings.alerts)
    async with WebhookDelivery(
        store, guard, f"cli-{settings.agent.node_name or 'local'}", timeout_s=settings.alerts.delivery_timeout_s
    ) as worker:
        return await worker.run_once()


@webhooks.command("test")
@click.argument("subscription_id", type=int)
@click.option("--config", type=click.Path(dir_okay=False, path_type=Path), help="Configuration file.")
def webhooks_test(subscription_id: int, config: Path | None) -> None:
    """Send a signed webhook.test event now and report what the endpoint answered."""
    from agent.alerts.events import test_event

    settings = load(config)
    # Another agent may lease the test delivery first: wait for its answer, bounded.
    wait_s = settings.alerts.delivery_timeout_s + 10.0

    async def body(store: Any) -> Any:
        sub = await store.get_subscription(subscription_id)
        if sub is None:
            return None
        if not sub.enabled:
            # Deliveries of a disabled subscription are never leased: say so instead of queueing a test.
            return (
                f"subscription {subscription_id} is disabled ({sub.disabled_reason}); "
                f"`dweb-agent webhooks enable {subscription_id}` re-enables it"
            )
        event = test_event(sub)
        await store.emit_events([event])
        await _deliver_now(settings, store)
        deadline = time.monotonic() + wait_s
        delivery = (await store.deliveries_of(event_id=event.id))[0]
        while delivery.attempts == 0 and delivery.status == "pending" and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
            delivery = (await store.deliveries_of(event_id=event.id))[0]
        return delivery, await store.get_subscription(subscription_id)

    found = asyncio.run(with_store(settings, body))
    if found is None:
        click.echo(f"error: no subscription {subscription_id}", err=True)
        sys.exit(EXIT_ERROR)
    if isinstance(found, str):
        click.echo(f"error: {found}", err=True)
        sys.exit(EXIT_ERROR)
    delivery, sub = found
    ok = delivery.status == "succeeded"
    click.echo(describe_test_delivery(delivery, sub, wait_s))
    sys.exit(0 if ok else EXIT_ERROR)


def describe_test_delivery(delivery: Any, sub: Any, waited_s: float) -> str:
    """One line saying what happened to a test delivery, and why when it was not delivered."""
    from agent.alerts.events import iso_seconds

    if delivery.status == "succeeded":
        return f"delivered: HTTP {delivery.last_status}"
    if delivery.attempts == 0:
        return (
            f"not delivered: not attempted within {waited_s:g} s (another agent sharing the database may "
            "have leased it); it stays queued"
        )
    status = delivery.last_status
    why = delivery.last_error or (f"HTTP {status}" if status is not None else "no answer recorded")
    if status is not None and not why.startswith(f"HTTP {status}"):
        why = f"HTTP {status}, {why}"
    line = f"not delivered: {why}"
    if delivery.status == "pending":
        line += f"; the agent tries again at {iso_seconds(delivery.next_attempt_at)}"
    if sub is not None and not sub.enabled:
        line += f"; subscription {sub.id} is now disabled ({sub.disabled_reason})"
    return line


@webhooks.command("enable")
@click.argument("subscription_id", type=int)
@click.option("--config", type=click.Path(dir_okay=False, path_type=Path), help="Configuration file.")
def webhooks_enable(subscription_id: int, config: Path | None) -> None:
    """Re-enable a disabled subscription (same secret, failure streak cleared).

    Its pending deliveries (kept while it was disabled) go out again at their due time."""
    settings = load(config)

    async def body(store: Any) -> Any:
        before = await store.get_subscription(subscription_id)
        if before is None:
            return None
        await store.set_subscription_enabled(subscription_id, True)
        pending = [d for d in await store.deliveries_of(subscription_id=subscription_id) if d.status == "pending"]
        return before, len(pending)

    found = asyncio.run(with_store(settings, body))
    if found is None:
        click.echo(f"error: no subscription {subscription_id}", err=True)
        sys.exit(EXIT_ERROR)
    before, pending = found
    was = "it was enabled already" if before.enabled else f"it was disabled: {before.disabled_reason}"
    click.echo(f"enabled subscription {subscription_id} ({was}); {pending} pending deliveries")


@webhooks.command("replay")
@click.option("--since", required=True, help="ISO 8601 time: events created since then are sent again.")
@click.option("--subscription", "subscription_id", type=int, help="Only this subscription.")
@click.option("--now", "deliver_now", is_flag=True, help="Deliver at once instead of leaving it to the agent.")
@click.option("--config", type=click.Path(dir_okay=False, path_type=Path), help="Configuration file.")
def webhooks_replay(since: str, subscription_id: int | None, deliver_now: bool, config: Path | None) -> None:
    """Send events again (same webhook-id, so receivers can de-duplicate)."""
    from datetime import datetime

    settings = load(config)
    try:
        when = datetime.fromisoformat(since.replace("Z", "+00:00"))
    except ValueError:
        click.echo(f"error: --since {since!r} is not an ISO 8601 time", err=True)
        sys.exit(EXIT_ERROR)
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)

    async def body(store: Any) -> int:
        count = int(await store.replay(when, subscription_id))
        if deliver_now:
            await _deliver_now(settings, store)
        return count

    count = asyncio.run(with_store(settings, body))
    click.echo(f"{count} deliveries queued again" + (" and sent" if deliver_now else ""))
