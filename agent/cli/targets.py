"""`dweb-agent targets`: the daemon's watch targets."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import click
from rich.table import Table

from agent.cli.common import emit, load, when, with_store
from agent.cli.main import main
from agent.model.report import EXIT_ERROR


def target_dict(t: Any) -> dict[str, Any]:
    return {
        "id": t.id,
        "url": t.url,
        "kind": t.kind,
        "interval_s": t.interval_s,
        "enabled": t.enabled,
        "last_poll_at": t.last_poll_at,
        "last_success_at": t.last_success_at,
        "last_error": t.last_error,
        "consecutive_failures": t.consecutive_failures,
        "next_run_at": t.next_run_at,
        "state": t.state,
    }


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

    settings = load(config)
    try:
        spec = classify_target(url)
    except TargetError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_ERROR)

    async def body(store: Any) -> Any:
        return await store.add_target(spec.url, spec.kind.value, interval_s or settings.schedule.default_interval_s)

    try:
        row = asyncio.run(with_store(settings, body))
    except DuplicateTarget:
        click.echo(f"error: {spec.url} is already watched", err=True)
        sys.exit(EXIT_ERROR)
    if fmt == "json":
        emit(target_dict(row), fmt, None)
    else:
        click.echo(f"watching {row.url} ({row.kind}, every {row.interval_s} s) as target {row.id}")


@targets.command("list")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default=None)
@click.option("--config", type=click.Path(dir_okay=False, path_type=Path), help="Configuration file.")
def targets_list(fmt: str | None, config: Path | None) -> None:
    """List watch targets."""
    settings = load(config)
    rows = asyncio.run(with_store(settings, lambda store: store.list_targets()))
    fmt = fmt or ("table" if sys.stdout.isatty() else "json")
    table = Table()
    for col in ("id", "url", "kind", "every", "last poll", "last error", "next run"):
        table.add_column(col, overflow="fold")
    for t in rows:
        table.add_row(
            str(t.id), t.url, t.kind, f"{t.interval_s}s", when(t.last_poll_at), t.last_error or "", when(t.next_run_at)
        )
    emit([target_dict(t) for t in rows], fmt, table)


@targets.command("remove")
@click.argument("target")
@click.option("--config", type=click.Path(dir_okay=False, path_type=Path), help="Configuration file.")
def targets_remove(target: str, config: Path | None) -> None:
    """Stop watching TARGET (its id or URL). What was found is kept."""
    settings = load(config)
    key: int | str = int(target) if target.isdigit() else target
    if isinstance(key, str):
        from agent.targets import TargetError
        from agent.watch import classify_target

        try:
            key = classify_target(key).url
        except TargetError:
            pass
    removed = asyncio.run(with_store(settings, lambda store: store.remove_target(key)))
    if not removed:
        click.echo(f"error: no target {target}", err=True)
        sys.exit(EXIT_ERROR)
    click.echo(f"removed {target}")
