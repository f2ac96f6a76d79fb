"""`dweb-agent targets`: the daemon's watch targets."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from rich.table import Table

from agent.cli.common import call, emit, fail, load, when
from agent.cli.main import main

if TYPE_CHECKING:
    from agent.model.records import TargetRow


def target_dict(t: TargetRow) -> dict[str, Any]:
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
    added = call(load(config), lambda svc: svc.targets.add(url, interval_s))
    row = added.target
    if not added.created:
        fail(f"{row.url} is already watched")
    if fmt == "json":
        emit(target_dict(row), fmt, None)
    else:
        click.echo(f"watching {row.url} ({row.kind}, every {row.interval_s} s) as target {row.id}")


@targets.command("list")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default=None)
@click.option("--config", type=click.Path(dir_okay=False, path_type=Path), help="Configuration file.")
def targets_list(fmt: str | None, config: Path | None) -> None:
    """List watch targets."""
    rows = call(load(config), lambda svc: svc.targets.all())
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
    call(load(config), lambda svc: svc.targets.remove(target))
    click.echo(f"removed {target}")
