"""`dweb-agent webhooks`: subscriptions, tests, secret rotation and replay."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from rich.table import Table

from agent.cli.common import call, csv_list, emit, fail, load, when
from agent.cli.main import main
from agent.model.report import EXIT_ERROR
from agent.model.status import DeliveryStatus
from agent.model.time import iso_seconds

if TYPE_CHECKING:
    from agent.model.records import SubscriptionRow
    from agent.services.webhooks import TestDelivery


def _subscription_dict(sub: SubscriptionRow) -> dict[str, Any]:
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
    from agent.services.webhooks import SubscriptionRequest

    try:
        target_ids = tuple(int(t) for t in csv_list(targets))
    except ValueError:
        fail("--targets takes target ids (see `dweb-agent targets list`)")
    request = SubscriptionRequest(
        url,
        lists=tuple(csv_list(lists)),
        labels=tuple(csv_list(labels)),
        targets=target_ids,
        events=tuple(csv_list(events)),
        max_in_flight=max_in_flight,
        description=description,
        allow_unknown_lists=allow_unknown_lists,
    )
    added = call(load(config), lambda svc: svc.webhooks.add(request))
    row = added.subscription
    if fmt == "json":
        emit({**_subscription_dict(row), "secret": added.secret}, fmt, None)
    else:
        click.echo(f"subscription {row.id}: {row.url}")
        if added.relabelled:
            rewritten = [f"{given} as {stored}" for given, stored in added.relabelled]
            click.echo(f"labels stored as the lists spell them: {', '.join(rewritten)}")
        click.echo(f"secret (shown once, store it now): {added.secret}")


@webhooks.command("list")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default=None)
@click.option("--config", type=click.Path(dir_okay=False, path_type=Path), help="Configuration file.")
def webhooks_list(fmt: str | None, config: Path | None) -> None:
    """List subscriptions (secrets are never shown again)."""
    rows = call(load(config), lambda svc: svc.webhooks.all())
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
    call(load(config), lambda svc: svc.webhooks.remove(subscription_id))
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
    rotation = call(load(config), lambda svc: svc.webhooks.rotate(subscription_id, grace_s))
    click.echo(f"new secret (shown once, store it now): {rotation.secret}")
    click.echo(f"the previous secret also signs until {rotation.previous_until.isoformat()}")


@webhooks.command("test")
@click.argument("subscription_id", type=int)
@click.option("--config", type=click.Path(dir_okay=False, path_type=Path), help="Configuration file.")
def webhooks_test(subscription_id: int, config: Path | None) -> None:
    """Send a signed webhook.test event now and report what the endpoint answered."""
    result = call(load(config), lambda svc: svc.webhooks.test(subscription_id))
    click.echo(describe_test_delivery(result))
    sys.exit(0 if result.delivered else EXIT_ERROR)


def describe_test_delivery(result: TestDelivery) -> str:
    """One line saying what happened to a test delivery, and why when it was not delivered."""
    delivery, sub, waited_s = result.delivery, result.subscription, result.waited_s
    if result.delivered:
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
    if delivery.status == DeliveryStatus.PENDING:
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
    enabled = call(load(config), lambda svc: svc.webhooks.enable(subscription_id))
    before = enabled.before
    was = "it was enabled already" if before.enabled else f"it was disabled: {before.disabled_reason}"
    click.echo(f"enabled subscription {subscription_id} ({was}); {enabled.pending} pending deliveries")


@webhooks.command("replay")
@click.option("--since", required=True, help="ISO 8601 time: events created since then are sent again.")
@click.option("--subscription", "subscription_id", type=int, help="Only this subscription.")
@click.option("--now", "deliver_now", is_flag=True, help="Deliver at once instead of leaving it to the agent.")
@click.option("--config", type=click.Path(dir_okay=False, path_type=Path), help="Configuration file.")
def webhooks_replay(since: str, subscription_id: int | None, deliver_now: bool, config: Path | None) -> None:
    """Send events again (same webhook-id, so receivers can de-duplicate)."""
    settings = load(config)
    try:
        when = datetime.fromisoformat(since.replace("Z", "+00:00"))
    except ValueError:
        fail(f"--since {since!r} is not an ISO 8601 time")
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    count = call(settings, lambda svc: svc.webhooks.replay(when, subscription_id, now=deliver_now))
    click.echo(f"{count} deliveries queued again" + (" and sent" if deliver_now else ""))
