"""`dweb-agent` commands. Parses arguments, calls the services, prints.

Exit codes of `scan`: 0 clean, 1 findings, 2 error (including bad arguments)."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from agent import __version__
from agent.config import ConfigError, Settings, load_settings
from agent.observability import configure_logging, new_registry
from agent.media.vpdq import format_vpdq
from agent.report import EXIT_ERROR, ItemReport, ScanReport


def _settings(config: Path | None) -> Settings:
    try:
        return load_settings(config)
    except ConfigError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_ERROR)


# A reader that stops early (`dweb-agent scan ... | head`) closes stdout under us.
# Click would exit 1, which means "findings"; exit as a process killed by SIGPIPE
# would instead (128 + 13).
EXIT_BROKEN_PIPE = 141


class _Commands(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except BrokenPipeError:
            # Python would complain again when it flushes stdout at exit: point it at /dev/null.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            sys.exit(EXIT_BROKEN_PIPE)


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="dweb-agent")
@click.option("--log-level", default="warning", show_default=True,
              type=click.Choice(["debug", "info", "warning", "error"]), help="Log level (logs go to stderr).")
@click.pass_context
def main(ctx: click.Context, log_level: str) -> None:
    """Monitor the decentralized web for content on shared hash lists."""
    ctx.ensure_object(dict)
    ctx.obj["log_level"] = log_level


def _human(n: int | None) -> str:
    if n is None:
        return "-"
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return str(n)


def _table(report: ScanReport, console: Console) -> None:
    table = Table(title=f"{report.target}" + (f"  (root {report.root})" if report.root else ""))
    for col in ("path", "status", "type", "size", "sha256", "source", "findings"):
        table.add_column(col, overflow="fold")
    colors = {"verified": "green", "incomplete": "yellow", "blocked": "magenta", "error": "red", "skipped": "yellow"}
    for item in report.items:
        src = item.source.gateway or item.source.local or "-"
        if item.source.lied:
            src += f" (lied: {', '.join(item.source.lied)})"
        status = f"[{colors[item.status.value]}]{item.status.value}[/]"
        sha = str(item.signals.get("sha256", ""))[:16]
        table.add_row(item.path or "(root)", status, item.media_type or "-", _human(item.size), sha, src,
                      str(len(item.findings)) if item.findings else "")
    console.print(table)
    for item in report.items:
        if item.error:
            console.print(f"[red]{item.path or '(root)'}[/]: {item.error}")
    for error in report.errors:
        console.print(f"[red]scan error[/]: {error}")
    s = report.summary()
    console.print(f"{s['items']} items: {s['verified']} verified, {s['incomplete']} incomplete, "
                  f"{s['blocked']} blocked, {s['error']} errors, {s['skipped']} skipped; {s['findings']} findings")


def _report_list_problems(catalog: Any, shown: int = 10) -> None:
    for problem in catalog.problems[:shown]:
        where = f"{problem.source}:{problem.line}" if problem.line else problem.source
        click.echo(f"warning: {where}: {problem.message} (line skipped)", err=True)
    if len(catalog.problems) > shown:
        click.echo(f"warning: {len(catalog.problems) - shown} more list problems not shown", err=True)


@main.command()
@click.argument("target")
@click.option("--gateway", "gateways", multiple=True, metavar="URL",
              help="Trustless gateway to fetch from (repeatable; default: [gateways] urls in the config).")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default=None,
              help="Report format (default: table on a terminal, JSON otherwise).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Write the report to FILE instead of stdout.")
@click.option("--mode", type=click.Choice(["car", "raw"]), default="car", show_default=True,
              help="Retrieve whole entities as CAR streams, or block by block.")
@click.option("--concurrency", type=click.IntRange(1, 64), default=4, show_default=True, help="Items fetched at once.")
@click.option("--list", "lists", multiple=True, metavar="PATH|URL",
              help="Hash list or denylist to match against (repeatable; adds to [lists] sources).")
@click.option("--no-media", is_flag=True, help="Skip perceptual hashing of images and videos.")
@click.option("--config", type=click.Path(dir_okay=False, path_type=Path), help="Configuration file.")
@click.pass_context
def scan(ctx: click.Context, target: str, gateways: tuple[str, ...], fmt: str | None, out: Path | None, mode: str,
         concurrency: int, lists: tuple[str, ...], no_media: bool, config: Path | None) -> None:
    """Scan TARGET once and report every file under it.

    TARGET is ipfs://CID[/path], /ipfs/CID[/path], a bare CID, a path or
    subdomain gateway URL, a local .car file, or a local file or directory.

    Exit status: 0 every item verified and nothing matched; 1 something matched
    a list; 2 some item could not be verified, or the scan failed."""
    from agent.lists.catalog import ListLoadError
    from agent.scan import Scanner, load_scan_catalog

    configure_logging(ctx.obj["log_level"])
    settings = _settings(config)
    stdout_tty = sys.stdout.isatty() and out is None
    fmt = fmt or ("table" if stdout_tty else "json")
    err_console = Console(stderr=True)
    progress: Progress | None = None
    task: Any = None
    if err_console.is_terminal:
        progress = Progress(SpinnerColumn(), TextColumn("{task.description}"), TextColumn("{task.completed} items"),
                            TimeElapsedColumn(), console=err_console, transient=True)
        task = progress.add_task(f"scanning {target}", total=None)

    def on_item(item: ItemReport) -> None:
        if progress is not None:
            progress.update(task, advance=1, description=f"{item.path or target}"[:60])

    try:
        catalog = asyncio.run(load_scan_catalog(settings, list(lists)))
    except ListLoadError as exc:
        click.echo(f"error: list {exc}", err=True)
        sys.exit(EXIT_ERROR)
    _report_list_problems(catalog)
    scanner = Scanner(settings, gateways=list(gateways), mode=mode,  # type: ignore[arg-type]
                      concurrency=concurrency, on_item=on_item, catalog=catalog, hash_media=not no_media)
    if progress is not None:
        with progress:
            report = asyncio.run(scanner.scan(target))
    else:
        report = asyncio.run(scanner.scan(target))

    if fmt == "json":
        text = report.to_json()
        if out is not None:
            out.write_text(text + "\n", encoding="utf-8")
        else:
            click.echo(text)
    else:
        if out is not None:
            with out.open("w", encoding="utf-8") as fh:
                _table(report, Console(file=fh, width=160))
        else:
            # Off a terminal, never fold CIDs and paths at 80 columns.
            _table(report, Console() if sys.stdout.isatty() else Console(width=220))
    sys.exit(report.exit_code())


@main.command(name="hash")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["te", "json", "vpdq"]), default="te", show_default=True,
              help="te: ThreatExchange plain lines `<type> <value>` (a list file); json: everything; "
                   "vpdq: per-frame video hashes `frame,quality,pdq_hex,timestamp`.")
@click.option("--every-frame", is_flag=True, help="vPDQ: hash every video frame (as reference lists do), not one per second.")
@click.option("--config", type=click.Path(dir_okay=False, path_type=Path), help="Configuration file.")
@click.pass_context
def hash_files(ctx: click.Context, files: tuple[Path, ...], fmt: str, every_frame: bool, config: Path | None) -> None:
    """Print the signals of local FILES, to build lists or look them up.

    Exit status: 0 every file hashed; 2 some file could not be hashed."""
    from agent.hashing import hash_local_files

    configure_logging(ctx.obj["log_level"])
    settings = _settings(config)
    if every_frame:
        settings.media.video_fps_sample = 0
    results = asyncio.run(hash_local_files(settings, list(files)))
    failed = False
    if fmt == "json":
        click.echo(json.dumps([r.to_dict() for r in results], indent=2))
    for r in results:
        if r.error:
            failed = True
            click.echo(f"error: {r.path}: {r.error}", err=True)
        if fmt == "te":
            click.echo(f"# {r.path} ({r.media_type}, {r.size} bytes)")
            for sig in r.signals:
                if sig.quality is not None:
                    weak = " (under 50: too flat to match; lists never match on it)" if sig.quality < 50 else ""
                    click.echo(f"# {sig.type.value} quality {sig.quality}{weak}")
                click.echo(f"{sig.type.value} {sig.value}")
            if r.video_frames:
                click.echo(f"# vpdq: {len(r.video_frames)} frames; use --format vpdq to write them as a list file")
        elif fmt == "vpdq":
            if r.video_frames:
                if len(results) > 1:
                    click.echo(f"# {r.path}")
                click.echo(format_vpdq(r.video_frames), nl=False)
            elif not r.error:
                click.echo(f"note: {r.path}: not a video, no vPDQ frames", err=True)
    sys.exit(EXIT_ERROR if failed else 0)


def _emit(data: Any, fmt: str, table: Table | None) -> None:
    if fmt == "json":
        click.echo(json.dumps(data, indent=2, default=str))
    elif table is not None:
        Console(width=None if sys.stdout.isatty() else 220).print(table)


async def _with_store(settings: Settings, body: Any) -> Any:
    from agent.store import Store

    settings.agent.data_dir.mkdir(parents=True, exist_ok=True)
    store = await Store.open(settings.agent.database())
    try:
        return await body(store)
    finally:
        await store.close()


def _target_dict(t: Any) -> dict[str, Any]:
    return {"id": t.id, "url": t.url, "kind": t.kind, "interval_s": t.interval_s, "enabled": t.enabled,
            "last_poll_at": t.last_poll_at, "last_success_at": t.last_success_at, "last_error": t.last_error,
            "consecutive_failures": t.consecutive_failures, "next_run_at": t.next_run_at, "state": t.state}


@main.group()
def targets() -> None:
    """Watch targets of the daemon (stored in its database; a running agent picks changes up)."""


@targets.command("add")
@click.argument("url")
@click.option("--interval", "interval_s", type=click.IntRange(1), help="Seconds between polls (default from config).")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
@click.option("--config", type=click.Path(dir_okay=False, path_type=Path), help="Configuration file.")
def targets_add(url: str, interval_s: int | None, fmt: str, config: Path | None) -> None:
    """Watch URL: ipfs://CID, ipns://KEY, dnslink://DOMAIN, kubo://HOST:PORT, arweave+https://GW/graphql?TAG=V."""
    from agent.store import DuplicateTarget
    from agent.targets import TargetError
    from agent.watch import classify_target

    settings = _settings(config)
    try:
        spec = classify_target(url)
    except TargetError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_ERROR)

    async def body(store: Any) -> Any:
        return await store.add_target(spec.url, spec.kind.value, interval_s or settings.schedule.default_interval_s)

    try:
        row = asyncio.run(_with_store(settings, body))
    except DuplicateTarget:
        click.echo(f"error: {spec.url} is already watched", err=True)
        sys.exit(EXIT_ERROR)
    if fmt == "json":
        _emit(_target_dict(row), fmt, None)
    else:
        click.echo(f"watching {row.url} ({row.kind}, every {row.interval_s} s) as target {row.id}")


@targets.command("list")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default=None)
@click.option("--config", type=click.Path(dir_okay=False, path_type=Path), help="Configuration file.")
def targets_list(fmt: str | None, config: Path | None) -> None:
    """List watch targets."""
    settings = _settings(config)
    rows = asyncio.run(_with_store(settings, lambda store: store.list_targets()))
    fmt = fmt or ("table" if sys.stdout.isatty() else "json")
    table = Table()
    for col in ("id", "url", "kind", "every", "last poll", "last error", "next run"):
        table.add_column(col, overflow="fold")
    for t in rows:
        table.add_row(str(t.id), t.url, t.kind, f"{t.interval_s}s", _when(t.last_poll_at), t.last_error or "",
                      _when(t.next_run_at))
    _emit([_target_dict(t) for t in rows], fmt, table)


@targets.command("remove")
@click.argument("target")
@click.option("--config", type=click.Path(dir_okay=False, path_type=Path), help="Configuration file.")
def targets_remove(target: str, config: Path | None) -> None:
    """Stop watching TARGET (its id or URL). What was found is kept."""
    settings = _settings(config)
    key: int | str = int(target) if target.isdigit() else target
    if isinstance(key, str):
        from agent.targets import TargetError
        from agent.watch import classify_target

        try:
            key = classify_target(key).url
        except TargetError:
            pass
    removed = asyncio.run(_with_store(settings, lambda store: store.remove_target(key)))
    if not removed:
        click.echo(f"error: no target {target}", err=True)
        sys.exit(EXIT_ERROR)
    click.echo(f"removed {target}")


def _csv(value: str | None) -> list[str]:
    return [v.strip() for v in (value or "").split(",") if v.strip()]


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

    settings = _settings(config)
    guard = NetGuard(allow_hosts=frozenset(h.lower() for h in settings.alerts.allow_hosts))
    try:
        guard.check_url(url)
    except BlockedDestination as exc:
        click.echo(f"error: {url}: {exc.reason}", err=True)
        sys.exit(EXIT_ERROR)
    kinds = _csv(events)
    unknown = [k for k in kinds if k not in EVENT_TYPES]
    if unknown:
        click.echo(f"error: unknown event types {unknown}; known: {', '.join(EVENT_TYPES)}", err=True)
        sys.exit(EXIT_ERROR)
    try:
        target_ids = [int(t) for t in _csv(targets)]
    except ValueError:
        click.echo("error: --targets takes target ids (see `dweb-agent targets list`)", err=True)
        sys.exit(EXIT_ERROR)
    secret = new_secret()
    row = asyncio.run(_with_store(settings, lambda store: store.add_subscription(
        url, secret, lists=_csv(lists), labels=_csv(labels), targets=target_ids, event_types=kinds,
        max_in_flight=max_in_flight, description=description)))
    if fmt == "json":
        _emit({**_subscription_dict(row), "secret": secret}, fmt, None)
    else:
        click.echo(f"subscription {row.id}: {row.url}")
        click.echo(f"secret (shown once, store it now): {secret}")


@webhooks.command("list")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default=None)
@click.option("--config", type=click.Path(dir_okay=False, path_type=Path), help="Configuration file.")
def webhooks_list(fmt: str | None, config: Path | None) -> None:
    """List subscriptions (secrets are never shown again)."""
    settings = _settings(config)
    rows = asyncio.run(_with_store(settings, lambda store: store.list_subscriptions()))
    fmt = fmt or ("table" if sys.stdout.isatty() else "json")
    table = Table()
    for col in ("id", "url", "filters", "enabled", "failing since"):
        table.add_column(col, overflow="fold")
    for r in rows:
        filters = "; ".join(f"{k}={','.join(map(str, v))}" for k, v in
                            (("lists", r.lists), ("labels", r.labels), ("targets", r.targets),
                             ("events", r.event_types)) if v) or "all"
        table.add_row(str(r.id), r.url, filters, "yes" if r.enabled else f"no ({r.disabled_reason})",
                      _when(r.failing_since))
    _emit([_subscription_dict(r) for r in rows], fmt, table)


@webhooks.command("remove")
@click.argument("subscription_id", type=int)
@click.option("--config", type=click.Path(dir_okay=False, path_type=Path), help="Configuration file.")
def webhooks_remove(subscription_id: int, config: Path | None) -> None:
    """Remove a subscription and its pending deliveries."""
    settings = _settings(config)
    if not asyncio.run(_with_store(settings, lambda store: store.remove_subscription(subscription_id))):
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

    settings = _settings(config)
    secret = new_secret()
    grace = settings.alerts.rotation_grace_s if grace_s is None else grace_s
    until = datetime.now(timezone.utc) + timedelta(seconds=grace)
    row = asyncio.run(_with_store(settings, lambda store: store.rotate_secret(subscription_id, secret, until)))
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

    settings = _settings(config)

    async def body(store: Any) -> Any:
        sub = await store.get_subscription(subscription_id)
        if sub is None:
            return None
        event = test_event(sub)
        await store.emit_events([event])
        await _deliver_now(settings, store)
        return (await store.deliveries_of(event_id=event.id))[0]

    delivery = asyncio.run(_with_store(settings, body))
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

    settings = _settings(config)
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

    count = asyncio.run(_with_store(settings, body))
    click.echo(f"{count} deliveries queued again" + (" and sent" if deliver_now else ""))


@main.group()
def findings() -> None:
    """Findings: list them, and review them (every review is kept)."""


@findings.command("list")
@click.option("--limit", type=click.IntRange(1), default=100, show_default=True)
@click.option("--list", "list_name", help="Only this list.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default=None)
@click.option("--config", type=click.Path(dir_okay=False, path_type=Path), help="Configuration file.")
def findings_list(limit: int, list_name: str | None, fmt: str | None, config: Path | None) -> None:
    """Newest first."""
    settings = _settings(config)

    async def body(store: Any) -> Any:
        return await store.list_findings(limit=limit, list_name=list_name), await store.retracted_ids()

    rows, retracted = asyncio.run(_with_store(settings, body))
    fmt = fmt or ("table" if sys.stdout.isatty() else "json")
    data = [{"id": f.id, "item": f.item_key, "list": f.list_name, "entry_id": f.entry_id, "entry": f.entry_value,
             "signal_type": f.signal_type, "distance": f.distance, "labels": list(f.labels),
             "retroactive": f.retroactive, "retracted": f.id in retracted, "created_at": f.created_at} for f in rows]
    table = Table()
    for col in ("id", "list", "signal", "distance", "entry", "item", "retracted", "at"):
        table.add_column(col, overflow="fold")
    for d in data:
        table.add_row(str(d["id"]), d["list"], d["signal_type"], f"{d['distance']:g}", d["entry"][:24],
                      d["item"][:16], "yes" if d["retracted"] else "", _when(d["created_at"]))
    _emit(data, fmt, table)


@findings.command("review")
@click.argument("finding_id", type=int)
@click.option("--false-positive", "verdict", flag_value="false_positive", help="Retract it and suppress it.")
@click.option("--confirmed", "verdict", flag_value="confirmed", help="Confirm it.")
@click.option("--note", help="Why (kept with the review).")
@click.option("--reviewer", help="Who reviewed (default: $USER).")
@click.option("--config", type=click.Path(dir_okay=False, path_type=Path), help="Configuration file.")
def findings_review(finding_id: int, verdict: str | None, note: str | None, reviewer: str | None,
                    config: Path | None) -> None:
    """Record a review. A false positive sends finding.retracted to the subscribers that got it
    and suppresses future alerts for that item and list entry."""
    import os
    from datetime import datetime, timezone

    from agent.alerts.events import finding_retracted

    if verdict is None:
        click.echo("error: say --false-positive or --confirmed", err=True)
        sys.exit(EXIT_ERROR)
    settings = _settings(config)
    who = reviewer or os.environ.get("USER")

    async def body(store: Any) -> Any:
        finding = await store.get_finding(finding_id)
        if finding is None:
            raise LookupError(f"no finding {finding_id}")
        subs = await store.list_subscriptions()
        at = datetime.now(timezone.utc)
        return await store.review_finding(
            finding_id, verdict, note=note, reviewer=who,
            retraction=lambda recipients: finding_retracted(finding, "false_positive", note, subs, recipients, at))

    try:
        review = asyncio.run(_with_store(settings, body))
    except LookupError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_ERROR)
    click.echo(f"review {review.id}: finding {finding_id} {verdict.replace('_', ' ')}"
               + (" (retracted; the running agent delivers finding.retracted)" if verdict == "false_positive" else ""))


def _when(value: Any) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value is not None else "-"


@main.command()
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default=None)
@click.option("--config", type=click.Path(dir_okay=False, path_type=Path), help="Configuration file.")
def status(fmt: str | None, config: Path | None) -> None:
    """Targets (last poll, last error, next run), lists (versions, sizes), counts, and whether the agent runs."""
    import urllib.request

    settings = _settings(config)

    async def body(store: Any) -> dict[str, Any]:
        return {
            "targets": [_target_dict(t) for t in await store.list_targets()],
            "lists": [{"name": v.name, "source": v.source, "entries": v.entries, "deny_rules": v.deny_rules,
                       "problems": v.problems, "content_hash": v.content_hash, "loaded_at": v.loaded_at}
                      for v in await store.latest_list_versions()],
            "items": await store.count_items(),
            "findings": await store.count_findings(),
            "database": store.dialect,
        }

    data = asyncio.run(_with_store(settings, body))
    health_url = f"http://{settings.agent.health_host}:{settings.agent.health_port}/healthz"
    try:
        with urllib.request.urlopen(health_url, timeout=2) as resp:  # noqa: S310 (a local, configured address)
            data["agent"] = {"running": True, **json.loads(resp.read())}
    except OSError:
        data["agent"] = {"running": False, "health": health_url}
    fmt = fmt or ("table" if sys.stdout.isatty() else "json")
    if fmt == "json":
        _emit(data, fmt, None)
        return
    console = Console()
    running = data["agent"]["running"]
    console.print(f"agent: {'[green]running[/]' if running else '[yellow]not running[/]'} ({health_url}); "
                  f"database: {data['database']}; {data['items']} items, {data['findings']} findings")
    table = Table(title="targets")
    for col in ("id", "url", "kind", "every", "last poll", "failures", "last error", "next run"):
        table.add_column(col, overflow="fold")
    for t in data["targets"]:
        table.add_row(str(t["id"]), t["url"], t["kind"], f"{t['interval_s']}s", _when(t["last_poll_at"]),
                      str(t["consecutive_failures"]), t["last_error"] or "", _when(t["next_run_at"]))
    console.print(table)
    lists = Table(title="lists")
    for col in ("name", "entries", "deny rules", "problems", "version", "loaded"):
        lists.add_column(col)
    for v in data["lists"]:
        lists.add_row(v["name"], str(v["entries"]), str(v["deny_rules"]), str(v["problems"]),
                      (v["content_hash"] or "")[:12], _when(v["loaded_at"]))
    console.print(lists)


@main.command()
@click.option("--config", type=click.Path(dir_okay=False, path_type=Path), help="Configuration file.")
@click.pass_context
def run(ctx: click.Context, config: Path | None) -> None:
    """Run the agent as a daemon until SIGTERM or SIGINT."""
    from agent.daemon import run_daemon

    configure_logging("info" if ctx.obj["log_level"] == "warning" else ctx.obj["log_level"])
    settings = _settings(config)
    asyncio.run(run_daemon(settings, new_registry()))

